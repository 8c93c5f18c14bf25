"""The operations engine's failure paths, with a scripted job (tests/engine_support): backoff and
attempts, non-retryable errors, step timeout, run-budget hand-over, a lost claim, cancel while
running or waiting, retry, the guarded move and exactly-once dispatch. Fast and deterministic:
each pass is run in this process, as a worker would."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from django_q.models import OrmQ
from django_tenants.utils import schema_context

from clusters.choices import OperationStatus
from clusters.engine import dispatch, runner
from clusters.engine.machine import move
from clusters.engine.models import Dispatch
from clusters.models import Operation, OperationTransition
from orgs.exceptions import InvalidTransition
from orgs.models import Organization
from tests.engine_support.scripted import submit_scripted

pytestmark = pytest.mark.django_db


def scripted(org: Organization, *script: str, max_attempts: int = 5, subject: int = 1) -> Operation:
    """A recorded, submitted operation of the scripted kind."""
    return submit_scripted(org, *script, subject=subject, max_attempts=max_attempts)


def one_pass(org: Organization, operation: Operation, *, due_now: bool = True) -> tuple[str, Operation]:
    """One worker pass; first makes a waiting operation due (as the clock would)."""
    with schema_context(org.schema_name):
        if due_now:
            Operation.objects.filter(pk=operation.pk, status=OperationStatus.QUEUED).update(
                next_attempt_at=timezone.now()
            )
        result = runner.run_operation(operation.pk)
        return result, Operation.objects.get(pk=operation.pk)


def moves(org: Organization, operation: Operation) -> list[tuple[str, str]]:
    with schema_context(org.schema_name):
        return list(
            OperationTransition.objects.filter(operation_id=operation.pk).values_list(
                "from_status", "to_status"
            )
        )


def index_row(org: Organization, operation: Operation) -> Dispatch | None:
    return Dispatch.objects.filter(schema_name=org.schema_name, operation_id=operation.pk).first()


def test_a_wait_releases_the_worker_and_is_due_later(org_a: Organization) -> None:
    operation = scripted(org_a, "wait:30", "done")
    result, op = one_pass(org_a, operation)
    assert result == "waiting"
    assert op.status == OperationStatus.QUEUED and op.claimed_by == "" and op.heartbeat_at is None
    assert 25 < (op.next_attempt_at - timezone.now()).total_seconds() <= 30
    row = index_row(org_a, op)
    assert row is not None and row.queued_at is None and row.due_at == op.next_attempt_at
    # Not due yet: a task that arrives early (a duplicate) does nothing.
    assert one_pass(org_a, op, due_now=False)[0] == "not claimed"
    result, op = one_pass(org_a, op)
    assert result == "succeeded" and op.state["settled"] == "succeeded" and op.progress == 100
    assert index_row(org_a, op) is None
    assert moves(org_a, op) == [
        ("queued", "running"),
        ("running", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]


def test_backoff_and_max_attempts(org_a: Organization) -> None:
    operation = scripted(org_a, "failalways", max_attempts=3)
    delays = []
    for attempt in (1, 2):
        result, op = one_pass(org_a, operation)
        assert result == "retrying" and op.status == OperationStatus.QUEUED
        assert op.attempts == attempt and "scripted failure" in op.error
        delays.append(round((op.next_attempt_at - timezone.now()).total_seconds()))
    assert delays == [2, 4]  # exponential backoff: 2 ** attempt seconds
    result, op = one_pass(org_a, operation)
    assert result == "failed" and op.status == OperationStatus.FAILED
    assert "gave up after 3 attempts" in op.error and op.state["settled"].startswith(
        "failed: scripted failure"
    )
    assert index_row(org_a, op) is None and op.finished_at is not None


def test_a_non_retryable_error_fails_at_once(org_a: Organization) -> None:
    result, op = one_pass(org_a, scripted(org_a, "fatal", "done"))
    assert result == "failed" and op.attempts == 0
    assert (
        op.error == "scripted fatal error at 0" and op.state["settled"] == "failed: scripted fatal error at 0"
    )


def test_an_unexpected_exception_is_a_retried_attempt(org_a: Organization) -> None:
    result, op = one_pass(org_a, scripted(org_a, "crash", "done"))
    assert result == "retrying" and "RuntimeError: scripted crash" in op.error
    assert one_pass(org_a, op)[0] == "succeeded"


@override_settings(FLOTILLA_OPERATION_STEP_TIMEOUT=60)
def test_a_step_that_waits_too_long_times_out(org_a: Organization) -> None:
    operation = scripted(org_a, *["wait:1"] * 3, "done", max_attempts=1)
    result, op = one_pass(org_a, operation)
    assert result == "waiting" and op.step == "waiting at 0"
    with schema_context(org_a.schema_name):
        # The same step has been waiting for two minutes (waits count towards its timeout).
        Operation.objects.filter(pk=op.pk).update(step_started_at=timezone.now() - timedelta(minutes=2))
    result, op = one_pass(org_a, op)
    assert result == "failed" and op.error.startswith("Timed out after 120 s at: waiting at 0")


@override_settings(FLOTILLA_OPERATION_RUN_BUDGET=0)
def test_a_spent_run_budget_hands_over_to_a_fresh_task(org_a: Organization) -> None:
    operation = scripted(org_a, "step", "step", "done")
    result, op = one_pass(org_a, operation, due_now=False)
    assert result == "handed over" and op.status == OperationStatus.QUEUED
    row = index_row(org_a, op)
    assert row is not None and row.queued_at is None and row.due_at <= timezone.now()
    assert one_pass(org_a, op, due_now=False)[0] == "handed over"
    result, op = one_pass(org_a, op, due_now=False)
    assert result == "succeeded" and [e[0] for e in op.state["log"]] == ["step", "step", "done"]


def test_a_lost_claim_stops_the_worker_without_writing(org_a: Organization) -> None:
    result, op = one_pass(org_a, scripted(org_a, "steal", "done"))
    assert result == "lost claim"
    assert op.status == OperationStatus.RUNNING and op.claimed_by == "another-worker"
    assert "settled" not in op.state and op.step != "claim stolen at 0"  # no progress written by the loser
    # The loser's own moves are refused: the row no longer carries its claim.
    with schema_context(org_a.schema_name):
        assert not move(op, OperationStatus.SUCCEEDED, holder="the-loser")
        assert Operation.objects.get(pk=op.pk).status == OperationStatus.RUNNING


def test_cancel_of_a_running_operation_stops_after_its_step(org_a: Organization) -> None:
    result, op = one_pass(org_a, scripted(org_a, "cancel", "done"))
    assert result == "cancelled" and op.status == OperationStatus.CANCELLED
    assert op.state["settled"] == "cancelled" and [e[0] for e in op.state["log"]] == ["cancel"]
    assert index_row(org_a, op) is None


def test_cancel_of_a_waiting_operation_is_immediate(org_a: Organization) -> None:
    result, op = one_pass(org_a, scripted(org_a, "wait:300", "done"))
    assert result == "waiting"
    with schema_context(org_a.schema_name), transaction.atomic():
        locked = Operation.objects.select_for_update().get(pk=op.pk)
        assert runner.request_cancel(locked, reason="not needed") is True
    with schema_context(org_a.schema_name):
        op = Operation.objects.get(pk=op.pk)
    assert op.status == OperationStatus.CANCELLED and op.state["settled"] == "cancelled"
    assert index_row(org_a, op) is None
    assert one_pass(org_a, op)[0] == "not claimed"


def test_retry_is_a_documented_transition_and_the_rest_is_refused(org_a: Organization) -> None:
    result, op = one_pass(org_a, scripted(org_a, "fatal", "done"))
    assert result == "failed"
    with schema_context(org_a.schema_name), transaction.atomic():
        assert runner.retry(op, reason="try again")
    assert op.status == OperationStatus.QUEUED and op.attempts == 0 and op.error == ""
    row = index_row(org_a, op)
    assert row is not None and row.queued_at is None
    result, op = one_pass(org_a, op)
    assert result == "succeeded"
    with schema_context(org_a.schema_name):
        with pytest.raises(InvalidTransition, match="cannot go from Succeeded to Queued"):
            runner.retry(op, reason="again")
        stale = Operation.objects.get(pk=op.pk)
        stale.status = OperationStatus.RUNNING  # what a process that read it earlier believes
        assert not move(stale, OperationStatus.FAILED)  # WHERE status = running matches nothing
    assert moves(org_a, op)[-1] == ("running", "succeeded")


def _queued_tasks() -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for row in OrmQ.objects.all():
        path, schema_name, kwargs = row.task["args"]
        if path == "clusters.tasks.run_operation":
            found.append((schema_name, kwargs["operation_id"]))
    return found


@override_settings(FLOTILLA_DISPATCH_PER_ORG=50)
def test_due_operations_are_dispatched_exactly_once(
    org_a: Organization, org_b: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    ops = [scripted(org, "wait:1", "done", subject=n) for n in range(10) for org in (org_a, org_b)]
    OrmQ.objects.all().delete()
    Dispatch.objects.update(due_at=timezone.now() - timedelta(seconds=1), queued_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.dispatch_due() == 20
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.dispatch_due() == 0  # a backlog of queued tasks is not queued again
        assert dispatch.dispatch_one(org_a.schema_name, ops[0].pk) is False
    tasks = _queued_tasks()
    assert len(tasks) == 20 and len(set(tasks)) == 20
    assert {schema for schema, _ in tasks} == {org_a.schema_name, org_b.schema_name}


@override_settings(FLOTILLA_DISPATCH_PER_ORG=3)
def test_an_org_has_a_share_of_the_queue_not_all_of_it(
    org_a: Organization, org_b: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    """Ten due operations of org A queue three tasks; org B's operation, due after all of them,
    is queued at once; A's next ones are queued as its tasks are taken, oldest first."""
    ops = [scripted(org_a, "wait:1", "done", subject=n) for n in range(10)]
    OrmQ.objects.all().delete()
    Dispatch.objects.update(due_at=timezone.now() - timedelta(seconds=1), queued_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.dispatch_due() == 3
        assert dispatch.dispatch_due() == 0
        assert dispatch.dispatch_one(org_a.schema_name, ops[5].pk) is False
    first = [pk for _, pk in _queued_tasks()]
    assert first == [op.pk for op in ops[:3]]
    with django_capture_on_commit_callbacks(execute=True):
        late = scripted(org_b, "done")  # due now, queued right after its commit
    assert (org_b.schema_name, late.pk) in _queued_tasks()
    with schema_context(org_a.schema_name):
        dispatch.claimed(ops[0].pk)  # a worker took A's oldest task
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch.dispatch_due() == 1
    assert [pk for schema, pk in _queued_tasks() if schema == org_a.schema_name] == [op.pk for op in ops[:4]]


def test_the_index_of_a_suspended_org_is_not_dispatched(org_a: Organization, org_b: Organization) -> None:
    scripted(org_a, "done")
    scripted(org_b, "done")
    Organization.objects.filter(pk=org_b.pk).update(suspended_at=timezone.now())
    OrmQ.objects.all().delete()
    assert dispatch.dispatch_due() == 1
    assert Dispatch.objects.get(schema_name=org_b.schema_name).queued_at is None


def test_every_move_is_announced_after_commit(
    org_a: Organization, django_capture_on_commit_callbacks: Any
) -> None:
    from clusters.engine.signals import operation_moved

    heard: list[tuple[str, int, str, str]] = []

    def receiver(sender: object, **kw: Any) -> None:
        heard.append((kw["schema_name"], kw["operation_id"], kw["from_status"], kw["to_status"]))

    operation_moved.connect(receiver)
    try:
        operation = scripted(org_a, "wait:1", "done")
        with django_capture_on_commit_callbacks(execute=True):
            one_pass(org_a, operation)
            one_pass(org_a, operation)
    finally:
        operation_moved.disconnect(receiver)
    assert heard == [
        (org_a.schema_name, operation.pk, "queued", "running"),
        (org_a.schema_name, operation.pk, "running", "queued"),
        (org_a.schema_name, operation.pk, "queued", "running"),
        (org_a.schema_name, operation.pk, "running", "succeeded"),
    ]
