"""A job that follows a script in its parameters: fast, deterministic failure paths for the engine.

`params["script"]` is a list of entries, taken one per step (the position is kept in the
operation's `state`, so it survives passes, hand-overs and worker deaths):
- "step": a step is taken, call again at once;      "wait:S": ask to be called in S seconds;
- "fail": a retryable error (consumed);            "failalways": a retryable error, forever;
- "fatal": a non-retryable error;                  "crash": an unexpected exception;
- "hang:S": block S seconds in the step;           "steal": another worker takes the claim;
- "cancel": a cancellation arrives while the step runs;  "done": finished.
Every step appends (entry, pid, time) to `state["log"]`; the succeed/fail/cancelled hooks write
`state["settled"]`, inside the engine's final transaction.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.db.models import Q
from django.utils import timezone

from clusters.engine import Job, Outcome, Run
from clusters.engine.runner import request_cancel
from clusters.exceptions import ProviderError
from clusters.models import ClusterEvent, Operation
from clusters.permissions import Action


def _state(operation_id: int) -> dict[str, Any]:
    return dict(Operation.objects.values_list("state", flat=True).get(pk=operation_id) or {})


def _save(operation_id: int, state: dict[str, Any]) -> None:
    Operation.objects.filter(pk=operation_id).update(state=state)


class ScriptedJob(Job):
    """Runs `params["script"]`."""

    def permission(self, operation: Operation) -> str:
        return Action.CLUSTER_UPDATE

    def conflicts(self, operation: Operation) -> Q:
        return Q(subject_type=operation.subject_type, subject_id=operation.subject_id)

    def step(self, run: Run) -> Outcome:
        op = run.operation
        state = _state(op.pk)
        script = list(op.params.get("script") or ["done"])
        at = int(state.get("at", 0))
        entry = script[min(at, len(script) - 1)]
        if entry != "failalways":
            state["at"] = at + 1
        state.setdefault("log", []).append([entry, os.getpid(), timezone.now().isoformat()])
        _save(op.pk, state)
        name, _, arg = entry.partition(":")
        if name == "step":
            return Outcome.step(f"step {at}")
        if name == "wait":
            return Outcome.wait(f"waiting at {at}", float(arg or 1))
        if name in ("fail", "failalways"):
            raise ProviderError(f"scripted failure at {at}")
        if name == "fatal":
            raise ProviderError(f"scripted fatal error at {at}", retryable=False)
        if name == "crash":
            raise RuntimeError(f"scripted crash at {at}")
        if name == "hang":
            time.sleep(float(arg or 1))
            return Outcome.step(f"hung at {at}")
        if name == "steal":
            Operation.objects.filter(pk=op.pk).update(claimed_by="another-worker")
            return Outcome.step(f"claim stolen at {at}")
        if name == "cancel":
            fresh = Operation.objects.get(pk=op.pk)
            request_cancel(fresh, reason="cancelled while running")
            return Outcome.step(f"cancel arrived at {at}")
        return Outcome.finished(f"finished at {at}")

    def _settle(self, run: Run, value: str) -> None:
        state = _state(run.operation.pk)
        state["settled"] = value
        _save(run.operation.pk, state)

    def succeed(self, run: Run, outcome: Outcome) -> None:
        self._settle(run, "succeeded")

    def fail(self, run: Run, message: str) -> None:
        self._settle(run, f"failed: {message}")

    def cancelled(self, run: Run) -> None:
        self._settle(run, "cancelled")

    def note(self, run: Run, message: str, *, level: str = "info") -> None:
        ClusterEvent.objects.create(
            cluster_id=run.operation.cluster_id, operation=run.operation, level=level, message=message[:2000]
        )


def submit_scripted(org: Any, *script: str, subject: int = 1, max_attempts: int = 5) -> Operation:
    """Record and submit a scripted operation in `org` (on a cluster row that never runs)."""
    import secrets

    from django.db import transaction
    from django_tenants.utils import schema_context

    from clusters.engine import runner
    from clusters.models import Cluster
    from clusters.services.providers import ensure_local_provider
    from tests.factories import actor_for, owner_of

    with schema_context(org.schema_name), transaction.atomic():
        cluster = Cluster.objects.filter(name="scripted").first() or Cluster.objects.create(
            name="scripted",
            provider=ensure_local_provider(actor_for(owner_of(org))),
            version="1.36.1",
            external_name=secrets.token_hex(6),
        )
        operation = Operation.objects.create(
            cluster=cluster,
            subject_type="scripted",
            subject_id=subject,
            kind="scripted",
            params={"script": list(script)},
            max_attempts=max_attempts,
        )
        runner.submit(operation)
        return operation
