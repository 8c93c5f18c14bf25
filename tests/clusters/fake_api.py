"""A tiny HTTP server on loopback that answers like a Kubernetes API server, or not (tests only)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable

from django.test import override_settings

Answer = Callable[[socket.socket, bytes], None]
VERSION = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.2",
    "gitCommit": "abc",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class FakeApi:
    """An HTTP server on 127.0.0.1 whose answer a test writes byte by byte."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                self.requests.append(data)
                self.answer(conn, data)
            except OSError:
                return  # the client went away: what the deadline and the cap do

    def close(self) -> None:
        self._listener.close()

    @property
    def kubeconfig(self) -> str:
        return kubeconfig_for(f"http://127.0.0.1:{self.port}")


def kubeconfig_for(server: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: k\n  cluster:\n    server: {server}\n"
        "users:\n- name: u\n  user:\n    token: t\n"
        "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
    )


def json_answer(status: str, body: object, extra: str = "") -> bytes:
    raw = json.dumps(body).encode()
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}\r\n{extra}"
    return head.encode() + b"Connection: close\r\n\r\n" + raw


def kubernetes(conn: socket.socket, request: bytes) -> None:
    path = request.split(b" ", 2)[1]
    if path.startswith(b"/version"):
        conn.sendall(json_answer("200 OK", VERSION))
    else:
        conn.sendall(json_answer("200 OK", {"kind": "NodeList", "apiVersion": "v1", "items": []}))


def allowed(*servers: FakeApi) -> override_settings:
    """The operator allow-lists exactly these test servers (plain http on loopback)."""
    return override_settings(FLOTILLA_OUTBOUND_ALLOW=[f"127.0.0.1:{s.port}" for s in servers])
