"""Keeping the directory in step: read an org's tenant rows, upsert their public entries.

`sync_cluster` and `sync_operation` are called after commit (`transaction.on_commit`) by
`clusters.services.events.cluster_changed`, which every cluster service and the reconcile loop
call after each change; the operations engine calls `sync_operation` after each state move;
`sync_app` is called after commit by `clusters.services.app_events.app_changed`. All are
idempotent and cheap: `sync_operation` is three queries (read, upsert, the cluster's
active-operation columns), `sync_cluster` five (two reads, three upserts), `sync_app` two (read,
upsert). `rebuild_directory` refills everything from the org schemas (`manage.py
rebuild_directory`, run by `prepare_clusters` on every deploy).

A cluster's "active operation" is one of its own (subject_type "cluster"): the rollouts of its
apps run against it too, but they are the apps' operations, not a change of the cluster.

These are system writes of a derived copy, not user actions: no permission check, no audit
row (the change they mirror was audited by its own service).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import CharField, Count, Field, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context

from clusters.choices import ACTIVE_OPERATION_STATUSES, AppStatus, ClusterStatus
from clusters.directory.models import (
    ERROR_LENGTH,
    REASON_LENGTH,
    AppEntry,
    ClusterEntry,
    OperationEntry,
)
from clusters.directory.store import upsert
from clusters.models import App, Cluster, Node, NodePool, Operation
from orgs.models import Organization

# The newest operations of a cluster that a cluster sync refreshes: the one just queued, the one
# a deletion superseded, the one retried (a cluster has at most one active operation).
RECENT_OPERATIONS = 3
# Rows per statement when rebuilding (well under PostgreSQL's limit of bound parameters).
BATCH = 500
# The subject_type of a cluster's own operations (apps' operations run against it as well).
CLUSTER_SUBJECT = "cluster"

_CLUSTER_FIELDS = (
    "pk",
    "name",
    "status",
    "status_reason",
    "provider__kind",
    "provider__name",
    "region",
    "version",
    "observed_version",
    "created_at",
    "deleted_at",
)
_OPERATION_FIELDS = (
    "pk",
    "cluster_id",
    "subject_type",
    "cluster__name",
    "kind",
    "status",
    "step",
    "progress",
    "error",
    "attempts",
    "max_attempts",
    "requested_by",
    "created_at",
    "finished_at",
)
_APP_FIELDS = (
    "pk",
    "cluster_id",
    "cluster__name",
    "namespace",
    "name",
    "kind",
    "status",
    "status_reason",
    "revision",
    "desired_replicas",
    "ready_replicas",
    "available_replicas",
    "adopted",
    "created_at",
    "deleted_at",
)
# Guarded by operation_observed_at, not observed_at (see ClusterEntry): both syncs write them.
_ACTIVE_COLUMNS = ("active_operation_id", "active_operation_kind", "active_operation_status")


def _in_schema(schema_name: str) -> AbstractContextManager[Any]:
    # Already there (the engine, a task, an org's request): entering again would cost two
    # search_path switches per sync.
    if getattr(connection, "schema_name", None) == schema_name:
        return nullcontext()
    return schema_context(schema_name)  # type: ignore[no-any-return]


def _org_ref(schema_name: str) -> Subquery:
    # The org's id, read in the same statement as the tenant rows (the public schema is on
    # every org's search path), so a sync costs no extra query for it.
    return Subquery(Organization.objects.filter(schema_name=schema_name).values("pk")[:1])


def _count(queryset: Any, expression: Any) -> Coalesce:
    """A per-cluster aggregate as a correlated subquery (no join that multiplies rows)."""
    inner = queryset.filter(cluster=OuterRef("pk")).order_by().values("cluster")
    return Coalesce(
        Subquery(inner.annotate(n=expression).values("n")[:1], output_field=IntegerField()), Value(0)
    )


def _clusters(schema_name: str) -> Any:
    """Clusters with what their entries need, in one statement (secrets never read)."""
    return Cluster.objects.annotate(
        org_ref=_org_ref(schema_name),
        observed=Now(),
        ready=_count(Node.objects.filter(ready=True), Count("pk")),
        total=_count(Node.objects.all(), Count("pk")),
        desired=_count(NodePool.objects.filter(removing=False), Sum("count")),
    ).values(*_CLUSTER_FIELDS, "org_ref", "observed", "ready", "total", "desired")


def _operations(schema_name: str) -> Any:
    return Operation.objects.annotate(org_ref=_org_ref(schema_name), observed=Now()).values(
        *_OPERATION_FIELDS, "org_ref", "observed"
    )


def _is_clusters_own_active(operation: dict[str, Any]) -> bool:
    """Queued or running, and a change of the cluster itself (not one of its apps' rollouts)."""
    return bool(
        operation["subject_type"] == CLUSTER_SUBJECT and operation["status"] in ACTIVE_OPERATION_STATUSES
    )


def _active_of_cluster(column: str) -> Subquery:
    """One column of the cluster's own queued or running operation, read with the cluster row
    (its newest operations may all be its apps' rollouts, so they cannot be relied on for it)."""
    active = Operation.objects.filter(
        cluster=OuterRef("pk"), subject_type=CLUSTER_SUBJECT, status__in=ACTIVE_OPERATION_STATUSES
    ).order_by("-pk")
    field: Field[Any, Any] = IntegerField() if column == "pk" else CharField()
    return Subquery(active.values(column)[:1], output_field=field)


def _cluster_row(
    row: dict[str, Any], active: dict[str, Any] | None, observed: datetime, now: datetime
) -> dict[str, Any]:
    """The entry of a cluster row; `active` is its queued or running operation as read at `observed`."""
    return {
        "org": row["org_ref"],
        "cluster_id": row["pk"],
        "name": row["name"],
        "status": ClusterStatus.DELETED if row["deleted_at"] else row["status"],
        "status_reason": (row["status_reason"] or "")[:REASON_LENGTH],
        "provider_kind": row["provider__kind"],
        "provider_name": row["provider__name"],
        "region": row["region"],
        "version": row["version"],
        "observed_version": row["observed_version"],
        "nodes_ready": row["ready"],
        "nodes_total": row["total"],
        "nodes_desired": row["desired"],
        "active_operation_id": active["pk"] if active else None,
        "active_operation_kind": active["kind"] if active else "",
        "active_operation_status": active["status"] if active else "",
        "operation_observed_at": observed,
        "created_at": row["created_at"],
        "observed_at": row["observed"],
        "updated_at": now,
    }


def _operation_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "org": row["org_ref"],
        "operation_id": row["pk"],
        "cluster_id": row["cluster_id"],
        "cluster_name": row["cluster__name"],
        "kind": row["kind"],
        "status": row["status"],
        "step": (row["step"] or "")[:200],
        "progress": row["progress"],
        "error": (row["error"] or "")[:ERROR_LENGTH],
        "attempts": row["attempts"],
        "max_attempts": row["max_attempts"],
        "requested_by": row["requested_by"],
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
        "observed_at": row["observed"],
        "updated_at": now,
    }


def _upsert_clusters(rows: Sequence[dict[str, Any]]) -> None:
    """Two guarded statements: the cluster's own columns, then its active-operation columns."""
    if not rows:
        return
    own = [name for name in rows[0] if name not in (*_ACTIVE_COLUMNS, "operation_observed_at")]
    upsert(ClusterEntry, rows, key=("org", "cluster_id"), update=own)
    active = [*_ACTIVE_COLUMNS, "operation_observed_at", "updated_at"]
    upsert(ClusterEntry, rows, key=("org", "cluster_id"), update=active, guard="operation_observed_at")


def _upsert_operations(rows: Sequence[dict[str, Any]]) -> None:
    upsert(OperationEntry, rows, key=("org", "operation_id"))


def _set_active(org_id: int, cluster_id: int, operation: dict[str, Any], observed: datetime) -> None:
    """Point the cluster's entry at this operation (one of the cluster's own) while it is active;
    once it has finished, clear the entry if it still points at it. Guarded like an upsert (newer
    reads win)."""
    if operation["subject_type"] != CLUSTER_SUBJECT:
        return
    entry = ClusterEntry.objects.filter(org_id=org_id, cluster_id=cluster_id).filter(
        Q(operation_observed_at__isnull=True) | Q(operation_observed_at__lte=observed)
    )
    if _is_clusters_own_active(operation):
        entry.update(
            active_operation_id=operation["pk"],
            active_operation_kind=operation["kind"],
            active_operation_status=operation["status"],
            operation_observed_at=observed,
        )
        return
    entry.filter(active_operation_id=operation["pk"]).update(
        active_operation_id=None,
        active_operation_kind="",
        active_operation_status="",
        operation_observed_at=observed,
    )


def sync_cluster(schema_name: str, cluster_id: int) -> None:
    """Bring one cluster's entry, and its newest operations' entries, in step with its org's schema."""
    with _in_schema(schema_name):
        cluster = (
            _clusters(schema_name)
            .annotate(
                active_pk=_active_of_cluster("pk"),
                active_kind=_active_of_cluster("kind"),
                active_status=_active_of_cluster("status"),
            )
            .filter(pk=cluster_id)
            .first()
        )
        operations = list(
            _operations(schema_name).filter(cluster_id=cluster_id).order_by("-pk")[:RECENT_OPERATIONS]
        )
    if cluster is None:
        _forget_cluster(schema_name, cluster_id)
        return
    if cluster["org_ref"] is None:  # a schema that is no org's (the template)
        return
    active = None
    if cluster["active_pk"] is not None:
        active = {key: cluster[f"active_{key}"] for key in ("pk", "kind", "status")}
    now = timezone.now()
    # The active operation was read with the cluster row, so at that row's instant.
    _upsert_clusters([_cluster_row(cluster, active, cluster["observed"], now)])
    _upsert_operations([_operation_row(op, now) for op in operations])


def _forget_cluster(schema_name: str, cluster_id: int) -> None:
    # The row is gone from the org's schema (ids are never reused, so it cannot come back).
    ClusterEntry.objects.filter(org__schema_name=schema_name, cluster_id=cluster_id).update(
        status=ClusterStatus.DELETED,
        active_operation_id=None,
        active_operation_kind="",
        active_operation_status="",
        updated_at=timezone.now(),
    )
    # Its apps' rows went with it (foreign key, cascade).
    AppEntry.objects.filter(org__schema_name=schema_name, cluster_id=cluster_id).exclude(
        status=AppStatus.DELETED
    ).update(status=AppStatus.DELETED, updated_at=timezone.now())


def follow_operation(sender: object, *, schema_name: str, operation_id: int, **kwargs: Any) -> None:
    """Receiver of clusters.engine.signals.operation_moved: copy the moved operation."""
    sync_operation(schema_name, operation_id)


def sync_operation(schema_name: str, operation_id: int) -> None:
    """Bring one operation's entry, and its cluster's active-operation columns, in step (3 queries)."""
    with _in_schema(schema_name):
        operation = _operations(schema_name).filter(pk=operation_id).first()
    if operation is None:
        OperationEntry.objects.filter(org__schema_name=schema_name, operation_id=operation_id).delete()
        return
    if operation["org_ref"] is None:
        return
    _upsert_operations([_operation_row(operation, timezone.now())])
    _set_active(operation["org_ref"], operation["cluster_id"], operation, operation["observed"])


def _apps(schema_name: str) -> Any:
    """Apps with what their entries need, in one statement (secrets and the spec never read)."""
    return App.objects.annotate(
        org_ref=_org_ref(schema_name),
        observed=Now(),
        image_ref=KeyTextTransform("image", "spec"),
    ).values(*_APP_FIELDS, "org_ref", "observed", "image_ref")


def _app_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "org": row["org_ref"],
        "app_id": row["pk"],
        "cluster_id": row["cluster_id"],
        "cluster_name": row["cluster__name"],
        "namespace": row["namespace"],
        "name": row["name"],
        "image": (row["image_ref"] or "")[:2048],
        "kind": row["kind"],
        "status": AppStatus.DELETED if row["deleted_at"] else row["status"],
        "status_reason": (row["status_reason"] or "")[:REASON_LENGTH],
        "revision": row["revision"],
        "desired_replicas": row["desired_replicas"],
        "ready_replicas": row["ready_replicas"],
        "available_replicas": row["available_replicas"],
        "adopted": row["adopted"],
        "created_at": row["created_at"],
        "deleted_at": row["deleted_at"],
        "observed_at": row["observed"],
        "updated_at": now,
    }


def sync_app(schema_name: str, app_id: int) -> None:
    """Bring one app's entry in step with its org's schema (two queries: read, upsert)."""
    with _in_schema(schema_name):
        app = _apps(schema_name).filter(pk=app_id).first()
    if app is None:
        # The row is gone (its cluster's row was removed): ids are never reused.
        AppEntry.objects.filter(org__schema_name=schema_name, app_id=app_id).exclude(
            status=AppStatus.DELETED
        ).update(status=AppStatus.DELETED, updated_at=timezone.now())
        return
    if app["org_ref"] is None:  # a schema that is no org's (the template)
        return
    upsert(AppEntry, [_app_row(app, timezone.now())], key=("org", "app_id"))


def rebuild_apps(org: Organization) -> int:
    """Refill one org's app entries from its schema; entries of apps it no longer has become
    deleted. Returns how many rows it read."""
    now = timezone.now()
    with schema_context(org.schema_name):
        apps = list(_apps(org.schema_name).order_by("pk"))
    for batch in _batches(_app_row(row, now) for row in apps):
        upsert(AppEntry, batch, key=("org", "app_id"))
    gone = AppEntry.objects.filter(org=org).exclude(app_id__in=[row["pk"] for row in apps])
    gone.exclude(status=AppStatus.DELETED).update(status=AppStatus.DELETED, updated_at=now)
    return len(apps)


def _batches(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def rebuild_org(org: Organization) -> int:
    """Refill one org's cluster and operation entries from its schema; drop entries of rows it no
    longer has. Returns how many rows it read."""
    now = timezone.now()
    with schema_context(org.schema_name):
        clusters = list(_clusters(org.schema_name).order_by("pk"))
        operations = list(_operations(org.schema_name).order_by("pk"))
    active: dict[int, dict[str, Any]] = {}
    for op in operations:  # ascending: the newest active operation of a cluster wins
        if _is_clusters_own_active(op):
            active[op["cluster_id"]] = op
    observed = operations[-1]["observed"] if operations else (clusters[0]["observed"] if clusters else now)
    rows = (_cluster_row(row, active.get(row["pk"]), observed, now) for row in clusters)
    for batch in _batches(rows):
        _upsert_clusters(batch)
    for batch in _batches(_operation_row(row, now) for row in operations):
        _upsert_operations(batch)
    cluster_ids = [row["pk"] for row in clusters]
    gone = ClusterEntry.objects.filter(org=org).exclude(cluster_id__in=cluster_ids)
    gone.exclude(status=ClusterStatus.DELETED).update(
        status=ClusterStatus.DELETED,
        active_operation_id=None,
        active_operation_kind="",
        active_operation_status="",
        updated_at=now,
    )
    OperationEntry.objects.filter(org=org).exclude(operation_id__in=[op["pk"] for op in operations]).delete()
    return len(clusters) + len(operations)


def rebuild_directory() -> tuple[int, int]:
    """Refill every org's entries of every registered list (after an upgrade, or to repair
    drift): (orgs, rows read)."""
    from clusters.directory.registry import rebuilders

    orgs = rows = 0
    for org in Organization.objects.exclude(schema_name=get_public_schema_name()).order_by("pk"):
        orgs += 1
        rows += sum(rebuild(org) for rebuild in rebuilders())
    return orgs, rows
