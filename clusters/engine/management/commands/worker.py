"""`manage.py worker`: the django-q2 worker cluster plus the operations engine's dispatch loop."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection
from django_q.cluster import Cluster

from clusters.engine.dispatch import dispatch_due, dispatch_interval
from orgs.tenancy import use_public_schema

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the task workers (django-q2) and the loop that queues due operations."

    def handle(self, *args: Any, **options: Any) -> None:
        cluster = Cluster()
        cluster.start()  # forks the sentinel and its workers before this process opens a thread
        stopping = threading.Event()

        def stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        interval = dispatch_interval()
        while not stopping.is_set() and cluster.sentinel.is_alive():
            try:
                close_old_connections()
                use_public_schema()
                dispatch_due()
            except Exception:  # the database restarting must not end the worker
                logger.exception("dispatching due operations failed")
                connection.close()
            stopping.wait(interval)
        cluster.stop()
