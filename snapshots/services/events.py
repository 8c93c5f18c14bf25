"""Live events of snapshots and restores: sent after commit to the org's websocket group
(config.events), and the staff directory's copies kept in step (snapshots.directory)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from clusters.services.events import operation_payload
from config.events import publish
from snapshots.directory import services as directory

if TYPE_CHECKING:
    from clusters.models import Operation
    from snapshots.models import Restore, Snapshot


def snapshot_payload(snapshot: Snapshot) -> dict[str, object]:
    """What open pages are told of a snapshot."""
    return {
        "kind": "snapshot.changed",
        "snapshot": snapshot.pk,
        "cluster": snapshot.cluster_id,
        "name": snapshot.name,
        "status": snapshot.status,
        "reason": snapshot.reason,
        "object_count": snapshot.object_count,
        "stored_bytes": snapshot.stored_bytes,
    }


def snapshot_changed(schema_name: str, snapshot: Snapshot, *, operation: Operation | None = None) -> None:
    """Tell open pages (and the staff directory) that a snapshot moved or progressed."""
    if not schema_name:
        return
    snapshot_id = snapshot.pk
    # Robust: the change is committed whatever happens to its copy (rebuild_directory repairs it).
    transaction.on_commit(lambda: directory.sync_snapshot(schema_name, snapshot_id), robust=True)
    payload = snapshot_payload(snapshot)
    if operation is not None:
        payload["operation"] = operation_payload(operation)
    publish(schema_name, "org", payload)


def restore_changed(schema_name: str, restore: Restore, *, operation: Operation | None = None) -> None:
    """Tell open pages (and the staff directory) that a restore moved or progressed."""
    if not schema_name:
        return
    restore_id = restore.pk
    transaction.on_commit(lambda: directory.sync_restore(schema_name, restore_id), robust=True)
    payload: dict[str, object] = {
        "kind": "restore.changed",
        "restore": restore.pk,
        "snapshot": restore.snapshot_id,
        "target": restore.target_id,
        "mode": restore.mode,
        "status": restore.status,
        "reason": restore.reason,
        "counts": dict(restore.counts or {}),
    }
    if operation is not None:
        payload["operation"] = operation_payload(operation)
    publish(schema_name, "org", payload)
