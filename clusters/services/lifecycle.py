"""Cluster changes as jobs of the operations engine: create, import, scale, add/remove a pool,
upgrade, delete.

`ClusterJob` is the clusters app's implementation of the engine's step protocol
(clusters.engine.jobs.Job): it moves the cluster to its working status when a worker claims the
operation, asks the provider driver for one idempotent step towards the spec (or towards nothing,
for a deletion), then asks the cluster's API whether the spec is reached, and settles the cluster
when the operation succeeds, fails or is cancelled. `Context` is what a driver sees while it
works (clusters.providers.base.ReconcileContext): every write commits at once, so a worker killed
at any point leaves the database saying what exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clusters import kube
from clusters.choices import (
    CLUSTER_TRANSITIONS,
    AppStatus,
    ClusterStatus,
    EventLevel,
    OperationKind,
    ResourceState,
)
from clusters.engine.jobs import Job, Run, register_job
from clusters.engine.outcome import Outcome
from clusters.models import App, AppRevision, CloudResource, Cluster, ClusterEvent, Node, NodePool, Operation
from clusters.permissions import Action
from clusters.providers.base import ProviderDriver
from clusters.providers.registry import driver_for
from clusters.services.events import cluster_changed
from clusters.services.health import conditions, converged
from orgs.crypto import Secret

# --- what a driver sees ----------------------------------------------------------------------


class Context:
    """The ReconcileContext of one cluster: every write commits at once (crash safety)."""

    def __init__(self, cluster: Cluster, operation: Operation | None, schema_name: str) -> None:
        self.cluster = cluster
        self.operation = operation
        self.schema_name = schema_name

    def _subject(self) -> dict[str, Any]:
        if self.operation is not None and self.operation.subject_id is not None:
            return {"subject_type": self.operation.subject_type, "subject_id": self.operation.subject_id}
        return {"subject_type": "cluster", "subject_id": self.cluster.pk}

    def pools(self) -> Sequence[NodePool]:
        return list(NodePool.objects.filter(cluster=self.cluster).order_by("created_at", "id"))

    def resources(self, kind: str | None = None) -> list[CloudResource]:
        qs = CloudResource.objects.filter(cluster=self.cluster, **self._subject()).exclude(
            state=ResourceState.DELETED
        )
        return list(qs.filter(kind=kind) if kind else qs.order_by("id"))

    def plan_resource(
        self, kind: str, name: str, *, pool_name: str = "", data: dict[str, Any] | None = None
    ) -> CloudResource:
        existing = (
            CloudResource.objects.filter(cluster=self.cluster, kind=kind, name=name, **self._subject())
            .exclude(state=ResourceState.DELETED)
            .first()
        )
        if existing is not None:
            return existing
        return CloudResource.objects.create(
            cluster=self.cluster,
            kind=kind,
            name=name,
            pool_name=pool_name,
            data=data or {},
            **self._subject(),
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


# --- the job ---------------------------------------------------------------------------------

_START_STATUS: dict[str, ClusterStatus] = {
    OperationKind.CREATE: ClusterStatus.PROVISIONING,
    OperationKind.IMPORT: ClusterStatus.PROVISIONING,
    OperationKind.DELETE: ClusterStatus.DELETING,
}

# Cancelling or retrying an operation decides whether its change happens, so it needs the
# permission of the change itself: a member who may not delete a cluster may neither stop an
# admin's deletion nor start one again.
_PERMISSIONS: dict[str, Action] = {
    OperationKind.CREATE: Action.CLUSTER_CREATE,
    OperationKind.IMPORT: Action.CLUSTER_CREATE,
    OperationKind.DELETE: Action.CLUSTER_DELETE,
}


class ClusterJob(Job):
    """Every cluster change: one driver step at a time, then the convergence check."""

    def load(self, run: Run) -> Cluster:
        return Cluster.objects.select_related("provider").get(pk=run.operation.cluster_id)

    def permission(self, operation: Operation) -> str:
        return _PERMISSIONS.get(operation.kind, Action.CLUSTER_UPDATE)

    def conflicts(self, operation: Operation) -> Q:
        # One change at a time per cluster; a deletion that supersedes a running change (or an
        # app's rollout on it) waits, without a worker, until that has stopped at the end of its
        # step. Apps roll out while their cluster scales or upgrades.
        if operation.kind == OperationKind.DELETE:
            return Q(cluster_id=operation.cluster_id)
        return Q(cluster_id=operation.cluster_id, subject_type="cluster")

    def _context(self, run: Run) -> Context:
        return Context(run.subject, run.operation, run.schema_name)

    def _driver(self, run: Run) -> ProviderDriver:
        driver = run.extra.get("driver")
        if driver is None:
            driver = run.extra["driver"] = driver_for(run.subject.provider)
        return driver

    def begin(self, run: Run) -> None:
        cluster: Cluster = run.subject
        target = _START_STATUS.get(run.operation.kind, ClusterStatus.UPDATING)
        if cluster.status != target:
            cluster.transition_to(target)
            cluster.save(update_fields=["status", "status_reason", "updated_at"])
            self.note(run, f"{ClusterStatus(target).label}: {run.operation.get_kind_display().lower()}")
        self._driver(run)  # a provider that cannot be built fails the operation at once

    def step(self, run: Run) -> Outcome:
        cluster: Cluster = run.subject
        driver = self._driver(run)
        ctx = self._context(run)
        if run.operation.kind == OperationKind.DELETE:
            return driver.destroy(ctx)
        outcome = driver.reconcile(ctx)
        if not outcome.done:
            return outcome
        try:
            return converged(cluster, managed=driver.provisions, trusted=driver.trusted_api)
        except kube.KubeError:
            # Machines that are up may still be installing Kubernetes: wait (the step timeout bounds it).
            return Outcome.wait("Waiting for the Kubernetes API to answer", 3.0)

    def succeed(self, run: Run, outcome: Outcome) -> None:
        cluster = Cluster.objects.select_for_update().get(pk=run.operation.cluster_id)
        run.subject = cluster
        if run.operation.kind == OperationKind.DELETE:
            kubeconfig = cluster.kubeconfig_text()
            if kubeconfig:
                # No cached client outlives the cluster (its address may be reused by another).
                transaction.on_commit(lambda: kube.forget(kubeconfig))
            cluster.transition_to(ClusterStatus.DELETED)
            cluster.deleted_at = timezone.now()
            cluster.kubeconfig = ""
            cluster.bootstrap_secret = ""
            cluster.save()
            Node.objects.filter(cluster=cluster).delete()
            # Its apps went with it (their revisions stay for the record).
            App.objects.filter(cluster=cluster, deleted_at__isnull=True).update(
                status=AppStatus.DELETED,
                status_reason="Its cluster was deleted.",
                deleted_at=timezone.now(),
                secrets="",
                updated_at=timezone.now(),
            )
            AppRevision.objects.filter(app__cluster=cluster).update(secrets="")
        else:
            NodePool.objects.filter(cluster=cluster, removing=True).delete()
            cluster.transition_to(ClusterStatus.READY)
            cluster.conditions = conditions(api=True, nodes_ready=True, spec=True)
            cluster.health_checked_at = timezone.now()
            cluster.save()

    def fail(self, run: Run, message: str) -> None:
        cluster = Cluster.objects.select_for_update().get(pk=run.operation.cluster_id)
        run.subject = cluster
        if cluster.status == ClusterStatus.DELETED:
            return
        if cluster.status != ClusterStatus.ERROR:
            cluster.transition_to(ClusterStatus.ERROR, message[:2000])
        else:
            cluster.status_reason = message[:2000]
        cluster.save(update_fields=["status", "status_reason", "updated_at"])

    def cancelled(self, run: Run) -> None:
        operation = run.operation
        cluster = Cluster.objects.select_for_update().get(pk=operation.cluster_id)
        run.subject = cluster
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
        if cluster.status == ClusterStatus.PENDING and status == ClusterStatus.DEGRADED:
            status = ClusterStatus.ERROR
        if cluster.status != status and status in CLUSTER_TRANSITIONS[cluster.status]:
            cluster.transition_to(status, reason)
            cluster.save(update_fields=["status", "status_reason", "updated_at"])

    def note(self, run: Run, message: str, *, level: str = EventLevel.INFO) -> None:
        cluster = run.subject if isinstance(run.subject, Cluster) else self.load(run)
        Context(cluster, run.operation, run.schema_name).event(message, level=level)

    def changed(self, run: Run) -> None:
        cluster = run.subject if isinstance(run.subject, Cluster) else self.load(run)
        cluster_changed(run.schema_name, cluster, operation=run.operation)


def register_cluster_jobs() -> None:
    """Called from the clusters app's ready()."""
    job = ClusterJob()
    for kind in OperationKind:
        register_job(kind.value, job, label=kind.label)
