"""Live events of apps: sent after commit to the org's websocket group (config.events), and the
staff directory's copy of the app kept in step (clusters.directory)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from clusters.directory import services as directory
from clusters.services.events import operation_payload
from config.events import publish

if TYPE_CHECKING:
    from clusters.models import App, ClusterEvent, Operation


def app_changed(
    schema_name: str,
    app: App,
    *,
    operation: Operation | None = None,
    event: ClusterEvent | None = None,
) -> None:
    """Tell open pages that an app's status, replicas, rollout or timeline changed."""
    if not schema_name:
        return
    app_id, operation_id = app.pk, operation.pk if operation is not None else None

    def sync_directory() -> None:
        directory.sync_app(schema_name, app_id)
        if operation_id is not None:
            directory.sync_operation(schema_name, operation_id)

    transaction.on_commit(sync_directory, robust=True)
    payload: dict[str, object] = {
        "kind": "app.changed",
        "app": app.pk,
        "cluster": app.cluster_id,
        "name": app.name,
        "status": app.status,
        "reason": app.status_reason,
        "revision": app.revision,
        "replicas": {
            "desired": app.desired_replicas,
            "updated": app.updated_replicas,
            "ready": app.ready_replicas,
            "available": app.available_replicas,
        },
    }
    if operation is not None:
        payload["operation"] = operation_payload(operation)
    if event is not None:
        payload["event"] = event.as_dict()
    publish(schema_name, "org", payload)
