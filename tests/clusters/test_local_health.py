"""A local cluster is Ready only when every control-plane component is alive and healthy: a
controller-manager that died (at start, or later) makes no Deployment get a pod, although
kwok keeps the nodes Ready. Real clusters through the services and the reconcile loop (inline)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from django_tenants.utils import schema_context
from kubernetes import client as k8s

from clusters.choices import ClusterStatus, OperationStatus
from clusters.local.runtime import LocalRuntime, process_alive
from clusters.models import Cluster, ClusterEvent
from clusters.services import clusters as cluster_services
from clusters.services.health import refresh_cluster_health
from orgs.models import Organization
from tests.clusters.helpers import local_pools, local_provider, owner_actor, reload, run
from tests.local_kube import wait_for

pytestmark = [pytest.mark.kube, pytest.mark.django_db(transaction=True)]
KCM = "kube-controller-manager"


def _pids(runtime: LocalRuntime, name: str) -> dict[str, int]:
    pid_dir = runtime.cluster_dir(name) / "pids"
    return {p.stem: int(p.read_text()) for p in pid_dir.glob("*.pid")}


def _kcm_port(runtime: LocalRuntime, name: str) -> int:
    config = next(yaml.safe_load_all((runtime.cluster_dir(name) / "kwok.yaml").read_text()))
    component = next(c for c in config["components"] if c["name"] == KCM)
    return int(next(a for a in component["args"] if a.startswith("--secure-port=")).split("=")[1])


def _api(cluster: Cluster) -> k8s.ApiClient:
    from clusters import kube

    return kube.cached_client(cluster.kubeconfig_text(), trusted=True)


def _deployment_gets_pods(cluster: Cluster, namespace: str, replicas: int = 2) -> None:
    """A new namespace gets its default ServiceAccount and a Deployment its Running pods: the
    controller-manager works."""
    api = _api(cluster)
    core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})

    def default_account() -> list[Any]:
        accounts = core.list_namespaced_service_account(namespace).items
        return [sa for sa in accounts if sa.metadata.name == "default"]

    wait_for(
        default_account,
        timeout=120,
        what=f"the default ServiceAccount of {namespace}",
    )
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
    )

    def running() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        return len([p for p in pods if p.status.phase == "Running"]) == replicas

    wait_for(running, timeout=120, what=f"{replicas} pods Running in {namespace}")


def _create(org: Organization, name: str) -> Cluster:
    with schema_context(org.schema_name):
        requested = cluster_services.create_cluster(
            owner_actor(org), name=name, provider=local_provider(org), pools=local_pools(2)
        )
    operation = run(org, requested.operation)
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    return reload(org, requested.cluster)


def _refresh(org: Organization, cluster: Cluster) -> Cluster:
    with schema_context(org.schema_name):
        refresh_cluster_health(cluster.pk)
    return reload(org, cluster)


def _events(org: Organization, cluster: Cluster) -> list[str]:
    with schema_context(org.schema_name):
        return list(ClusterEvent.objects.filter(cluster=cluster).values_list("message", flat=True))


def test_a_killed_controller_manager_degrades_the_cluster_until_it_is_restarted(org_a: Organization) -> None:
    runtime = LocalRuntime()
    cluster = _create(org_a, "kcm-killed")
    name = cluster.external_name
    try:
        assert _refresh(org_a, cluster).status == ClusterStatus.READY
        before = _pids(runtime, name)
        port = _kcm_port(runtime, name)
        os.kill(before[KCM], signal.SIGKILL)
        wait_for(lambda: not process_alive(before[KCM]), timeout=30, what="the controller-manager to die")

        degraded = _refresh(org_a, cluster)
        assert degraded.status == ClusterStatus.DEGRADED
        assert degraded.status_reason == f"{KCM} is not running"
        conditions = {c["type"]: c for c in degraded.conditions}
        assert conditions["ComponentsHealthy"]["status"] == "False"
        assert conditions["ComponentsHealthy"]["reason"] == f"{KCM} is not running"
        assert f"Control plane: restarting {KCM}" in _events(org_a, cluster)

        # The refresh restarted it: a later refresh finds the cluster Ready by itself.
        def ready() -> Any:
            refreshed = _refresh(org_a, cluster)
            return refreshed if refreshed.status == ClusterStatus.READY else None

        recovered = wait_for(ready, timeout=180, interval=1, what="the cluster to be Ready again")
        assert {c["type"]: c["status"] for c in recovered.conditions}["ComponentsHealthy"] == "True"
        after = _pids(runtime, name)
        assert after[KCM] != before[KCM] and process_alive(after[KCM])
        # Only the dead component was started again, on its own port (free again once it died).
        assert _kcm_port(runtime, name) == port
        assert not [e for e in _events(org_a, cluster) if "moved" in e]
        assert {k: v for k, v in after.items() if k != KCM} == {k: v for k, v in before.items() if k != KCM}
        _deployment_gets_pods(recovered, "after-restart")
    finally:
        runtime.delete(name)


class _PortThief(threading.Thread):
    """Takes the controller-manager's port of the next cluster to be created, as an outgoing
    connection or another server would between the allocation and the component's bind."""

    def __init__(self, configs: Path) -> None:
        super().__init__(daemon=True)
        self.configs = configs
        self.known = set(configs.glob("*.yaml")) if configs.is_dir() else set()
        self.port = 0
        self.sock: socket.socket | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 240
        while not self.stop.is_set() and time.monotonic() < deadline and self.sock is None:
            for path in set(self.configs.glob("*.yaml")) - self.known:
                try:
                    options = next(yaml.safe_load_all(path.read_text()))["options"]
                    self.port = int(options["kubeControllerManagerPort"])
                except (OSError, yaml.YAMLError, KeyError, TypeError, StopIteration):
                    continue  # being written
                self._take(path.stem)
            time.sleep(0.002)

    def _take(self, name: str) -> None:
        pid_file = LocalRuntime().cluster_dir(name) / "pids" / f"{KCM}.pid"
        while not self.stop.is_set():
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", self.port))
                sock.listen()
                self.sock = sock
                return
            except OSError:
                sock.close()
            # The controller-manager bound it first: kill it, as a crash right after start.
            with suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            time.sleep(0.005)


def test_a_controller_manager_that_dies_at_start_is_not_reported_ready(org_a: Organization) -> None:
    runtime = LocalRuntime()
    thief = _PortThief(runtime.root / "configs")
    thief.start()
    cluster = None
    try:
        cluster = _create(org_a, "kcm-port")
        assert thief.sock is not None, "the test did not manage to take the controller-manager's port"
        assert cluster.status == ClusterStatus.READY
        name = cluster.external_name
        # It was started again on a spare port of the cluster's block, the taken one left alone.
        moved = _kcm_port(runtime, name)
        assert moved != thief.port
        assert any(
            e.startswith(f"Control plane: moved {KCM} from port {thief.port} (taken by another process)")
            for e in _events(org_a, cluster)
        )
        assert all(not s.problem for s in runtime.component_health(name))
        _deployment_gets_pods(cluster, "first-pods")
        # And it stays where it is across a stop and a start (the port is still taken).
        runtime.stop(name)
        assert runtime.ensure_running(name) is True
        assert _kcm_port(runtime, name) == moved
        assert _refresh(org_a, cluster).status == ClusterStatus.READY
    finally:
        thief.stop.set()
        thief.join(timeout=10)
        if thief.sock is not None:
            thief.sock.close()
        if cluster is not None:
            runtime.delete(cluster.external_name)
