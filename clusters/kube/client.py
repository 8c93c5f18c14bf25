"""Clients of a cluster's API: built once per endpoint and kubeconfig, and the one request path.

`connect(kubeconfig)` applies the outbound policy (unless the cluster is one Flotilla runs
itself) and returns a `Client` from a bounded, thread-safe cache keyed by the checked address,
the kubeconfig's digest and the limits. A kubeconfig that changes for the same server and user
(rotated credentials, a restarted local control plane) replaces the old client, which is closed.

`Client.request` is the single way a call leaves: the checked address, the kubeconfig's
credentials, a total deadline and a size cap per call (`clusters.kube_transport`), answers read as
raw JSON (no model objects: a snapshot reads thousands of objects a second), errors translated
once (`clusters.kube.errors`), and retries with backoff on 429 and 5xx for requests that are safe
to repeat (GET, LIST, the start of a WATCH, server-side apply, DELETE), never for a create.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import urllib3
from kubernetes import client as k8s

from clusters.kube.errors import (
    KubeError,
    Unavailable,
    explain,
    from_answer,
    not_kubernetes,
    retry_after,
)
from clusters.kube.kubeconfig import KubeconfigInvalid, check_server, identity, server_of, stored_parts
from clusters.kube_transport import (
    AnswerTooLarge,
    BoundedPoolManager,
    CallDeadline,
    CredentialsUnusable,
    Limits,
    StreamAnswer,
    ssl_context,
)
from config.outbound import CheckedTarget

REQUEST_TIMEOUT = (3.0, 10.0)  # connect, read (seconds) per socket operation
LIMITS = Limits()
CLIENT_CACHE_SIZE = 64
FIELD_MANAGER = "flotilla"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how patiently, a request that is safe to repeat is tried again.

    Attempts and total time are both bounded: never past the call's deadline, whatever the
    server's Retry-After says (a hint longer than what is left ends the call with its error).
    """

    attempts: int = 4
    base: float = 0.25
    cap: float = 4.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, hint: float) -> float:
        """Seconds before attempt `attempt + 1`: the server's hint, or exponential with jitter."""
        if hint > 0:
            return hint
        return float(min(self.cap, self.base * 2**attempt) * random.uniform(0.5, 1.0))


RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)


def _safe(method: str, content_type: str) -> bool:
    """Whether sending the request twice does no more than sending it once."""
    return method in ("GET", "HEAD", "DELETE") or (method == "PATCH" and content_type == APPLY_PATCH)


class Client:
    """One cluster's API as Flotilla uses it (built by `connect`, shared across threads).

    `api` is the kubernetes client's own `ApiClient` on the same transport, for the few callers
    that want typed calls; everything in the gateway goes through `request` and `open_stream`.
    """

    def __init__(self, api: k8s.ApiClient, server: str, limits: Limits) -> None:
        self.api = api
        self.server = server
        self.limits = limits
        self.retry = RETRY
        self.discovery_cache: Any = None  # (expires, Discovery), see clusters.kube.discovery
        self.lock = threading.Lock()
        configuration = api.configuration
        self._base = str(configuration.host).rstrip("/")
        self._headers = dict(api.default_headers)
        self._headers.pop("User-Agent", None)
        self._headers["User-Agent"] = "flotilla"
        auth = (configuration.api_key or {}).get("authorization")
        if auth:
            self._headers["Authorization"] = auth

    @property
    def pool(self) -> BoundedPoolManager:
        manager: BoundedPoolManager = self.api.rest_client.pool_manager
        return manager

    def with_retry(self, retry: RetryPolicy) -> Client:
        """The same client with another retry policy (a health probe wants one attempt)."""
        other = Client.__new__(Client)
        other.__dict__.update(self.__dict__)
        other.retry = retry
        return other

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        params = {k: v for k, v in (query or {}).items() if v is not None and v != ""}
        return self._base + path + ("?" + urlencode(params) if params else "")

    def headers(self, content_type: str | None, accept: str = "application/json") -> dict[str, str]:
        headers = {**self._headers, "Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        raw: bool = False,
    ) -> Any:
        """One API call: the parsed JSON answer (or the bytes with `raw`), or a `KubeError`."""
        url = self.url(path, query)
        payload = None if body is None else dump_json(body)
        headers = self.headers(content_type if payload is not None else None, accept)
        retry = self.retry if _safe(method, content_type) else NO_RETRY
        ends = time.monotonic() + self.limits.deadline
        attempt = 0
        while True:
            remaining = ends - time.monotonic()
            if remaining <= 0:
                raise Unavailable(f"{self.server} did not answer in full within {self.limits.deadline:.0f} s")
            error: KubeError
            hint = 0.0
            try:
                answer = self.pool.request(
                    method,
                    url,
                    body=payload,
                    headers=headers,
                    timeout=urllib3.Timeout(connect=REQUEST_TIMEOUT[0], read=REQUEST_TIMEOUT[1]),
                    deadline=remaining,
                )
            except (CallDeadline, AnswerTooLarge) as exc:
                raise explain(exc, self.server) from exc  # the budget is spent, or it would be again
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                error = explain(exc, self.server)
                if not isinstance(error, Unavailable):  # a TLS mismatch stays one
                    raise error from exc
            else:
                if 200 <= answer.status < 300:
                    if raw:
                        return answer.data
                    try:
                        return parse_json(answer.data) if answer.data else {}
                    except (ValueError, UnicodeDecodeError) as exc:
                        raise not_kubernetes(self.server) from exc
                error = from_answer(answer.status, answer.data, answer.headers, self.server)
                if answer.status not in RETRY_STATUSES:
                    raise error
                hint = retry_after(answer.headers)
            attempt += 1
            if attempt >= retry.attempts:
                raise error
            pause = retry.delay(attempt - 1, hint)
            if pause >= ends - time.monotonic():
                raise error
            retry.sleep(pause)

    def open_stream(
        self,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        stop: threading.Event | None = None,
        deadline: float | None = None,
        read_timeout: float | None = None,
    ) -> StreamAnswer:
        """A GET whose body is read as it arrives (watch, logs), retried like any GET at its start.

        Bounded by `stop`, `deadline` and the caller's own byte budget, not by the answer cap.
        """
        url = self.url(path, query)
        ends = None if deadline is None else time.monotonic() + deadline
        attempt = 0
        while True:
            remaining = None if ends is None else ends - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise Unavailable(f"{self.server} did not start the stream within {deadline:.0f} s")
            hint = 0.0
            try:
                stream = self.pool.stream(
                    "GET",
                    url,
                    headers=self.headers(None, "application/json, */*"),
                    timeout=urllib3.Timeout(connect=REQUEST_TIMEOUT[0], read=read_timeout),
                    stop=stop,
                    deadline=remaining,
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                error = explain(exc, self.server)
                if isinstance(exc, CallDeadline) or not isinstance(error, Unavailable):
                    raise error from exc
            else:
                if 200 <= stream.status < 300:
                    return stream
                data = stream.read_small()
                stream.close()
                error = from_answer(stream.status, data, stream.headers, self.server)
                if stream.status not in RETRY_STATUSES:
                    raise error
                hint = retry_after(stream.headers)
            attempt += 1
            if attempt >= self.retry.attempts or (stop is not None and stop.is_set()):
                raise error
            pause = self.retry.delay(attempt - 1, hint)
            if ends is not None and pause >= ends - time.monotonic():
                raise error
            self.retry.sleep(pause)


def dump_json(body: Any) -> bytes:
    """A request's body (orjson; the standard library for what orjson refuses)."""
    try:
        return orjson.dumps(body)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(body).encode()


def parse_json(data: bytes) -> Any:
    """An answer's JSON: orjson (a snapshot parses every object of a cluster), or the standard
    library for what orjson refuses (a lone surrogate escape, which Kubernetes may hold)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def path_segment(value: str) -> str:
    """A name in a URL path (names are DNS-like, but a stray '/' or '?' must not move the path)."""
    return quote(value, safe="")


# --- the cache -----------------------------------------------------------------------------

_clients: OrderedDict[tuple[str, str, Limits], Client] = OrderedDict()
# (server, user name, limits) -> the key of the client of its newest kubeconfig
_latest: dict[tuple[str, str, Limits], tuple[str, str, Limits]] = {}
_clients_lock = threading.Lock()


def _build_api(kubeconfig: str, target: CheckedTarget | None, limits: Limits) -> k8s.ApiClient:
    cluster, user = stored_parts(kubeconfig)
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
    # urllib3 retries nothing and follows no redirect: retries are `Client.request`'s decision.
    pool_args: dict[str, Any] = {
        "ssl_context": context,
        "cert_reqs": context.verify_mode,
        "retries": False,
        "num_pools": 2,
        "maxsize": 8,
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


def connect(kubeconfig: str, *, trusted: bool = False, limits: Limits = LIMITS) -> Client:
    """The client of a kubeconfig's current context, checked against the outbound policy.

    `trusted` is for clusters Flotilla runs itself (their kubeconfig is written by Flotilla, on
    loopback): no outbound check. Everything else is checked at every `connect`.
    """
    target = None if trusted else check_server(kubeconfig)
    digest = hashlib.sha256(kubeconfig.encode()).hexdigest()
    key = (target.address if target else "", digest, limits)
    with _clients_lock:
        found = _clients.get(key)
        if found is not None:
            _clients.move_to_end(key)
            return found
    built = Client(_build_api(kubeconfig, target, limits), server_of(kubeconfig), limits)
    # A new kubeconfig for the same server and user name replaces the old one's client.
    server, who = identity(kubeconfig)
    speaker = (server, who, limits)
    stale: list[Client] = []
    with _clients_lock:
        if key in _clients:  # another thread built it meanwhile: keep one
            stale.append(built)
            built = _clients[key]
        else:
            _clients[key] = built
            previous = _latest.get(speaker)
            if previous is not None and previous != key and previous in _clients:
                stale.append(_clients.pop(previous))
            _latest[speaker] = key
            while len(_clients) > CLIENT_CACHE_SIZE:
                _, old = _clients.popitem(last=False)
                stale.append(old)
            live = set(_clients)
            for name in [n for n, k in _latest.items() if k not in live]:
                del _latest[name]
    for old in stale:
        old.api.close()
    return built


def forget(kubeconfig: str) -> None:
    """Drop every cached client of this kubeconfig (a cluster deleted, credentials revoked)."""
    digest = hashlib.sha256(kubeconfig.encode()).hexdigest()
    with _clients_lock:
        gone = [k for k in _clients if k[1] == digest]
        dropped = [_clients.pop(k) for k in gone]
    for client in dropped:
        client.api.close()


def cached_clients() -> int:
    """How many clients the cache holds (for tests and the portal's own metrics)."""
    with _clients_lock:
        return len(_clients)
