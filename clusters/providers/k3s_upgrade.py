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
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

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
    server = kube.server_of(kubeconfig)
    with kube.api_client(kubeconfig) as api:
        core, batch = k8s.CoreV1Api(api), k8s.BatchV1Api(api)
        try:
            found = core.read_node(node, _request_timeout=kube.REQUEST_TIMEOUT)
            info = kube.node_info(found)
            if info.ready and kube.plain_version(info.kubelet_version) == version:
                _delete_job(batch, name)
                return NodeUpgrade(True, f"Node {node} runs k3s {release}")
            job = _read_job(batch, name)
            if job is None:
                manifest = job_manifest(
                    node, mode=mode, release=release, install_url=install_url, image=image
                )
                try:
                    batch.create_namespaced_job(NAMESPACE, manifest, _request_timeout=kube.REQUEST_TIMEOUT)
                except ApiException as exc:
                    if exc.status != 409:  # made by an earlier call whose answer was lost
                        raise
                return NodeUpgrade(False, upgrading(node, release))
            failed = next(
                (c for c in job.status.conditions or [] if c.type == "Failed" and c.status == "True"), None
            )
            if failed is not None:
                log = _last_log(core, name)
                # Gone, so that a retry of the operation starts a fresh Job.
                _delete_job(batch, name)
                raise UpgradeFailed(
                    f"The upgrade of node {node} to k3s {release} failed "
                    f"({failed.reason}: {failed.message})" + (f". Its last output: {log}" if log else ".")
                )
        except ApiException as exc:
            if exc.status == 404:
                raise UpgradeFailed(f"Node {node} is not in the cluster; it cannot be upgraded.") from exc
            raise kube.explain(exc, server) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise kube.explain(exc, server) from exc
    return NodeUpgrade(False, upgrading(node, release))


def _last_log(core: k8s.CoreV1Api, job: str, lines: int = 5) -> str:
    """The end of the log of the Job's newest pod ('' when there is none to read)."""
    pods = core.list_namespaced_pod(
        NAMESPACE, label_selector=f"job-name={job}", _request_timeout=kube.REQUEST_TIMEOUT
    ).items
    if not pods:
        return ""
    newest = max(pods, key=lambda p: p.metadata.creation_timestamp)
    try:
        text = core.read_namespaced_pod_log(
            newest.metadata.name, NAMESPACE, tail_lines=lines, _request_timeout=kube.REQUEST_TIMEOUT
        )
    except ApiException:
        return ""
    return " | ".join(line.strip() for line in str(text).splitlines() if line.strip())[-500:]


def _read_job(batch: k8s.BatchV1Api, name: str) -> Any:
    try:
        return batch.read_namespaced_job(name, NAMESPACE, _request_timeout=kube.REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _delete_job(batch: k8s.BatchV1Api, name: str) -> None:
    try:
        batch.delete_namespaced_job(
            name, NAMESPACE, propagation_policy="Background", _request_timeout=kube.REQUEST_TIMEOUT
        )
    except ApiException as exc:
        if exc.status != 404:
            raise
