"""How `clusters.kube` reaches an API server: a bounded HTTP transport for the kubernetes client.

The kubernetes client's own transport has per-socket timeouts only: a server that sends one byte
every few seconds holds a call forever, and a huge answer is read into memory whole. This one
gives every call a total deadline (a watchdog shuts the call's socket when it passes) and a cap
on the bytes read, and it is given an SSL context built in memory, so no certificate or key of a
kubeconfig is left in a temporary directory.

Streams (watches, followed logs) are not read whole: `BoundedPoolManager.stream` hands out the
chunks as they come, bounded by their own limits (a stop event, an optional deadline, a byte
budget) instead of the 32 MiB answer cap, which would cut a long follow.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


@dataclass(frozen=True)
class Limits:
    """What one call to a cluster may cost: total seconds, and bytes of answer."""

    deadline: float = 30.0
    max_bytes: int = 32 * 1024 * 1024


class CallDeadline(urllib3.exceptions.HTTPError):
    """The call did not finish within its total deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:.0f} s")
        self.seconds = seconds


class AnswerTooLarge(urllib3.exceptions.HTTPError):
    """The answer was larger than the cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"answer larger than {limit // (1024 * 1024)} MiB")
        self.limit = limit


class CredentialsUnusable(ValueError):
    """Certificate data of a kubeconfig that cannot be used (bad base64 or PEM)."""


_current = threading.local()


class _Watch:
    """The deadline of one call: at expiry, shut the sockets of the connections it used."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._connections: list[HTTPConnection] = []
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        """Shut the call's sockets now (a stream whose reader was told to stop)."""
        self._expire()

    def add(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)

    def add_socket(self, sock: socket.socket | None) -> None:
        # http.client forgets a connection's socket once an answer says "Connection: close", while
        # the answer is still being read from it: keep the socket itself too.
        if sock is not None:
            with self._lock:
                self._sockets.append(sock)

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            sockets = [getattr(c, "sock", None) for c in self._connections] + self._sockets
            for sock in sockets:
                if sock is None:
                    continue
                # The base class's shutdown on the descriptor: a blocked read in the calling
                # thread returns at once (an SSLSocket's own shutdown would first drop its state).
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _watched(connection: HTTPConnection) -> None:
    watch: _Watch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.add(connection)


def _sent(connection: HTTPConnection) -> None:
    watch: _Watch | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.add_socket(connection.sock)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)
        super().request(*args, **kwargs)
        _sent(self)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        _watched(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watched(self)
        super().request(*args, **kwargs)
        _sent(self)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class ReadAnswer:
    """An answer read whole (within the cap): what the kubernetes client reads from a response."""

    def __init__(self, response: urllib3.BaseHTTPResponse, data: bytes) -> None:
        self.status = response.status
        self.reason = response.reason
        self.headers = response.headers
        self.data = data

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        return self.data

    def getheaders(self) -> Any:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def release_conn(self) -> None:
        """Already released."""

    def close(self) -> None:
        """Nothing open."""


class BoundedPoolManager:
    """The `pool_manager` of a kubernetes `RESTClientObject`, with a deadline and a size cap per call."""

    def __init__(self, limits: Limits, **pool_args: Any) -> None:
        self.limits = limits
        self.inner = urllib3.PoolManager(**pool_args)
        self.inner.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def request(self, method: str, url: str, *, deadline: float | None = None, **kwargs: Any) -> ReadAnswer:
        """One call, read whole; `deadline` (seconds) shortens the limits' own for this call."""
        kwargs["preload_content"] = False
        kwargs["redirect"] = False  # an API server never redirects; a redirect could point anywhere
        seconds = (
            self.limits.deadline if deadline is None else max(0.001, min(deadline, self.limits.deadline))
        )
        watch = _Watch(seconds)
        _current.watch = watch
        watch.start()
        response: urllib3.BaseHTTPResponse | None = None
        try:
            response = self.inner.request(method, url, **kwargs)
            data = self._read(response)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if watch.expired:
                raise CallDeadline(watch.seconds) from exc
            raise
        finally:
            watch.stop()
            _current.watch = None
            if response is not None:
                response.release_conn()
        if watch.expired:
            raise CallDeadline(watch.seconds)
        return ReadAnswer(response, data)

    def _read(self, response: urllib3.BaseHTTPResponse) -> bytes:
        cap = self.limits.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            response.close()
            raise AnswerTooLarge(cap)
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.read(64 * 1024, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                # Drop the connection rather than drain the rest of an answer of unknown size.
                response.close()
                raise AnswerTooLarge(cap)
            chunks.append(chunk)
        return b"".join(chunks)

    def stream(
        self, method: str, url: str, *, stop: threading.Event | None, deadline: float | None, **kwargs: Any
    ) -> StreamAnswer:
        """A call whose body is read as it comes (watch, followed logs): see `StreamAnswer`."""
        kwargs["preload_content"] = False
        kwargs["redirect"] = False
        guard = _StreamGuard(stop, deadline)
        _current.watch = guard
        try:
            response = self.inner.request(method, url, **kwargs)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            guard.stop()
            if guard.expired:
                raise CallDeadline(guard.seconds) from exc
            raise
        finally:
            _current.watch = None
        guard.start()
        return StreamAnswer(response, guard)

    def clear(self) -> None:
        self.inner.clear()


class _StreamGuard(_Watch):
    """A stream's bounds: shut its socket when the stop event is set or the deadline passes.

    A blocked read cannot be interrupted otherwise; polling a few times a second costs nothing
    next to the stream itself, and a stream without a deadline needs no timer thread per second.
    """

    POLL = 0.2

    def __init__(self, stop: threading.Event | None, deadline: float | None) -> None:
        super().__init__(deadline if deadline is not None else 0.0)
        self._stop = stop
        self._ends = time.monotonic() + deadline if deadline is not None else None
        self._finished = threading.Event()
        self.stopped = False

    def start(self) -> None:
        if self._stop is None and self._ends is None:
            return
        threading.Thread(target=self._run, daemon=True, name="kube-stream-guard").start()

    def _run(self) -> None:
        while not self._finished.wait(self.POLL):
            if self._stop is not None and self._stop.is_set():
                self.stopped = True
                self._expire()
                return
            if self._ends is not None and time.monotonic() >= self._ends:
                self._expire()
                return

    def stop(self) -> None:
        self._finished.set()
        super().stop()


class StreamAnswer:
    """An open answer read chunk by chunk; closing it (or leaving its `with`) frees the connection."""

    def __init__(self, response: urllib3.BaseHTTPResponse, guard: _StreamGuard) -> None:
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self._guard = guard

    @property
    def interrupted(self) -> bool:
        """The stream was cut by its stop event or deadline (not ended by the server)."""
        return self._guard.expired

    @property
    def stopped(self) -> bool:
        """The stream was cut by its stop event."""
        return self._guard.stopped

    def read_small(self, limit: int = 64 * 1024) -> bytes:
        """The start of the body (an error's Status), at most `limit` bytes."""
        try:
            return self.response.read(limit, decode_content=True) or b""
        except (urllib3.exceptions.HTTPError, OSError):
            return b""

    def chunks(self, size: int = 64 * 1024) -> Iterator[bytes]:
        """The body as it arrives; ends quietly when the stream is cut by its bounds."""
        while True:
            try:
                chunk = self.response.read1(size, decode_content=True)
            except (urllib3.exceptions.HTTPError, OSError):
                if self._guard.expired:
                    return
                raise
            if not chunk:
                return
            yield chunk

    def close(self) -> None:
        self._guard.stop()
        # Drop the connection: the rest of an endless stream is never worth draining.
        self.response.close()
        self.response.release_conn()

    def __enter__(self) -> StreamAnswer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decoded(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise CredentialsUnusable(f"{what} is not valid base64") from exc


def ssl_context(cluster: dict[str, Any], user: dict[str, Any]) -> ssl.SSLContext:
    """The TLS settings of a kubeconfig's cluster and user, with nothing written to disk for long.

    Python can load a client certificate only from files: they go to a private directory that is
    removed before this returns, success or not.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cluster.get("insecure-skip-tls-verify") is True:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cluster.get("certificate-authority-data"):
        pem = _decoded(cluster["certificate-authority-data"], "certificate-authority-data")
        try:
            context.load_verify_locations(cadata=pem.decode("ascii", errors="replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise CredentialsUnusable("certificate-authority-data is not a PEM certificate") from exc
    else:
        context.load_default_certs()
    cert, key = user.get("client-certificate-data"), user.get("client-key-data")
    if cert or key:
        if not (cert and key):
            raise CredentialsUnusable("client-certificate-data and client-key-data go together")
        folder = tempfile.mkdtemp(prefix="flotilla-kube-")
        try:
            cert_path, key_path = Path(folder, "client.crt"), Path(folder, "client.key")
            for path, data in (
                (cert_path, _decoded(cert, "client-certificate-data")),
                (key_path, _decoded(key, "client-key-data")),
            ):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
            context.load_cert_chain(str(cert_path), str(key_path))
        except ssl.SSLError as exc:
            raise CredentialsUnusable("the client certificate or key is not usable PEM") from exc
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return context
