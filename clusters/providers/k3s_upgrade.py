"""Upgrading k3s in place on a cluster's VMs, one node at a time, through the Kubernetes API.

Flotilla never logs in to a VM. To move a node to another k3s release it runs a Job pinned to that
node: a privileged container that enters the host's filesystem and runs k3s's install script
again with the new `INSTALL_K3S_VERSION` (the node keeps its `/etc/rancher/k3s/config.yaml`, so
its role, labels, taints and join settings stay). The script replaces the binary and restarts the
k3s service; running pods are left alone (k3s's unit stops only its own process). The node is
done when it reports the new kubelet version and is Ready; then the Job is deleted.

`advance` is one idempotent look at one node: it creates the Job when it is missing and says
whether the node is done, still upgrading, or failed. The order (the server first, then each
agent) and the records are the driver's business (`clusters.providers.cloud`).
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from clusters import kube, versions
from clusters.exceptions import ProviderError
from clusters.providers import k3s

NAMESPACE = "kube-system"
# Any small image with `chroot` and `sh`: everything else is the host's own (curl, systemd).
DEFAULT_IMAGE = "busybox:1.37"
JOB_LABEL = "flotilla.io/k3s-upgrade"
# Long enough for the script to download k3s; the reconcile loop's step timeout bounds the wait.
JOB_DEADLINE_SECONDS = 900
JOB_TTL_SECONDS = 3600


class UpgradeFailed(Exception):
    """The node's upgrade Job failed; the message says where to look."""


@dataclass(frozen=True)
class NodeUpgrade:
    """What one call of `advance` found."""

    done: bool
    message: str


def check_upgrade_path(running: set[str], target: str) -> None:
    """k3s (like Kubernetes) moves one minor version at a time, and never back."""
    for version in sorted(running, key=versions.KubeVersion.from_any):
        problem = versions.upgrade_problem(version, target)
        if problem == versions.UpgradeProblem.DOWNGRADE:
            raise ProviderError(
                f"The VMs run Kubernetes {version}: moving back to {target} is not possible.", retryable=False
            )
        if problem == versions.UpgradeProblem.SKIPS_A_MINOR:
            raise ProviderError(
                f"The VMs run Kubernetes {version}: upgrade one minor version at a time "
                f"(to {versions.next_minor(version)} first), as k3s requires.",
                retryable=False,
            )


def upgrading(node: str, release: str) -> str:
    """The step's message while `node` moves to `release` (the same whatever the API answers)."""
    return f"Upgrading node {node} to k3s {release}"


def job_name(node: str, version: str) -> str:
    """A Job name per node and version (at most 63 characters, as a label value must be)."""
    digest = hashlib.sha256(f"{node}/{version}".encode()).hexdigest()[:10]
    return f"flotilla-k3s-upgrade-{digest}"


def job_manifest(
    node: str, *, mode: str, release: str, install_url: str, image: str = DEFAULT_IMAGE
) -> dict[str, Any]:
    """The Job that re-runs k3s's installer for `release` on `node` (mode "server" or "agent")."""
    version = kube.plain_version(release)
    script = k3s.install_script(release, mode, install_url)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(node, version),
            "namespace": NAMESPACE,
            "labels": {JOB_LABEL: version, "app.kubernetes.io/managed-by": "flotilla"},
            "annotations": {"flotilla.io/node": node},
        },
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": JOB_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": {
                "metadata": {"labels": {JOB_LABEL: version}},
                "spec": {
                    "nodeName": node,
                    "restartPolicy": "Never",
                    "hostPID": True,
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    # Whatever the node's taints (cordoned, pool taints), the upgrade runs there.
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [
                        {
                            "name": "upgrade",
                            "image": image,
                            "command": ["chroot", "/host", "sh", "-c", script],
                            "securityContext": {"privileged": True},
                            "volumeMounts": [{"name": "host", "mountPath": "/host"}],
                        }
                    ],
                    "volumes": [{"name": "host", "hostPath": {"path": "/", "type": "Directory"}}],
                },
            },
        },
    }


def advance(
    kubeconfig: str, node: str, *, mode: str, release: str, install_url: str, image: str = DEFAULT_IMAGE
) -> NodeUpgrade:
    """One look at `node`'s upgrade to `release`: start it, or report it running, done or failed.

    Raises `kube.KubeError` when the API cannot be reached (it restarts while the server upgrades:
    the caller waits) and `UpgradeFailed` when the Job failed.
    """
    version = kube.plain_version(release)
    name = job_name(node, version)
    client = kube.connect(kubeconfig)
    try:
        found = kube.get(client, "v1", "Node", node)
    except kube.NotFound as exc:
        raise UpgradeFailed(f"Node {node} is not in the cluster; it cannot be upgraded.") from exc
    info = kube.node_info(found)
    if info.ready and kube.plain_version(info.kubelet_version) == version:
        kube.delete(client, "batch/v1", "Job", name, NAMESPACE, missing_ok=True)
        return NodeUpgrade(True, f"Node {node} runs k3s {release}")
    job = _read_job(client, name)
    if job is None:
        manifest = job_manifest(node, mode=mode, release=release, install_url=install_url, image=image)
        with suppress(kube.AlreadyExists):  # made by an earlier call whose answer was lost
            kube.create(client, manifest)
        return NodeUpgrade(False, upgrading(node, release))
    conditions = (job.get("status") or {}).get("conditions") or []
    failed = next((c for c in conditions if c.get("type") == "Failed" and c.get("status") == "True"), None)
    if failed is not None:
        log = _last_log(client, name)
        # Gone, so that a retry of the operation starts a fresh Job.
        kube.delete(client, "batch/v1", "Job", name, NAMESPACE, missing_ok=True)
        raise UpgradeFailed(
            f"The upgrade of node {node} to k3s {release} failed "
            f"({failed.get('reason')}: {failed.get('message')})"
            + (f". Its last output: {log}" if log else ".")
        )
    return NodeUpgrade(False, upgrading(node, release))


def _last_log(client: kube.Client, job: str, lines: int = 5) -> str:
    """The end of the log of the Job's newest pod ('' when there is none to read)."""
    pods = list(kube.list_items(client, ("v1", "Pod"), namespace=NAMESPACE, label_selector=f"job-name={job}"))
    if not pods:
        return ""
    newest = max(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    try:
        pod = newest["metadata"]["name"]
        text = list(kube.logs(client, pod, NAMESPACE, tail_lines=lines, max_bytes=64 * 1024))
    except kube.KubeError:
        return ""
    return " | ".join(line.strip() for line in text if line.strip())[-500:]


def _read_job(client: kube.Client, name: str) -> dict[str, Any] | None:
    try:
        return kube.get(client, "batch/v1", "Job", name, NAMESPACE)
    except kube.NotFound:
        return None
