"""The one place Flotilla talks to a cluster's Kubernetes API (official client, no kubectl).

Every call has a timeout; failures become `KubeError` with a message a user can act on
(unreachable, refused credentials, TLS, malformed kubeconfig).
"""

from __future__ import annotations

import hashlib
import ssl
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from orgs.exceptions import FlotillaError

POOL_LABEL = "flotilla.io/pool"
REQUEST_TIMEOUT = (3.0, 10.0)  # connect, read (seconds)
MAX_KUBECONFIG_BYTES = 256 * 1024


class KubeError(FlotillaError):
    """The cluster's API could not be used; the message says why."""

    code = "cluster_unreachable"
    status = 502


class KubeconfigInvalid(FlotillaError):
    """An uploaded kubeconfig is not usable as it is."""

    code = "invalid"
    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(f"kubeconfig: {reason}", fields={"kubeconfig": [reason]})


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


def parse_kubeconfig(text: str, context: str | None = None) -> tuple[str, str]:
    """Check an uploaded kubeconfig and keep only one context: returns (kubeconfig, context name).

    The result is self-contained: only that context, its cluster and its user, so nothing else
    of the uploader's file is stored.
    """
    if not text or not text.strip():
        raise KubeconfigInvalid("the file is empty")
    if len(text.encode()) > MAX_KUBECONFIG_BYTES:
        raise KubeconfigInvalid(f"the file is larger than {MAX_KUBECONFIG_BYTES // 1024} KiB")
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise KubeconfigInvalid(f"not valid YAML{where}") from exc
    if not isinstance(doc, dict) or doc.get("kind", "Config") != "Config":
        raise KubeconfigInvalid("not a kubeconfig (expected a YAML mapping of kind Config)")
    contexts: dict[str, dict[str, Any]] = {
        str(c.get("name")): c.get("context") or {} for c in doc.get("contexts") or [] if isinstance(c, dict)
    }
    if not contexts:
        raise KubeconfigInvalid("it has no contexts")
    name = context or doc.get("current-context") or (next(iter(contexts)) if len(contexts) == 1 else None)
    if not name:
        raise KubeconfigInvalid("it has several contexts and no current-context; choose one")
    if name not in contexts:
        raise KubeconfigInvalid(f"it has no context named {name!r} (it has: {', '.join(sorted(contexts))})")
    chosen = contexts[name]
    clusters = {c.get("name"): c for c in doc.get("clusters") or [] if isinstance(c, dict)}
    users = {u.get("name"): u for u in doc.get("users") or [] if isinstance(u, dict)}
    cluster = clusters.get(chosen.get("cluster"))
    if cluster is None or not (cluster.get("cluster") or {}).get("server"):
        raise KubeconfigInvalid(f"context {name!r} names no cluster with a server address")
    user = users.get(chosen.get("user"), {"name": chosen.get("user") or "user", "user": {}})
    if (user.get("user") or {}).get("exec") or (user.get("user") or {}).get("auth-provider"):
        raise KubeconfigInvalid(
            "credentials that run a command (exec/auth-provider plugins) cannot be used by Flotilla; "
            "use a service-account token or a client certificate"
        )
    for key in ("certificate-authority", "client-certificate", "client-key", "tokenFile"):
        if key in (cluster.get("cluster") or {}) or key in (user.get("user") or {}):
            raise KubeconfigInvalid(f"{key} points to a file on your machine; embed it ({key}-data)")
    minimal = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [user],
        "contexts": [{"name": name, "context": {**chosen}}],
        "current-context": name,
    }
    return yaml.safe_dump(minimal, sort_keys=False), name


def server_of(kubeconfig: str) -> str:
    """The API server address of a kubeconfig's current context."""
    doc = load_yaml(kubeconfig) or {}
    current = doc.get("current-context")
    ctx: dict[str, Any] = next(
        (c["context"] for c in doc.get("contexts") or [] if c.get("name") == current), {}
    )
    cluster: dict[str, Any] = next(
        (c["cluster"] for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), {}
    )
    return str(cluster.get("server", ""))


def load_yaml(text: str) -> Any:
    """Parse YAML with libyaml when PyYAML has it (kubeconfigs are parsed on every reconcile pass)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (safe loader)


_clients: OrderedDict[str, k8s.ApiClient] = OrderedDict()
_clients_lock = threading.Lock()
CLIENT_CACHE_SIZE = 64


def _build_client(kubeconfig: str) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    # One attempt per call: the reconcile loop and the health check decide when to try again.
    configuration.retries = 0
    try:
        k8s_config.load_kube_config_from_dict(load_yaml(kubeconfig), client_configuration=configuration)
    except (ConfigException, yaml.YAMLError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise KubeconfigInvalid(f"cannot be loaded ({exc})") from exc
    return k8s.ApiClient(configuration)


def cached_client(kubeconfig: str) -> k8s.ApiClient:
    """An API client for a kubeconfig, reused across calls (TLS set-up and parsing cost more than
    most requests). Keyed by the kubeconfig's content, so new credentials get a new client."""
    key = hashlib.sha256(kubeconfig.encode()).hexdigest()
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
    client = _build_client(kubeconfig)
    with _clients_lock:
        _clients[key] = client
        while len(_clients) > CLIENT_CACHE_SIZE:
            _, old = _clients.popitem(last=False)
            old.close()
    return client


@contextmanager
def api_client(kubeconfig: str) -> Iterator[k8s.ApiClient]:
    """An API client for a kubeconfig (its current context)."""
    yield cached_client(kubeconfig)


def explain(exc: Exception, server: str) -> KubeError:
    """A failed call to `server` as an error a user can act on."""
    if isinstance(exc, ApiException):
        if exc.status in (401, 403):
            return KubeError(f"{server} refused the credentials (HTTP {exc.status}: {exc.reason})")
        return KubeError(f"{server} answered HTTP {exc.status}: {exc.reason}")
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
        return KubeError(f"{server}: the server's TLS certificate is not trusted by this kubeconfig")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return KubeError(f"{server} is not reachable ({reason.__class__.__name__})")
    return KubeError(f"{server}: {exc}")


def plain_version(version: str) -> str:
    """ "v1.36.1+k3s1" -> "1.36.1": the upstream version a distribution builds on."""
    return version.lstrip("v").split("+", 1)[0].split("-", 1)[0]


def observe(kubeconfig: str) -> Observation:
    """The API server's version and every node, in two calls."""
    server = server_of(kubeconfig)
    with api_client(kubeconfig) as api:
        try:
            version = k8s.VersionApi(api).get_code(_request_timeout=REQUEST_TIMEOUT).git_version
            nodes = k8s.CoreV1Api(api).list_node(_request_timeout=REQUEST_TIMEOUT).items
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise explain(exc, server) from exc
    return Observation(version=plain_version(str(version)), nodes=[node_info(n) for n in nodes])


def node_info(node: Any) -> NodeInfo:
    """What Flotilla keeps of a Node object."""
    status = node.status
    conditions = status.conditions or [] if status else []
    addresses = (status.addresses or []) if status else []
    capacity = (status.capacity or {}) if status else {}
    return NodeInfo(
        name=node.metadata.name,
        pool=(node.metadata.labels or {}).get(POOL_LABEL, ""),
        ready=any(c.type == "Ready" and c.status == "True" for c in conditions),
        kubelet_version=(status.node_info.kubelet_version if status and status.node_info else "") or "",
        cpu=str(capacity.get("cpu", "")),
        memory=str(capacity.get("memory", "")),
        internal_ip=next((a.address for a in addresses if a.type == "InternalIP"), ""),
    )
