"""Running an operation: claim, heartbeat, one pass of steps, then release, finish or hand over.

A pass never sleeps: when a step asks to wait, or an attempt fails and must back off, the
operation goes back to queued with its due time (clusters.engine.dispatch.schedule) and the
worker returns to the pool. Steps that are ready at once run back to back, for at most the run
budget; then the operation is queued again for a fresh task.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_tenants.utils import schema_context

from clusters.choices import ACTIVE_OPERATION_STATUSES, OperationStatus
from clusters.engine import dispatch
from clusters.engine.jobs import Job, Run, job_for
from clusters.engine.machine import move, schema
from clusters.engine.outcome import Outcome
from clusters.exceptions import ProviderError
from clusters.models import Operation
from orgs.exceptions import FlotillaError

logger = logging.getLogger(__name__)


def stale_after() -> float:
    """Seconds without a heartbeat after which an operation's worker is presumed dead."""
    return float(getattr(settings, "FLOTILLA_OPERATION_STALE_SECONDS", 60))


def run_budget() -> float:
    """Seconds one task works on an operation before handing over to a fresh task."""
    return float(getattr(settings, "FLOTILLA_OPERATION_RUN_BUDGET", 600))


def step_timeout() -> float:
    """Seconds one step (e.g. waiting for nodes) may take, waits included, before it counts as a failure."""
    return float(getattr(settings, "FLOTILLA_OPERATION_STEP_TIMEOUT", 600))


def backoff(attempt: int) -> float:
    """Seconds before retry number `attempt` (2, 4, 8... capped at 60)."""
    return float(min(60, 2 ** max(1, attempt)))


class StepTimedOut(ProviderError):
    """A step waited longer than its timeout."""


def worker_id() -> str:
    """Who claims: host, process and a random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# --- claiming -------------------------------------------------------------------------------


def claim(operation_id: int, worker: str) -> Operation | None:
    """Take an operation that is due, or whose worker stopped heart-beating; None if not ours to run.

    An operation that conflicts with one still running (a deletion superseding a scale that is
    finishing its step) is not taken: it is made due again a moment later, and no worker waits.
    A conflicting operation whose worker died and whose cancellation was asked for is finished
    here first (take-over).
    """
    now = timezone.now()
    stale = now - timedelta(seconds=stale_after())
    with transaction.atomic():
        operation = (
            Operation.objects.select_for_update(skip_locked=True)
            .filter(pk=operation_id)
            .filter(
                Q(status=OperationStatus.QUEUED, next_attempt_at__lte=now)
                | Q(status=OperationStatus.RUNNING, heartbeat_at__lt=stale)
                | Q(status=OperationStatus.RUNNING, heartbeat_at__isnull=True)
            )
            .first()
        )
        if operation is None:
            return None
        job = job_for(operation.kind)
        if _blocked(operation, job, worker, stale):
            return None
        took_over = operation.status == OperationStatus.RUNNING
        previous = operation.claimed_by
        moved = move(
            operation,
            OperationStatus.RUNNING,
            reason=f"taken over from {previous or 'a lost worker'}" if took_over else "claimed",
            worker=worker,
            holder=previous,
            claimed_by=worker,
            heartbeat_at=now,
            started_at=Coalesce("started_at", now),
            # A worker that died mid-run used up an attempt.
            attempts=operation.attempts + (1 if took_over else 0),
        )
        if not moved:
            return None
        dispatch.claimed(operation.pk)
        if took_over:
            job.note(
                Run(operation, schema(), worker),
                "The worker running this operation stopped; another worker carries on",
                level="warning",
            )
    return operation


def _blocked(operation: Operation, job: Job, worker: str, stale: object) -> bool:
    others = (
        Operation.objects.select_for_update()
        .filter(job.conflicts(operation), status=OperationStatus.RUNNING)
        .exclude(pk=operation.pk)
    )
    blocked = False
    for other in others:
        dead = other.heartbeat_at is None or other.heartbeat_at < stale  # type: ignore[operator]
        if dead and other.cancel_requested:
            finish_cancelled(other, worker=worker)
        else:
            blocked = True
    if blocked and operation.status == OperationStatus.QUEUED:
        due = timezone.now() + timedelta(seconds=1)
        Operation.objects.filter(pk=operation.pk).update(next_attempt_at=due)
        dispatch.schedule(operation.pk, due)
    return blocked


class Heartbeat:
    """Refreshes the operation's heartbeat from a thread while a step blocks."""

    def __init__(self, schema_name: str, operation_id: int, worker: str) -> None:
        self.schema_name = schema_name
        self.operation_id = operation_id
        self.worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{operation_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        interval = max(0.5, stale_after() / 4)
        try:
            while not self._stop.wait(interval):
                with schema_context(self.schema_name):
                    Operation.objects.filter(
                        pk=self.operation_id, claimed_by=self.worker, status=OperationStatus.RUNNING
                    ).update(heartbeat_at=timezone.now())
        except Exception:  # the worker's own loop notices a lost claim; never crash the thread noisily
            logger.exception("heartbeat of operation %s failed", self.operation_id)
        finally:
            connection.close()


# --- one pass -------------------------------------------------------------------------------


def run_operation(operation_id: int) -> str:
    """One pass over an operation: what happened ("waiting", "succeeded", "not claimed"...)."""
    worker = worker_id()
    operation = claim(operation_id, worker)
    if operation is None:
        return "not claimed"
    job = job_for(operation.kind)
    run = Run(operation, schema(), worker)
    deadline = time.monotonic() + run_budget()
    with Heartbeat(run.schema_name, operation.pk, worker):
        try:
            run.subject = job.load(run)
            job.begin(run)
        except FlotillaError as exc:
            fail(run, exc.message)
            return "failed"
        while True:
            operation.refresh_from_db()
            if operation.claimed_by != worker or operation.status != OperationStatus.RUNNING:
                return "lost claim"
            if operation.cancel_requested:
                finish_cancelled(operation, worker=worker)
                return "cancelled"
            run.subject = job.load(run)
            try:
                _check_step_timeout(operation)
                outcome = job.step(run)
            except FlotillaError as exc:
                return _failed_attempt(run, exc.message, retryable=getattr(exc, "retryable", True))
            except Exception as exc:
                # A Kubernetes error (clusters.kube.KubeError carries its own `retryable`), a bug or
                # an unexpected library error: retried, and logged.
                retryable = getattr(exc, "retryable", True)
                if not hasattr(exc, "message"):
                    logger.exception("operation %s step failed", operation.pk)
                message = str(getattr(exc, "message", "") or f"{exc.__class__.__name__}: {exc}")
                return _failed_attempt(run, message, retryable=retryable)
            if outcome.done:
                succeed(run, outcome)
                return "succeeded"
            _record_progress(run, outcome)
            if outcome.retry_after > 0:
                release(run, delay=outcome.retry_after, reason="waiting")
                return "waiting"
            if time.monotonic() > deadline:
                release(run, delay=0, reason="run budget spent; handed over to a fresh task")
                return "handed over"


def _check_step_timeout(operation: Operation) -> None:
    if operation.step_started_at is None:
        return
    waited = (timezone.now() - operation.step_started_at).total_seconds()
    if waited > step_timeout():
        raise StepTimedOut(f"Timed out after {waited:.0f} s at: {operation.step}")


def _record_progress(run: Run, outcome: Outcome) -> None:
    operation = run.operation
    fields: dict[str, object] = {"heartbeat_at": timezone.now()}
    step_changed = bool(outcome.message) and outcome.message[:200] != operation.step
    if step_changed:
        fields["step"] = outcome.message[:200]
        fields["step_started_at"] = timezone.now()
    if outcome.progress is not None and outcome.progress != operation.progress:
        fields["progress"] = max(0, min(99, outcome.progress))
    Operation.objects.filter(pk=operation.pk, claimed_by=run.worker).update(**fields)
    for name, value in fields.items():
        setattr(operation, name, value)
    if step_changed:
        run.operation.refresh_from_db(fields=["step", "progress"])
        job_for(operation.kind).note(run, outcome.message)
    elif "progress" in fields:
        job_for(operation.kind).changed(run)


def release(run: Run, *, delay: float, reason: str, **fields: object) -> bool:
    """Give the operation back (queued, due in `delay` s): the worker's slot is free meanwhile."""
    due = timezone.now() + timedelta(seconds=max(0.0, delay))
    with transaction.atomic():
        moved = move(
            run.operation,
            OperationStatus.QUEUED,
            reason=reason,
            worker=run.worker,
            holder=run.worker,
            claimed_by="",
            next_attempt_at=due,
            heartbeat_at=None,
            **fields,
        )
        if moved:
            if Operation.objects.filter(pk=run.operation.pk, cancel_requested=True).exists():
                # Cancelled while this step ran: stop here rather than wait (a superseding deletion
                # waits for exactly this). A request after this commit finds it queued and ends it.
                finish_cancelled(run.operation, worker=run.worker)
            else:
                dispatch.schedule(run.operation.pk, due)
    return moved


def _failed_attempt(run: Run, message: str, *, retryable: bool) -> str:
    """Count a failed attempt: back off (queued, due later) or, with none left, fail."""
    operation = run.operation
    job = job_for(operation.kind)
    attempts = operation.attempts + 1
    if not retryable or attempts >= operation.max_attempts:
        suffix = "" if not retryable else f" (gave up after {attempts} attempts)"
        fail(run, message + suffix)
        return "failed"
    delay = backoff(attempts)
    if release(
        run,
        delay=delay,
        reason=f"attempt {attempts} failed",
        attempts=attempts,
        error=message[:4000],
        step_started_at=None,
    ):
        job.note(
            run,
            f"Attempt {attempts} of {operation.max_attempts} failed: {message}; retrying in {delay:.0f} s",
            level="warning",
        )
    return "retrying"


# --- endings --------------------------------------------------------------------------------


def fail(run: Run, message: str) -> bool:
    """The operation failed for good (until a person retries it)."""
    operation = run.operation
    job = job_for(operation.kind)
    with transaction.atomic():
        moved = move(
            operation,
            OperationStatus.FAILED,
            reason=message[:200],
            worker=run.worker,
            **({"holder": run.worker} if run.worker else {}),
            error=message[:4000],
        )
        if moved:
            job.fail(run, message)
            job.note(run, f"{operation.get_kind_display()} failed: {message}", level="error")
    return moved


def succeed(run: Run, outcome: Outcome) -> bool:
    """The operation reached its goal."""
    operation = run.operation
    job = job_for(operation.kind)
    with transaction.atomic():
        moved = move(
            operation,
            OperationStatus.SUCCEEDED,
            reason="done",
            worker=run.worker,
            holder=run.worker,
            progress=100,
            step=(outcome.message or "Done")[:200],
            error="",
        )
        if moved:
            job.succeed(run, outcome)
            job.note(run, f"{operation.get_kind_display()} succeeded: {outcome.message}")
    return moved


def finish_cancelled(operation: Operation, *, worker: str = "") -> bool:
    """End an operation whose cancellation was asked for (or a queued one, at once)."""
    job = job_for(operation.kind)
    run = Run(operation, schema(), worker)
    with transaction.atomic():
        moved = move(
            operation, OperationStatus.CANCELLED, reason="cancelled", worker=worker, step="Cancelled"
        )
        if moved:
            run.subject = job.load(run)
            job.cancelled(run)
            job.note(run, "Operation stopped after cancellation", level="warning")
    return moved


def request_cancel(operation: Operation, *, reason: str) -> bool:
    """Cancel: a queued (or waiting) operation at once, a running one after its current step.

    Returns True when the operation is already cancelled, False when a running one was asked to stop.
    Call inside a transaction with the operation's row locked.
    """
    Operation.objects.filter(pk=operation.pk).update(cancel_requested=True, error=reason[:4000])
    operation.cancel_requested = True
    operation.error = reason[:4000]
    job = job_for(operation.kind)
    job.note(Run(operation, schema()), f"Cancelled: {reason}", level="warning")
    if operation.status == OperationStatus.QUEUED:
        return finish_cancelled(operation)
    return False


def retry(operation: Operation, *, reason: str) -> bool:
    """A failed or cancelled operation queued again with a fresh budget of attempts."""
    moved = move(
        operation,
        OperationStatus.QUEUED,
        reason=reason,
        attempts=0,
        error="",
        cancel_requested=False,
        finished_at=None,
        next_attempt_at=timezone.now(),
        step="Queued for retry",
        step_started_at=None,
    )
    if moved:
        dispatch.schedule(operation.pk)
    return moved


def submit(operation: Operation) -> None:
    """A newly recorded operation: make it due now (queued after the caller's transaction commits)."""
    if operation.status not in ACTIVE_OPERATION_STATUSES:
        raise ValueError(f"operation #{operation.pk} is {operation.status}, not active")
    dispatch.schedule(operation.pk, operation.next_attempt_at)
