"""The local provider's clusters are real Kubernetes: proven with the official client and kubectl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from typing import Any

import pytest
from kubernetes import client as k8s

from clusters.local import binaries, components
from clusters.local.errors import BinariesMissing, HostLimitReached, LocalClusterError
from clusters.local.runtime import LocalClusterSpec, LocalRuntime, NodePoolSpec, Taint, process_alive
from tests.local_kube import ClusterFactory, LocalCluster, wait_for

pytestmark = pytest.mark.kube


def _deployment(name: str, replicas: int, **pod_spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}], **pod_spec},
            },
        },
    }


def _running_pods(cluster: LocalCluster, ns: str, app: str) -> list[Any]:
    pods = cluster.core().list_namespaced_pod(ns, label_selector=f"app={app}").items
    return [p for p in pods if p.status.phase == "Running" and p.status.pod_ip]


def test_nodes_are_ready_with_pool_labels_and_capacity(local_cluster: LocalCluster) -> None:
    nodes = {n.metadata.name: n for n in local_cluster.core().list_node().items}
    assert set(nodes) == {"general-0", "general-1", "edge-0"}
    assert nodes["edge-0"].metadata.labels["tier"] == "edge"
    assert nodes["edge-0"].status.capacity["cpu"] == "2"
    version = k8s.VersionApi(local_cluster.api()).get_code()
    assert version.git_version == "v" + binaries.available_k8s_versions()[0]
    # The simulated kubelets report the cluster's version (kwok would report its own).
    assert {n.status.node_info.kubelet_version for n in nodes.values()} == {version.git_version}


def test_deployment_pods_run_on_simulated_nodes(local_cluster: LocalCluster, kube_namespace: str) -> None:
    local_cluster.apps().create_namespaced_deployment(kube_namespace, _deployment("web", 3))
    running = wait_for(
        lambda: len(_running_pods(local_cluster, kube_namespace, "web")) == 3, what="3 pods Running"
    )
    assert running
    pods = _running_pods(local_cluster, kube_namespace, "web")
    assert {p.spec.node_name for p in pods} <= {"general-0", "general-1", "edge-0"}
    assert all(p.status.pod_ip for p in pods)


def test_service_gets_a_cluster_ip_and_endpoints(local_cluster: LocalCluster, kube_namespace: str) -> None:
    local_cluster.apps().create_namespaced_deployment(kube_namespace, _deployment("api", 2))
    service = local_cluster.core().create_namespaced_service(
        kube_namespace,
        {"metadata": {"name": "api"}, "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}},
    )
    assert service.spec.cluster_ip and service.spec.cluster_ip != "None"
    discovery = k8s.DiscoveryV1Api(local_cluster.api())

    def ready_endpoints() -> int:
        slices = discovery.list_namespaced_endpoint_slice(
            kube_namespace, label_selector="kubernetes.io/service-name=api"
        )
        return sum(1 for s in slices.items for e in (s.endpoints or []) if e.conditions.ready)

    wait_for(lambda: ready_endpoints() == 2, what="2 ready endpoints")


def test_crd_and_custom_resource(local_cluster: LocalCluster, kube_namespace: str) -> None:
    ext = k8s.ApiextensionsV1Api(local_cluster.api())
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.flotilla.io"},
        "spec": {
            "group": "test.flotilla.io",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                            },
                        }
                    },
                }
            ],
        },
    }
    try:
        ext.create_custom_resource_definition(crd)
    except k8s.ApiException as exc:
        assert exc.status == 409
    custom = k8s.CustomObjectsApi(local_cluster.api())

    def create() -> bool:
        try:
            custom.create_namespaced_custom_object(
                "test.flotilla.io",
                "v1",
                kube_namespace,
                "widgets",
                {
                    "apiVersion": "test.flotilla.io/v1",
                    "kind": "Widget",
                    "metadata": {"name": "w1"},
                    "spec": {"size": 3},
                },
            )
            return True
        except k8s.ApiException as exc:
            if exc.status == 404:  # the CRD is not established yet
                return False
            raise

    wait_for(create, what="the CRD to be served")
    got = custom.get_namespaced_custom_object("test.flotilla.io", "v1", kube_namespace, "widgets", "w1")
    assert got["spec"]["size"] == 3


def test_kubectl_works_with_the_kubeconfig(local_cluster: LocalCluster) -> None:
    kubectl = binaries.paths()["kubectl"]
    out = subprocess.run(
        [str(kubectl), "--kubeconfig", str(local_cluster.kubeconfig_path), "get", "nodes", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert {n["metadata"]["name"] for n in json.loads(out.stdout)["items"]} == {
        "general-0",
        "general-1",
        "edge-0",
    }


def test_pod_logs_are_simulated(local_cluster: LocalCluster, kube_namespace: str) -> None:
    local_cluster.apps().create_namespaced_deployment(kube_namespace, _deployment("logger", 1))
    pod = wait_for(
        lambda: next(iter(_running_pods(local_cluster, kube_namespace, "logger")), None), what="a pod"
    )
    local_cluster.runtime.append_log(local_cluster.name, "GET /healthz 200", "user signed in")

    def read() -> str:
        try:
            return str(
                local_cluster.core().read_namespaced_pod_log(
                    pod.metadata.name, kube_namespace, container="web"
                )
            )
        except k8s.ApiException:
            return ""

    logs = wait_for(lambda: "user signed in" in read() and read(), what="simulated log lines")
    assert "GET /healthz 200" in logs


def test_metrics_api_reports_usage(local_cluster: LocalCluster, kube_namespace: str) -> None:
    body = _deployment("busy", 1)
    body["spec"]["template"]["metadata"]["annotations"] = {
        "kwok.x-k8s.io/usage-cpu": "250m",
        "kwok.x-k8s.io/usage-memory": "64Mi",
    }
    local_cluster.apps().create_namespaced_deployment(kube_namespace, body)
    custom = k8s.CustomObjectsApi(local_cluster.api())

    def pod_metrics() -> list[Any]:
        try:
            items = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", kube_namespace, "pods")[
                "items"
            ]
        except k8s.ApiException:
            return []
        return [i for i in items if i["containers"]]

    items = wait_for(pod_metrics, timeout=180, interval=2, what="pod metrics from the metrics API")
    usage = items[0]["containers"][0]["usage"]
    assert usage["memory"] in {"64Mi", "65536Ki", "67108864"}

    busy_pod = items[0]["metadata"]["name"]
    busy_node = local_cluster.core().read_namespaced_pod(busy_pod, kube_namespace).spec.node_name

    def node_names() -> set[str]:
        listed = custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"]
        return {n["metadata"]["name"] for n in listed}

    names = wait_for(
        lambda: busy_node in node_names() and node_names(), timeout=120, interval=2, what="node metrics"
    )
    assert names <= {"general-0", "general-1", "edge-0"}


def test_scale_a_pool_with_taints(local_cluster: LocalCluster) -> None:
    runtime, name = local_cluster.runtime, local_cluster.name
    gpu = NodePoolSpec(
        name="gpu", count=2, cpu="8", memory="32Gi", taints=(Taint("gpu", "true", "NoSchedule"),)
    )
    runtime.scale_pool(name, gpu)
    nodes = {
        n.metadata.name: n
        for n in local_cluster.core().list_node(label_selector="flotilla.io/pool=gpu").items
    }
    assert set(nodes) == {"gpu-0", "gpu-1"}
    assert "gpu" in {t.key for t in nodes["gpu-1"].spec.taints}
    runtime.scale_pool(name, NodePoolSpec(name="gpu", count=1))
    assert [
        n.metadata.name for n in local_cluster.core().list_node(label_selector="flotilla.io/pool=gpu").items
    ] == ["gpu-0"]
    runtime.remove_pool(name, "gpu")
    assert local_cluster.core().list_node(label_selector="flotilla.io/pool=gpu").items == []


def test_stop_restart_and_delete_leave_nothing(make_local_cluster: ClusterFactory) -> None:
    cluster = make_local_cluster(NodePoolSpec(name="a", count=1))
    runtime = cluster.runtime
    pids = runtime.pids(cluster.name)
    assert pids
    runtime.stop(cluster.name)
    assert not runtime.is_healthy(cluster.name)
    # A cluster created while this one is down must not take its ports.
    other = make_local_cluster(NodePoolSpec(name="b", count=1))
    assert runtime.is_healthy(other.name)
    # A cluster created meanwhile must not take the stopped one's ports.
    other = make_local_cluster(NodePoolSpec(name="b", count=1))
    assert runtime.ensure_running(cluster.name) is True
    assert runtime.ensure_running(cluster.name) is False  # already running: nothing to do
    assert runtime.is_healthy(other.name)
    runtime.delete(other.name)
    assert [n.metadata.name for n in cluster.core().list_node().items] == ["a-0"]
    new_pids = runtime.pids(cluster.name)
    runtime.delete(cluster.name)
    assert not [pid for pid in pids + new_pids if process_alive(pid)]
    assert not runtime.cluster_dir(cluster.name).exists()
    assert cluster.name not in runtime.list_clusters()


def test_bad_requests_are_refused_cleanly(
    local_runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = binaries.available_k8s_versions()[0]
    with pytest.raises(LocalClusterError, match="cluster name"):
        local_runtime.create(LocalClusterSpec(name="Bad_Name", version=version, pools=()))
    with pytest.raises(BinariesMissing, match="not available locally"):
        local_runtime.create(LocalClusterSpec(name="old", version="1.20.0", pools=()))
    before = local_runtime.list_clusters()
    monkeypatch.setenv("FLOTILLA_LOCAL_MAX_CLUSTERS", str(len(before)))
    with pytest.raises(HostLimitReached, match="FLOTILLA_LOCAL_MAX_CLUSTERS"):
        local_runtime.create(LocalClusterSpec(name="one-too-many", version=version, pools=()))
    assert local_runtime.list_clusters() == before


def test_every_component_is_checked_alive_and_answering(local_cluster: LocalCluster) -> None:
    runtime = local_cluster.runtime
    states = {s.name: s for s in runtime.component_health(local_cluster.name)}
    assert set(states) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok-controller",
        "metrics-server",
    }
    assert [s.problem for s in states.values() if s.problem] == []
    # A process that is alive but does not answer (stopped, as a hung one would be) is unhealthy.
    scheduler = states["kube-scheduler"].pid
    assert scheduler is not None
    os.kill(scheduler, signal.SIGSTOP)
    try:
        stuck = {s.name: s for s in runtime.component_health(local_cluster.name)}["kube-scheduler"]
        assert stuck.running and not stuck.healthy
        assert stuck.problem.startswith("kube-scheduler is not healthy: /healthz on port ")
        # Past its grace period (it may be starting), it is killed and started again.
        wait_for(
            lambda: components.process_age(scheduler) > components.UNHEALTHY_GRACE,
            timeout=components.UNHEALTHY_GRACE + 30,
            interval=1,
            what="the scheduler to be older than the grace period",
        )
        assert runtime.restart_components(local_cluster.name) == [
            f"killed kube-scheduler (unhealthy for over {components.UNHEALTHY_GRACE:.0f} s)",
            "restarting kube-scheduler",
        ]
    finally:
        os.kill(scheduler, signal.SIGCONT)
    wait_for(
        lambda: not [s for s in runtime.component_health(local_cluster.name) if s.problem],
        what="every component healthy again",
    )
    assert not process_alive(scheduler)


def test_ensure_running_starts_a_dead_component_and_only_it(local_cluster: LocalCluster) -> None:
    runtime = local_cluster.runtime
    before = {s.name: s.pid for s in runtime.component_health(local_cluster.name)}
    os.kill(before["kube-scheduler"] or 0, signal.SIGKILL)
    wait_for(lambda: not process_alive(before["kube-scheduler"] or 0), what="the scheduler to die")
    dead = {s.name: s.problem for s in runtime.component_health(local_cluster.name) if s.problem}
    assert dead == {"kube-scheduler": "kube-scheduler is not running"}
    assert runtime.is_healthy(local_cluster.name)  # the API server alone does not tell
    assert runtime.ensure_running(local_cluster.name) is True
    wait_for(
        lambda: not [s for s in runtime.component_health(local_cluster.name) if s.problem],
        what="every component healthy again",
    )
    after = {s.name: s.pid for s in runtime.component_health(local_cluster.name)}
    assert after["kube-scheduler"] != before["kube-scheduler"]
    assert {k: v for k, v in after.items() if k != "kube-scheduler"} == {
        k: v for k, v in before.items() if k != "kube-scheduler"
    }
    assert runtime.ensure_running(local_cluster.name) is False
