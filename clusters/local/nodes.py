"""Simulated nodes of local clusters: pool specs and the Node objects Flotilla creates for kwok."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clusters.versions import KubeVersion

POOL_LABEL = "flotilla.io/pool"


@dataclass(frozen=True)
class Taint:
    """A node taint."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"


@dataclass(frozen=True)
class NodePoolSpec:
    """Simulated nodes of one size, with labels and taints."""

    name: str
    count: int
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()


def node_index(name: str) -> int:
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def is_ready(node: dict[str, Any]) -> bool:
    """Whether a Node, as the API sends it (JSON), reports Ready."""
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_versions(version: str) -> dict[str, str]:
    """What a node reports of its kubelet (kwok keeps these instead of its own version)."""
    tag = KubeVersion.from_any(version).tag
    return {"kubeletVersion": tag, "kubeProxyVersion": tag}


def node_body(name: str, pool: NodePoolSpec, version: str) -> dict[str, Any]:
    capacity = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                **pool.labels,
                POOL_LABEL: pool.name,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
            "annotations": {
                # kwok manages nodes carrying this annotation.
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                # kwok serves every node's kubelet metrics on one port, under a per-node path;
                # metrics-server follows this annotation instead of /metrics/resource.
                "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource",
            },
        },
        "spec": {"taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints]},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "containerRuntimeVersion": "kwok",
                "kernelVersion": "kwok",
                "osImage": "kwok simulated node",
                "bootID": "",
                "machineID": "",
                "systemUUID": "",
                **node_versions(version),
            },
        },
    }
