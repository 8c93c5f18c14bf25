"""The reconcile loop: run an operation step by step until the cluster matches its spec.

Durable state lives in our tables, not in the task queue:
- a worker *claims* an operation with one conditional UPDATE (queued and due, or running with
  a stale heartbeat), so two workers never run the same operation;
- while it works, a heartbeat thread refreshes `heartbeat_at`; a worker that dies stops it,
  and `sweep_operations` (periodic) hands the operation to another worker;
- each step is idempotent and every cloud resource is recorded before it is created;
- errors are retried with backoff up to `max_attempts` (worker deaths count too), then the
  operation fails with the provider's message on the cluster page;
- a task works for at most RUN_BUDGET seconds, then queues a fresh task and returns its slot.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_tenants.utils import schema_context

from clusters import kube
from clusters.choices import (
    CLUSTER_TRANSITIONS,
    ClusterStatus,
    EventLevel,
    OperationKind,
    OperationStatus,
    ResourceState,
)
from clusters.exceptions import ProviderError
from clusters.models import CloudResource, Cluster, ClusterEvent, Node, NodePool, Operation
from clusters.providers.base import Outcome, ProviderDriver
from clusters.providers.registry import driver_for
from clusters.services.events import cluster_changed
from clusters.services.health import conditions, converged
from config.tasks import enqueue
from orgs.crypto import Secret
from orgs.exceptions import FlotillaError
from orgs.models import Organization

logger = logging.getLogger(__name__)
RUN_OPERATION = "clusters.tasks.run_operation"


def stale_after() -> float:
    """Seconds without a heartbeat after which an operation's worker is presumed dead."""
    return float(getattr(settings, "FLOTILLA_OPERATION_STALE_SECONDS", 60))


def run_budget() -> float:
    """Seconds one task works on an operation before handing over to a fresh task."""
    return float(getattr(settings, "FLOTILLA_OPERATION_RUN_BUDGET", 600))


def step_timeout() -> float:
    """Seconds one step (e.g. waiting for nodes) may take before it counts as a failure."""
    return float(getattr(settings, "FLOTILLA_OPERATION_STEP_TIMEOUT", 600))


def backoff(attempt: int) -> float:
    """Seconds before retry number `attempt` (2, 4, 8... capped at 60)."""
    return float(min(60, 2 ** max(1, attempt)))


class StepTimedOut(ProviderError):
    """A step waited longer than its timeout."""


# --- claiming and heart-beating --------------------------------------------------------------


def claim(operation_id: int, worker: str) -> Operation | None:
    """Take an operation that is due, or whose worker stopped heart-beating. None if not ours to run."""
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
        took_over = operation.status == OperationStatus.RUNNING
        Operation.objects.filter(pk=operation.pk).update(
            status=OperationStatus.RUNNING,
            claimed_by=worker,
            heartbeat_at=now,
            started_at=Coalesce("started_at", now),
            # A worker that died mid-run used up an attempt.
            attempts=operation.attempts + (1 if took_over else 0),
        )
        operation.refresh_from_db()
        if took_over:
            ClusterEvent.objects.create(
                cluster_id=operation.cluster_id,
                operation=operation,
                level=EventLevel.WARNING,
                message="The worker running this operation stopped; another worker carries on",
            )
    return operation


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
                    Operation.objects.filter(pk=self.operation_id, claimed_by=self.worker).update(
                        heartbeat_at=timezone.now()
                    )
        except Exception:  # the worker's own loop notices a lost claim; never crash the thread noisily
            logger.exception("heartbeat of operation %s failed", self.operation_id)
        finally:
            connection.close()


# --- what a driver sees ----------------------------------------------------------------------


class Context:
    """The ReconcileContext of one cluster: every write commits at once (crash safety)."""

    def __init__(self, cluster: Cluster, operation: Operation | None, schema_name: str) -> None:
        self.cluster = cluster
        self.operation = operation
        self.schema_name = schema_name

    def pools(self) -> Sequence[NodePool]:
        return list(NodePool.objects.filter(cluster=self.cluster).order_by("created_at", "id"))

    def resources(self, kind: str | None = None) -> list[CloudResource]:
        qs = CloudResource.objects.filter(cluster=self.cluster).exclude(state=ResourceState.DELETED)
        return list(qs.filter(kind=kind) if kind else qs.order_by("id"))

    def plan_resource(
        self, kind: str, name: str, *, pool_name: str = "", data: dict[str, Any] | None = None
    ) -> CloudResource:
        existing = (
            CloudResource.objects.filter(cluster=self.cluster, kind=kind, name=name)
            .exclude(state=ResourceState.DELETED)
            .first()
        )
        if existing is not None:
            return existing
        return CloudResource.objects.create(
            cluster=self.cluster, kind=kind, name=name, pool_name=pool_name, data=data or {}
        )

    def resource_created(
        self, resource: CloudResource, provider_id: str, data: dict[str, Any] | None = None
    ) -> None:
        resource.provider_id = provider_id
        resource.state = ResourceState.CREATED
        resource.data = {**(resource.data or {}), **(data or {})}
        resource.save(update_fields=["provider_id", "state", "data", "updated_at"])

    def resource_deleted(self, resource: CloudResource) -> None:
        resource.state = ResourceState.DELETED
        resource.save(update_fields=["state", "updated_at"])

    def store_kubeconfig(self, kubeconfig: str, *, endpoint: str = "") -> None:
        endpoint = endpoint or kube.server_of(kubeconfig)
        if self.cluster.kubeconfig_text() == kubeconfig and self.cluster.api_endpoint == endpoint:
            return
        self.cluster.kubeconfig = kubeconfig
        self.cluster.api_endpoint = endpoint
        self.cluster.save(update_fields=["kubeconfig", "api_endpoint", "updated_at"])

    def secret(self, key: str, make: Callable[[], str]) -> str:
        stored = Cluster.objects.filter(pk=self.cluster.pk).values_list("bootstrap_secret", flat=True).first()
        raw = stored.reveal() if isinstance(stored, Secret) else str(stored or "")
        values: dict[str, str] = json.loads(raw) if raw else {}
        if key not in values:
            values[key] = make()
            self.cluster.bootstrap_secret = json.dumps(values)
            self.cluster.save(update_fields=["bootstrap_secret", "updated_at"])
        return values[key]

    def event(self, message: str, *, level: str = EventLevel.INFO) -> None:
        record = ClusterEvent.objects.create(
            cluster=self.cluster, operation=self.operation, level=level, message=message[:2000]
        )
        cluster_changed(self.schema_name, self.cluster, operation=self.operation, event=record)


# --- running an operation --------------------------------------------------------------------

_START_STATUS = {
    OperationKind.CREATE: ClusterStatus.PROVISIONING,
    OperationKind.IMPORT: ClusterStatus.PROVISIONING,
    OperationKind.DELETE: ClusterStatus.DELETING,
}


def worker_id() -> str:
    """Who claims: host, process and a random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_operation(operation_id: int) -> str:
    """Work on one operation until it finishes, fails, is cancelled or the budget is spent."""
    schema: str = connection.schema_name  # type: ignore[attr-defined]
    worker = worker_id()
    _wait_for_other_operations(operation_id)
    operation = claim(operation_id, worker)
    if operation is None:
        return "not claimed"
    cluster = Cluster.objects.select_related("provider").get(pk=operation.cluster_id)
    ctx = Context(cluster, operation, schema)
    deadline = time.monotonic() + run_budget()
    with Heartbeat(schema, operation.pk, worker):
        try:
            _enter_status(cluster, operation, ctx)
            driver = driver_for(cluster.provider)
        except FlotillaError as exc:
            _fail(operation, cluster, ctx, exc.message)
            return "failed"
        while True:
            operation.refresh_from_db()
            if operation.claimed_by != worker or operation.status != OperationStatus.RUNNING:
                return "lost claim"
            if operation.cancel_requested:
                _finish_cancelled(operation, cluster, ctx)
                return "cancelled"
            cluster.refresh_from_db()
            try:
                outcome = _step(driver, cluster, operation, ctx)
            except (FlotillaError, kube.KubeError) as exc:
                retryable = getattr(exc, "retryable", True)
                if not _retry_later(operation, cluster, ctx, exc.message, retryable=retryable):
                    return "failed"
                wait = (operation.next_attempt_at - timezone.now()).total_seconds()
                if time.monotonic() + wait > deadline:
                    _hand_over(operation, schema)
                    return "handed over"
                _sleep(wait)
                _resume(operation, worker)
                continue
            except Exception as exc:  # a bug or an unexpected library error: retried, and logged
                logger.exception("operation %s step failed", operation.pk)
                if not _retry_later(
                    operation, cluster, ctx, f"{exc.__class__.__name__}: {exc}", retryable=True
                ):
                    return "failed"
                _sleep((operation.next_attempt_at - timezone.now()).total_seconds())
                _resume(operation, worker)
                continue
            if outcome.done:
                _succeed(operation, cluster, ctx, outcome)
                return "succeeded"
            _record_progress(operation, cluster, ctx, outcome)
            if time.monotonic() + outcome.retry_after > deadline:
                _hand_over(operation, schema)
                return "handed over"
            _sleep(outcome.retry_after)


def _wait_for_other_operations(operation_id: int, timeout: float = 120) -> None:
    # A deletion may supersede a running operation: let it stop at its next step first.
    deadline = time.monotonic() + timeout
    cluster_id = Operation.objects.filter(pk=operation_id).values_list("cluster_id", flat=True).first()
    if cluster_id is None:
        return
    while time.monotonic() < deadline:
        fresh = timezone.now() - timedelta(seconds=stale_after())
        other = (
            Operation.objects.filter(
                cluster_id=cluster_id, status=OperationStatus.RUNNING, heartbeat_at__gte=fresh
            )
            .exclude(pk=operation_id)
            .exists()
        )
        if not other:
            return
        time.sleep(0.5)


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def _resume(operation: Operation, worker: str) -> None:
    # After a backoff, the operation is ours again (it stayed claimed while we slept).
    Operation.objects.filter(pk=operation.pk, claimed_by=worker).update(
        status=OperationStatus.RUNNING, heartbeat_at=timezone.now()
    )


def _enter_status(cluster: Cluster, operation: Operation, ctx: Context) -> None:
    target = _START_STATUS.get(OperationKind(operation.kind), ClusterStatus.UPDATING)
    if cluster.status != target:
        cluster.transition_to(target)
        cluster.save(update_fields=["status", "status_reason", "updated_at"])
        ctx.event(f"{ClusterStatus(target).label}: {operation.get_kind_display().lower()}")


def _step(driver: ProviderDriver, cluster: Cluster, operation: Operation, ctx: Context) -> Outcome:
    _check_step_timeout(operation)
    if operation.kind == OperationKind.DELETE:
        return driver.destroy(ctx)
    outcome = driver.reconcile(ctx)
    if not outcome.done:
        return outcome
    try:
        return converged(cluster, managed=driver.provisions, trusted=driver.trusted_api)
    except kube.KubeError:
        # Machines that are up may still be installing Kubernetes: wait (the step timeout bounds it).
        return Outcome.wait("Waiting for the Kubernetes API to answer", 3.0)


def _check_step_timeout(operation: Operation) -> None:
    if operation.step_started_at is None:
        return
    waited = (timezone.now() - operation.step_started_at).total_seconds()
    if waited > step_timeout():
        raise StepTimedOut(f"Timed out after {waited:.0f} s at: {operation.step}")


def _record_progress(operation: Operation, cluster: Cluster, ctx: Context, outcome: Outcome) -> None:
    fields = ["heartbeat_at"]
    operation.heartbeat_at = timezone.now()
    if outcome.message and outcome.message != operation.step:
        operation.step = outcome.message[:200]
        operation.step_started_at = timezone.now()
        fields += ["step", "step_started_at"]
    if outcome.progress is not None and outcome.progress != operation.progress:
        operation.progress = max(0, min(99, outcome.progress))
        fields.append("progress")
    Operation.objects.filter(pk=operation.pk).update(**{f: getattr(operation, f) for f in fields})
    if "step" in fields:
        ctx.event(outcome.message)
    elif "progress" in fields:
        cluster_changed(ctx.schema_name, cluster, operation=operation)


def _retry_later(
    operation: Operation, cluster: Cluster, ctx: Context, message: str, *, retryable: bool
) -> bool:
    """Count a failed attempt; False (and the operation failed) when no attempt is left."""
    attempts = operation.attempts + 1
    if not retryable or attempts >= operation.max_attempts:
        suffix = "" if not retryable else f" (gave up after {attempts} attempts)"
        _fail(operation, cluster, ctx, message + suffix)
        return False
    delay = backoff(attempts)
    operation.attempts = attempts
    operation.error = message[:4000]
    operation.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    operation.step_started_at = None
    Operation.objects.filter(pk=operation.pk).update(
        attempts=attempts,
        error=operation.error,
        next_attempt_at=operation.next_attempt_at,
        step_started_at=None,
    )
    ctx.event(
        f"Attempt {attempts} of {operation.max_attempts} failed: {message}; retrying in {delay:.0f} s",
        level=EventLevel.WARNING,
    )
    return True


def _hand_over(operation: Operation, schema: str) -> None:
    """Give the operation back to the queue for a fresh task (the budget of this one is spent)."""
    with transaction.atomic():
        Operation.objects.filter(pk=operation.pk, status=OperationStatus.RUNNING).update(
            status=OperationStatus.QUEUED, claimed_by="", heartbeat_at=None
        )
        enqueue(RUN_OPERATION, schema_name=schema, operation_id=operation.pk)


def _fail(operation: Operation, cluster: Cluster, ctx: Context, message: str) -> None:
    with transaction.atomic():
        operation.transition_to(OperationStatus.FAILED)
        operation.error = message[:4000]
        operation.finished_at = timezone.now()
        operation.claimed_by = ""
        operation.save(update_fields=["status", "error", "finished_at", "claimed_by"])
        cluster.refresh_from_db()
        if cluster.status != ClusterStatus.ERROR:
            cluster.transition_to(ClusterStatus.ERROR, message[:2000])
        else:
            cluster.status_reason = message[:2000]
        cluster.save(update_fields=["status", "status_reason", "updated_at"])
        ctx.event(f"{operation.get_kind_display()} failed: {message}", level=EventLevel.ERROR)


def _succeed(operation: Operation, cluster: Cluster, ctx: Context, outcome: Outcome) -> None:
    with transaction.atomic():
        operation.transition_to(OperationStatus.SUCCEEDED)
        operation.progress = 100
        operation.step = (outcome.message or "Done")[:200]
        operation.finished_at = timezone.now()
        operation.error = ""
        operation.save(update_fields=["status", "progress", "step", "finished_at", "error"])
        cluster.refresh_from_db()
        if operation.kind == OperationKind.DELETE:
            cluster.transition_to(ClusterStatus.DELETED)
            cluster.deleted_at = timezone.now()
            cluster.kubeconfig = ""
            cluster.bootstrap_secret = ""
            cluster.save()
            Node.objects.filter(cluster=cluster).delete()
        else:
            NodePool.objects.filter(cluster=cluster, removing=True).delete()
            cluster.transition_to(ClusterStatus.READY)
            cluster.conditions = conditions(api=True, nodes_ready=True, spec=True)
            cluster.health_checked_at = timezone.now()
            cluster.save()
        ctx.event(f"{operation.get_kind_display()} succeeded: {outcome.message}")


def _finish_cancelled(operation: Operation, cluster: Cluster, ctx: Context) -> None:
    with transaction.atomic():
        operation.transition_to(OperationStatus.CANCELLED)
        operation.finished_at = timezone.now()
        operation.claimed_by = ""
        operation.save(update_fields=["status", "finished_at", "claimed_by"])
        settle_cancelled(operation)
    ctx.event("Operation stopped after cancellation", level=EventLevel.WARNING)


def settle_cancelled(operation: Operation) -> None:
    """Where a cancelled operation leaves its cluster."""
    cluster = Cluster.objects.select_for_update().get(pk=operation.cluster_id)
    if operation.kind in (OperationKind.CREATE, OperationKind.IMPORT, OperationKind.DELETE):
        status, reason = (
            ClusterStatus.ERROR,
            f"{operation.get_kind_display()} was cancelled; retry it or delete the cluster.",
        )
    else:
        status, reason = (
            ClusterStatus.DEGRADED,
            f"{operation.get_kind_display()} was cancelled; the spec may not be reached.",
        )
    if cluster.status in (ClusterStatus.PENDING,) and status == ClusterStatus.DEGRADED:
        status = ClusterStatus.ERROR
    if cluster.status != status and status in CLUSTER_TRANSITIONS[cluster.status]:
        cluster.transition_to(status, reason)
        cluster.save(update_fields=["status", "status_reason", "updated_at"])


# --- periodic: the sweeper (run in the public schema) ------------------------------------------


def sweep_operations() -> dict[str, int]:
    """Hand operations whose worker died (or whose task was lost) to a new worker; fail exhausted ones."""
    counts = {"requeued": 0, "failed": 0, "cancelled": 0}
    for org in Organization.objects.filter(suspended_at__isnull=True).only("schema_name"):
        with schema_context(org.schema_name):
            _sweep_schema(org.schema_name, counts)
    return counts


def _sweep_schema(schema: str, counts: dict[str, int]) -> None:
    now = timezone.now()
    stale = now - timedelta(seconds=stale_after())
    dead = Operation.objects.filter(status=OperationStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)
    )
    for operation in dead.select_related("cluster"):
        ctx = Context(operation.cluster, operation, schema)
        if operation.cancel_requested:
            _finish_cancelled(operation, operation.cluster, ctx)
            counts["cancelled"] += 1
        elif operation.attempts + 1 >= operation.max_attempts:
            _fail(
                operation,
                operation.cluster,
                ctx,
                f"The workers running it stopped {operation.attempts + 1} times; giving up. "
                "Retry when fixed.",
            )
            counts["failed"] += 1
        else:
            enqueue(RUN_OPERATION, schema_name=schema, operation_id=operation.pk)
            counts["requeued"] += 1
    # Queued and due for a while but not picked up: the task was lost (e.g. the queue was purged).
    lost = Operation.objects.filter(
        status=OperationStatus.QUEUED, next_attempt_at__lt=now - timedelta(seconds=15)
    )
    for operation_id in lost.values_list("pk", flat=True):
        enqueue(RUN_OPERATION, schema_name=schema, operation_id=operation_id)
        counts["requeued"] += 1
