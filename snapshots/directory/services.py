"""Keeping the snapshots' directory entries in step: read an org's rows, upsert their public copies.

`sync_snapshot` and `sync_restore` are called after commit by the snapshots services (and the
engine's snapshot and restore jobs) after each change; each is two queries: one read in the org's
schema (the org's id comes from a subquery, the public schema being on every org's search path),
one guarded upsert. `rebuild_snapshots` refills an org's entries of both lists (`manage.py
rebuild_directory`, through the directory's registry).

These are system writes of a derived copy, not user actions: no permission check, no audit row.
Credentials are never read: no statement here selects a storage location's secret column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Subquery
from django.db.models.functions import Now
from django.utils import timezone
from django_tenants.utils import schema_context

from clusters.directory.models import REASON_LENGTH
from clusters.directory.store import upsert
from orgs.models import Organization
from snapshots.choices import RestoreStatus, SnapshotStatus
from snapshots.directory.models import RestoreEntry, SnapshotEntry
from snapshots.models import Restore, Snapshot

# Rows per statement when rebuilding (well under PostgreSQL's limit of bound parameters).
BATCH = 500
# A restore that ended like this has failures whatever its counts say.
FAILED_RESTORE_STATUSES = frozenset({RestoreStatus.FAILED, RestoreStatus.PARTIAL})
COUNT_KEYS = ("created", "updated", "unchanged", "skipped", "conflict", "failed")

_SNAPSHOT_FIELDS = (
    "pk",
    "uuid",
    "name",
    "cluster_id",
    "cluster_name",
    "cluster__name",
    "location_id",
    "location__name",
    "location__kind",
    "status",
    "reason",
    "conditions",
    "object_count",
    "raw_bytes",
    "stored_bytes",
    "chunk_count",
    "kubernetes_version",
    "provider",
    "region",
    "created_by",
    "created_at",
    "completed_at",
    "deleted_at",
)
_RESTORE_FIELDS = (
    "pk",
    "uuid",
    "snapshot_id",
    "snapshot__name",
    "snapshot__cluster_name",
    "snapshot__cluster__name",
    "target_id",
    "target__name",
    "mode",
    "status",
    "reason",
    "counts",
    "created_by",
    "created_at",
    "completed_at",
)


def _in_schema(schema_name: str) -> AbstractContextManager[Any]:
    # Already there (a job, an org's request): entering again would cost two search_path
    # switches per sync.
    if getattr(connection, "schema_name", None) == schema_name:
        return nullcontext()
    return schema_context(schema_name)  # type: ignore[no-any-return]


def _org_ref(schema_name: str) -> Subquery:
    # Read in the same statement as the tenant rows, so a sync costs no extra query for it.
    return Subquery(Organization.objects.filter(schema_name=schema_name).values("pk")[:1])


def _snapshots(schema_name: str) -> Any:
    """Snapshots with what their entries need, in one statement (a location's credentials never)."""
    return Snapshot.objects.annotate(org_ref=_org_ref(schema_name), observed=Now()).values(
        *_SNAPSHOT_FIELDS, "org_ref", "observed"
    )


def _restores(schema_name: str) -> Any:
    """Restores with their snapshot's and target's names, in one statement (the report not read)."""
    return Restore.objects.annotate(org_ref=_org_ref(schema_name), observed=Now()).values(
        *_RESTORE_FIELDS, "org_ref", "observed"
    )


def _short(text: str | None) -> str:
    return (text or "")[:REASON_LENGTH]


def _warning(conditions: Any) -> str:
    """The conditions that say something is wrong, as "Type: message" (short)."""
    if not isinstance(conditions, list):
        return ""
    found = []
    for condition in conditions:
        if isinstance(condition, dict) and str(condition.get("status", "")) == "False":
            detail = condition.get("message") or condition.get("reason") or ""
            found.append(
                f"{condition.get('type', '?')}: {detail}" if detail else str(condition.get("type", "?"))
            )
    return _short("; ".join(found))


def _snapshot_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    warning = _warning(row["conditions"])
    status = row["status"]
    return {
        "org": row["org_ref"],
        "snapshot_id": row["pk"],
        "uuid": row["uuid"],
        "name": row["name"],
        "cluster_id": row["cluster_id"],
        # The name kept on the snapshot outlives the cluster's row; the live name when it is empty.
        "cluster_name": (row["cluster_name"] or row["cluster__name"] or "")[:63],
        "location_id": row["location_id"],
        "location_name": row["location__name"] or "",
        "location_kind": row["location__kind"] or "",
        "status": status,
        "reason": _short(row["reason"]),
        "warning": warning,
        "has_failures": status == SnapshotStatus.FAILED or bool(warning),
        "object_count": row["object_count"],
        "raw_bytes": row["raw_bytes"],
        "stored_bytes": row["stored_bytes"],
        "chunk_count": row["chunk_count"],
        "kubernetes_version": row["kubernetes_version"],
        "provider": row["provider"],
        "region": row["region"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "completed_at": row["completed_at"],
        "deleted_at": row["deleted_at"],
        "observed_at": row["observed"],
        "updated_at": now,
    }


def _count(counts: Any, key: str) -> int:
    if not isinstance(counts, dict):
        return 0
    try:
        return max(int(counts.get(key) or 0), 0)
    except (TypeError, ValueError):
        return 0


def _restore_row(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    counts = {key: _count(row["counts"], key) for key in COUNT_KEYS}
    failures = row["status"] in FAILED_RESTORE_STATUSES or counts["failed"] > 0 or counts["conflict"] > 0
    return {
        "org": row["org_ref"],
        "restore_id": row["pk"],
        "uuid": row["uuid"],
        "snapshot_id": row["snapshot_id"],
        "snapshot_name": row["snapshot__name"],
        "source_cluster_name": (row["snapshot__cluster_name"] or row["snapshot__cluster__name"] or "")[:63],
        "target_id": row["target_id"],
        "target_name": row["target__name"],
        "mode": row["mode"],
        "status": row["status"],
        "reason": _short(row["reason"]),
        **counts,
        "has_failures": failures,
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "completed_at": row["completed_at"],
        "observed_at": row["observed"],
        "updated_at": now,
    }


def sync_snapshot(schema_name: str, snapshot_id: int) -> None:
    """Bring one snapshot's entry in step with its org's schema (two queries: read, upsert)."""
    with _in_schema(schema_name):
        snapshot = _snapshots(schema_name).filter(pk=snapshot_id).first()
    if snapshot is None:
        # The row is gone from the org's schema (ids are never reused, so it cannot come back).
        SnapshotEntry.objects.filter(org__schema_name=schema_name, snapshot_id=snapshot_id).exclude(
            status=SnapshotStatus.DELETED
        ).update(status=SnapshotStatus.DELETED, updated_at=timezone.now())
        return
    if snapshot["org_ref"] is None:  # a schema that is no org's (the template)
        return
    upsert(SnapshotEntry, [_snapshot_row(snapshot, timezone.now())], key=("org", "snapshot_id"))


def sync_restore(schema_name: str, restore_id: int) -> None:
    """Bring one restore's entry in step with its org's schema (two queries: read, upsert)."""
    with _in_schema(schema_name):
        restore = _restores(schema_name).filter(pk=restore_id).first()
    if restore is None:
        # Gone with its target cluster's row (cascade): there is nothing left to open.
        RestoreEntry.objects.filter(org__schema_name=schema_name, restore_id=restore_id).delete()
        return
    if restore["org_ref"] is None:
        return
    upsert(RestoreEntry, [_restore_row(restore, timezone.now())], key=("org", "restore_id"))


def _batches(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def rebuild_snapshots(org: Organization) -> int:
    """Refill one org's snapshot and restore entries from its schema: snapshots it no longer has
    become deleted, restores it no longer has are dropped. Returns how many rows it read."""
    now = timezone.now()
    with schema_context(org.schema_name):
        snapshots = list(_snapshots(org.schema_name).order_by("pk"))
        restores = list(_restores(org.schema_name).order_by("pk"))
    for batch in _batches(_snapshot_row(row, now) for row in snapshots):
        upsert(SnapshotEntry, batch, key=("org", "snapshot_id"))
    for batch in _batches(_restore_row(row, now) for row in restores):
        upsert(RestoreEntry, batch, key=("org", "restore_id"))
    gone = SnapshotEntry.objects.filter(org=org).exclude(snapshot_id__in=[row["pk"] for row in snapshots])
    gone.exclude(status=SnapshotStatus.DELETED).update(status=SnapshotStatus.DELETED, updated_at=now)
    RestoreEntry.objects.filter(org=org).exclude(restore_id__in=[row["pk"] for row in restores]).delete()
    return len(snapshots) + len(restores)
