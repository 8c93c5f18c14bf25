"""pytest fixtures giving tests real local Kubernetes clusters (kwok control planes).

One cluster is started per test session and shared; `make_local_cluster` starts more; every
cluster started here is deleted at the end, with its state in a temporary directory.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from clusters.local import binaries
from clusters.local.runtime import LocalClusterSpec, LocalRuntime, NodePoolSpec

_names = itertools.count(1)
TEST_NAMESPACE_LABEL = "flotilla.io/test"


@dataclass
class LocalCluster:
    """A running local cluster and ready-made clients for it."""

    name: str
    runtime: LocalRuntime
    kubeconfig: str
    kubeconfig_path: Path

    def api(self) -> k8s.ApiClient:
        return k8s_config.new_client_from_config_dict(yaml.safe_load(self.kubeconfig))

    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api())

    def apps(self) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self.api())

    def new_namespace(self, prefix: str = "t") -> str:
        """A namespace for one test; `reset` deletes it."""
        name = f"{prefix}-{next(_names)}-{os.getpid()}"
        self.core().create_namespace({"metadata": {"name": name, "labels": {TEST_NAMESPACE_LABEL: "1"}}})
        return name

    def reset(self) -> None:
        """Fast reset between tests: delete every namespace a test created."""
        core = self.core()
        for ns in core.list_namespace(label_selector=TEST_NAMESPACE_LABEL).items:
            try:
                core.delete_namespace(ns.metadata.name)
            except ApiException as exc:
                if exc.status != 404:
                    raise


class ClusterFactory(Protocol):
    def __call__(self, *pools: NodePoolSpec, name: str | None = None) -> LocalCluster: ...


def _require_binaries() -> str:
    versions = binaries.available_k8s_versions()
    missing = binaries.missing()
    if missing or not versions:
        pytest.fail(
            "local Kubernetes binaries are missing (" + ", ".join(missing) + "): "
            "scripts/test.sh builds them with `python -m clusters.local.binaries build`"
        )
    return versions[0]


@pytest.fixture(scope="session", autouse=True)
def local_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every local cluster of the run (test fixtures', and the product's through the local
    provider, in this process and in live workers) lives in one temporary state directory;
    whatever is left there at the end is deleted, so no test orphans a control plane."""
    # Short paths: kwokctl puts unix sockets and pid files under the state directory.
    root = tmp_path_factory.mktemp("kwok")
    previous = os.environ.get("FLOTILLA_LOCAL_STATE_DIR")
    os.environ["FLOTILLA_LOCAL_STATE_DIR"] = str(root)
    yield root
    runtime = LocalRuntime(root=root)
    for name in runtime.list_clusters():
        runtime.delete(name)
    if previous is None:
        os.environ.pop("FLOTILLA_LOCAL_STATE_DIR", None)
    else:
        os.environ["FLOTILLA_LOCAL_STATE_DIR"] = previous


@pytest.fixture(scope="session")
def local_runtime(local_state_dir: Path) -> LocalRuntime:
    """A runtime on the run's state directory (the same one the product code uses)."""
    return LocalRuntime(root=local_state_dir)


# Clusters the session's fixtures started (shared across modules); any other cluster in the state
# directory was made by the product in a test and is deleted when its module ends.
_session_clusters: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def _delete_product_clusters_per_module(local_state_dir: Path) -> Iterator[None]:
    """Keep the host under FLOTILLA_LOCAL_MAX_CLUSTERS however many modules make clusters."""
    yield
    runtime = LocalRuntime(root=local_state_dir)
    for name in runtime.list_clusters():
        if name not in _session_clusters:
            runtime.delete(name)


@pytest.fixture(scope="session")
def make_local_cluster(local_runtime: LocalRuntime) -> Iterator[ClusterFactory]:
    """Start extra clusters; all are deleted at the end of the session."""
    version = _require_binaries()
    started: list[str] = []

    def make(*pools: NodePoolSpec, name: str | None = None) -> LocalCluster:
        name = name or f"t{os.getpid() % 10000}-{next(_names)}"
        pools = pools or (NodePoolSpec(name="pool", count=2),)
        started.append(name)
        _session_clusters.add(name)
        kubeconfig = local_runtime.create(LocalClusterSpec(name=name, version=version, pools=tuple(pools)))
        return LocalCluster(name, local_runtime, kubeconfig, local_runtime.kubeconfig_path(name))

    yield make
    for name in started:
        local_runtime.delete(name)


@pytest.fixture(scope="session")
def local_cluster(make_local_cluster: ClusterFactory) -> LocalCluster:
    """The session's shared ready local cluster: two pools, three nodes."""
    return make_local_cluster(
        NodePoolSpec(name="general", count=2, cpu="4", memory="8Gi"),
        NodePoolSpec(name="edge", count=1, cpu="2", memory="4Gi", labels={"tier": "edge"}),
    )


@pytest.fixture
def kube_namespace(local_cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace in the shared cluster, deleted after the test."""
    yield local_cluster.new_namespace()
    local_cluster.reset()


def wait_for(predicate: Any, *, timeout: float = 60, interval: float = 0.5, what: str = "condition") -> Any:
    """Poll until predicate() is truthy; fail the test with `what` after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what}")
