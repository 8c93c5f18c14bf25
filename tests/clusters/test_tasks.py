"""The clusters tasks: the sweeper (dead workers, exhausted attempts, lost tasks), the periodic
set-up, tasks staying inside their org, and the health refresh that finds and repairs trouble."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_tenants.utils import schema_context

from clusters import kube
from clusters.choices import ClusterStatus, OperationStatus
from clusters.engine.dispatch import NOT_DUE
from clusters.engine.models import Dispatch
from clusters.engine.sweeper import sweep as sweep_operations
from clusters.local.runtime import LocalRuntime
from clusters.models import Cluster, ClusterEvent, Operation, ProviderAccount
from clusters.services import clusters as cluster_services
from clusters.services.health import refresh_cluster_health
from config.tasks import run_in_schema
from orgs.audit.models import AuditEntry
from orgs.models import Organization
from tests.clusters.helpers import local_pools, local_provider, owner_actor, poll, reload, run

pytestmark = pytest.mark.django_db


def _queued_cluster(org: Organization, name: str = "c", nodes: int = 1) -> Operation:
    with schema_context(org.schema_name):
        requested = cluster_services.create_cluster(
            owner_actor(org), name=name, provider=local_provider(org), pools=local_pools(nodes)
        )
        return requested.operation


def test_prepare_clusters_is_idempotent(org_a: Organization, org_b: Organization) -> None:
    call_command("prepare_clusters", verbosity=0)
    call_command("prepare_clusters", verbosity=0)
    assert Schedule.objects.filter(func="clusters.tasks.tick").count() == 1
    for org in (org_a, org_b):
        with schema_context(org.schema_name):
            assert list(ProviderAccount.objects.values_list("name", "kind")) == [("local", "local")]
            assert AuditEntry.objects.filter(action="provider.created", source="system").count() == 1


def test_an_operation_id_of_another_org_is_not_run(org_a: Organization, org_b: Organization) -> None:
    operation = _queued_cluster(org_a)
    assert run_in_schema(
        "clusters.tasks.run_operation", org_b.schema_name, {"operation_id": operation.pk}
    ) == ("not claimed")
    with schema_context(org_a.schema_name):
        assert Operation.objects.get(pk=operation.pk).status == OperationStatus.QUEUED


def queued_operations() -> list[tuple[str, int]]:
    """(schema, operation id) of every run_operation task in django-q2's queue (the ORM broker)."""
    found = []
    for row in OrmQ.objects.all():
        path, schema_name, kwargs = row.task["args"]
        if path == "clusters.tasks.run_operation":
            found.append((schema_name, kwargs["operation_id"]))
    return sorted(found)


@override_settings(FLOTILLA_OPERATION_STALE_SECONDS=5, FLOTILLA_DISPATCH_LOST_SECONDS=60)
def test_sweeper(org_a: Organization, org_b: Organization, django_capture_on_commit_callbacks) -> None:
    dead = _queued_cluster(org_a, "dead")
    exhausted = _queued_cluster(org_a, "tired")
    cancelled = _queued_cluster(org_b, "stop")
    lost = _queued_cluster(org_b, "lost")
    long_ago = timezone.now() - timedelta(minutes=5)
    OrmQ.objects.all().delete()
    with schema_context(org_a.schema_name):
        Operation.objects.filter(pk=dead.pk).update(status=OperationStatus.RUNNING, heartbeat_at=long_ago)
        Operation.objects.filter(pk=exhausted.pk).update(
            status=OperationStatus.RUNNING, heartbeat_at=long_ago, attempts=4
        )
        # What a claim leaves in the dispatch index: not due while a worker holds it.
        Dispatch.objects.filter(
            operation_id__in=[dead.pk, exhausted.pk], schema_name=org_a.schema_name
        ).update(due_at=NOT_DUE, queued_at=None)
    with schema_context(org_b.schema_name):
        Operation.objects.filter(pk=cancelled.pk).update(
            status=OperationStatus.RUNNING, heartbeat_at=long_ago, cancel_requested=True
        )
    # A task was queued for `lost` five minutes ago and no worker ever took it.
    Dispatch.objects.filter(schema_name=org_b.schema_name, operation_id=lost.pk).update(
        due_at=long_ago, queued_at=long_ago
    )
    Dispatch.objects.filter(schema_name=org_b.schema_name, operation_id=cancelled.pk).update(
        due_at=NOT_DUE, queued_at=None
    )
    with django_capture_on_commit_callbacks(execute=True):
        counts = sweep_operations()
    assert counts == {"requeued": 1, "failed": 1, "cancelled": 1, "lost": 1, "dispatched": 2}
    # What reached the queue: exactly one task for each of the two that must run again.
    assert queued_operations() == sorted([(org_a.schema_name, dead.pk), (org_b.schema_name, lost.pk)])
    with schema_context(org_a.schema_name):
        tired = Operation.objects.select_related("cluster").get(pk=exhausted.pk)
        assert tired.status == OperationStatus.FAILED and "stopped 5 times" in tired.error
        assert (
            tired.cluster.status == ClusterStatus.ERROR and "stopped 5 times" in tired.cluster.status_reason
        )
        assert Operation.objects.get(pk=dead.pk).status == OperationStatus.RUNNING  # requeued, not changed
    with schema_context(org_b.schema_name):
        stopped = Operation.objects.select_related("cluster").get(pk=cancelled.pk)
        assert stopped.status == OperationStatus.CANCELLED and stopped.cluster.status == ClusterStatus.ERROR
    # Finished operations leave the index; a second sweep queues nothing twice (the backlog case).
    assert not Dispatch.objects.filter(schema_name=org_a.schema_name, operation_id=exhausted.pk).exists()
    assert not Dispatch.objects.filter(schema_name=org_b.schema_name, operation_id=cancelled.pk).exists()
    with django_capture_on_commit_callbacks(execute=True):
        again = sweep_operations()
    assert again["requeued"] == 0 and again["dispatched"] == 0
    assert len(queued_operations()) == 2


@pytest.mark.kube
@pytest.mark.django_db(transaction=True)
def test_health_refresh_recovers_and_degrades(org_a: Organization) -> None:
    operation = _queued_cluster(org_a, "health", nodes=2)
    assert run(org_a, operation).status == OperationStatus.SUCCEEDED
    cluster = reload(org_a, operation.cluster)
    runtime = LocalRuntime()

    # A node disappears: Degraded, with the reason; a scale back to spec repairs it.
    kube.delete(runtime.client(cluster.external_name), "v1", "Node", "p0-0")
    with schema_context(org_a.schema_name):
        assert refresh_cluster_health(cluster.pk) == ClusterStatus.DEGRADED
        degraded = Cluster.objects.get(pk=cluster.pk)
        assert "Pool p0 has 1 Ready nodes of 2" in degraded.status_reason
        assert {c["type"]: c["status"] for c in degraded.conditions}["SpecReached"] == "False"
        pool = degraded.pools.get(name="p0")
        repair = cluster_services.scale_node_pool(owner_actor(org_a), degraded, pool, count=2)
    assert run(org_a, repair).status == OperationStatus.SUCCEEDED
    assert reload(org_a, cluster).status == ClusterStatus.READY

    # The host "restarted": the control plane is down; the health check starts it again without
    # waiting for it (Degraded, saying so), and a later check finds it Ready.
    runtime.stop(cluster.external_name)
    with schema_context(org_a.schema_name):
        assert refresh_cluster_health(cluster.pk) == ClusterStatus.DEGRADED
        assert "starting again" in Cluster.objects.get(pk=cluster.pk).status_reason
        assert ClusterEvent.objects.filter(
            cluster=cluster, message__contains="starting its control plane"
        ).exists()
        poll(
            lambda: refresh_cluster_health(cluster.pk) == ClusterStatus.READY,
            timeout=120,
            interval=1,
            what="the restarted control plane to answer",
        )


def test_metrics_count_clusters_and_operations_across_orgs(org_a: Organization, org_b: Organization) -> None:
    from django.conf import settings
    from django.test import Client

    _queued_cluster(org_a, "one")
    _queued_cluster(org_b, "two")
    body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}").content.decode()
    assert 'flotilla_clusters{status="pending"} 2.0' in body
    assert 'flotilla_clusters{status="ready"} 0.0' in body
    assert 'flotilla_cluster_operations_active{kind="create",status="queued"} 2.0' in body
