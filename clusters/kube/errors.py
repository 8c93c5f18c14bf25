"""What can go wrong talking to a cluster, translated once into domain errors.

Every failure of a call leaves the gateway as a `KubeError` (or a subclass naming the API
server's reason), with `message` (what a user reads), `retryable` (what the operations engine
reads to decide between backing off and failing at once), and, when the server answered with a
Kubernetes `Status`, its `reason` and its own message (shortened, control characters removed).
A body that is not a `Status` is never echoed: it may be anything a misconfigured server sends.
"""

from __future__ import annotations

import json
import re
import ssl
from http import HTTPStatus
from typing import Any

import urllib3

from clusters.kube_transport import AnswerTooLarge, CallDeadline
from orgs.exceptions import FlotillaError

MAX_DETAIL = 300
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]+")


class KubeError(FlotillaError):
    """The cluster's API could not be used; the message says why."""

    code = "cluster_unreachable"
    status = 502
    default_retryable = True

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        reason: str = "",
        http_status: int | None = None,
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message, fields=fields if fields is not None else {"kubeconfig": [message]})
        # An answer that is not Kubernetes's, or too large, does not change on a retry.
        self.retryable = self.default_retryable if retryable is None else retryable
        self.reason = reason
        self.http_status = http_status


class Unavailable(KubeError):
    """Not reachable, timed out, or answered 5xx: worth trying again later."""


class TooManyRequests(Unavailable):
    """429: the server asks to slow down; `retry_after` is its hint in seconds (0 if none)."""

    def __init__(self, message: str, *, retry_after: float = 0.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unauthorized(KubeError):
    """401: the credentials are not accepted; a retry does not change that."""

    default_retryable = False


class Forbidden(KubeError):
    """403: the credentials are known but may not do this (RBAC)."""

    default_retryable = False


class NotFound(KubeError):
    """404: the object, or the kind, is not there."""

    code = "not_found"
    status = 404
    default_retryable = False


class Conflict(KubeError):
    """409: the object changed meanwhile, or server-side apply found fields owned by others."""

    code = "conflict"
    status = 409
    default_retryable = False

    def __init__(
        self, message: str, *, conflicts: list[tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        # (manager, field) pairs of a server-side apply conflict: who owns what we wanted to set.
        self.conflicts = conflicts or []


class AlreadyExists(Conflict):
    """409 AlreadyExists: a create found the name taken."""


class Invalid(KubeError):
    """422 (or 400): the server refused the object; `causes` are (field, message) pairs."""

    code = "invalid"
    status = 400
    default_retryable = False

    def __init__(self, message: str, *, causes: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        self.causes = causes or []
        fields: dict[str, list[str]] = {}
        for name, text in self.causes:
            fields.setdefault(name or "object", []).append(text)
        super().__init__(message, fields=fields or {"object": [message]}, **kwargs)


class Gone(KubeError):
    """410: the resourceVersion or continue token has expired; list again from the start."""

    code = "gone"
    status = 410
    default_retryable = False

    def __init__(self, message: str, *, continue_token: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # The token the server offers to go on with an inconsistent list (may be empty).
        self.continue_token = continue_token


def _status_text(status: Any) -> str:
    try:
        code = HTTPStatus(int(status))
    except (TypeError, ValueError):
        return "with an unexpected HTTP status"
    return f"HTTP {code.value} {code.phrase}"


def _clean(text: Any) -> str:
    cleaned = _UNPRINTABLE.sub(" ", str(text)).strip()
    return cleaned if len(cleaned) <= MAX_DETAIL else cleaned[: MAX_DETAIL - 1] + "…"


def status_object(data: bytes) -> dict[str, Any] | None:
    """The body as a Kubernetes `Status`, or None when it is not one."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return body
    return None


def retry_after(headers: Any) -> float:
    """The Retry-After header in seconds (0 when absent or given as a date)."""
    value = headers.get("retry-after", "") if headers is not None else ""
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 0.0


def from_answer(status: int, data: bytes, headers: Any, server: str) -> KubeError:
    """An HTTP answer outside 2xx as the error that says what happened."""
    body = status_object(data) or {}
    reason = str(body.get("reason") or "")
    detail = _clean(body.get("message") or "")
    given = body.get("details")
    details: dict[str, Any] = given if isinstance(given, dict) else {}
    causes = [
        (str(c.get("field") or ""), _clean(c.get("message") or c.get("reason") or ""))
        for c in (details.get("causes") or [])
        if isinstance(c, dict)
    ]
    said = f"{server} answered {_status_text(status)}" + (f": {detail}" if detail else "")
    common: dict[str, Any] = {"reason": reason, "http_status": status}
    if status == 401:
        return Unauthorized(f"{server} refused the credentials ({_status_text(status)})", **common)
    if status == 403:
        return Forbidden(
            f"{server} refused the credentials ({_status_text(status)})" + (f": {detail}" if detail else ""),
            **common,
        )
    if status == 404:
        return NotFound(said, **common)
    if status == 409:
        if reason == "AlreadyExists":
            return AlreadyExists(said, **common)
        conflicts = [
            _apply_conflict(field, text) for field, text in causes if text.startswith("conflict with")
        ]
        if conflicts:
            owned = "; ".join(f"{field or '?'} is managed by {manager}" for manager, field in conflicts)
            return Conflict(f"{server}: server-side apply conflict ({owned})", conflicts=conflicts, **common)
        return Conflict(said, **common)
    if status == 410:
        given_meta = body.get("metadata")
        meta: dict[str, Any] = given_meta if isinstance(given_meta, dict) else {}
        return Gone(said, continue_token=str(meta.get("continue") or ""), **common)
    if status in (400, 422) and (reason in ("Invalid", "BadRequest") or causes):
        return Invalid(said, causes=causes, **common)
    if status == 429:
        return TooManyRequests(said, retry_after=retry_after(headers), **common)
    if status >= 500:
        return Unavailable(said, **common)
    return KubeError(said, **common)


def _apply_conflict(field: str, text: str) -> tuple[str, str]:
    """('kubectl', '.spec.replicas') from 'conflict with "kubectl" using apps/v1: .spec.replicas'."""
    match = re.match(r'conflict with "([^"]*)"', text)
    manager = match.group(1) if match else "another manager"
    return manager, field or text.rsplit(": ", 1)[-1]


def not_kubernetes(server: str) -> KubeError:
    """An answer that parsed (or not) but is not what a Kubernetes API server sends."""
    return KubeError(
        f"{server} answered, but not as a Kubernetes API server does; check the server address",
        retryable=False,
    )


def explain(exc: Exception, server: str) -> KubeError:
    """A failed call to `server` as an error a user can act on."""
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, CallDeadline):
        return Unavailable(f"{server} did not answer in full within {exc.seconds:.0f} s")
    if isinstance(exc, AnswerTooLarge):
        return KubeError(
            f"{server} sent an answer larger than {exc.limit // (1024 * 1024)} MiB", retryable=False
        )
    if isinstance(exc, ValueError | TypeError | AttributeError | KeyError):
        return not_kubernetes(server)
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
        return KubeError(f"{server}: the server's TLS certificate is not trusted by this kubeconfig")
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return Unavailable(f"{server} is not reachable ({reason.__class__.__name__})")
    return KubeError(f"{server}: the call failed ({exc.__class__.__name__})")
