"""The sweeper (run by the minutely tick, in the public schema): operations whose worker died,
tasks that were lost, and anything due that the dispatch loop has not queued yet.

It visits only the schemas that have an unfinished operation (read from the dispatch index), so
its cost does not grow with the number of orgs.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tenants.utils import schema_context

from clusters.choices import ACTIVE_OPERATION_STATUSES, OperationStatus
from clusters.engine import dispatch
from clusters.engine.jobs import Run
from clusters.engine.models import Dispatch
from clusters.engine.runner import fail, finish_cancelled, stale_after
from clusters.models import Operation
from orgs.models import Organization


def sweep() -> dict[str, int]:
    """Hand operations whose worker stopped to a new worker; fail exhausted ones; re-send lost tasks."""
    counts = {"requeued": 0, "failed": 0, "cancelled": 0, "lost": dispatch.release_lost()}
    schemas = Organization.objects.filter(
        suspended_at__isnull=True, schema_name__in=dispatch.schemas_with_work()
    ).values_list("schema_name", flat=True)
    for schema_name in list(schemas):
        with schema_context(schema_name):
            _sweep_schema(schema_name, counts)
    counts["dispatched"] = dispatch.dispatch_due()
    return counts


def _sweep_schema(schema_name: str, counts: dict[str, int]) -> None:
    stale = timezone.now() - timedelta(seconds=stale_after())
    dead = Operation.objects.filter(status=OperationStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True)
    )
    # A stale operation whose task is already queued (a backlog ahead of it) is not queued twice.
    queued = set(
        Dispatch.objects.filter(schema_name=schema_name, queued_at__isnull=False).values_list(
            "operation_id", flat=True
        )
    )
    for operation in dead:
        if operation.pk in queued and not operation.cancel_requested:
            continue
        if operation.cancel_requested:
            counts["cancelled"] += int(finish_cancelled(operation))
        elif operation.attempts + 1 >= operation.max_attempts:
            message = (
                f"The workers running it stopped {operation.attempts + 1} times; giving up. Retry when fixed."
            )
            counts["failed"] += int(fail(Run(operation, schema_name), message))
        else:
            with transaction.atomic():
                dispatch.schedule(operation.pk)
            counts["requeued"] += 1
    # A finished operation whose index row survived (e.g. written by an older version): drop it.
    live = Operation.objects.filter(status__in=ACTIVE_OPERATION_STATUSES).values("pk")
    Dispatch.objects.filter(schema_name=schema_name).exclude(operation_id__in=live).delete()


def index_unfinished() -> int:
    """Put every unfinished operation of every org in the dispatch index (start-up, upgrades)."""
    added = 0
    for schema_name in Organization.objects.values_list("schema_name", flat=True):
        with schema_context(schema_name), transaction.atomic():
            known = Dispatch.objects.filter(schema_name=schema_name).values("operation_id")
            for operation in Operation.objects.filter(status__in=ACTIVE_OPERATION_STATUSES).exclude(
                pk__in=known
            ):
                due = operation.next_attempt_at if operation.status == OperationStatus.QUEUED else None
                dispatch.schedule(operation.pk, due)
                added += 1
    return added
