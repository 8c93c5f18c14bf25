"""Long answers read as they come: watches and pod logs.

Streams are not bound by the 32 MiB answer cap of ordinary calls (a followed log would be cut):
each has its own bounds — a stop event (set from any thread, it ends the stream within a fraction
of a second even while the server is silent), an optional deadline, and a byte budget.

A watch starts at a resourceVersion (from a list: `Pages.resource_version`), asks for bookmarks,
and reconnects from the last version it saw when the server ends the request (its
`timeoutSeconds`) or the connection drops. A 410 Gone (the version was compacted away) is raised
as `WatchExpired`: the caller lists again and watches from the new list's version.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import urllib3

from clusters.kube.client import Client, path_segment
from clusters.kube.discovery import Resource
from clusters.kube.errors import Gone, KubeError, Unavailable, from_answer, not_kubernetes
from clusters.kube.objects import resource_of

WATCH_REQUEST_SECONDS = 240  # per request; the watch reconnects after each
MAX_RECONNECTS = 5  # in a row without an event: the cluster is gone, say so
MAX_LINE = 1024 * 1024
DEFAULT_LOG_BYTES = 16 * 1024 * 1024


class WatchExpired(Gone):
    """The watch's resourceVersion is too old (410): list again, then watch from the list."""


@dataclass(frozen=True)
class WatchEvent:
    """One change: ADDED, MODIFIED, DELETED, or BOOKMARK (only the resourceVersion is meaningful)."""

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")


def _lines(chunks: Iterator[bytes], budget: int | None) -> Iterator[bytes]:
    """Complete lines of a stream (a line longer than MAX_LINE is cut there); stops at `budget` bytes."""
    pending = b""
    used = 0
    for chunk in chunks:
        if budget is not None and used + len(chunk) > budget:
            chunk = chunk[: budget - used]
        used += len(chunk)
        pending += chunk
        while True:
            end = pending.find(b"\n")
            if end < 0:
                if len(pending) >= MAX_LINE:
                    yield pending[:MAX_LINE]
                    pending = pending[MAX_LINE:]
                    continue
                break
            yield pending[:end]
            pending = pending[end + 1 :]
        if budget is not None and used >= budget:
            return
    if pending:
        yield pending


def watch(
    client: Client,
    what: Resource | tuple[str, str],
    *,
    namespace: str | None = None,
    resource_version: str = "",
    label_selector: str | None = None,
    field_selector: str | None = None,
    stop: threading.Event | None = None,
    deadline: float | None = None,
    bookmarks: bool = False,
    request_seconds: int = WATCH_REQUEST_SECONDS,
) -> Generator[WatchEvent, None, None]:
    """Changes of a resource from `resource_version` on, until `stop`, `deadline` or the caller stops.

    Bookmarks move the position forward and are yielded only with `bookmarks=True`. Without a
    `resource_version` the server starts with an ADDED event per existing object.
    """
    res = resource_of(client, what)
    path = res.path(namespace)
    ends = None if deadline is None else time.monotonic() + deadline
    position = resource_version
    failures = 0
    while not (stop is not None and stop.is_set()):
        remaining = None if ends is None else ends - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        seconds = request_seconds if remaining is None else max(1, min(request_seconds, int(remaining) + 1))
        query = {
            "watch": "1",
            "resourceVersion": position or None,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": seconds,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
        }
        try:
            stream = client.open_stream(
                path, query=query, stop=stop, deadline=remaining, read_timeout=seconds + 15
            )
        except Gone as exc:
            raise _expired(client, res, exc) from exc
        except Unavailable:
            failures += 1
            if failures >= MAX_RECONNECTS:
                raise
            client.retry.sleep(client.retry.delay(failures, 0.0))
            continue
        with stream:
            try:
                for line in _lines(stream.chunks(), None):
                    if not line.strip():
                        continue
                    event = _event(client, line)
                    if event.type == "ERROR":
                        status = event.object
                        error = from_answer(
                            int(status.get("code") or 500), json.dumps(status).encode(), None, client.server
                        )
                        if isinstance(error, Gone):
                            raise _expired(client, res, error)
                        raise error
                    failures = 0
                    position = event.resource_version or position
                    if event.type == "BOOKMARK" and not bookmarks:
                        continue
                    yield event
            except (urllib3.exceptions.HTTPError, OSError):
                failures += 1  # the connection dropped mid-stream: reconnect from `position`
                if failures >= MAX_RECONNECTS:
                    raise Unavailable(f"{client.server}: the watch of {res.plural} keeps being cut") from None
            if stream.stopped:
                return
        # The server ended the request (its timeoutSeconds): go on from the last version seen.


def _expired(client: Client, res: Resource, exc: KubeError) -> WatchExpired:
    return WatchExpired(
        f"{client.server}: the watch of {res.plural} started from a version the server no longer "
        "keeps; list again and watch from the list's version",
        reason=exc.reason,
        http_status=410,
    )


def _event(client: Client, line: bytes) -> WatchEvent:
    try:
        body = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise not_kubernetes(client.server) from exc
    if not isinstance(body, dict) or not isinstance(body.get("object"), dict):
        raise not_kubernetes(client.server)
    return WatchEvent(str(body.get("type", "")), body["object"])


def logs(
    client: Client,
    pod: str,
    namespace: str,
    *,
    container: str | None = None,
    follow: bool = False,
    tail_lines: int | None = None,
    since_seconds: int | None = None,
    timestamps: bool = False,
    stop: threading.Event | None = None,
    deadline: float | None = None,
    max_bytes: int | None = DEFAULT_LOG_BYTES,
) -> Generator[str, None, None]:
    """A pod's log, line by line as the kubelet sends it; ends at `stop`, `deadline` or `max_bytes`.

    Without `follow` it ends with the log; with it, when the container stops or a bound is hit.
    """
    query = {
        "container": container,
        "follow": "true" if follow else None,
        "tailLines": tail_lines,
        "sinceSeconds": since_seconds,
        "timestamps": "true" if timestamps else None,
    }
    path = f"/api/v1/namespaces/{path_segment(namespace)}/pods/{path_segment(pod)}/log"
    read_timeout = None if follow else 30.0
    with client.open_stream(
        path, query=query, stop=stop, deadline=deadline, read_timeout=read_timeout
    ) as stream:
        try:
            for line in _lines(stream.chunks(), max_bytes):
                yield line.rstrip(b"\r").decode("utf-8", errors="replace")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(
                f"{client.server}: the log stream of {pod} was cut ({exc.__class__.__name__})"
            ) from exc
