"""The one place Flotilla talks to a cluster's Kubernetes API (official client, no kubectl).

Every call has per-socket timeouts, a total deadline and a cap on the answer's size
(`clusters.kube_transport`); failures become `KubeError` with a message a user can act on
(unreachable, refused credentials, TLS, not a Kubernetes API, malformed kubeconfig).

Where a call may go is the outbound policy's decision (`config.outbound`): unless the caller
says the cluster is one Flotilla runs itself (`trusted`, the local provider), the server's
address is resolved and checked before every use, and the client connects to the address that
was checked (the host name only verifies TLS), so a DNS answer that changes to a private address
is caught at the next call and never raced.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from clusters.kube_transport import (
    AnswerTooLarge,
    BoundedPoolManager,
    CallDeadline,
    CredentialsUnusable,
    Limits,
    ssl_context,
)
from clusters.versions import KubeVersion
from config.outbound import CheckedTarget, OutboundRefused, check_url
from orgs.exceptions import FlotillaError

POOL_LABEL = "flotilla.io/pool"
REQUEST_TIMEOUT = (3.0, 10.0)  # connect, read (seconds)
MAX_KUBECONFIG_BYTES = 256 * 1024
LIMITS = Limits()
SERVER = "the kubeconfig's server"


class KubeError(FlotillaError):
    """The cluster's API could not be used; the message says why."""

    code = "cluster_unreachable"
    status = 502

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message, fields={"kubeconfig": [message]})
        # An answer that is not Kubernetes's, or too large, does not change on a retry.
        self.retryable = retryable


class KubeconfigInvalid(FlotillaError):
    """An uploaded kubeconfig is not usable as it is."""

    code = "invalid"
    status = 400
    retryable = False

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


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise KubeconfigInvalid(f"{what} must be a mapping, not {_kind_of(value)}")
    return value


def _kind_of(value: Any) -> str:
    return {str: "a string", list: "a list", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _named(doc: dict[str, Any], section: str, inner: str) -> dict[str, dict[str, Any]]:
    """`clusters`, `users` or `contexts` as {name: body}, refusing entries of the wrong shape."""
    entries = doc.get(section)
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise KubeconfigInvalid(
            f"{section} must be a list of {{name, {inner}}} entries, not {_kind_of(entries)}"
        )
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigInvalid(f"every entry of {section} needs a name and a {inner} mapping")
        found[entry["name"]] = _mapping(entry.get(inner), f"{section}[{entry['name']}].{inner}")
    return found


def _chosen(
    doc: Any, context: str | None
) -> tuple[str, dict[str, Any], str, dict[str, Any], str, dict[str, Any]]:
    """The context to use, its body, and its cluster and user (each as name and body)."""
    if not isinstance(doc, dict) or doc.get("kind", "Config") != "Config":
        raise KubeconfigInvalid("not a kubeconfig (expected a YAML mapping of kind Config)")
    contexts = _named(doc, "contexts", "context")
    if not contexts:
        raise KubeconfigInvalid("it has no contexts")
    current = doc.get("current-context")
    if current is not None and not isinstance(current, str):
        raise KubeconfigInvalid("current-context must be a context's name")
    name = context or current or (next(iter(contexts)) if len(contexts) == 1 else None)
    if not name:
        raise KubeconfigInvalid("it has several contexts and no current-context; choose one")
    if name not in contexts:
        raise KubeconfigInvalid(f"it has no context named {name!r} (it has: {', '.join(sorted(contexts))})")
    chosen = contexts[name]
    cluster_name, user_name = chosen.get("cluster"), chosen.get("user") or "user"
    if not isinstance(cluster_name, str) or not isinstance(user_name, str):
        raise KubeconfigInvalid(f"context {name!r} must name its cluster and user")
    clusters = _named(doc, "clusters", "cluster")
    cluster = clusters.get(cluster_name)
    if cluster is None or not cluster.get("server"):
        raise KubeconfigInvalid(f"context {name!r} names no cluster with a server address")
    if not isinstance(cluster["server"], str):
        raise KubeconfigInvalid(f"the server of cluster {cluster_name!r} must be a URL")
    user = _named(doc, "users", "user").get(user_name, {})
    return name, chosen, cluster_name, cluster, user_name, user


def parse_kubeconfig(text: str, context: str | None = None) -> tuple[str, str]:
    """Check an uploaded kubeconfig's shape and keep only one context: returns (kubeconfig, context name).

    The result is self-contained: only that context, its cluster and its user, so nothing else
    of the uploader's file is stored. Nothing is contacted here (`check_server` applies the
    outbound policy; the import's worker makes the first call).
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
    name, chosen, cluster_name, cluster, user_name, user = _chosen(doc, context)
    if user.get("exec") or user.get("auth-provider"):
        raise KubeconfigInvalid(
            "credentials that run a command (exec/auth-provider plugins) cannot be used by Flotilla; "
            "use a service-account token or a client certificate"
        )
    for key in ("certificate-authority", "client-certificate", "client-key", "tokenFile"):
        if key in cluster or key in user:
            raise KubeconfigInvalid(f"{key} points to a file on your machine; embed it ({key}-data)")
    if cluster.get("proxy-url"):
        raise KubeconfigInvalid("proxy-url is not supported: Flotilla connects to the server directly")
    for key, value in (*cluster.items(), *user.items()):
        typed = str(key).endswith("-data") or key in ("token", "username", "password", "tls-server-name")
        if typed and not isinstance(value, str):
            raise KubeconfigInvalid(f"{key} must be a string")
    minimal = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": name, "context": {**chosen, "cluster": cluster_name, "user": user_name}}],
        "current-context": name,
    }
    return yaml.safe_dump(minimal, sort_keys=False), name


def _stored(kubeconfig: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cluster and user of a stored kubeconfig's current context."""
    try:
        _, _, _, cluster, _, user = _chosen(load_yaml(kubeconfig), None)
    except yaml.YAMLError as exc:
        raise KubeconfigInvalid("the stored kubeconfig is not valid YAML") from exc
    return cluster, user


def server_of(kubeconfig: str) -> str:
    """The API server address of a kubeconfig's current context ("" when it has none)."""
    try:
        return str(_stored(kubeconfig)[0].get("server", ""))
    except KubeconfigInvalid:
        return ""


def check_server(kubeconfig: str) -> CheckedTarget:
    """Apply the outbound policy to a kubeconfig's server; `OutboundRefused` names the kubeconfig."""
    cluster, _ = _stored(kubeconfig)
    if cluster.get("proxy-url"):
        raise OutboundRefused(
            "kubeconfig", "proxy-url is not supported: Flotilla connects to the server directly"
        )
    return check_url(str(cluster.get("server", "")), purpose=SERVER, field="kubeconfig")


def load_yaml(text: str) -> Any:
    """Parse YAML with libyaml when PyYAML has it (kubeconfigs are parsed on every reconcile pass)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (safe loader)


_clients: OrderedDict[tuple[str, str, Limits], k8s.ApiClient] = OrderedDict()
_clients_lock = threading.Lock()
CLIENT_CACHE_SIZE = 64


def _build_client(kubeconfig: str, target: CheckedTarget | None, limits: Limits) -> k8s.ApiClient:
    cluster, user = _stored(kubeconfig)
    configuration = k8s.Configuration()
    # The checked address, not the name: what was checked is what is connected to.
    configuration.host = target.pinned_url if target is not None else str(cluster["server"]).rstrip("/")
    configuration.proxy = None
    if user.get("token"):
        configuration.api_key = {"authorization": f"Bearer {user['token']}"}
    elif user.get("username") and user.get("password"):
        pair = f"{user['username']}:{user['password']}".encode()
        configuration.api_key = {"authorization": f"Basic {base64.b64encode(pair).decode()}"}
    try:
        context = ssl_context(cluster, user)
    except CredentialsUnusable as exc:
        raise KubeconfigInvalid(str(exc)) from exc
    api = k8s.ApiClient(configuration)
    # One attempt per call (the reconcile loop and the health check decide when to try again),
    # no redirects followed.
    pool_args: dict[str, Any] = {
        "ssl_context": context,
        "cert_reqs": context.verify_mode,
        "retries": False,
        "num_pools": 2,
        "maxsize": 4,
    }
    server_name = cluster.get("tls-server-name") or (
        target.host if target is not None and not target.host_is_address else None
    )
    if server_name:
        pool_args["server_hostname"] = str(server_name)
    if context.verify_mode == ssl.CERT_NONE:
        pool_args["assert_hostname"] = False
    api.rest_client.pool_manager = BoundedPoolManager(limits, **pool_args)
    if target is not None and not target.host_is_address:
        api.set_default_header("Host", target.netloc)
    return api


def cached_client(kubeconfig: str, *, trusted: bool = False, limits: Limits = LIMITS) -> k8s.ApiClient:
    """An API client for a kubeconfig, reused across calls (TLS set-up and parsing cost more than
    most requests). Keyed by the kubeconfig's content and the checked address, so new credentials
    or a new address get a new client.

    `trusted` is for clusters Flotilla runs itself (their kubeconfig is written by Flotilla, on
    loopback): no outbound check. Everything else is checked at every call.
    """
    target = None if trusted else check_server(kubeconfig)
    key = (hashlib.sha256(kubeconfig.encode()).hexdigest(), target.address if target else "", limits)
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
    client = _build_client(kubeconfig, target, limits)
    with _clients_lock:
        _clients[key] = client
        while len(_clients) > CLIENT_CACHE_SIZE:
            _, old = _clients.popitem(last=False)
            old.close()
    return client


@contextmanager
def api_client(kubeconfig: str, *, trusted: bool = False, limits: Limits = LIMITS) -> Iterator[k8s.ApiClient]:
    """An API client for a kubeconfig (its current context), checked against the outbound policy."""
    yield cached_client(kubeconfig, trusted=trusted, limits=limits)


# What a call may raise: transport errors, and the client's own when an answer is not Kubernetes's
# (pydantic's ValidationError is a ValueError; odd JSON gives TypeError/AttributeError).
CALL_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError, TypeError, AttributeError)


def explain(exc: Exception, server: str) -> KubeError:
    """A failed call to `server` as an error a user can act on (never the remote's own words)."""
    if isinstance(exc, CallDeadline):
        return KubeError(f"{server} did not answer in full within {exc.seconds:.0f} s")
    if isinstance(exc, AnswerTooLarge):
        return KubeError(
            f"{server} sent an answer larger than {exc.limit // (1024 * 1024)} MiB", retryable=False
        )
    if isinstance(exc, ApiException):
        status = _status_text(exc.status)
        if exc.status in (401, 403):
            return KubeError(f"{server} refused the credentials ({status})")
        return KubeError(f"{server} answered {status}")
    if isinstance(exc, ValueError | TypeError | AttributeError):
        return KubeError(
            f"{server} answered, but not as a Kubernetes API server does; check the server address",
            retryable=False,
        )
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
        return KubeError(f"{server}: the server's TLS certificate is not trusted by this kubeconfig")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return KubeError(f"{server} is not reachable ({reason.__class__.__name__})")
    return KubeError(f"{server}: the call failed ({exc.__class__.__name__})")


def _status_text(status: Any) -> str:
    try:
        code = HTTPStatus(int(status))
    except (TypeError, ValueError):
        return "with an unexpected HTTP status"
    return f"HTTP {code.value} {code.phrase}"


def plain_version(version: str) -> str:
    """ "v1.36.1+k3s1" -> "1.36.1": the upstream version a distribution builds on."""
    return str(KubeVersion.from_any(version))


def observe(kubeconfig: str, *, trusted: bool = False, limits: Limits = LIMITS) -> Observation:
    """The API server's version and every node, in two calls."""
    server = server_of(kubeconfig)
    with api_client(kubeconfig, trusted=trusted, limits=limits) as api:
        try:
            version = k8s.VersionApi(api).get_code(_request_timeout=REQUEST_TIMEOUT).git_version
            nodes = k8s.CoreV1Api(api).list_node(_request_timeout=REQUEST_TIMEOUT).items
            return Observation(version=plain_version(str(version)), nodes=[node_info(n) for n in nodes])
        except CALL_ERRORS as exc:
            raise explain(exc, server) from exc


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
