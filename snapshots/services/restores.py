"""Restoring a snapshot into one of the org's clusters, or previewing what a restore would do.

Both run on the operations engine (restore_jobs.py); this module checks the request, records
the restore and queues its operation. Options are validated here, once, for every interface.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from clusters.choices import LIVE_STATUSES, ClusterStatus
from clusters.models import Cluster, Operation
from orgs.actors import Actor
from orgs.exceptions import Conflict, ValidationFailed
from orgs.services.audit import record_action
from snapshots.choices import (
    ExistingPolicy,
    RestoreMode,
    RestoreStatus,
    SnapshotOperationKind,
    SnapshotStatus,
)
from snapshots.exceptions import SnapshotNotReady
from snapshots.models import Restore, Snapshot
from snapshots.permissions import Action, require
from snapshots.selection import Selection
from snapshots.selectors import RESTORE_SUBJECT
from snapshots.services.events import restore_changed
from snapshots.services.snapshots import parse_selection, start_operation

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
OPTION_KEYS = frozenset({"namespace_map", "storage_class_map", "existing"})


@dataclass(frozen=True)
class RestoreOptions:
    """A restore's options, checked: what to take from the snapshot and how to write it."""

    selection: Selection
    namespace_map: dict[str, str]
    storage_class_map: dict[str, str]
    existing: str = ExistingPolicy.SKIP

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.selection.to_dict(),
            "namespace_map": dict(self.namespace_map),
            "storage_class_map": dict(self.storage_class_map),
            "existing": self.existing,
        }


@dataclass(frozen=True)
class RestoreRequested:
    """A restore and the operation queued for it (`created` False on an idempotent replay)."""

    restore: Restore
    operation: Operation
    created: bool = True


def _mapping(
    value: Any, field: str, pattern: re.Pattern[str], what: str
) -> tuple[dict[str, str], dict[str, list[str]]]:
    if value is None:
        return {}, {}
    if not isinstance(value, Mapping):
        return {}, {field: ['A mapping {"from": "to"}.']}
    out: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for key, target in value.items():
        if not isinstance(key, str) or not pattern.match(key):
            errors[f"{field}.{key}"] = [f"{key!r} is not a {what}."]
        elif not isinstance(target, str) or not pattern.match(target):
            errors[f"{field}.{key}"] = [f"{target!r} is not a {what}."]
        else:
            out[key] = target
    targets = list(out.values())
    for dup in sorted({t for t in targets if targets.count(t) > 1}):
        errors[field] = [f"Two names map to {dup!r}: a restore would merge them."]
    return out, errors


def parse_options(data: Any) -> RestoreOptions:
    """Options from a request, every bad one named at once."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValidationFailed.for_field("options", "A mapping of restore options.")
    fields: dict[str, list[str]] = {}
    selection = Selection()
    try:
        selection = parse_selection({k: v for k, v in data.items() if k not in OPTION_KEYS}, field="options")
    except ValidationFailed as exc:
        fields.update(exc.fields)
    namespaces, errors = _mapping(data.get("namespace_map"), "options.namespace_map", LABEL, "namespace name")
    fields.update(errors)
    classes, errors = _mapping(
        data.get("storage_class_map"), "options.storage_class_map", SUBDOMAIN, "storage class name"
    )
    fields.update(errors)
    existing = data.get("existing")
    existing = ExistingPolicy.SKIP if existing is None else existing
    if existing not in ExistingPolicy.values:
        fields["options.existing"] = [f"One of {', '.join(ExistingPolicy.values)}."]
    if fields:
        summary = "; ".join(f"{key}: {reasons[0]}" for key, reasons in fields.items())
        raise ValidationFailed(f"The restore options are not valid: {summary}", fields=fields)
    return RestoreOptions(selection, namespaces, classes, str(existing))


def _replay(idempotency_key: str) -> RestoreRequested | None:
    if not idempotency_key:
        return None
    operation = Operation.objects.filter(idempotency_key=idempotency_key).first()
    if operation is None:
        return None
    if operation.subject_type != RESTORE_SUBJECT:
        raise Conflict("This Idempotency-Key was used for another kind of request.")
    return RestoreRequested(Restore.objects.get(pk=int(operation.subject_id or 0)), operation, False)


def _schema(actor: Actor) -> str:
    return actor.org.schema_name if actor.org is not None else ""


def start_restore(
    actor: Actor,
    snapshot: Snapshot,
    target: Cluster,
    *,
    mode: Any = RestoreMode.RESTORE,
    options: Any = None,
    idempotency_key: str = "",
    preview: Restore | None = None,
) -> RestoreRequested:
    """Restore a completed snapshot into a cluster of the org (or preview it), on the engine."""
    require(actor, Action.RESTORE)
    replay = _replay(idempotency_key)
    if replay is not None:
        return replay
    if mode not in RestoreMode.values:
        raise ValidationFailed.for_field("mode", f"One of {', '.join(RestoreMode.values)}.")
    checked = parse_options(options)
    try:
        with transaction.atomic():
            snapshot = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
            if snapshot.status != SnapshotStatus.COMPLETED:
                raise SnapshotNotReady(
                    f"Snapshot {snapshot.name} is {SnapshotStatus(snapshot.status).label.lower()}: only a "
                    "completed snapshot can be restored.",
                    fields={"snapshot": ["Not completed."]},
                )
            target = Cluster.objects.select_for_update().get(pk=target.pk)
            if target.deleted_at is not None or target.status not in LIVE_STATUSES:
                label = ClusterStatus(target.status).label.lower()
                raise Conflict(
                    f"Cluster {target.name} is {label}: a snapshot can be restored into it once it is Ready.",
                    fields={"target": [f"Cluster is {label}."]},
                )
            restore = Restore.objects.create(
                snapshot=snapshot,
                target=target,
                mode=mode,
                options=checked.to_dict(),
                preview=preview,
                created_by=actor.label[:254],
            )
            verb = "preview of a restore" if mode == RestoreMode.PREVIEW else "restore"
            record_action(
                actor,
                "snapshot.previewed" if mode == RestoreMode.PREVIEW else "snapshot.restored",
                obj=restore,
                after={"snapshot": snapshot.name, "target": target.name, "options": restore.options},
            )
            operation = start_operation(
                actor,
                target,
                RESTORE_SUBJECT,
                restore.pk,
                SnapshotOperationKind.RESTORE_PREVIEW
                if mode == RestoreMode.PREVIEW
                else SnapshotOperationKind.RESTORE,
                message=f"{verb} of snapshot {snapshot.name} requested",
                idempotency_key=idempotency_key,
            )
            restore_changed(_schema(actor), restore, operation=operation)
    except IntegrityError:
        replay = _replay(idempotency_key)
        if replay is not None:
            return replay
        raise
    return RestoreRequested(restore, operation)


def confirm_preview(actor: Actor, preview: Restore, *, idempotency_key: str = "") -> RestoreRequested:
    """Start the restore a completed preview showed, with the same snapshot, target and options."""
    if preview.mode != RestoreMode.PREVIEW:
        raise ValidationFailed.for_field("mode", "Only a preview can be confirmed.")
    if preview.status != RestoreStatus.COMPLETED:
        raise SnapshotNotReady(
            f"The preview is {RestoreStatus(preview.status).label.lower()}: confirm it once it has completed."
        )
    return start_restore(
        actor,
        preview.snapshot,
        preview.target,
        mode=RestoreMode.RESTORE,
        options=preview.options,
        idempotency_key=idempotency_key,
        preview=preview,
    )
