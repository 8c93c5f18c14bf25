"""Helpers of the clusters tests: actors, a local provider account, and running operations inline."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.utils import timezone
from django_tenants.utils import schema_context

from clusters.engine import runner
from clusters.models import Cluster, Operation
from clusters.services.providers import ensure_local_provider
from orgs.actors import Actor
from orgs.models import Organization
from tests.factories import actor_for, owner_of


def owner_actor(org: Organization) -> Actor:
    """The org's owner, acting in the portal."""
    return actor_for(owner_of(org))


def local_pools(*counts: int, size: str = "small") -> list[dict[str, Any]]:
    """Pool requests named p0, p1... with the given node counts."""
    return [{"name": f"p{i}", "size": size, "count": n} for i, n in enumerate(counts)]


def run(org: Organization, operation: Operation, *, passes: int = 500) -> Operation:
    """Run an operation to its end in this process, inside the org's schema: what the workers and
    the dispatcher do between them (a pass, then, when it waits, another pass once it is due)."""
    with schema_context(org.schema_name):
        for _ in range(passes):
            runner.run_operation(operation.pk)
            current = Operation.objects.get(pk=operation.pk)
            if not current.is_active:
                return current
            if current.status == "queued":
                time.sleep(max(0.0, (current.next_attempt_at - timezone.now()).total_seconds()))
            else:
                time.sleep(0.05)  # another process holds it (a superseded change finishing its step)
        raise AssertionError(f"operation #{operation.pk} still {current.status} after {passes} passes")


def local_provider(org: Organization) -> Any:
    """The org's local provider account."""
    with schema_context(org.schema_name):
        return ensure_local_provider(owner_actor(org))


def reload(org: Organization, cluster: Cluster) -> Cluster:
    """A fresh copy of a cluster."""
    with schema_context(org.schema_name):
        return Cluster.objects.select_related("provider").get(pk=cluster.pk)


class KillableWorker:
    """A worker (`manage.py worker`: django-q2 and the dispatch loop) in its own process group,
    so a test can kill the whole of it at once (SIGKILL: no clean-up, as when a host or container dies)."""

    def __init__(self, log: Path, **env: str) -> None:
        from tests.live import ROOT, process_env

        self.log = log
        self._fh = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=ROOT,
            env=process_env(**env),
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL every process of the worker."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop gracefully (end of test)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._fh.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def poll(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.02, what: str) -> Any:
    """Poll fast (to catch short windows) until predicate() is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def processes_mentioning(fragment: str) -> list[int]:
    """Pids of live processes whose command line contains `fragment` (orphan checks)."""
    from clusters.local.runtime import process_alive

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmdline and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found
