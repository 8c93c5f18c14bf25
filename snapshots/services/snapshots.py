"""Taking and deleting snapshots: each runs on the operations engine (snapshot_jobs.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters.choices import LIVE_STATUSES, ClusterStatus
from clusters.engine import runner
from clusters.models import Cluster, ClusterEvent, Operation
from orgs.actors import Actor
from orgs.exceptions import Conflict, InvalidTransition, ValidationFailed
from orgs.services.audit import record_action
from snapshots.choices import SnapshotOperationKind, SnapshotStatus
from snapshots.models import Snapshot, StorageLocation
from snapshots.permissions import Action, require
from snapshots.selection import Selection, SelectionInvalid
from snapshots.selectors import SNAPSHOT_SUBJECT
from snapshots.services.events import snapshot_changed
from snapshots.services.locations import default_location

NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,98}[a-z0-9])?$")


@dataclass(frozen=True)
class SnapshotRequested:
    """A snapshot and the operation queued for it (`created` False on an idempotent replay)."""

    snapshot: Snapshot
    operation: Operation
    created: bool = True


def _schema(actor: Actor) -> str:
    return actor.org.schema_name if actor.org is not None else ""


def parse_selection(data: Any, *, field: str = "selection") -> Selection:
    """A selection from a request, its bad fields named under `field`."""
    if data is None:
        return Selection()
    if not isinstance(data, Mapping):
        raise ValidationFailed.for_field(field, "A mapping of selection keys.")
    try:
        return Selection.parse(data)
    except SelectionInvalid as exc:
        named = {f"{field}.{name}": reasons for name, reasons in exc.fields.items()} or {field: [exc.message]}
        raise ValidationFailed(exc.message, fields=named) from exc


def _replay(idempotency_key: str) -> SnapshotRequested | None:
    if not idempotency_key:
        return None
    operation = Operation.objects.filter(idempotency_key=idempotency_key).first()
    if operation is None:
        return None
    if operation.subject_type != SNAPSHOT_SUBJECT:
        raise Conflict("This Idempotency-Key was used for another kind of request.")
    return SnapshotRequested(Snapshot.objects.get(pk=int(operation.subject_id or 0)), operation, False)


def _name(given: Any, cluster: Cluster) -> str:
    if given in (None, ""):
        return f"{cluster.name}-{timezone.now():%Y%m%d-%H%M%S}"
    if not isinstance(given, str) or not NAME.match(given):
        raise ValidationFailed.for_field(
            "name", "Lowercase letters, digits, '-' and '.', at most 100, starting and ending alphanumeric."
        )
    return given


def start_operation(
    actor: Actor,
    cluster: Cluster,
    subject_type: str,
    subject_id: int,
    kind: str,
    *,
    message: str,
    idempotency_key: str = "",
) -> Operation:
    """Record an operation of this app's kinds and hand it to the engine (inside the caller's
    transaction); a line on the cluster's timeline says who asked."""
    operation = Operation.objects.create(
        cluster=cluster,
        subject_type=subject_type,
        subject_id=subject_id,
        kind=kind,
        params={},
        requested_by=actor.label[:254],
        idempotency_key=idempotency_key,
        step="Queued",
        max_attempts=3,
    )
    ClusterEvent.objects.create(cluster=cluster, operation=operation, message=f"{message} by {actor.label}")
    runner.submit(operation)
    return operation


def create_snapshot(
    actor: Actor,
    cluster: Cluster,
    *,
    name: Any = "",
    location: StorageLocation | None = None,
    selection: Any = None,
    idempotency_key: str = "",
) -> SnapshotRequested:
    """Snapshot a cluster (or a selection of it) into a storage location, on the engine."""
    require(actor, Action.SNAPSHOT_CREATE)
    replay = _replay(idempotency_key)
    if replay is not None:
        return replay
    fields: dict[str, list[str]] = {}
    chosen = Selection()
    try:
        chosen = parse_selection(selection)
    except ValidationFailed as exc:
        fields.update(exc.fields)
    try:
        snapshot_name = _name(name, cluster)
    except ValidationFailed as exc:
        fields.update(exc.fields)
        snapshot_name = ""
    if fields:
        summary = "; ".join(f"{key}: {reasons[0]}" for key, reasons in fields.items())
        raise ValidationFailed(f"The snapshot is not valid: {summary}", fields=fields)
    where = location or default_location(actor)
    try:
        with transaction.atomic():
            cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
            if cluster.deleted_at is not None or cluster.status not in LIVE_STATUSES:
                label = ClusterStatus(cluster.status).label.lower()
                raise Conflict(
                    f"Cluster {cluster.name} is {label}: it can be snapshotted once it is Ready.",
                    fields={"cluster": [f"Cluster is {label}."]},
                )
            if Snapshot.objects.filter(name=snapshot_name, deleted_at__isnull=True).exists():
                raise Conflict(f"A snapshot named {snapshot_name!r} exists.", fields={"name": ["Taken."]})
            snapshot = Snapshot.objects.create(
                name=snapshot_name,
                cluster=cluster,
                cluster_name=cluster.name,
                location=where,
                selection=chosen.to_dict(),
                kubernetes_version=cluster.observed_version or cluster.version,
                provider=cluster.provider.kind if cluster.provider_id else "",
                region=cluster.region,
                created_by=actor.label[:254],
            )
            record_action(
                actor,
                "snapshot.created",
                obj=snapshot,
                after={
                    "cluster": cluster.name,
                    "name": snapshot.name,
                    "location": where.name,
                    "selection": snapshot.selection,
                },
            )
            operation = start_operation(
                actor,
                cluster,
                SNAPSHOT_SUBJECT,
                snapshot.pk,
                SnapshotOperationKind.SNAPSHOT,
                message=f"snapshot {snapshot.name} requested",
                idempotency_key=idempotency_key,
            )
            snapshot_changed(_schema(actor), snapshot, operation=operation)
    except IntegrityError:
        replay = _replay(idempotency_key)
        if replay is not None:
            return replay
        raise Conflict(f"A snapshot named {snapshot_name!r} exists.", fields={"name": ["Taken."]}) from None
    return SnapshotRequested(snapshot, operation)


def delete_snapshot(actor: Actor, snapshot: Snapshot) -> SnapshotRequested:
    """Delete a snapshot's objects from its storage (on the engine); its record stays, deleted."""
    require(actor, Action.SNAPSHOT_DELETE)
    with transaction.atomic():
        snapshot = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
        active = Operation.objects.filter(
            subject_type=SNAPSHOT_SUBJECT, subject_id=snapshot.pk, status__in=("queued", "running")
        ).first()
        if snapshot.status == SnapshotStatus.DELETED or (
            snapshot.status == SnapshotStatus.DELETING and active is not None
        ):
            if active is None:
                active = (
                    Operation.objects.filter(subject_type=SNAPSHOT_SUBJECT, subject_id=snapshot.pk)
                    .order_by("-id")
                    .first()
                )
            assert active is not None
            return SnapshotRequested(snapshot, active, False)
        if snapshot.status in (SnapshotStatus.PENDING, SnapshotStatus.RUNNING):
            raise InvalidTransition(
                f"Snapshot {snapshot.name} is still being taken: cancel its operation first."
            )
        if snapshot.restores.filter(status__in=("pending", "running")).exists():
            raise Conflict(f"Snapshot {snapshot.name} is being restored: it can be deleted once that ends.")
        if snapshot.cluster_id is None:
            raise Conflict(f"Snapshot {snapshot.name} has no cluster left to account its deletion to.")
        snapshot.transition_to(SnapshotStatus.DELETING)
        snapshot.save(update_fields=["status", "reason"])
        record_action(
            actor, "snapshot.deleted", obj=snapshot, before={"name": snapshot.name, "status": "completed"}
        )
        assert snapshot.cluster is not None
        operation = start_operation(
            actor,
            snapshot.cluster,
            SNAPSHOT_SUBJECT,
            snapshot.pk,
            SnapshotOperationKind.SNAPSHOT_DELETE,
            message=f"deletion of snapshot {snapshot.name} requested",
        )
        snapshot_changed(_schema(actor), snapshot, operation=operation)
    return SnapshotRequested(snapshot, operation)
