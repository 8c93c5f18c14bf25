"""`manage.py local_clusters [list|ensure-running]`: the local clusters on this host.

`ensure-running` brings back every local cluster whose processes stopped (a host reboot, a
killed worker); scripts/run.sh calls it at start-up so nothing is left half-alive.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from clusters.local.errors import LocalClusterError
from clusters.local.runtime import LocalRuntime


class Command(BaseCommand):
    help = "List the local clusters on this host, or start the ones that should run but do not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", nargs="?", default="list", choices=["list", "ensure-running"])

    def handle(self, *args: Any, **options: Any) -> None:
        runtime = LocalRuntime()
        names = runtime.list_clusters()
        if options["action"] == "list":
            for name in names:
                state = "running" if runtime.is_healthy(name) else "stopped"
                self.stdout.write(f"{name}\t{state}\t{runtime.kubeconfig_path(name)}")
            return
        for name in names:
            try:
                restarted = runtime.ensure_running(name)
            except LocalClusterError as exc:
                self.stderr.write(f"{name}: {exc}")
                continue
            self.stdout.write(f"{name}: {'restarted' if restarted else 'already running'}")
