"""Crash safety against EC2 (moto, through libcloud's real driver) with the real worker: SIGKILL the
worker while VMs are being created, start a new one, and the cluster reaches Ready with exactly the
expected instances at the provider — no duplicate, no orphan — and deletion leaves nothing behind.

The emulated VMs never boot, so the account uses the documented simulation mode
(`"bootstrap": "local"`): a local control plane stands in for k3s with one node per running VM.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from django_tenants.utils import schema_context

from clusters.choices import ClusterStatus, OperationStatus, ResourceState
from clusters.engine.sweeper import sweep as sweep_operations
from clusters.models import CloudResource, Cluster, Operation
from clusters.providers.cloud import cluster_tag
from clusters.services import clusters as cluster_services
from clusters.services.providers import create_provider_account
from orgs.models import Organization
from tests.clusters.cloud.conftest import Ec2Account
from tests.clusters.helpers import KillableWorker, owner_actor, poll
from tests.factories import make_org

pytestmark = [pytest.mark.kube, pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]
STALE = 3


def _vms(resources: list[CloudResource], state: str) -> int:
    return sum(1 for r in resources if r.kind == "vm" and r.state == state)


POINTS: dict[str, Callable[[list[CloudResource]], bool]] = {
    # A VM is recorded and its create call is in flight (or just answered, id not yet stored).
    "VM recorded, not yet created": lambda res: _vms(res, ResourceState.PLANNED) >= 1,
    # Some VMs exist, others do not yet.
    "some VMs created": lambda res: 1 <= _vms(res, ResourceState.CREATED) < 3,
    # Every VM exists; the control plane (simulated bootstrap) is being started.
    "bootstrapping": lambda res: any(r.kind == "local-control-plane" for r in res),
}


def _resources(org: Organization, cluster_id: int) -> list[CloudResource]:
    with schema_context(org.schema_name):
        return list(CloudResource.objects.filter(cluster_id=cluster_id))


def _operation(org: Organization, operation_id: int) -> Operation:
    with schema_context(org.schema_name):
        return Operation.objects.get(pk=operation_id)


def _instances(ec2: Ec2Account, external_name: str) -> list[dict[str, Any]]:
    found = ec2.emulator.ec2().describe_instances(
        Filters=[
            {"Name": "tag:flotilla-cluster", "Values": [cluster_tag(external_name)]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )
    return [i for r in found["Reservations"] for i in r["Instances"]]


@pytest.mark.parametrize("point", list(POINTS))
@override_settings(FLOTILLA_OPERATION_STALE_SECONDS=STALE)
def test_worker_killed_while_creating_vms(
    point: str, ec2: Ec2Account, transactional_db: None, tmp_path: Path
) -> None:
    org = make_org("cloudcrash")
    actor = owner_actor(org)
    with schema_context(org.schema_name):
        account = create_provider_account(
            actor,
            name="aws",
            kind="ec2",
            fields={**ec2.credentials(), **ec2.settings(bootstrap="local")},
        )
        requested = cluster_services.create_cluster(
            actor,
            name="web",
            provider=account,
            region="us-east-1",
            pools=[
                {"name": "general", "size": "t3.small", "count": 2},
                {"name": "gpu", "size": "t3.medium", "count": 1},
            ],
        )
    cluster_id, op_id = requested.cluster.pk, requested.operation.pk
    external = requested.cluster.external_name
    env = {"FLOTILLA_OPERATION_STALE_SECONDS": str(STALE), "FLOTILLA_CLOUD_PRIVATE_ENDPOINTS": "1"}
    first = KillableWorker(tmp_path / "worker-1.log", **env)
    try:
        poll(lambda: POINTS[point](_resources(org, cluster_id)), timeout=120, interval=0.01, what=point)
    finally:
        first.kill()
    assert _operation(org, op_id).status == OperationStatus.RUNNING

    second = KillableWorker(tmp_path / "worker-2.log", **env)
    try:
        poll(lambda: sweep_operations()["requeued"], timeout=30, interval=0.5, what="the sweeper to requeue")
        poll(
            lambda: _operation(org, op_id).status not in (OperationStatus.RUNNING, OperationStatus.QUEUED),
            timeout=180,
            interval=0.5,
            what="the operation to finish",
        )
        operation = _operation(org, op_id)
        assert operation.status == OperationStatus.SUCCEEDED, operation.error + second.output()[-3000:]
        with schema_context(org.schema_name):
            assert Cluster.objects.get(pk=cluster_id).status == ClusterStatus.READY

        # Exactly the expected instances at the provider, each recorded with its id.
        instances = _instances(ec2, external)
        names = sorted(next(t["Value"] for t in i["Tags"] if t["Key"] == "Name") for i in instances)
        assert names == [f"{external}-general-0", f"{external}-general-1", f"{external}-gpu-0"]
        live = [r for r in _resources(org, cluster_id) if r.state != ResourceState.DELETED]
        assert all(r.state == ResourceState.CREATED for r in live), [(r.kind, r.name, r.state) for r in live]
        assert sorted(r.provider_id for r in live if r.kind == "vm") == sorted(
            i["InstanceId"] for i in instances
        )

        with schema_context(org.schema_name):
            deletion = cluster_services.delete_cluster(actor, Cluster.objects.get(pk=cluster_id))
        poll(
            lambda: _operation(org, deletion.pk).status == OperationStatus.SUCCEEDED,
            timeout=120,
            interval=0.5,
            what="the deletion",
        )
        assert _instances(ec2, external) == []
        groups = ec2.emulator.ec2().describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [cluster_tag(external)]}]
        )["SecurityGroups"]
        assert groups == []
    finally:
        second.stop()
