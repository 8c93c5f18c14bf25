"""The one guarded move of an operation's status: every path (claim, wait, hand-over, take-over,
retry, cancel, success, failure) goes through `move`.

`move` checks the transition table (clusters.choices.OPERATION_TRANSITIONS), updates the row only
`WHERE status = <from>` (and, for a worker's own moves, `AND claimed_by = <worker>`), writes the
OperationTransition row, keeps the dispatch index in step, and returns False when another process
moved the operation first — the caller then stops, it never overwrites.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction
from django.db.models.expressions import Combinable
from django.utils import timezone

from clusters.choices import ACTIVE_OPERATION_STATUSES, OPERATION_TRANSITIONS, OperationStatus
from clusters.engine.models import Dispatch
from clusters.engine.signals import operation_moved
from clusters.models import Operation, OperationTransition
from orgs.exceptions import InvalidTransition

_UNSET = object()
logger = logging.getLogger(__name__)


def check_move(operation: Operation, to: str) -> None:
    """Raise InvalidTransition unless the table allows `operation.status` → `to`."""
    if to not in OPERATION_TRANSITIONS[operation.status]:
        raise InvalidTransition(
            f"Operation #{operation.pk} cannot go from {OperationStatus(operation.status).label} to "
            f"{OperationStatus(to).label}."
        )


def move(
    operation: Operation,
    to: str,
    *,
    reason: str = "",
    worker: str = "",
    holder: Any = _UNSET,
    **fields: Any,
) -> bool:
    """Move `operation` to status `to` (plus `fields`) if it is still where the caller saw it.

    `holder` (when given) is the claim the caller holds: the row must still carry it.
    Terminal statuses clear the claim and drop the operation from the dispatch index; a move back
    to queued leaves the caller to `schedule` it (with its due time).
    """
    check_move(operation, to)
    source = operation.status
    rows = Operation.objects.filter(pk=operation.pk, status=source)
    if holder is not _UNSET:
        rows = rows.filter(claimed_by=holder)
    if to not in ACTIVE_OPERATION_STATUSES:
        fields.setdefault("claimed_by", "")
        fields.setdefault("heartbeat_at", None)
        fields.setdefault("finished_at", timezone.now())
    if not rows.update(status=to, **fields):
        return False
    OperationTransition.objects.create(
        operation_id=operation.pk, from_status=source, to_status=to, reason=reason[:200], worker=worker[:64]
    )
    schema_name = schema()
    if to not in ACTIVE_OPERATION_STATUSES:
        Dispatch.objects.filter(schema_name=schema_name, operation_id=operation.pk).delete()
    operation_id = operation.pk

    def announce() -> None:
        # A view that cannot follow (the staff directory) never undoes or blocks the move.
        for receiver, error in operation_moved.send_robust(
            sender=Operation,
            schema_name=schema_name,
            operation_id=operation_id,
            from_status=source,
            to_status=to,
        ):
            if isinstance(error, Exception):
                logger.error("%s could not follow operation %s: %s", receiver, operation_id, error)

    transaction.on_commit(announce)
    if any(isinstance(v, Combinable) for v in fields.values()):
        operation.refresh_from_db()
    else:
        operation.status = to
        for name, value in fields.items():
            setattr(operation, name, value)
    return True


def schema() -> str:
    """The org schema the current connection works in."""
    return str(connection.schema_name)  # type: ignore[attr-defined]
