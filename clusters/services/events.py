"""Live events of clusters: sent after commit to the org's websocket group (config.events)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    payload: dict[str, object] = {
        "kind": "cluster.changed",
        "cluster": cluster.pk,
        "name": cluster.name,
        "status": cluster.status,
        "reason": cluster.status_reason,
    }
    if operation is not None:
        payload["operation"] = {
            "id": operation.pk,
            "kind": operation.kind,
            "status": operation.status,
            "step": operation.step,
            "progress": operation.progress,
        }
    if event is not None:
        payload["event"] = event.as_dict()
    publish(schema_name, "org", payload)
