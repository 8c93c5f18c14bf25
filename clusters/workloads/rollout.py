"""What a rollout is doing, read from the Deployment controller's own status and the new pods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clusters.workloads.pods import ContainerState, container_state

MAX_PROBLEMS = 3
MAX_DETAIL = 300
# Waiting while the kubelet does ordinary work: not a problem to report.
NORMAL_WAITING = frozenset({"ContainerCreating", "PodInitializing"})


@dataclass(frozen=True)
class Rollout:
    """A rollout's phase ("progressing" | "available" | "failed"), a human message and the counts."""

    phase: str
    message: str
    desired: int
    updated: int
    ready: int
    available: int


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _exit(reason: str, code: int | None) -> str:
    word = reason or "exited"
    return f"{word} (exit code {code})" if code is not None else word


def _container_problem(c: ContainerState, exit_code: int | None, pod_running: bool) -> str:
    if c.state == "waiting" and c.reason and c.reason not in NORMAL_WAITING:
        if c.reason == "CrashLoopBackOff":
            # The back-off message names the pod; the last exit says why it crashes, the same for all.
            if c.last_state == "terminated":
                return f"CrashLoopBackOff: last exit {_exit(c.last_reason, c.last_exit_code)}"
            return "CrashLoopBackOff"
        return f"{c.reason}: {_clip(c.message)}" if c.message else c.reason
    if c.state == "terminated" and c.reason != "Completed":
        return f"container {c.name} {_exit(c.reason, exit_code)}"
    if c.state == "running" and c.last_state == "terminated" and c.last_reason != "Completed" and not c.ready:
        return f"restarted {c.restarts} times, last exit {_exit(c.last_reason, c.last_exit_code)}"
    if c.state == "running" and not c.ready and pod_running:
        return "readiness check failing"
    return ""


def pod_problem(pod: Mapping[str, Any]) -> str:
    """The one reason this pod is not serving, or "" (a pod being deleted has none)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return ""
    if status.get("phase") == "Failed":
        reason = str(status.get("reason") or "Failed")
        return f"{reason}: {_clip(str(status['message']))}" if status.get("message") else reason
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            reason = str(cond.get("reason") or "Unschedulable")
            return f"{reason}: {_clip(str(cond['message']))}" if cond.get("message") else reason
    running = status.get("phase") == "Running"
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    for raw in statuses:
        code = ((raw.get("state") or {}).get("terminated") or {}).get("exitCode")
        problem = _container_problem(container_state(raw), None if code is None else int(code), running)
        if problem:
            return problem
    return ""


def pod_problems(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    """The distinct problems of these pods, most frequent first, at most three, with counts."""
    seen: dict[str, list[str]] = {}
    for pod in pods:
        problem = pod_problem(pod)
        if problem:
            seen.setdefault(problem, []).append(str((pod.get("metadata") or {}).get("name", "")))
    ranked = sorted(seen.items(), key=lambda item: -len(item[1]))  # stable: first seen wins ties
    lines = []
    for problem, names in ranked[:MAX_PROBLEMS]:
        lines.append(f"pod {names[0]}: {problem}" if len(names) == 1 else f"{len(names)} pods: {problem}")
    return lines


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(c.get("type")): c for c in status.get("conditions") or []}


def _with_problems(head: str, problems: list[str]) -> str:
    return "; ".join([head, *problems]) if problems else head


def interpret(workload: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], *, generation: int) -> Rollout:
    """Read a Deployment's rollout of `generation` (the one applied) with the new revision's pods."""
    spec = workload.get("spec") or {}
    status = workload.get("status") or {}
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)

    def rollout(phase: str, message: str) -> Rollout:
        return Rollout(phase, message, desired, updated, ready, available)

    # Until the controller has seen our change, every other field describes the previous one.
    if int(status.get("observedGeneration") or 0) < generation:
        return rollout("progressing", "waiting for the controller")
    conditions = _conditions(status)
    problems = pod_problems(pods)
    progressing = conditions.get("Progressing")
    if (
        progressing
        and progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    ):
        deadline = spec.get("progressDeadlineSeconds")
        head = "ProgressDeadlineExceeded: no progress"
        head += f" within {deadline} s" if deadline is not None else ""
        return rollout(
            "failed",
            _with_problems(f"{head} ({updated} of {desired} updated, {available} available)", problems),
        )
    failure = conditions.get("ReplicaFailure")
    if failure and failure.get("status") == "True":
        reason = str(failure.get("reason") or "ReplicaFailure")
        message = _clip(str(failure.get("message") or ""))
        return rollout("failed", _with_problems(f"{reason}: {message}" if message else reason, problems))
    if desired == 0:
        if total == 0:
            return rollout("available", "scaled to 0")
        return rollout("progressing", f"scaling to 0: {total} pods still running")
    if updated >= desired and available >= desired and ready >= desired and total <= updated:
        return rollout("available", f"{available} of {desired} replicas available")
    head = f"{updated} of {desired} replicas updated, {available} available"
    if updated >= desired and total > updated:
        head += f", {total - updated} old pending termination"
    return rollout("progressing", _with_problems(head, problems))


REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


def revision_pods(
    workload: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The pods of a Deployment's current revision: those of its ReplicaSet carrying the same
    revision number (the controller stamps both), found by owner uid so a pod left by an older
    ReplicaSet with the same labels is never blamed for the new one's trouble."""
    uid = (workload.get("metadata") or {}).get("uid")
    revision = ((workload.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    if not uid or revision is None:
        return []
    current = set()
    for rs in replica_sets:
        meta = rs.get("metadata") or {}
        owned = any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or [])
        if owned and (meta.get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            current.add(meta.get("uid"))
    return [
        pod
        for pod in pods
        if any(ref.get("uid") in current for ref in (pod.get("metadata") or {}).get("ownerReferences") or [])
    ]
