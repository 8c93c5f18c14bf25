"""Reads of snapshots, restores and storage locations that cross a trust boundary.

Every object lives in the org's own schema, so a row of another org is simply not there: each
getter raises the same NotFound whether the id is missing or belongs to someone else.
"""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from clusters.models import Operation
from orgs.actors import Actor
from orgs.exceptions import NotFound
from snapshots.choices import LIVE_SNAPSHOT_STATUSES, SnapshotStatus
from snapshots.models import Restore, RestoreItem, Snapshot, StorageLocation
from snapshots.permissions import Action, require

SNAPSHOT_SUBJECT = "snapshot"
RESTORE_SUBJECT = "restore"


def _last_operation(subject_type: str) -> Subquery:
    newest = Operation.objects.filter(subject_type=subject_type, subject_id=OuterRef("pk")).order_by("-id")
    return Subquery(newest.values("pk")[:1])


def list_locations(actor: Actor) -> QuerySet[StorageLocation]:
    """The org's storage locations, with how many live snapshots each holds."""
    require(actor, Action.STORAGE_VIEW)
    return StorageLocation.objects.annotate(
        snapshot_count=Count("snapshots", filter=Q(snapshots__status__in=LIVE_SNAPSHOT_STATUSES))
    ).order_by("name")


def get_location(actor: Actor, location_id: int) -> StorageLocation:
    """One storage location of the org."""
    found = list_locations(actor).filter(pk=location_id).first()
    if found is None:
        raise NotFound("No such storage location.")
    return found


def get_location_by_name(actor: Actor, name: str) -> StorageLocation:
    """One storage location of the org, by name (the CLI names them)."""
    found = list_locations(actor).filter(name=name).first()
    if found is None:
        raise NotFound(f"No storage location named {name!r}.")
    return found


def list_snapshots(actor: Actor, *, include_deleted: bool = False) -> QuerySet[Snapshot]:
    """The org's snapshots, newest first, each with the id of its newest operation."""
    require(actor, Action.SNAPSHOT_VIEW)
    qs = Snapshot.objects.select_related("location").annotate(
        last_operation_id=_last_operation(SNAPSHOT_SUBJECT)
    )
    if not include_deleted:
        qs = qs.exclude(status=SnapshotStatus.DELETED)
    return qs.order_by("-created_at", "-id")


def get_snapshot(actor: Actor, snapshot_id: int, *, include_deleted: bool = True) -> Snapshot:
    """One snapshot of the org (deleted ones too: their record stays)."""
    found = list_snapshots(actor, include_deleted=include_deleted).filter(pk=snapshot_id).first()
    if found is None:
        raise NotFound("No such snapshot.")
    return found


def get_snapshot_by_name(actor: Actor, name: str) -> Snapshot:
    """One live snapshot of the org, by name."""
    found = list_snapshots(actor).filter(name=name).first()
    if found is None:
        raise NotFound(f"No snapshot named {name!r}.")
    return found


def list_restores(actor: Actor) -> QuerySet[Restore]:
    """The org's restores and previews, newest first."""
    require(actor, Action.SNAPSHOT_VIEW)
    return (
        Restore.objects.select_related("snapshot", "target")
        .defer("target__kubeconfig", "target__bootstrap_secret")
        .annotate(last_operation_id=_last_operation(RESTORE_SUBJECT))
        .order_by("-created_at", "-id")
    )


def get_restore(actor: Actor, restore_id: int) -> Restore:
    """One restore (or preview) of the org."""
    found = list_restores(actor).filter(pk=restore_id).first()
    if found is None:
        raise NotFound("No such restore.")
    return found


def restore_items(actor: Actor, restore: Restore) -> QuerySet[RestoreItem]:
    """A restore's report, in the order the objects were restored."""
    require(actor, Action.SNAPSHOT_VIEW)
    return RestoreItem.objects.filter(restore=restore).order_by("seq")


def operations_by_subject(operation_ids: list[int | None]) -> dict[int, Operation]:
    """Operations by their subject's id, from a page's `last_operation_id`s (one query)."""
    found = Operation.objects.filter(pk__in=[i for i in operation_ids if i]).defer("params", "state")
    return {op.subject_id or 0: op for op in found}
