"""Upgrading k3s on cloud VMs: the EC2 driver against moto, its Jobs against a real API server.

The VMs are moto's and never boot, so a local control plane stands in for the cluster's k3s: it
holds one Node per VM (named as k3s names them, after the VM) and the test plays each VM's part
by reporting the new kubelet version once Flotilla's upgrade Job for it exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import override_settings
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from clusters import kube
from clusters.exceptions import ProviderError
from clusters.local.runtime import NodePoolSpec
from clusters.providers import k3s_upgrade
from tests.clusters.cloud.conftest import Ec2Account
from tests.clusters.cloud.fake_context import FakeContext, drive, make_cluster, make_pool
from tests.local_kube import ClusterFactory, LocalCluster, wait_for

pytestmark = pytest.mark.kube


def vm_node(name: str, kubelet: str) -> dict[str, Any]:
    """A Node as k3s on the VM `name` would register it (kwok makes it Ready)."""
    info = dict.fromkeys(
        ("bootID", "machineID", "systemUUID", "kernelVersion", "osImage", "containerRuntimeVersion"), ""
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "status": {
            "nodeInfo": {
                **info,
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": kubelet,
                "kubeProxyVersion": kubelet,
            }
        },
    }


def ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


@pytest.fixture
def stand_in(make_local_cluster: ClusterFactory) -> Iterator[LocalCluster]:
    """A control plane with no nodes of its own, standing in for a cloud's k3s server.

    It listens on loopback, which the outbound policy refuses for a cloud cluster's API: the
    operator's allow-list opens exactly its address, as it would for a private cloud."""
    cluster = make_local_cluster(NodePoolSpec(name="none", count=0))
    port = urlsplit(kube.server_of(cluster.kubeconfig)).port
    with override_settings(FLOTILLA_OUTBOUND_ALLOW=[f"127.0.0.1:{port}"]):
        yield cluster


def cluster_on_vms(ec2: Ec2Account, stand_in: LocalCluster) -> tuple[FakeContext, k8s.CoreV1Api, list[str]]:
    """A cluster of a server and an agent made at moto on 1.35.4, its k3s played by `stand_in`."""
    driver = ec2.driver()
    ctx = FakeContext(
        make_cluster("upg", version="1.35.4"),
        [make_pool("general", "t3.small", 1), make_pool("gpu", "t3.medium", 1)],
    )
    drive(driver, ctx)
    vms = sorted(ctx.live("vm"), key=lambda n: ctx.live("vm")[n].data["role"] != "server")
    core = stand_in.core()
    for name in vms:
        core.create_node(vm_node(name, "v1.35.4+k3s1"))
    wait_for(lambda: all(ready(core.read_node(n)) for n in vms), what="the VMs' nodes to be Ready")
    ctx.store_kubeconfig(stand_in.kubeconfig)
    return ctx, core, vms


def upgrade_job(batch: k8s.BatchV1Api, node: str) -> Any:
    try:
        return batch.read_namespaced_job(k3s_upgrade.job_name(node, "1.36.1"), "kube-system")
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_vms_are_upgraded_in_place_one_at_a_time_server_first(
    ec2: Ec2Account, stand_in: LocalCluster
) -> None:
    driver = ec2.driver()
    ctx, core, (server, agent) = cluster_on_vms(ec2, stand_in)
    batch = k8s.BatchV1Api(stand_in.api())
    vms_before = {r.name: r.provider_id for r in ctx.resources("vm")}
    ctx.cluster.version = "1.36.1"

    started = driver.reconcile(ctx)

    assert not started.done and started.message == f"Upgrading node {server} to k3s v1.36.1+k3s1"
    job = upgrade_job(batch, server)
    assert upgrade_job(batch, agent) is None, "one node at a time"
    pod = job.spec.template.spec
    assert pod.node_name == server and pod.host_pid and pod.restart_policy == "Never"
    [container] = pod.containers
    assert container.security_context.privileged
    assert container.command[:4] == ["chroot", "/host", "sh", "-c"]
    assert "INSTALL_K3S_VERSION=v1.36.1+k3s1 INSTALL_K3S_EXEC=server sh -" in container.command[4]
    assert [v.host_path.path for v in pod.volumes] == ["/"]
    # Until the node reports the new version, the driver waits (and makes no second Job).
    assert driver.reconcile(ctx).message == started.message
    assert len(batch.list_namespaced_job("kube-system").items) == 1

    # The VM's k3s comes back on the new release.
    core.patch_node_status(server, {"status": {"nodeInfo": {"kubeletVersion": "v1.36.1+k3s1"}}})
    done = driver.reconcile(ctx)
    assert (done.done, done.message) == (False, f"Node {server} runs k3s v1.36.1+k3s1")
    assert ctx.live("vm")[server].data["version"] == "1.36.1"
    assert ctx.live("vm")[agent].data["version"] == "1.35.4"
    wait_for(lambda: upgrade_job(batch, server) is None, what="the server's Job to be deleted")

    assert driver.reconcile(ctx).message == f"Upgrading node {agent} to k3s v1.36.1+k3s1"
    agent_job = upgrade_job(batch, agent)
    assert "INSTALL_K3S_EXEC=agent" in agent_job.spec.template.spec.containers[0].command[4]
    core.patch_node_status(agent, {"status": {"nodeInfo": {"kubeletVersion": "v1.36.1+k3s1"}}})

    drive(driver, ctx)

    assert {r.data["version"] for r in ctx.resources("vm")} == {"1.36.1"}
    assert {r.name: r.provider_id for r in ctx.resources("vm")} == vms_before, "no VM made or lost"
    assert any("runs k3s v1.36.1+k3s1 (2/2 nodes)" in message for _, message in ctx.events)


def test_a_failed_upgrade_job_fails_the_step_with_its_reason(ec2: Ec2Account, stand_in: LocalCluster) -> None:
    driver = ec2.driver()
    ctx, _, (server, _agent) = cluster_on_vms(ec2, stand_in)
    batch = k8s.BatchV1Api(stand_in.api())
    # A Job of that name that runs out of time at once: the job controller marks it Failed.
    manifest = k3s_upgrade.job_manifest(
        server, mode="server", release="v1.36.1+k3s1", install_url="https://k3s.example/install.sh"
    )
    manifest["spec"]["activeDeadlineSeconds"] = 1
    batch.create_namespaced_job("kube-system", manifest)
    name = manifest["metadata"]["name"]
    wait_for(
        lambda: any(
            c.type == "Failed" for c in batch.read_namespaced_job(name, "kube-system").status.conditions or []
        ),
        what="the Job to fail",
    )
    ctx.cluster.version = "1.36.1"

    with pytest.raises(
        ProviderError, match=f"upgrade of node {server} to k3s v1.36.1\\+k3s1 failed"
    ) as failed:
        driver.reconcile(ctx)

    assert failed.value.retryable is False
    assert "DeadlineExceeded" in failed.value.message
    assert ctx.live("vm")[server].data["version"] == "1.35.4"
    # Deleted, so that a retry of the operation starts afresh.
    wait_for(lambda: upgrade_job(batch, server) is None, what="the failed Job to be deleted")


def test_an_unreachable_api_during_the_upgrade_is_waited_out(ec2: Ec2Account, stand_in: LocalCluster) -> None:
    driver = ec2.driver()
    ctx, _, (server, _agent) = cluster_on_vms(ec2, stand_in)
    ctx.cluster.version = "1.36.1"
    assert not driver.reconcile(ctx).done
    stand_in.runtime.stop(stand_in.name)  # the server's k3s restarts on the new release
    try:
        waiting = driver.reconcile(ctx)
    finally:
        stand_in.runtime.ensure_running(stand_in.name)

    assert (waiting.done, waiting.message) == (False, f"Upgrading node {server} to k3s v1.36.1+k3s1")
