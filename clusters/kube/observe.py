"""What Flotilla watches on every cluster: the API server's version and its nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clusters.kube.client import LIMITS, Client, connect
from clusters.kube.errors import not_kubernetes
from clusters.kube.objects import list_items
from clusters.kube_transport import Limits
from clusters.versions import KubeVersion

POOL_LABEL = "flotilla.io/pool"


@dataclass(frozen=True)
class NodeInfo:
    """A node as the API reports it."""

    name: str
    pool: str
    ready: bool
    kubelet_version: str
    cpu: str
    memory: str
    internal_ip: str


@dataclass(frozen=True)
class Observation:
    """What the API says now."""

    version: str
    nodes: list[NodeInfo] = field(default_factory=list)

    def ready_in_pool(self, pool: str) -> int:
        """Nodes of a pool that are Ready."""
        return sum(1 for n in self.nodes if n.pool == pool and n.ready)

    def in_pool(self, pool: str) -> int:
        """Nodes of a pool, Ready or not."""
        return sum(1 for n in self.nodes if n.pool == pool)


def plain_version(version: str) -> str:
    """ "v1.36.1+k3s1" -> "1.36.1": the upstream version a distribution builds on."""
    return str(KubeVersion.from_any(version))


def server_version(client: Client) -> str:
    """The API server's gitVersion, as it says it ("v1.36.1+k3s1")."""
    body = client.request("GET", "/version")
    if not isinstance(body, dict) or not isinstance(body.get("gitVersion"), str):
        raise not_kubernetes(client.server)
    return str(body["gitVersion"])


def node_ready(node: dict[str, Any]) -> bool:
    """Whether a Node (JSON) reports Ready."""
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def node_info(node: dict[str, Any]) -> NodeInfo:
    """What Flotilla keeps of a Node object (JSON, as the API sends it)."""
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    capacity = status.get("capacity") or {}
    return NodeInfo(
        name=str(meta["name"]),
        pool=(meta.get("labels") or {}).get(POOL_LABEL, ""),
        ready=node_ready(node),
        kubelet_version=str((status.get("nodeInfo") or {}).get("kubeletVersion") or ""),
        cpu=str(capacity.get("cpu", "")),
        memory=str(capacity.get("memory", "")),
        internal_ip=next(
            (str(a.get("address")) for a in status.get("addresses") or [] if a.get("type") == "InternalIP"),
            "",
        ),
    )


def observe(kubeconfig: str, *, trusted: bool = False, limits: Limits = LIMITS) -> Observation:
    """The API server's version and every node."""
    client = connect(kubeconfig, trusted=trusted, limits=limits)
    version = server_version(client)
    try:
        nodes = [node_info(n) for n in list_items(client, ("v1", "Node"))]
    except (KeyError, TypeError, AttributeError) as exc:
        raise not_kubernetes(client.server) from exc
    return Observation(version=plain_version(version), nodes=nodes)
