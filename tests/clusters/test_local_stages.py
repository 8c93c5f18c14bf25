"""The stages local clusters are created with: kwok's ordinary node and pod behaviour kept (it
drops its defaults once any Stage is configured), plus pods that run but are never Ready."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from clusters.local import binaries, stages
from clusters.local.runtime import POOL_LABEL, LocalClusterSpec, LocalRuntime, NodePoolSpec
from tests.local_kube import ClusterFactory, LocalCluster, wait_for

NEVER = {stages.READINESS_ANNOTATION: stages.NEVER_READY}
KUBELET_CONDITIONS = {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}


def _pod(
    name: str, annotations: dict[str, str] | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A pod of two containers (`extra`: more of its spec, in the API's own field names)."""
    containers = [{"name": "web", "image": "nginx:1.27"}, {"name": "side", "image": "busybox"}]
    return {
        "metadata": {"name": name, "labels": {"app": name}, "annotations": annotations or {}},
        "spec": {"containers": containers, **(extra or {})},
    }


def _condition(pod: Any, kind: str) -> Any:
    return next((c for c in pod.status.conditions or [] if c.type == kind), None)


def _is_ready(pod: Any) -> bool:
    ready = _condition(pod, "Ready")
    return ready is not None and ready.status == "True"


def _assert_running_never_ready(pod: Any) -> None:
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip
    for kind in ("Ready", "ContainersReady"):
        condition = _condition(pod, kind)
        assert condition is not None and condition.status == "False", kind
        assert condition.reason == "ContainersNotReady"
        assert condition.message == "containers with unready status: [web side]"
    assert _condition(pod, "Initialized").status == "True"
    statuses = {s.name: s for s in pod.status.container_statuses}
    assert set(statuses) == {"web", "side"}
    for status in statuses.values():
        assert status.ready is False
        assert status.started is True
        assert status.restart_count == 0
        assert status.state.running is not None and status.state.terminated is None


def _stage_names(runtime: LocalRuntime, name: str) -> list[str]:
    """The stages the cluster's kwok controller reads (kwokctl's copy of the configuration)."""
    documents = yaml.safe_load_all((runtime.cluster_dir(name) / "kwok.yaml").read_text())
    return sorted(d["metadata"]["name"] for d in documents if d and d.get("kind") == "Stage")


def _ready_then_never_ready(cluster: LocalCluster, ns: str, *, suffix: str, pool: str = "") -> None:
    """A plain pod becomes Ready and an annotated one Running but not Ready (on `pool`'s nodes)."""
    core = cluster.core()
    placement = {"nodeSelector": {POOL_LABEL: pool}} if pool else {}
    # A new namespace admits pods once its default service account exists.
    wait_for(lambda: core.list_namespaced_service_account(ns).items, what="the namespace's service account")
    core.create_namespaced_pod(ns, _pod(f"plain-{suffix}", extra=placement))
    core.create_namespaced_pod(ns, _pod(f"stuck-{suffix}", NEVER, extra=placement))
    wait_for(lambda: _is_ready(core.read_namespaced_pod(f"plain-{suffix}", ns)), what="the plain pod Ready")
    wait_for(
        lambda: core.read_namespaced_pod(f"stuck-{suffix}", ns).status.phase == "Running",
        what="the annotated pod Running",
    )
    _assert_running_never_ready(core.read_namespaced_pod(f"stuck-{suffix}", ns))


@pytest.fixture(scope="module")
def staged_cluster(make_local_cluster: ClusterFactory) -> LocalCluster:
    """A cluster of its own, created with the stage files of this checkout."""
    return make_local_cluster(NodePoolSpec(name="pool", count=2, cpu="4", memory="8Gi"))


@pytest.fixture
def ns(staged_cluster: LocalCluster) -> Iterator[str]:
    yield staged_cluster.new_namespace("stages")
    staged_cluster.reset()


def test_stage_files_are_one_named_stage_each_for_nodes_and_pods() -> None:
    documents = stages.stage_documents()
    by_name = {d["metadata"]["name"]: d for d in documents}
    assert len(by_name) == len(documents) == len(stages.stage_files())
    kinds = {name: d["spec"]["resourceRef"]["kind"] for name, d in by_name.items()}
    assert kinds == {
        "node-initialize": "Node",
        "node-heartbeat": "Node",
        "pod-ready": "Pod",
        "pod-never-ready": "Pod",
        "pod-complete": "Pod",
        "pod-delete": "Pod",
    }
    # The two stages of a new pod select on the annotation the code names, one each way, so
    # exactly one of them matches any pod (kwok picks at random among several).
    key = f'.metadata.annotations["{stages.READINESS_ANNOTATION}"]'
    on_annotation = {
        name: [
            (e["operator"], e["values"])
            for e in by_name[name]["spec"]["selector"]["matchExpressions"]
            if e["key"] == key
        ]
        for name in ("pod-ready", "pod-never-ready")
    }
    assert on_annotation == {
        "pod-ready": [("NotIn", [stages.NEVER_READY])],
        "pod-never-ready": [("In", [stages.NEVER_READY])],
    }
    others = {
        name: [e for e in by_name[name]["spec"]["selector"]["matchExpressions"] if e["key"] != key]
        for name in ("pod-ready", "pod-never-ready")
    }
    assert others["pod-ready"] == others["pod-never-ready"]


@pytest.mark.kube
def test_the_cluster_runs_with_these_stages(staged_cluster: LocalCluster) -> None:
    names = _stage_names(staged_cluster.runtime, staged_cluster.name)
    assert names == sorted(d["metadata"]["name"] for d in stages.stage_documents())


@pytest.mark.kube
def test_nodes_are_ready_as_before(staged_cluster: LocalCluster) -> None:
    nodes = staged_cluster.core().list_node().items
    assert sorted(n.metadata.name for n in nodes) == ["pool-0", "pool-1"]
    version = "v" + binaries.available_k8s_versions()[0]
    for node in nodes:
        conditions = {c.type: c for c in node.status.conditions}
        assert set(conditions) == KUBELET_CONDITIONS
        assert conditions["Ready"].status == "True"
        assert conditions["Ready"].reason == "KubeletReady"
        assert all(conditions[c].status == "False" for c in KUBELET_CONDITIONS - {"Ready"})
        # As with kwok's own stages here: the kwok controller has no node IP to give.
        assert [a.type for a in node.status.addresses] == ["Hostname"]
        assert node.status.daemon_endpoints.kubelet_endpoint.port > 0
        # What Flotilla put on the node is kept (capacity, the cluster's version as the kubelet's).
        assert node.status.capacity["cpu"] == "4" and node.status.allocatable["memory"] == "8Gi"
        assert node.status.node_info.kubelet_version == version
        assert node.status.node_info.operating_system == "linux"


@pytest.mark.kube
def test_a_plain_pod_is_ready_at_once(staged_cluster: LocalCluster, ns: str) -> None:
    core = staged_cluster.core()
    core.create_namespaced_pod(
        ns,
        _pod(
            "plain",
            extra={
                "initContainers": [{"name": "setup", "image": "busybox"}],
                "readinessGates": [{"conditionType": "example.com/gate"}],
            },
        ),
    )
    pod = wait_for(
        lambda: (p := core.read_namespaced_pod("plain", ns)) and _is_ready(p) and p, what="pod Ready"
    )
    assert pod.status.phase == "Running" and pod.status.pod_ip
    assert _condition(pod, "ContainersReady").status == "True"
    assert _condition(pod, "example.com/gate").status == "True"
    assert all(s.ready and s.restart_count == 0 and s.state.running for s in pod.status.container_statuses)
    (setup,) = pod.status.init_container_statuses
    assert setup.state.terminated.reason == "Completed" and setup.state.terminated.exit_code == 0


@pytest.mark.kube
def test_an_annotated_pod_runs_but_is_never_ready(staged_cluster: LocalCluster, ns: str) -> None:
    core = staged_cluster.core()
    core.create_namespaced_pod(ns, _pod("stuck", NEVER))
    wait_for(lambda: core.read_namespaced_pod("stuck", ns).status.phase == "Running", what="pod Running")
    started = time.monotonic()
    while time.monotonic() - started < 12:
        _assert_running_never_ready(core.read_namespaced_pod("stuck", ns))
        time.sleep(1)
    # Any other value of the annotation is an ordinary pod.
    core.create_namespaced_pod(ns, _pod("fine", {stages.READINESS_ANNOTATION: "always"}))
    wait_for(lambda: _is_ready(core.read_namespaced_pod("fine", ns)), what="the other pod Ready")


@pytest.mark.kube
def test_a_rollout_of_never_ready_pods_exceeds_its_deadline(staged_cluster: LocalCluster, ns: str) -> None:
    labels = {"app": "stuck"}
    deployment = {
        "metadata": {"name": "stuck"},
        "spec": {
            "replicas": 2,
            "progressDeadlineSeconds": 3,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels, "annotations": NEVER}, "spec": _pod("x")["spec"]},
        },
    }
    apps = staged_cluster.apps()
    apps.create_namespaced_deployment(ns, deployment)

    def progressing() -> Any:
        status = apps.read_namespaced_deployment_status("stuck", ns).status
        return next((c for c in status.conditions or [] if c.type == "Progressing"), None)

    stalled = wait_for(
        lambda: (c := progressing()) is not None and c.status == "False" and c,
        timeout=60,
        what="the rollout to exceed its progress deadline",
    )
    assert stalled.reason == "ProgressDeadlineExceeded"
    status = apps.read_namespaced_deployment_status("stuck", ns).status
    assert not status.ready_replicas and not status.available_replicas
    assert status.unavailable_replicas == 2
    pods = staged_cluster.core().list_namespaced_pod(ns, label_selector="app=stuck").items
    assert len(pods) == 2
    for pod in pods:
        _assert_running_never_ready(pod)


@pytest.mark.kube
def test_deleting_pods_still_completes(staged_cluster: LocalCluster, ns: str) -> None:
    core = staged_cluster.core()
    _ready_then_never_ready(staged_cluster, ns, suffix="d")
    for name in ("plain-d", "stuck-d"):
        core.delete_namespaced_pod(name, ns)

    def gone(name: str) -> bool:
        try:
            core.read_namespaced_pod(name, ns)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(lambda: gone("plain-d") and gone("stuck-d"), timeout=20, what="both pods deleted")


@pytest.mark.kube
def test_a_jobs_pod_completes(staged_cluster: LocalCluster, ns: str) -> None:
    job = {
        "metadata": {"name": "once"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            }
        },
    }
    batch = k8s.BatchV1Api(staged_cluster.api())
    batch.create_namespaced_job(ns, job)
    wait_for(
        lambda: batch.read_namespaced_job_status("once", ns).status.succeeded == 1, what="the Job to succeed"
    )
    (pod,) = staged_cluster.core().list_namespaced_pod(ns, label_selector="job-name=once").items
    assert pod.status.phase == "Succeeded"
    (status,) = pod.status.container_statuses
    assert status.state.terminated.exit_code == 0 and status.state.terminated.reason == "Completed"


@pytest.mark.kube
def test_a_restarted_control_plane_keeps_its_stages(staged_cluster: LocalCluster, ns: str) -> None:
    runtime, name = staged_cluster.runtime, staged_cluster.name
    before = (runtime.cluster_dir(name) / "kwok.yaml").read_text()
    runtime.stop(name)
    assert runtime.ensure_running(name) is True
    after = (runtime.cluster_dir(name) / "kwok.yaml").read_text()
    assert _stage_names(runtime, name) == sorted(d["metadata"]["name"] for d in stages.stage_documents())
    assert [d for d in yaml.safe_load_all(after) if d and d["kind"] == "Stage"] == [
        d for d in yaml.safe_load_all(before) if d and d["kind"] == "Stage"
    ]
    # On a node added after the restart: the nodes from before are taken over by the new kwok
    # controller only once their Lease (held by the old one) expires, minutes later, whatever
    # the stages (kwok's defaults do the same).
    runtime.set_pool_nodes(name, NodePoolSpec(name="late", count=1))
    runtime.wait_ready(name, expected_nodes=3, timeout=120)
    _ready_then_never_ready(staged_cluster, ns, suffix="r", pool="late")


@pytest.mark.kube
def test_an_upgraded_control_plane_keeps_its_stages(local_runtime: LocalRuntime) -> None:
    versions = binaries.available_k8s_versions()
    if len(versions) < 2:
        pytest.skip("needs two Kubernetes versions built (FLOTILLA_LOCAL_K8S_VERSIONS)")
    name = "stages-upgrade"
    local_runtime.create(
        LocalClusterSpec(name=name, version=versions[-1], pools=(NodePoolSpec(name="p", count=1),))
    )
    try:
        stage_docs = [
            d
            for d in yaml.safe_load_all((local_runtime.cluster_dir(name) / "kwok.yaml").read_text())
            if d and d["kind"] == "Stage"
        ]
        local_runtime.upgrade(name, versions[0])
        assert local_runtime.running_version(name) == versions[0]
        text = (local_runtime.cluster_dir(name) / "kwok.yaml").read_text()
        assert [d for d in yaml.safe_load_all(text) if d and d["kind"] == "Stage"] == stage_docs
        local_runtime.set_pool_nodes(name, NodePoolSpec(name="late", count=1))  # see the restart test
        local_runtime.wait_ready(name, expected_nodes=2, timeout=120)
        cluster = LocalCluster(
            name, local_runtime, local_runtime.kubeconfig(name), local_runtime.kubeconfig_path(name)
        )
        namespace = cluster.new_namespace("stages")
        _ready_then_never_ready(cluster, namespace, suffix="u", pool="late")
    finally:
        local_runtime.delete(name)
