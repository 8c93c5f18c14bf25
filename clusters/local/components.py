"""The processes of one local cluster: are they alive and healthy, and what to do when not.

kwokctl records every component it runs in the cluster's `kwok.yaml` (binary, arguments, ports,
the address its metrics are served on) and its pid in `pids/<binary>.pid`. kwokctl itself only
waits for the API server's /version, so a controller-manager that died at start ("bind: address
already in use") went unnoticed: nodes were Ready (kwok makes them so) but no Deployment ever got
a pod and no namespace its `default` ServiceAccount. Here each component is checked twice: its
process is alive (a zombie is not), and its own health endpoint answers "ok".

Repair restarts only the components that are down: their stale pid files are removed (a zombie
still answers kill(pid, 0), so kwokctl would take it for running) and `kwokctl start cluster`
starts whatever is not running, leaving the live components alone. A leaf component (the
controller-manager, the scheduler: nothing else refers to their ports) whose port was taken by
another process moves to a spare port of the cluster's block first.
"""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clusters.local import ports
from clusters.local.errors import LocalClusterError

# Health endpoints per component; /healthz otherwise (controller-manager, scheduler, kwok).
HEALTH_PATHS = {"etcd": "/health", "kube-apiserver": "/livez", "metrics-server": "/livez"}
# Components whose port nobody else refers to, so they can move to a spare port of the block.
MOVABLE = {"kube-controller-manager": "kubeControllerManagerPort", "kube-scheduler": "kubeSchedulerPort"}
# A live component failing its health check for longer than this since it started is killed
# and started again (a starting component may fail its check for a few seconds).
UNHEALTHY_GRACE = 60.0
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class Component:
    """One process of a cluster as kwokctl recorded it."""

    name: str
    pid_file: Path
    scheme: str
    host: str
    cert: str = ""
    key: str = ""
    verify: bool = False

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


@dataclass(frozen=True)
class ComponentHealth:
    """What one check of a component found."""

    name: str
    pid: int | None
    running: bool
    healthy: bool
    detail: str = ""

    @property
    def problem(self) -> str:
        """The reason shown on the cluster ("" when the component is fine)."""
        if not self.running:
            return f"{self.name} is not running"
        if not self.healthy:
            return f"{self.name} is not healthy: {self.detail}"
        return ""


def _config_documents(cluster_dir: Path) -> list[Any]:
    return list(yaml.safe_load_all((cluster_dir / "kwok.yaml").read_text()))


def _kwokctl_config(documents: list[Any]) -> dict[str, Any]:
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "KwokctlConfiguration":
            return document
    raise LocalClusterError("the cluster's kwok.yaml has no KwokctlConfiguration")


def load(cluster_dir: Path) -> list[Component]:
    """The cluster's components, in kwokctl's start order."""
    found = []
    for raw in _kwokctl_config(_config_documents(cluster_dir)).get("components") or []:
        metric = raw.get("metric") or {}
        binary = Path(raw.get("binary") or raw["name"]).name
        found.append(
            Component(
                name=raw["name"],
                pid_file=cluster_dir / "pids" / f"{binary}.pid",
                scheme=metric.get("scheme") or "http",
                host=metric.get("host") or "",
                cert=metric.get("certPath") or "",
                key=metric.get("keyPath") or "",
                verify=not metric.get("insecureSkipVerify", False),
            )
        )
    return found


def probe(component: Component, *, ca: Path | None = None) -> tuple[bool, str]:
    """Ask the component's health endpoint; (True, "") when it answers 200 "ok"-like."""
    if not component.host:
        return True, ""  # nothing to ask: alive is all kwokctl records
    host, _, port = component.host.rpartition(":")
    path = HEALTH_PATHS.get(component.name, "/healthz")
    connection: http.client.HTTPConnection
    if component.scheme == "https":
        context = ssl.create_default_context(cafile=str(ca) if ca and ca.is_file() else None)
        if not component.verify:
            # The controller-manager and scheduler serve self-signed certificates on a port of
            # 127.0.0.1 that this runtime chose: there is nothing to verify them against.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if component.cert and component.key:
            context.load_cert_chain(component.cert, component.key)
        connection = http.client.HTTPSConnection(host, int(port), timeout=PROBE_TIMEOUT, context=context)
    else:
        connection = http.client.HTTPConnection(host, int(port), timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read(300).decode(errors="replace").strip()
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return False, f"{path} on port {port} does not answer ({exc.__class__.__name__}: {exc})"
    finally:
        connection.close()
    if response.status != 200:
        return False, f"{path} answered HTTP {response.status}: {body[:200]}"
    if component.name == "etcd" and '"health":"true"' not in body.replace(" ", ""):
        return False, f"{path} answered {body[:200]}"
    return True, ""


def check(cluster_dir: Path, alive: Any) -> list[ComponentHealth]:
    """Every component's state now. `alive(pid)` says whether a process runs (zombies do not)."""
    result = []
    for component in load(cluster_dir):
        pid = component.pid()
        if pid is None or not alive(pid):
            result.append(ComponentHealth(component.name, pid, running=False, healthy=False))
            continue
        healthy, detail = probe(component, ca=cluster_dir / "pki" / "ca.crt")
        result.append(ComponentHealth(component.name, pid, running=True, healthy=healthy, detail=detail))
    return result


def process_age(pid: int) -> float:
    """Seconds since the process started (0 when it cannot be read)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError):
        return 0.0
    started = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime, in clock ticks
    return max(0.0, uptime - started / os.sysconf("SC_CLK_TCK"))


def prepare_restart(cluster_dir: Path, states: list[ComponentHealth]) -> list[str]:
    """Make the broken components startable by `kwokctl start cluster`; what was done, per line.

    A dead component's pid file goes; a live one unhealthy for longer than UNHEALTHY_GRACE is
    killed first; a movable component whose port is taken moves to a spare port of the block.
    """
    by_name = {c.name: c for c in load(cluster_dir)}
    actions = []
    for state in states:
        component = by_name.get(state.name)
        if component is None or state.healthy:
            continue
        if state.running and state.pid is not None:
            if process_age(state.pid) < UNHEALTHY_GRACE:
                continue  # still starting, perhaps: look again at the next check
            with suppress(ProcessLookupError):
                os.kill(state.pid, signal.SIGKILL)
            _wait_gone(state.pid)
            actions.append(f"killed {state.name} (unhealthy for over {UNHEALTHY_GRACE:.0f} s)")
        component.pid_file.unlink(missing_ok=True)
        port = int(component.host.rpartition(":")[2]) if component.host else 0
        if port and not _port_frees(port):
            if state.name in MOVABLE:
                new = move(cluster_dir, state.name, port)
                actions.append(f"moved {state.name} from port {port} (taken by another process) to {new}")
            else:
                actions.append(f"port {port} of {state.name} is taken by another process")
        actions.append(f"restarting {state.name}")
    return actions


def _port_frees(port: int, timeout: float = 3.0) -> bool:
    """Whether the port is free, or becomes free within `timeout`: the kernel may still be tearing
    down the sockets of a component that was just killed (or died a moment ago)."""
    deadline = time.monotonic() + timeout
    while not ports.port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
            return
        time.sleep(0.05)


def move(cluster_dir: Path, name: str, old: int) -> int:
    """Give a leaf component a free spare port of the cluster's block; rewrite kwok.yaml. The new port."""
    documents = _config_documents(cluster_dir)
    config = _kwokctl_config(documents)
    options = config.setdefault("options", {})
    block = {f: int(options[f]) for f in ports.PORT_FIELDS if f in options}
    spare = [
        p
        for p in ports.spare_ports(block, size=ports.PORT_BLOCK)
        if ports.port_free(p) and p not in _ports_in_use(config)
    ]
    if not spare:
        raise LocalClusterError(f"no spare port is free in the block of local cluster {cluster_dir.name!r}")
    new = spare[0]
    for raw in config.get("components") or []:
        if raw.get("name") != name:
            continue
        raw["args"] = [_swap_port(arg, old, new) for arg in raw.get("args") or []]
        for port in raw.get("ports") or []:
            for key in ("port", "hostPort"):
                if port.get(key) == old:
                    port[key] = new
        for key in ("metric", "metricsDiscovery"):
            if raw.get(key) and str(raw[key].get("host", "")).endswith(f":{old}"):
                raw[key]["host"] = _swap_port(raw[key]["host"], old, new)
    options[MOVABLE[name]] = new
    path = cluster_dir / "kwok.yaml"
    temporary = path.with_suffix(".yaml.partial")
    temporary.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    temporary.replace(path)
    return new


def _swap_port(text: str, old: int, new: int) -> str:
    for separator in ("=", ":"):
        if text.endswith(f"{separator}{old}"):
            return text[: -len(str(old))] + str(new)
    return text


def _ports_in_use(config: dict[str, Any]) -> set[int]:
    """Ports the cluster's components are configured with (a moved one is no longer at its field)."""
    used: set[int] = set()
    for raw in config.get("components") or []:
        for port in raw.get("ports") or []:
            used.update(int(port[k]) for k in ("port", "hostPort") if port.get(k))
    return used
