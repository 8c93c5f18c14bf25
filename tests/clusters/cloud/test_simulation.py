"""Simulation ("bootstrap": "local"): VMs at the (emulated) provider, a local control plane with one
simulated node per running VM in place of k3s — for demos and emulated clouds whose VMs never boot."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from clusters.local import binaries
from clusters.local.runtime import LocalRuntime
from clusters.providers.cloud import cluster_tag
from tests.clusters.cloud.conftest import Ec2Account
from tests.clusters.cloud.fake_context import FakeContext, drive, make_cluster, make_pool
from tests.clusters.cloud.test_ec2 import GPU_TAINT, instances, security_groups
from tests.local_kube import wait_for

pytestmark = pytest.mark.kube


def core(kubeconfig: str) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(k8s_config.new_client_from_config_dict(yaml.safe_load(kubeconfig)))


def test_simulated_nodes_follow_the_vms_and_destroy_removes_everything(
    ec2: Ec2Account, local_runtime: LocalRuntime
) -> None:
    if not {"1.35.4", "1.36.1"} <= set(binaries.available_k8s_versions()):
        pytest.fail("Kubernetes 1.35.4 and 1.36.1 are not built: python -m clusters.local.binaries build")
    driver = ec2.driver(bootstrap="local")
    pools = [
        make_pool("general", "t3.small", 2, labels={"tier": "web"}),
        make_pool("gpu", "t3.medium", 1, taints=[GPU_TAINT]),
    ]
    ctx = FakeContext(make_cluster("sim", version="1.35.4"), pools)
    ext = ctx.cluster.external_name

    try:
        drive(driver, ctx)

        assert set(instances(ec2, ctx)) == {f"{ext}-general-0", f"{ext}-general-1", f"{ext}-gpu-0"}
        assert ext in local_runtime.list_clusters()
        assert [r.name for r in ctx.resources("local-control-plane")] == [ext]
        api = core(ctx.kubeconfig)
        nodes = {n.metadata.name: n for n in api.list_node().items}
        assert set(nodes) == {"general-0", "general-1", "gpu-0"}
        general = nodes["general-0"]
        assert general.metadata.labels["flotilla.io/pool"] == "general"
        assert general.metadata.labels["tier"] == "web"
        # Capacity of the EC2 size each VM has: t3.small 2 vCPU / 2 GiB, t3.medium 2 vCPU / 4 GiB.
        assert (general.status.capacity["cpu"], general.status.capacity["memory"]) == ("2", "2Gi")
        assert nodes["gpu-0"].status.capacity["memory"] == "4Gi"
        # The pool's taint; Kubernetes' own `node.kubernetes.io/not-ready` may still be there for
        # a moment (the node was just registered; readiness is the reconcile loop's business).
        pool_taints = [
            (t.key, t.value, t.effect)
            for t in nodes["gpu-0"].spec.taints
            if not t.key.startswith("node.kubernetes.io/")
        ]
        assert pool_taints == [("dedicated", "gpu", "NoSchedule")]
        assert k8s.VersionApi(api.api_client).get_code().git_version == "v1.35.4"

        pools[1].count = 0
        drive(driver, ctx)
        assert set(instances(ec2, ctx)) == {f"{ext}-general-0", f"{ext}-general-1"}
        remaining = {"general-0", "general-1"}
        # The API may list a deleted node for a moment while it goes.
        wait_for(lambda: {n.metadata.name for n in api.list_node().items} == remaining, what="gpu-0 to go")

        # An upgrade moves the simulation's control plane and nodes; the VMs stay as they are.
        before = instances(ec2, ctx)
        ctx.cluster.version = "1.36.1"
        drive(driver, ctx)
        assert k8s.VersionApi(api.api_client).get_code().git_version == "v1.36.1"
        assert {n.status.node_info.kubelet_version for n in api.list_node().items} == {"v1.36.1"}
        assert {r.data["version"] for r in ctx.resources("vm")} == {"1.36.1"}
        assert instances(ec2, ctx).keys() == before.keys()

        drive(driver, ctx, destroy=True)

        assert ext not in local_runtime.list_clusters()
        assert instances(ec2, ctx) == {}
        assert security_groups(ec2, cluster_tag(ext)) == []
        assert ctx.resources() == []
    finally:
        local_runtime.delete(ext)
