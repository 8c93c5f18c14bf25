"""Calls to an imported cluster's API against real (tiny) servers on loopback: a total deadline
against a server that drips one byte at a time, a cap on the answer's size, no redirects, clear
errors for answers that are not Kubernetes's, and the client connecting to the address that was
checked (a DNS answer that changes afterwards is caught at the next call, never connected to)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from clusters import kube
from clusters.kube_transport import Limits
from config.outbound import OutboundRefused
from tests.clusters.fake_api import Answer, FakeApi, allowed, json_answer, kubeconfig_for, kubernetes


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], FakeApi]]:
    servers: list[FakeApi] = []

    def start(answer: Answer) -> FakeApi:
        server = FakeApi(answer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_a_kubernetes_answer_is_observed(serve: Callable[[Answer], FakeApi]) -> None:
    api = serve(kubernetes)
    with allowed(api):
        assert kube.observe(api.kubeconfig).version == "1.30.2"
    assert b"authorization: bearer t" in api.requests[0].lower()


def test_loopback_is_never_contacted_without_consent(serve: Callable[[Answer], FakeApi]) -> None:
    api = serve(kubernetes)
    with pytest.raises(OutboundRefused, match="loopback"):
        kube.observe(api.kubeconfig)
    assert api.requests == []


def test_a_server_that_drips_is_cut_at_the_deadline(serve: Callable[[Answer], FakeApi]) -> None:
    def drip(conn: socket.socket, request: bytes) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(0.5)  # well within the 10 s read timeout: only a total deadline stops it

    api = serve(drip)
    with allowed(api), pytest.raises(kube.KubeError) as failed:
        kube.observe(api.kubeconfig, limits=Limits(deadline=2.0))
    assert failed.value.message.endswith("did not answer in full within 2 s")


def test_a_huge_answer_is_capped(serve: Callable[[Answer], FakeApi]) -> None:
    def flood(conn: socket.socket, request: bytes) -> None:
        # No Content-Length: the size is only known by reading, as with a chunked answer.
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        block = b" " * 65536
        for _ in range(256):  # 16 MiB at most
            conn.sendall(block)

    def declared(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n{")

    for answer in (flood, declared):
        api = serve(answer)
        with allowed(api), pytest.raises(kube.KubeError, match="larger than 1 MiB") as failed:
            kube.observe(api.kubeconfig, limits=Limits(max_bytes=1024 * 1024))
        assert failed.value.retryable is False


@pytest.mark.parametrize(
    "body",
    [
        json_answer("200 OK", {"hello": "world"}),  # JSON, but no VersionInfo (pydantic refuses it)
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 14\r\n\r\n<html>hi</html",
        json_answer("200 OK", ["a", "list"]),
    ],
)
def test_an_answer_that_is_not_kubernetes_is_a_clear_error(
    serve: Callable[[Answer], FakeApi], body: bytes
) -> None:
    api = serve(lambda conn, request: conn.sendall(body))
    with allowed(api), pytest.raises(kube.KubeError, match="not as a Kubernetes API server does") as failed:
        kube.observe(api.kubeconfig)
    assert "hello" not in failed.value.message and "html" not in failed.value.message


def test_the_remote_s_words_are_not_echoed(serve: Callable[[Answer], FakeApi]) -> None:
    api = serve(
        lambda conn, request: conn.sendall(
            b"HTTP/1.1 500 secret-db-password-is-hunter2\r\nContent-Length: 9\r\n\r\nsecret!!!"
        )
    )
    with allowed(api), pytest.raises(kube.KubeError) as failed:
        kube.observe(api.kubeconfig)
    assert failed.value.message.endswith("answered HTTP 500 Internal Server Error")


def test_redirects_are_not_followed(serve: Callable[[Answer], FakeApi]) -> None:
    elsewhere = serve(kubernetes)
    location = f"http://127.0.0.1:{elsewhere.port}/version"
    api = serve(lambda conn, request: conn.sendall(json_answer("302 Found", {}, f"Location: {location}\r\n")))
    with allowed(api, elsewhere), pytest.raises(kube.KubeError, match="answered HTTP 302 Found"):
        kube.observe(api.kubeconfig)
    assert elsewhere.requests == []


def test_the_client_connects_to_the_checked_address(
    serve: Callable[[Answer], FakeApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves to an allowed address at the check and to another one afterwards
    (DNS rebinding): the call goes to the checked address, and the next call's check refuses."""
    api = serve(kubernetes)
    name = "rebinding.flotilla.test"
    answers = iter(["127.0.0.1", "127.0.0.2", "127.0.0.2"])
    asked: list[str] = []
    real = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:  # only this made-up name is answered here; everything else is real DNS
            asked.append(name)
            return real(next(answers), *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    kubeconfig = kubeconfig_for(f"http://{name}:{api.port}")
    with allowed(api):
        # Nothing listens on 127.0.0.2: had the client resolved the name again, this would fail.
        assert kube.observe(kubeconfig).version == "1.30.2"
        assert asked == [name]  # resolved once, by the check; never by the HTTP client
        assert all(f"Host: {name}:{api.port}".encode() in r for r in api.requests)
        with pytest.raises(OutboundRefused, match=r"127\.0\.0\.2\), a loopback address"):
            kube.observe(kubeconfig)
    assert len(api.requests) == 2
