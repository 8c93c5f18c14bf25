"""Dispatching due operations exactly once, across every org, without a sleeping worker.

An operation that must wait (a step asked to be called later, a failed attempt backs off) is
queued again with its due time and its worker returns to the pool. The dispatch index (public
schema, clusters.engine.models.Dispatch) has one row per unfinished operation: `schedule` sets the
due time and clears `queued_at`, in the transaction that moved the operation; `dispatch_due`
takes due rows whose `queued_at` is empty under a row lock, sets `queued_at` and queues one task
each. However long the backlog, an operation has at most one task in the queue, and an org at
most `per_org()` (the rest of its due operations wait in the index, so other orgs' tasks are not
queued behind its whole backlog); a row whose task was lost (queued long ago, never claimed) is
released again by the sweeper.

`dispatch_due` runs in a loop of the worker's main process (`manage.py worker`, every
FLOTILLA_DISPATCH_INTERVAL seconds) and from the minutely tick; an operation that is due at once
is queued right after its transaction commits, with no wait for the loop.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django_tenants.utils import schema_context

from clusters.engine.machine import schema as current_schema
from clusters.engine.models import Dispatch
from config.tasks import enqueue
from orgs.models import Organization

logger = logging.getLogger(__name__)
RUN_OPERATION = "clusters.tasks.run_operation"


def dispatch_interval() -> float:
    """Seconds between two passes of the worker's dispatch loop."""
    return float(getattr(settings, "FLOTILLA_DISPATCH_INTERVAL", 0.5))


def per_org() -> int:
    """Tasks one org may have waiting in the shared queue at once (FLOTILLA_DISPATCH_PER_ORG).

    The queue is first come, first served: without a cap, an org that asks for fifty rollouts at
    once would put fifty tasks ahead of every other org's. With it, the rest of its due
    operations stay due in the index and the loop queues them as its tasks are taken, so another
    org's task waits behind a few, not behind the whole backlog."""
    return max(1, int(getattr(settings, "FLOTILLA_DISPATCH_PER_ORG", 4)))


def lost_after() -> float:
    """Seconds after which a queued task that no worker claimed is presumed lost (and re-sent)."""
    default = float(settings.Q_CLUSTER.get("retry", 1200))
    return float(getattr(settings, "FLOTILLA_DISPATCH_LOST_SECONDS", default))


def schedule(operation_id: int, due_at: datetime | None = None) -> None:
    """Make the operation due at `due_at` (now by default). Call inside the moving transaction."""
    schema = current_schema()
    due = due_at or timezone.now()
    Dispatch.objects.update_or_create(
        schema_name=schema, operation_id=operation_id, defaults={"due_at": due, "queued_at": None}
    )
    if due <= timezone.now():
        transaction.on_commit(lambda: dispatch_one(schema, operation_id))


# While a worker holds the operation it is not due: the sweeper, not the dispatcher, notices a
# worker that stopped heart-beating.
NOT_DUE = datetime(9999, 1, 1, tzinfo=UTC)


def claimed(operation_id: int) -> None:
    """A worker took the operation: its queued task is spent, and it is not due while it runs."""
    Dispatch.objects.filter(schema_name=current_schema(), operation_id=operation_id).update(
        queued_at=None, due_at=NOT_DUE
    )


def dispatch_one(schema_name: str, operation_id: int) -> bool:
    """Queue the operation's task now if it is due and no task is queued for it."""
    with schema_context(schema_name), transaction.atomic():
        if Dispatch.objects.filter(schema_name=schema_name, queued_at__isnull=False).count() >= per_org():
            return False  # the org's share of the queue is full: the loop queues it when there is room
        taken = Dispatch.objects.filter(
            schema_name=schema_name,
            operation_id=operation_id,
            queued_at__isnull=True,
            due_at__lte=timezone.now(),
        ).update(queued_at=timezone.now())
        if taken:
            enqueue(RUN_OPERATION, schema_name=schema_name, operation_id=operation_id)
    return bool(taken)


def dispatch_due(*, limit: int = 500, now: datetime | None = None) -> int:
    """Queue one task for every operation that is due and has none queued; how many were queued."""
    now = now or timezone.now()
    suspended = Organization.objects.filter(suspended_at__isnull=False).values("schema_name")
    with transaction.atomic():
        due = list(
            Dispatch.objects.select_for_update(skip_locked=True)
            .filter(queued_at__isnull=True, due_at__lte=now)
            .exclude(schema_name__in=suspended)
            .order_by("due_at", "pk")
            .values_list("pk", "schema_name", "operation_id")[:limit]
        )
        if not due:
            return 0
        # Oldest due first, each org up to its share of the queue (the rest stay due).
        waiting = dict(
            Dispatch.objects.filter(schema_name__in={schema for _, schema, _ in due}, queued_at__isnull=False)
            .values_list("schema_name")
            .annotate(n=Count("pk"))
            .order_by()
        )
        cap = per_org()
        rows = []
        for row in due:
            if waiting.get(row[1], 0) < cap:
                rows.append(row)
                waiting[row[1]] = waiting.get(row[1], 0) + 1
        if not rows:
            return 0
        Dispatch.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(queued_at=now)
        for _, schema_name, operation_id in rows:
            enqueue(RUN_OPERATION, schema_name=schema_name, operation_id=operation_id)
    return len(rows)


def release_lost(now: datetime | None = None) -> int:
    """Rows queued long ago whose operation is still unclaimed: their task was lost; queue again."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=lost_after())
    return Dispatch.objects.filter(Q(queued_at__lt=stale)).update(queued_at=None, due_at=now)


def schemas_with_work() -> list[str]:
    """Org schemas with an unfinished operation (the only ones the sweeper needs to visit)."""
    return list(Dispatch.objects.values_list("schema_name", flat=True).distinct().order_by("schema_name"))
