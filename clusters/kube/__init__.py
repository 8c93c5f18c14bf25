"""The one place Flotilla talks to a cluster's Kubernetes API (the official client's transport,
no kubectl). Import it as `from clusters import kube`; docs/kubernetes-gateway.md describes it.

- `connect(kubeconfig, trusted=False)` → a cached `Client` (kubeconfig.py, client.py): the
  outbound policy applied before every use (unless the cluster is Flotilla's own), the checked
  address connected to, a total deadline and an answer cap per call (`clusters.kube_transport`),
  retries with backoff on 429/5xx for requests that are safe to repeat;
- errors translated once into `KubeError` subclasses (errors.py) with `message` and `retryable`;
- discovery (discovery.py), objects of any kind with server-side apply as `flotilla` and
  paginated raw lists (objects.py), watches and pod logs (streams.py), nodes (observe.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from clusters.kube.client import (
    APPLY_PATCH,
    CLIENT_CACHE_SIZE,
    FIELD_MANAGER,
    LIMITS,
    NO_RETRY,
    REQUEST_TIMEOUT,
    RETRY,
    Client,
    RetryPolicy,
    cached_clients,
    connect,
    forget,
)
from clusters.kube.discovery import DISCOVERY_TTL, Discovery, Resource, discover, discovery, resource
from clusters.kube.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    explain,
)
from clusters.kube.kubeconfig import (
    MAX_KUBECONFIG_BYTES,
    SERVER,
    KubeconfigInvalid,
    check_server,
    load_yaml,
    parse_kubeconfig,
    server_of,
)
from clusters.kube.objects import (
    DEFAULT_PAGE,
    ContinueExpired,
    Pages,
    apply,
    create,
    delete,
    get,
    list_items,
    list_pages,
    patch,
)
from clusters.kube.observe import (
    POOL_LABEL,
    NodeInfo,
    Observation,
    node_info,
    node_ready,
    observe,
    plain_version,
    server_version,
)
from clusters.kube.streams import DEFAULT_LOG_BYTES, WatchEvent, WatchExpired, logs, watch
from clusters.kube_transport import Limits

# What a typed call of the kubernetes client may raise (for `explain`): transport errors, and the
# client's own when an answer is not Kubernetes's.
CALL_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError, TypeError, AttributeError)


def cached_client(kubeconfig: str, *, trusted: bool = False, limits: Limits = LIMITS) -> k8s.ApiClient:
    """The kubernetes client's `ApiClient` of a kubeconfig, on the gateway's transport (tests use
    it for typed calls; product code uses `connect` and the functions here)."""
    return connect(kubeconfig, trusted=trusted, limits=limits).api


@contextmanager
def api_client(kubeconfig: str, *, trusted: bool = False, limits: Limits = LIMITS) -> Iterator[k8s.ApiClient]:
    """`cached_client` as a context manager."""
    yield cached_client(kubeconfig, trusted=trusted, limits=limits)


__all__ = [
    "APPLY_PATCH",
    "CALL_ERRORS",
    "CLIENT_CACHE_SIZE",
    "DEFAULT_LOG_BYTES",
    "DEFAULT_PAGE",
    "DISCOVERY_TTL",
    "FIELD_MANAGER",
    "LIMITS",
    "MAX_KUBECONFIG_BYTES",
    "NO_RETRY",
    "POOL_LABEL",
    "REQUEST_TIMEOUT",
    "RETRY",
    "SERVER",
    "AlreadyExists",
    "Client",
    "Conflict",
    "ContinueExpired",
    "Discovery",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "KubeconfigInvalid",
    "Limits",
    "NodeInfo",
    "NotFound",
    "Observation",
    "Pages",
    "Resource",
    "RetryPolicy",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "WatchEvent",
    "WatchExpired",
    "api_client",
    "apply",
    "cached_client",
    "cached_clients",
    "check_server",
    "connect",
    "create",
    "delete",
    "discover",
    "discovery",
    "explain",
    "forget",
    "get",
    "list_items",
    "list_pages",
    "load_yaml",
    "logs",
    "node_info",
    "node_ready",
    "observe",
    "parse_kubeconfig",
    "patch",
    "plain_version",
    "resource",
    "server_of",
    "server_version",
    "watch",
]
