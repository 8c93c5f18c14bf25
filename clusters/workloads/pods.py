"""Pods and workloads as the API server reports them, read into plain records for the portal,
the API and the CLI (the same STATUS word kubectl shows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from clusters.workloads.manifests import APP_ID_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


@dataclass(frozen=True)
class ContainerState:
    """One container of a pod: its state now and the last one it left."""

    name: str
    ready: bool
    restarts: int
    state: str  # "waiting" | "running" | "terminated" | "" (not reported yet)
    reason: str
    message: str
    last_state: str
    last_reason: str
    last_exit_code: int | None
    image: str


@dataclass(frozen=True)
class PodInfo:
    """A pod at a glance."""

    name: str
    namespace: str
    phase: str
    ready: int
    total: int
    restarts: int
    node: str
    ip: str
    created_at: str
    deleting: bool
    owner_kind: str
    owner_name: str
    reason: str
    containers: tuple[ContainerState, ...]
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (containers as a list of objects)."""
        data = asdict(self)
        data["containers"] = [asdict(c) for c in self.containers]
        return data


@dataclass(frozen=True)
class WorkloadInfo:
    """A Deployment, StatefulSet or DaemonSet at a glance."""

    kind: str
    name: str
    namespace: str
    desired: int
    ready: int
    available: int
    updated: int
    images: tuple[str, ...]
    selector: dict[str, str]
    created_at: str
    app_id: int | None
    managed: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        data = asdict(self)
        data["images"] = list(self.images)
        return data


def _state(state: Mapping[str, Any] | None) -> tuple[str, Mapping[str, Any]]:
    for key in ("waiting", "running", "terminated"):
        if state and state.get(key) is not None:
            return key, state[key]
    return "", {}


def container_state(status: Mapping[str, Any]) -> ContainerState:
    """Read one entry of a pod's `containerStatuses`."""
    state, now = _state(status.get("state"))
    last_state, last = _state(status.get("lastState"))
    exit_code = last.get("exitCode") if last_state == "terminated" else None
    return ContainerState(
        name=str(status.get("name", "")),
        ready=bool(status.get("ready")),
        restarts=int(status.get("restartCount") or 0),
        state=state,
        reason=str(now.get("reason") or ""),
        message=str(now.get("message") or ""),
        last_state=last_state,
        last_reason=str(last.get("reason") or ""),
        last_exit_code=int(exit_code) if exit_code is not None else None,
        image=str(status.get("image") or ""),
    )


def _controller(meta: Mapping[str, Any]) -> tuple[str, str]:
    owners = meta.get("ownerReferences") or []
    for owner in owners:
        if owner.get("controller"):
            return str(owner.get("kind", "")), str(owner.get("name", ""))
    if owners:
        return str(owners[0].get("kind", "")), str(owners[0].get("name", ""))
    return "", ""


def _terminated_word(term: Mapping[str, Any]) -> str:
    if term.get("reason"):
        return str(term["reason"])
    if term.get("signal"):
        return f"Signal:{term['signal']}"
    return f"ExitCode:{term.get('exitCode', 0)}"


def _condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond  # type: ignore[no-any-return]
    return None


def pod_reason(pod: Mapping[str, Any]) -> str:
    """The one word kubectl's STATUS column shows for a pod."""
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    init_specs = (pod.get("spec") or {}).get("initContainers") or []
    initializing = False
    for i, init in enumerate(status.get("initContainerStatuses") or []):
        kind, state = _state(init.get("state"))
        if kind == "terminated" and state.get("exitCode") == 0:
            continue
        initializing = True
        if kind == "terminated":
            reason = f"Init:{_terminated_word(state)}"
        elif kind == "waiting" and state.get("reason") and state["reason"] != "PodInitializing":
            reason = f"Init:{state['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        break
    if not initializing:
        running = False
        # The last container's trouble is the one shown, as kubectl does (it walks them backwards).
        for cs in reversed(status.get("containerStatuses") or []):
            kind, state = _state(cs.get("state"))
            if kind == "waiting" and state.get("reason"):
                reason = str(state["reason"])
            elif kind == "terminated":
                reason = _terminated_word(state)
            elif kind == "running" and cs.get("ready"):
                running = True
        if reason == "Completed" and running:
            ready = _condition(pod, "Ready")
            reason = "Running" if ready and ready.get("status") == "True" else "NotReady"
    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    return reason


def pod_info(pod: Mapping[str, Any]) -> PodInfo:
    """Read a pod (JSON from the API server)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    containers = tuple(container_state(cs) for cs in status.get("containerStatuses") or [])
    owner_kind, owner_name = _controller(meta)
    total = len((pod.get("spec") or {}).get("containers") or []) or len(containers)
    return PodInfo(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        phase=str(status.get("phase") or "Unknown"),
        ready=sum(1 for c in containers if c.ready),
        total=total,
        restarts=sum(c.restarts for c in containers),
        node=str((pod.get("spec") or {}).get("nodeName") or ""),
        ip=str(status.get("podIP") or ""),
        created_at=str(meta.get("creationTimestamp") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        owner_kind=owner_kind,
        owner_name=owner_name,
        reason=pod_reason(pod),
        containers=containers,
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
    )


def _app_id(annotations: Mapping[str, Any]) -> int | None:
    raw = annotations.get(APP_ID_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None  # someone else's value under our key: not ours to trust


def workload_info(obj: Mapping[str, Any]) -> WorkloadInfo:
    """Read a Deployment, StatefulSet or DaemonSet (JSON from the API server)."""
    kind = str(obj.get("kind", ""))
    if kind not in WORKLOAD_KINDS:
        raise ValueError(f"not a workload kind: {kind!r}")
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled")
        counts = (
            status.get("numberReady"),
            status.get("numberAvailable"),
            status.get("updatedNumberScheduled"),
        )
    else:
        desired = spec.get("replicas", 1)  # the API server defaults an absent count to 1
        counts = (status.get("readyReplicas"), status.get("availableReplicas"), status.get("updatedReplicas"))
    ready, available, updated = (int(n or 0) for n in counts)
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    labels = meta.get("labels") or {}
    return WorkloadInfo(
        kind=kind,
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        desired=int(desired or 0),
        ready=ready,
        available=available,
        updated=updated,
        images=tuple(str(c.get("image", "")) for c in containers),
        selector={str(k): str(v) for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items()},
        created_at=str(meta.get("creationTimestamp") or ""),
        app_id=_app_id(meta.get("annotations") or {}),
        managed=labels.get(MANAGED_BY_LABEL) == MANAGED_BY,
    )


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a matchLabels selector picks an object with these labels."""
    # Kubernetes reads an empty selector as "everything"; a workload never has one, and treating
    # it so here would hand every pod of a namespace to the first odd object met.
    if not selector:
        return False
    return all(labels.get(key) == value for key, value in selector.items())
