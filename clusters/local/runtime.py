"""Local clusters: a real control plane (etcd, kube-apiserver, controller-manager, scheduler)
run by kwokctl's binary runtime, with simulated nodes and pods (kwok) and metrics-server.

Each cluster lives in a state directory (FLOTILLA_LOCAL_STATE_DIR, default
~/.local/share/flotilla/local-clusters) with its kubeconfig, pids and logs; each owns a block of
ports outside the kernel's ephemeral range (clusters.local.ports), so clusters run side by side.
A cluster is up when every component is alive and healthy (clusters.local.components), not when
the API server alone answers. Nodes are created and removed per pool with the Kubernetes
API (no kubectl in product code); kwok makes them Ready and runs their pods, following the
stages in clusters/local/stages (pods can be made to never become Ready). Every pod's log
reads the cluster's simulated log file (CRI format), which `append_log` writes to.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from clusters import kube
from clusters.local import binaries, components, ports, stages
from clusters.local.components import ComponentHealth
from clusters.local.errors import BinariesMissing, HostLimitReached, LocalClusterError
from clusters.local.nodes import (
    POOL_LABEL,
    NodePoolSpec,
    Taint,
    is_ready,
    node_body,
    node_index,
    node_versions,
)
from clusters.local.ports import PORT_BLOCK, PORT_FIELDS
from clusters.versions import KubeVersion

# The pool spec types live in clusters.local.nodes; callers import them from here too.
__all__ = [
    "DEFAULT_MAX_CLUSTERS",
    "NAME_MAX",
    "POOL_LABEL",
    "LocalClusterSpec",
    "LocalRuntime",
    "NodePoolSpec",
    "Taint",
    "embed_kubeconfig_files",
    "max_clusters",
    "process_alive",
    "state_dir",
]
NAME_MAX = 40
DEFAULT_MAX_CLUSTERS = 8
# A health probe: one short attempt (the caller polls).
PROBE_LIMITS = kube.Limits(deadline=5.0)


@dataclass(frozen=True)
class LocalClusterSpec:
    """What to run: a name, a Kubernetes version available locally, and node pools."""

    name: str
    version: str
    pools: tuple[NodePoolSpec, ...]


def state_dir() -> Path:
    """Where local clusters keep their files."""
    explicit = os.environ.get("FLOTILLA_LOCAL_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "flotilla" / "local-clusters"


def max_clusters() -> int:
    """How many local clusters this host runs at most (FLOTILLA_LOCAL_MAX_CLUSTERS)."""
    return int(os.environ.get("FLOTILLA_LOCAL_MAX_CLUSTERS", DEFAULT_MAX_CLUSTERS))


class LocalRuntime:
    """Creates, scales, restarts and deletes local clusters on this host."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or state_dir()

    # --- paths and processes ------------------------------------------------------------

    def cluster_dir(self, name: str) -> Path:
        return self.root / "clusters" / name

    def kubeconfig_path(self, name: str) -> Path:
        return self.cluster_dir(name) / "kubeconfig.yaml"

    def log_file(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def _env(self, version: str | None = None) -> dict[str, str]:
        paths = binaries.paths(version=version)
        env = dict(os.environ)
        # kwokctl finds kubectl on PATH; ours first, whatever else the host has.
        env["PATH"] = f"{paths['kubectl'].parent}:{paths['kwokctl'].parent}:{env.get('PATH', '')}"
        env["KWOK_WORKDIR"] = str(self.root)
        # The version of the metrics-server we built (kwokctl's default is not on the proxy).
        env["KWOK_METRICS_SERVER_VERSION"] = binaries.METRICS_SERVER_VERSION
        return env

    def _kwokctl(self, args: list[str], *, version: str | None = None, timeout: float = 300) -> str:
        kwokctl = binaries.paths(version=version)["kwokctl"]
        if not kwokctl.is_file():
            raise BinariesMissing("kwokctl is not built: run `python -m clusters.local.binaries build`")
        proc = subprocess.run(
            [str(kwokctl), *args], env=self._env(version), capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise LocalClusterError(f"kwokctl {args[0]} {args[1] if len(args) > 1 else ''} failed:\n{tail}")
        return proc.stdout

    def list_clusters(self) -> list[str]:
        """Clusters with state on this host (running or stopped)."""
        base = self.root / "clusters"
        return sorted(p.name for p in base.iterdir() if (p / "kwok.yaml").exists()) if base.is_dir() else []

    def pids(self, name: str) -> list[int]:
        """Process ids of the cluster's components that are alive."""
        alive = []
        for pid_file in (self.cluster_dir(name) / "pids").glob("*.pid"):
            try:
                pid = int(pid_file.read_text().strip())
            except ValueError:
                continue
            if process_alive(pid):
                alive.append(pid)
        return alive

    # --- lifecycle ------------------------------------------------------------------------

    def create(self, spec: LocalClusterSpec, *, timeout: float = 180) -> str:
        """Start the control plane, create the nodes, wait until all are Ready; return the kubeconfig."""
        self.start_control_plane(spec.name, spec.version, timeout=timeout)
        try:
            for pool in spec.pools:
                self.set_pool_nodes(spec.name, pool)
            self.wait_ready(spec.name, expected_nodes=sum(p.count for p in spec.pools), timeout=timeout)
        except Exception:
            self.delete(spec.name)
            raise
        return self.kubeconfig(spec.name)

    def start_control_plane(
        self, name: str, version: str, *, timeout: float = 180, wait: bool = True
    ) -> list[str]:
        """Create the cluster's control plane (no nodes yet); with `wait`, wait until every
        component is healthy and return what had to be restarted on the way (a component that
        died at start).

        Without `wait` it returns as soon as kwokctl has started the processes (a few seconds:
        kwokctl itself waits for its API server to listen); the caller polls `settle_components`
        — the operations engine does that between passes, so no worker sits through the start.
        Fails cleanly: a control plane that cannot be started is deleted before the error is raised.
        """
        _check_name(name)
        if name in self.list_clusters():
            raise LocalClusterError(f"a local cluster named {name!r} already exists on this host")
        if len(self.list_clusters()) >= max_clusters():
            raise HostLimitReached(
                f"this host already runs {max_clusters()} local clusters (FLOTILLA_LOCAL_MAX_CLUSTERS); "
                "delete one first"
            )
        version = str(KubeVersion.from_any(version))
        if version not in binaries.available_k8s_versions():
            available = ", ".join(binaries.available_k8s_versions()) or "none"
            raise BinariesMissing(f"Kubernetes {version} is not available locally (available: {available})")
        paths = binaries.paths(version=version)
        args = [
            "create",
            "cluster",
            "--name",
            name,
            "--runtime",
            "binary",
            "--kube-apiserver-binary",
            str(paths["kube-apiserver"]),
            "--kube-controller-manager-binary",
            str(paths["kube-controller-manager"]),
            "--kube-scheduler-binary",
            str(paths["kube-scheduler"]),
            "--kwok-controller-binary",
            str(paths["kwok"]),
            "--etcd-binary",
            str(paths["etcd"]),
            "--enable",
            "metrics-server",
            "--metrics-server-binary",
            str(paths["metrics-server"]),
            "--kubeconfig",
            "",
            *(["--wait", f"{int(timeout)}s"] if wait else []),
        ]
        try:
            # One creation at a time per host: ports are chosen and taken under the lock.
            with self._host_lock():
                config = self._write_config(name)
                args += ["--config", str(config)]
                self._kwokctl(args, version=version, timeout=timeout + 60)
            # kwokctl waits for the API server only: a component that died at start is not seen.
            return self.wait_components(name, timeout=timeout) if wait else []
        except Exception:
            self.delete(name)
            raise

    def running_version(self, name: str) -> str:
        """The Kubernetes version the cluster's API server reports (e.g. "1.36.1")."""
        return str(KubeVersion.from_any(kube.server_version(self.client(name))))

    def upgrade(self, name: str, version: str, *, timeout: float = 120) -> None:
        """Restart the control plane on another locally built Kubernetes version, keeping its data,
        and wait until it answers (the blocking form, for the command line and tests).

        The cluster's etcd, nodes and objects stay; only the control-plane binaries change.
        """
        if self.switch_version(name, version):
            self._wait_started(
                name, timeout=timeout, failure=f"local cluster {name!r} did not come back on {version}"
            )
        self.sync_node_versions(name, version)

    def sync_node_versions(self, name: str, version: str) -> int:
        """Report `version` on every simulated kubelet (they are "upgraded" with the control plane)."""
        target = KubeVersion.from_any(version)
        client = self.client(name)
        changed = 0
        for node in list(kube.list_items(client, ("v1", "Node"))):
            info = (node.get("status") or {}).get("nodeInfo") or {}
            seen = str(info.get("kubeletVersion", ""))
            if not seen or KubeVersion.from_any(seen) != target:
                kube.patch(
                    client,
                    "v1",
                    "Node",
                    node["metadata"]["name"],
                    {"status": {"nodeInfo": node_versions(str(target))}},
                    subresource="status",
                )
                changed += 1
        return changed

    def switch_version(self, name: str, version: str) -> bool:
        """Point the control plane at another locally built version and start it again without
        waiting (poll `settle_components`); False when it already runs that version's binaries."""
        target = str(KubeVersion.from_any(version))
        available = binaries.available_k8s_versions()
        if target not in available:
            raise BinariesMissing(
                f"Kubernetes {target} is not available locally (available: {', '.join(available) or 'none'})"
            )
        config = self.cluster_dir(name) / "kwok.yaml"
        if not config.is_file():
            raise LocalClusterError(f"no local cluster named {name!r} on this host")
        text = config.read_text()
        target_bin = str(binaries.paths(version=target)["kube-apiserver"].parent)
        current = [v for v in available if str(binaries.paths(version=v)["kube-apiserver"].parent) in text]
        if current == [target]:
            return False
        with suppress(LocalClusterError):
            self.stop(name)
        for old in current:
            text = text.replace(str(binaries.paths(version=old)["kube-apiserver"].parent), target_bin)
        text = re.sub(r"(kubeVersion:\s*)v?[0-9][0-9.]*", rf"\g<1>{KubeVersion.from_any(target).tag}", text)
        config.write_text(text)
        # kwokctl runs the cluster's components through links in <cluster>/bin: re-point them.
        for command in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
            link = self.cluster_dir(name) / "bin" / command
            link.unlink(missing_ok=True)
            link.symlink_to(binaries.paths(version=target)[command])
        self.restart_components(name)
        return True

    def _write_config(self, name: str) -> Path:
        log = self.log_file(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        if not log.exists():
            self._write_log_lines(log, [f"flotilla local cluster {name} started"])
        documents = [
            {
                "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
                "kind": "KwokctlConfiguration",
                "options": {
                    "bindAddress": "127.0.0.1",
                    # Nothing may be downloaded here: metrics-server's API objects come from the
                    # module the build fetched (a local path is built with kubectl kustomize).
                    "metricsServerManifests": [str(binaries.metrics_server_manifests())],
                    **self._allocate_ports(),
                },
            },
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "ClusterLogs",
                "metadata": {"name": "flotilla-simulated-logs"},
                "spec": {"logs": [{"logsFile": str(log), "follow": True}]},
            },
            # kwokctl adds its default node and pod stages only when none is given, so the
            # set a new cluster is created with (defaults' behaviour included) comes from here.
            *stages.stage_documents(),
        ]
        path = self.root / "configs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(documents))
        return path

    def _host_lock(self) -> AbstractContextManager[None]:
        return self._lock(self.root / ".lock")

    @staticmethod
    @contextmanager
    def _lock(path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _reserved_ports(self) -> set[int]:
        """Every port of every cluster's block on this host, running or stopped (its spare
        ports too: a component whose port was taken moves to one of them)."""
        reserved: set[int] = set()
        for config in (self.root / "configs").glob("*.yaml"):
            for document in yaml.safe_load_all(config.read_text()):
                options = (document or {}).get("options") or {}
                block = [int(options[f]) for f in PORT_FIELDS if f in options]
                if block:
                    reserved.update(block)
                    reserved.update(range(min(block), min(block) + PORT_BLOCK))
        return reserved

    def _allocate_ports(self) -> dict[str, int]:
        # Outside the ephemeral range: see clusters.local.ports for why.
        return ports.allocate_block(PORT_FIELDS, size=PORT_BLOCK, reserved=self._reserved_ports())

    def kubeconfig(self, name: str) -> str:
        """The cluster's admin kubeconfig, self-contained (certificates embedded, no file paths)."""
        path = self.kubeconfig_path(name)
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            raise LocalClusterError(f"no local cluster named {name!r} on this host") from None
        cached = _kubeconfigs.get(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        text = embed_kubeconfig_files(path.read_text(), base=path.parent)
        _kubeconfigs[str(path)] = (stamp, text)
        return text

    def client(self, name: str) -> kube.Client:
        """The gateway's client for the cluster (cached per kubeconfig, see clusters.kube)."""
        return kube.connect(self.kubeconfig(name), trusted=True)

    def is_healthy(self, name: str) -> bool:
        """Whether the API server answers (one attempt: the caller polls)."""
        try:
            probe = kube.connect(self.kubeconfig(name), trusted=True, limits=PROBE_LIMITS)
            kube.server_version(probe.with_retry(kube.NO_RETRY))
            return True
        except Exception:
            return False

    def wait_ready(self, name: str, *, expected_nodes: int, timeout: float = 180) -> None:
        """Wait until the API answers and `expected_nodes` nodes are Ready."""
        deadline = time.monotonic() + timeout
        last = "API not reachable"
        while time.monotonic() < deadline:
            try:
                nodes = list(kube.list_items(self.client(name).with_retry(kube.NO_RETRY), ("v1", "Node")))
                ready = [n for n in nodes if is_ready(n)]
                if len(nodes) == expected_nodes and len(ready) == expected_nodes:
                    return
                last = f"{len(ready)}/{expected_nodes} nodes Ready"
            except Exception as exc:  # the API may still be starting
                last = f"API not reachable: {exc.__class__.__name__}"
            time.sleep(0.5)
        raise LocalClusterError(f"local cluster {name!r} not ready after {timeout:.0f} s ({last})")

    def scale_pool(self, name: str, pool: NodePoolSpec, *, timeout: float = 120) -> None:
        """Make the pool have exactly `pool.count` nodes, and wait until the cluster is Ready."""
        self.set_pool_nodes(name, pool)
        total = sum(1 for _ in kube.list_items(self.client(name), ("v1", "Node")))
        self.wait_ready(name, expected_nodes=total, timeout=timeout)

    def remove_pool(self, name: str, pool_name: str) -> None:
        """Delete every node of a pool."""
        self.set_pool_nodes(name, NodePoolSpec(name=pool_name, count=0))

    def set_pool_nodes(self, name: str, pool: NodePoolSpec) -> None:
        """Create or delete the pool's nodes so that it has exactly `pool.count` (idempotent)."""
        client = self.client(name)
        if pool.count < 0:
            raise LocalClusterError("a pool's node count cannot be negative")
        pool_nodes = kube.list_items(client, ("v1", "Node"), label_selector=f"{POOL_LABEL}={pool.name}")
        existing = sorted((n["metadata"]["name"] for n in pool_nodes), key=node_index)
        wanted = [f"{pool.name}-{i}" for i in range(pool.count)]
        missing = [n for n in wanted if n not in existing]
        version = self.running_version(name) if missing else ""
        for node_name in missing:
            with suppress(kube.AlreadyExists):
                kube.create(client, node_body(node_name, pool, version))
        for node_name in existing:
            if node_name not in wanted:
                kube.delete(client, "v1", "Node", node_name, missing_ok=True)

    def ensure_running(self, name: str, *, timeout: float = 120, wait: bool = True) -> bool:
        """Bring a stopped cluster back (after a host or worker restart), or its dead components.
        True if anything was started. Without `wait`, the processes are started and the caller
        polls `settle_components` (the health refresh and the engine never sit through a start)."""
        if name not in self.list_clusters():
            raise LocalClusterError(f"no local cluster named {name!r} on this host")
        if self.is_healthy(name):
            # The API answers, but a component may be down (a killed controller-manager).
            return bool(self.restart_components(name))
        if not wait:
            return bool(self.restart_components(name))
        # Not kwokctl's own --wait: it sits out its whole timeout when a component dies at start
        # (a port taken meanwhile); _wait_started starts such a one again, on a spare port.
        self.restart_components(name)
        self._wait_started(
            name, timeout=timeout, failure=f"local cluster {name!r} did not come back after {timeout:.0f} s"
        )
        return True

    def settle_components(self, name: str) -> tuple[list[str], list[str]]:
        """One look at the components, without waiting: (what is wrong, what was restarted).

        Dead components are started again (kwokctl leaves live ones alone); an empty problem list
        means every component is alive and healthy."""
        states = self.component_health(name)
        problems = [s.problem for s in states if s.problem]
        if not problems:
            return [], []
        return problems, self.restart_components(name)

    def _wait_started(self, name: str, *, timeout: float, failure: str) -> None:
        """Wait until a cluster that was started answers and its components are healthy, starting
        again any that died on the way."""
        deadline = time.monotonic() + timeout
        while True:
            problems, _ = self.settle_components(name)
            if not problems and self.is_healthy(name):
                return
            if time.monotonic() > deadline:
                raise LocalClusterError(f"{failure}: {'; '.join(problems)}" if problems else failure)
            time.sleep(0.5)

    # --- components -----------------------------------------------------------------------

    def component_health(self, name: str) -> list[ComponentHealth]:
        """Each component of the cluster: alive, and answering its health endpoint."""
        return components.check(self.cluster_dir(name), process_alive)

    def restart_components(self, name: str, *, wait: str = "", timeout: float = 120) -> list[str]:
        """Start the components that are down (only those: kwokctl leaves live ones alone).

        Returns what was done, one line each ("moved kube-controller-manager from port ...").
        Checked again under the cluster's lock, so two workers never start a component twice.
        """
        with self._lock(self.cluster_dir(name) / ".repair.lock"):
            actions = components.prepare_restart(self.cluster_dir(name), self.component_health(name))
            if actions or wait:
                self._kwokctl(
                    ["start", "cluster", "--name", name, *(["--wait", wait] if wait else [])], timeout=timeout
                )
        return actions

    def wait_components(self, name: str, *, timeout: float = 120) -> list[str]:
        """Wait until every component is healthy, restarting those that die; what was restarted.

        A component that dies at start (its port taken between the allocation and its bind) is
        started again, on a spare port if it can move; LocalClusterError after `timeout`.
        """
        deadline = time.monotonic() + timeout
        done: list[str] = []
        while True:
            states = self.component_health(name)
            problems = [s.problem for s in states if s.problem]
            if not problems:
                return list(dict.fromkeys(done))  # a component restarted twice is said once
            if time.monotonic() > deadline:
                raise LocalClusterError(f"local cluster {name!r}: {'; '.join(problems)}")
            # Dead ones are started again; live unhealthy ones only after their grace period.
            done += self.restart_components(name)
            time.sleep(0.5)

    def stop(self, name: str) -> None:
        """Stop the cluster's processes, keeping its state (as a host shutdown would)."""
        self._kwokctl(["stop", "cluster", "--name", name])

    def delete(self, name: str) -> None:
        """Stop every process of the cluster and remove all its files. Deleting twice is fine."""
        if self.cluster_dir(name).exists():
            running = self.pids(name)
            # A half-created cluster may make kwokctl fail: what is left is cleaned up below.
            with suppress(LocalClusterError):
                self._kwokctl(["delete", "cluster", "--name", name])
            # kwokctl signals the processes and returns; give them time to exit, then kill.
            _wait_exit(running, timeout=15)
            for pid in running:
                if process_alive(pid):
                    with suppress(ProcessLookupError):
                        os.kill(pid, 9)
            _wait_exit(running, timeout=5)
            shutil.rmtree(self.cluster_dir(name), ignore_errors=True)
        (self.root / "configs" / f"{name}.yaml").unlink(missing_ok=True)
        self.log_file(name).unlink(missing_ok=True)

    # --- simulated logs -----------------------------------------------------------------

    def append_log(self, name: str, *lines: str) -> None:
        """Append lines to the simulated log every pod of the cluster shows."""
        self._write_log_lines(self.log_file(name), list(lines))

    @staticmethod
    def _write_log_lines(path: Path, lines: list[str]) -> None:
        with path.open("a") as fh:
            for line in lines:
                stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                fh.write(f"{stamp} stdout F {line}\n")


# Embedded kubeconfigs by file, with the file's mtime: re-read only when kwokctl rewrites it.
_kubeconfigs: dict[str, tuple[int, str]] = {}
_FILE_KEYS = {"certificate-authority": "clusters", "client-certificate": "users", "client-key": "users"}


def embed_kubeconfig_files(text: str, *, base: Path) -> str:
    """Replace file references of a kubeconfig (kwokctl writes paths) with embedded *-data."""
    doc = kube.load_yaml(text) or {}
    for key, section in _FILE_KEYS.items():
        inner = "cluster" if section == "clusters" else "user"
        for entry in doc.get(section) or []:
            body = entry.get(inner) or {}
            if key in body:
                file = Path(body.pop(key))
                file = file if file.is_absolute() else base / file
                body[f"{key}-data"] = base64.b64encode(file.read_bytes()).decode()
    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)


def process_alive(pid: int) -> bool:
    """Whether a process runs; a zombie (exited, waiting to be reaped by its parent) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def _wait_exit(pids: list[int], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def _check_name(name: str) -> None:
    valid = (
        0 < len(name) <= NAME_MAX
        and name[0].isalpha()
        and name[-1].isalnum()
        and all(c.islower() or c.isdigit() or c == "-" for c in name)
    )
    if not valid:
        raise LocalClusterError(
            f"cluster name {name!r}: use 1-{NAME_MAX} lowercase letters, digits and hyphens, "
            "starting with a letter"
        )
