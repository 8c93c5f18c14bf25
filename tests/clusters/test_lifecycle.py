"""The whole life of a local cluster through the services and the reconcile loop (run inline):
create with two pools, scale, add and remove a pool, upgrade, delete — against real control planes."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from clusters import kube
from clusters.choices import ClusterStatus, OperationStatus, ResourceState
from clusters.local import binaries
from clusters.local.runtime import LocalRuntime, process_alive
from clusters.models import CloudResource, Cluster, ClusterEvent, Node, NodePool
from clusters.services import clusters as cluster_services
from tests.clusters.helpers import local_pools, local_provider, owner_actor, reload, run

pytestmark = [pytest.mark.kube, pytest.mark.django_db(transaction=True)]


def _nodes(org, cluster: Cluster) -> dict[str, set[str]]:
    with schema_context(org.schema_name):
        by_pool: dict[str, set[str]] = {}
        for node in Node.objects.filter(cluster=cluster, ready=True):
            by_pool.setdefault(node.pool_name, set()).add(node.name)
        return by_pool


def test_local_cluster_lifecycle(org_a) -> None:
    actor = owner_actor(org_a)
    provider = local_provider(org_a)
    versions = sorted(binaries.available_k8s_versions(), key=lambda v: tuple(map(int, v.split("."))))
    assert len(versions) >= 2, "two Kubernetes versions are built so that upgrades can be tested"
    old, new = versions[0], versions[-1]
    with schema_context(org_a.schema_name):
        requested = cluster_services.create_cluster(
            actor, name="prod", provider=provider, version=old, pools=local_pools(2, 1)
        )
    assert requested.cluster.status == ClusterStatus.PENDING
    operation = run(org_a, requested.operation)
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    cluster = reload(org_a, requested.cluster)
    assert cluster.status == ClusterStatus.READY
    assert cluster.observed_version == old
    assert _nodes(org_a, cluster) == {"p0": {"p0-0", "p0-1"}, "p1": {"p1-0"}}
    with schema_context(org_a.schema_name):
        assert set(Node.objects.filter(cluster=cluster).values_list("kubelet_version", flat=True)) == {
            f"v{old}"
        }
    runtime = LocalRuntime()
    assert cluster.external_name in runtime.list_clusters()

    # The kubeconfig is encrypted in the database and works.
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT kubeconfig FROM "{org_a.schema_name}".clusters_cluster WHERE id = %s', [cluster.pk]
        )
        assert cursor.fetchone()[0].startswith("fernet:")
    with schema_context(org_a.schema_name):
        assert "server: https://127.0.0.1" in cluster_services.download_kubeconfig(actor, cluster)
        resource = CloudResource.objects.get(cluster=cluster)
        assert (resource.kind, resource.state) == ("local-control-plane", ResourceState.CREATED)
        # Scale the first pool to 3.
        pool = NodePool.objects.get(cluster=cluster, name="p0")
        scaled = cluster_services.scale_node_pool(actor, cluster, pool, count=3)
    assert run(org_a, scaled).status == OperationStatus.SUCCEEDED
    assert _nodes(org_a, cluster)["p0"] == {"p0-0", "p0-1", "p0-2"}

    with schema_context(org_a.schema_name):
        added = cluster_services.add_node_pool(
            actor,
            cluster,
            pool={
                "name": "gpu",
                "size": "large",
                "count": 1,
                "labels": {"accel": "yes"},
                "taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}],
            },
        )
    assert run(org_a, added).status == OperationStatus.SUCCEEDED
    gpu = kube.get(LocalRuntime().client(cluster.external_name), "v1", "Node", "gpu-0")
    assert gpu["metadata"]["labels"]["accel"] == "yes"
    assert "gpu" in {t["key"] for t in gpu["spec"]["taints"]}
    assert gpu["status"]["capacity"]["cpu"] == "8"

    with schema_context(org_a.schema_name):
        removed = cluster_services.remove_node_pool(
            actor, cluster, NodePool.objects.get(cluster=cluster, name="p1")
        )
    assert run(org_a, removed).status == OperationStatus.SUCCEEDED
    assert set(_nodes(org_a, cluster)) == {"p0", "gpu"}
    with schema_context(org_a.schema_name):
        assert not NodePool.objects.filter(cluster=cluster, name="p1").exists()
        upgrade = cluster_services.upgrade_cluster(actor, cluster, version=new)
    assert run(org_a, upgrade).status == OperationStatus.SUCCEEDED, upgrade.error
    cluster = reload(org_a, cluster)
    assert (cluster.status, cluster.observed_version) == (ClusterStatus.READY, new)
    assert sum(len(v) for v in _nodes(org_a, cluster).values()) == 4, "nodes survive the upgrade"
    with schema_context(org_a.schema_name):
        kubelets = set(Node.objects.filter(cluster=cluster).values_list("kubelet_version", flat=True))
    assert kubelets == {f"v{new}"}, "the simulated kubelets move with the control plane"

    pids = runtime.pids(cluster.external_name)
    assert pids
    with schema_context(org_a.schema_name):
        deletion = cluster_services.delete_cluster(actor, cluster)
    assert run(org_a, deletion).status == OperationStatus.SUCCEEDED
    cluster = reload(org_a, cluster)
    assert cluster.status == ClusterStatus.DELETED and cluster.deleted_at is not None
    assert cluster.kubeconfig_text() == ""
    assert cluster.external_name not in runtime.list_clusters()
    assert not any(process_alive(pid) for pid in pids)
    with schema_context(org_a.schema_name):
        assert not Node.objects.filter(cluster=cluster).exists()
        messages = list(ClusterEvent.objects.filter(cluster=cluster).values_list("message", flat=True))
    assert any("Create succeeded" in m for m in messages)
    assert any("Delete succeeded" in m for m in messages)
