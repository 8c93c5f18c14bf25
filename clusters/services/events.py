"""Live events of clusters: sent after commit to the org's websocket group (config.events).

The same hook keeps the staff directory in step: after commit it re-reads the cluster (and the
operation, when one is given) into its public-schema entries (clusters.directory.services).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from clusters.directory import services as directory
from config.events import publish

if TYPE_CHECKING:
    from clusters.models import Cluster, ClusterEvent, Operation


def cluster_changed(
    schema_name: str,
    cluster: Cluster,
    *,
    operation: Operation | None = None,
    event: ClusterEvent | None = None,
) -> None:
    """Tell open pages that a cluster's status, progress or timeline changed."""
    if not schema_name:
        return
    _sync_directory(schema_name, cluster.pk, operation.pk if operation is not None else None)
    payload: dict[str, object] = {
        "kind": "cluster.changed",
        "cluster": cluster.pk,
        "name": cluster.name,
        "status": cluster.status,
        "reason": cluster.status_reason,
    }
    if operation is not None:
        payload["operation"] = operation_payload(operation)
    if event is not None:
        payload["event"] = event.as_dict()
    publish(schema_name, "org", payload)


def operation_payload(operation: Operation) -> dict[str, object]:
    """What a live event says of an operation (its progress bar and step)."""
    return {
        "id": operation.pk,
        "kind": operation.kind,
        "status": operation.status,
        "step": operation.step,
        "progress": operation.progress,
    }


def _sync_directory(schema_name: str, cluster_id: int, operation_id: int | None) -> None:
    """After commit, copy the cluster (and the operation) into the staff directory."""

    def sync_directory() -> None:
        directory.sync_cluster(schema_name, cluster_id)
        if operation_id is not None:
            directory.sync_operation(schema_name, operation_id)

    # Robust: the change is committed whatever happens to its copy (rebuild_directory repairs it).
    transaction.on_commit(sync_directory, robust=True)
