"""The operations engine with real worker processes: waiting operations do not hold workers, a
worker killed mid-step is taken over, and deleting a cluster while an operation runs cancels it
and takes over."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import transaction
from django.db.models import Max, Min
from django.test import override_settings
from django_q.models import Task
from django_tenants.utils import schema_context

from clusters.choices import ClusterStatus, OperationKind, OperationStatus, ResourceState
from clusters.engine.sweeper import sweep
from clusters.local.runtime import LocalRuntime
from clusters.models import CloudResource, Cluster, Operation
from clusters.services import clusters as cluster_services
from config.tasks import enqueue
from orgs.models import Organization
from tests.clusters.helpers import KillableWorker, local_pools, local_provider, owner_actor, poll
from tests.engine_support.scripted import submit_scripted
from tests.factories import make_org

pytestmark = [pytest.mark.kube, pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]


def _scripted(org: Organization, script: list[str], subject: int) -> int:
    return submit_scripted(org, *script, subject=subject).pk


def _operation(org: Organization, operation_id: int) -> Operation:
    with schema_context(org.schema_name):
        return Operation.objects.get(pk=operation_id)


def _results(schema_name: str) -> list[str]:
    """What every run_operation task of the org returned (django-q2 keeps finished tasks)."""
    return [
        str(task.result)
        for task in Task.objects.all()
        if task.args and task.args[0] == "clusters.tasks.run_operation" and task.args[1] == schema_name
    ]


def test_twenty_waiting_operations_leave_the_workers_free(transactional_db: None, tmp_path: Path) -> None:
    busy, other = make_org("busy"), make_org("other")
    worker = KillableWorker(tmp_path / "worker.log", FLOTILLA_WORKERS="2")
    try:
        # Twenty operations that each wait 12 times 3 s: sleeping workers would take ten minutes.
        script = ["wait:3"] * 12 + ["done"]
        waiting = [_scripted(busy, script, subject=n) for n in range(20)]
        with schema_context(other.schema_name):
            created = cluster_services.create_cluster(
                owner_actor(other), name="meanwhile", provider=local_provider(other), pools=local_pools(1)
            )
        poll(
            lambda: _operation(other, created.operation.pk).status == OperationStatus.SUCCEEDED,
            timeout=180,
            interval=0.5,
            what="the other org's cluster to be created",
        )
        with schema_context(other.schema_name):
            checked_before = Cluster.objects.get(pk=created.cluster.pk).health_checked_at
            with transaction.atomic():
                enqueue(
                    "clusters.tasks.refresh_cluster_health",
                    schema_name=other.schema_name,
                    cluster_id=created.cluster.pk,
                )
        poll(
            lambda: _health_checked(other, created.cluster.pk) != checked_before,
            timeout=120,
            interval=0.5,
            what="the health refresh to run",
        )
        poll(
            lambda: all(_operation(busy, pk).status == OperationStatus.SUCCEEDED for pk in waiting),
            timeout=600,
            interval=1,
            what="the twenty waiting operations to finish",
        )
    finally:
        worker.stop()
    with schema_context(busy.schema_name):
        done = Operation.objects.filter(pk__in=waiting).aggregate(
            first=Min("finished_at"), last=Max("finished_at")
        )
    create = _operation(other, created.operation.pk)
    # Neither the other org's create nor the health refresh waited for the backlog: both started
    # before even the first of the twenty (36 s of waiting each) had finished.
    assert create.started_at is not None and create.started_at < done["first"], worker.output()[-3000:]
    assert _health_checked(other, created.cluster.pk) < done["first"]
    # One task per pass and never a duplicate: no task found its operation already taken.
    results = _results(busy.schema_name)
    assert "not claimed" not in results
    assert results.count("succeeded") == 20 and results.count("waiting") == 20 * 12


def _health_checked(org: Organization, cluster_id: int):
    with schema_context(org.schema_name):
        return Cluster.objects.get(pk=cluster_id).health_checked_at


@override_settings(FLOTILLA_OPERATION_STALE_SECONDS=3)
def test_a_worker_killed_mid_step_is_taken_over(transactional_db: None, tmp_path: Path) -> None:
    org = make_org("killed")
    operation_id = _scripted(org, ["step", "hang:120", "done"], subject=1)
    first = KillableWorker(tmp_path / "worker-1.log", FLOTILLA_OPERATION_STALE_SECONDS="3")
    try:
        poll(
            lambda: (
                [e[0] for e in _operation(org, operation_id).state.get("log", [])] == ["step", "hang:120"]
            ),
            timeout=60,
            what="the step that hangs",
        )
    finally:
        first.kill()
    assert _operation(org, operation_id).status == OperationStatus.RUNNING
    second = KillableWorker(tmp_path / "worker-2.log", FLOTILLA_OPERATION_STALE_SECONDS="3")
    try:
        poll(lambda: sweep()["requeued"], timeout=30, interval=0.5, what="the sweeper to requeue")
        poll(
            lambda: _operation(org, operation_id).status == OperationStatus.SUCCEEDED,
            timeout=60,
            interval=0.5,
            what="the operation to finish",
        )
    finally:
        second.stop()
    operation = _operation(org, operation_id)
    assert operation.attempts == 1  # the death counted as an attempt
    assert [e[0] for e in operation.state["log"]] == ["step", "hang:120", "done"]  # nothing ran twice
    with schema_context(org.schema_name):
        taken_over = operation.transitions.filter(from_status="running", to_status="running")
        assert taken_over.count() == 1 and "taken over" in taken_over.get().reason


def test_deleting_a_cluster_while_its_operation_runs_cancels_it_and_takes_over(
    transactional_db: None, tmp_path: Path
) -> None:
    org = make_org("supersede")
    with schema_context(org.schema_name):
        requested = cluster_services.create_cluster(
            owner_actor(org), name="short-lived", provider=local_provider(org), pools=local_pools(1)
        )
    create_id = requested.operation.pk
    worker = KillableWorker(tmp_path / "worker.log")
    try:

        def launching() -> bool:
            # Running, inside the step that starts the control plane (recorded, not yet made).
            with schema_context(org.schema_name):
                op = Operation.objects.get(pk=create_id)
                planned = CloudResource.objects.filter(
                    cluster_id=op.cluster_id, state=ResourceState.PLANNED
                ).exists()
                return op.status == OperationStatus.RUNNING and planned

        poll(launching, timeout=120, what="the create to be running its first step")
        with schema_context(org.schema_name):
            cluster = Cluster.objects.get(pk=requested.cluster.pk)
            deletion = cluster_services.delete_cluster(owner_actor(org), cluster)  # no 409
            assert deletion.kind == OperationKind.DELETE
            assert Operation.objects.get(pk=create_id).cancel_requested
        poll(
            lambda: _operation(org, deletion.pk).status == OperationStatus.SUCCEEDED,
            timeout=180,
            interval=0.5,
            what="the deletion to finish",
        )
    finally:
        worker.stop()
    create = _operation(org, create_id)
    assert create.status == OperationStatus.CANCELLED and create.state == {}
    with schema_context(org.schema_name):
        cluster = Cluster.objects.get(pk=requested.cluster.pk)
        assert cluster.status == ClusterStatus.DELETED
        # The deletion started only after the create had stopped.
        deleted = Operation.objects.get(pk=deletion.pk)
        assert deleted.started_at is not None and create.finished_at is not None
        assert deleted.started_at >= create.finished_at
    assert cluster.external_name not in LocalRuntime().list_clusters()
