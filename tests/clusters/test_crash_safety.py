"""Crash safety of the reconcile loop with the real worker: SIGKILL the worker at different points
of provisioning a local cluster, start a new one, and the cluster still reaches Ready with exactly
one control plane, the expected nodes, no orphaned process — and deletes cleanly afterwards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import override_settings
from django_tenants.utils import schema_context

from clusters.choices import ClusterStatus, OperationStatus, ResourceState
from clusters.engine.sweeper import sweep as sweep_operations
from clusters.local.runtime import LocalRuntime
from clusters.models import CloudResource, Cluster, Node, Operation
from clusters.services import clusters as cluster_services
from orgs.models import Organization
from tests.clusters.helpers import (
    KillableWorker,
    local_pools,
    local_provider,
    owner_actor,
    poll,
    processes_mentioning,
)
from tests.factories import make_org

pytestmark = [pytest.mark.kube, pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]
STALE = 3


def _state(org: Organization, operation_id: int) -> tuple[Operation, list[CloudResource]]:
    with schema_context(org.schema_name):
        operation = Operation.objects.get(pk=operation_id)
        return operation, list(CloudResource.objects.filter(cluster_id=operation.cluster_id))


POINTS: dict[str, Callable[[Operation, list[CloudResource]], bool]] = {
    # kwokctl is starting etcd and the API server: the control plane is recorded, not yet made.
    "control plane being created": lambda op, res: any(r.state == ResourceState.PLANNED for r in res),
    # The control plane is up and recorded; its components and nodes are coming up. The worker
    # is killed mid-pass or, more likely, while the operation waits between passes (no worker
    # holds it then: the engine released it).
    "nodes joining": lambda op, res: (
        op.is_active and op.step != "Queued" and any(r.state == ResourceState.CREATED for r in res)
    ),
}


@pytest.mark.parametrize("point", list(POINTS))
@override_settings(FLOTILLA_OPERATION_STALE_SECONDS=STALE)
def test_worker_killed_during_provisioning(point: str, transactional_db: None, tmp_path: Path) -> None:
    org = make_org("crash")
    with schema_context(org.schema_name):
        requested = cluster_services.create_cluster(
            owner_actor(org), name="sturdy", provider=local_provider(org), pools=local_pools(2, 1)
        )
    op_id = requested.operation.pk
    env = {"FLOTILLA_OPERATION_STALE_SECONDS": str(STALE)}
    first = KillableWorker(tmp_path / "worker-1.log", **env)
    try:
        poll(lambda: POINTS[point](*_state(org, op_id)), timeout=120, what=point)
    finally:
        first.kill()
    operation, _ = _state(org, op_id)
    held = operation.status == OperationStatus.RUNNING
    assert held or point == "nodes joining", "the dead worker was in the middle of starting the plane"

    second = KillableWorker(tmp_path / "worker-2.log", **env)
    try:
        if held:
            # The sweeper (a periodic task) notices the stale heartbeat and hands the operation over.
            poll(
                lambda: sweep_operations()["requeued"],
                timeout=30,
                interval=0.5,
                what="the sweeper to requeue",
            )
        poll(
            lambda: _state(org, op_id)[0].status not in (OperationStatus.RUNNING, OperationStatus.QUEUED),
            timeout=180,
            interval=0.5,
            what="the operation to finish",
        )
        operation, resources = _state(org, op_id)
        assert operation.status == OperationStatus.SUCCEEDED, operation.error + second.output()[-3000:]
        assert operation.attempts == (1 if held else 0)  # a death in the middle of a pass counts
        with schema_context(org.schema_name):
            cluster = Cluster.objects.get(pk=operation.cluster_id)
            nodes = sorted(Node.objects.filter(cluster=cluster, ready=True).values_list("name", flat=True))
        assert cluster.status == ClusterStatus.READY
        assert nodes == ["p0-0", "p0-1", "p1-0"]
        live = [r for r in resources if r.state != ResourceState.DELETED]
        assert [(r.kind, r.state) for r in live] == [("local-control-plane", ResourceState.CREATED)]
        runtime = LocalRuntime()
        assert [n for n in runtime.list_clusters() if n == cluster.external_name] == [cluster.external_name]
        cluster_dir = str(runtime.cluster_dir(cluster.external_name))
        # Exactly one set of control-plane processes: etcd, apiserver, controller-manager,
        # scheduler, kwok and metrics-server.
        assert len(processes_mentioning(cluster_dir + "/")) == 6

        with schema_context(org.schema_name):
            deletion = cluster_services.delete_cluster(owner_actor(org), cluster)
        poll(
            lambda: _state(org, deletion.pk)[0].status == OperationStatus.SUCCEEDED,
            timeout=120,
            interval=0.5,
            what="the deletion",
        )
        assert cluster.external_name not in runtime.list_clusters()
        assert processes_mentioning(cluster_dir + "/") == []
    finally:
        second.stop()
