"""The gateway's failure handling, injected by a small HTTP server on loopback: which requests are
retried on 429/5xx and how often, Retry-After, the call's deadline, errors translated once, an
expired continue token, a watch that reconnects and meets a 410, streams that stop on request and
are not cut by the answer cap, and the client cache."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from clusters import kube
from clusters.kube import client as kube_client
from clusters.kube_transport import Limits
from tests.clusters.fake_api import VERSION, Answer, FakeApi, json_answer, kubeconfig_for


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


class Pauses:
    """A retry policy's sleep that records the pauses instead of sleeping them."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def client_for(api: FakeApi, pauses: Pauses | None = None, limits: Limits = kube.LIMITS) -> kube.Client:
    client = kube.connect(api.kubeconfig, trusted=True, limits=limits)
    return client.with_retry(kube.RetryPolicy(sleep=pauses or Pauses()))


def status(code: int, reason: str, message: str, **extra: object) -> dict[str, object]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message, **extra}  # fmt: skip


def scripted(*answers: bytes) -> Answer:
    """Answer each request with the next of `answers` (the last one again once they run out)."""
    left = list(answers)

    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(left.pop(0) if len(left) > 1 else left[0])

    return answer


AFTER_60 = "Retry-After: 60\r\n"


def method_of(request: bytes) -> str:
    return request.split(b" ", 1)[0].decode()


def test_a_get_is_retried_on_5xx_with_backoff(serve: Callable[[Answer], FakeApi]) -> None:
    api = serve(
        scripted(
            json_answer("503 Service Unavailable", status(503, "ServiceUnavailable", "etcd is starting")),
            json_answer("502 Bad Gateway", {}),
            json_answer("200 OK", VERSION),
        )
    )
    pauses = Pauses()
    assert kube.server_version(client_for(api, pauses)) == "v1.30.2"
    assert len(api.requests) == 3
    assert len(pauses.asked) == 2 and pauses.asked[0] <= pauses.asked[1]  # exponential, with jitter


def test_retry_after_is_honoured(serve: Callable[[Answer], FakeApi]) -> None:
    api = serve(
        scripted(
            json_answer("429 Too Many Requests", status(429, "TooManyRequests", "x"), "Retry-After: 2\r\n"),
            json_answer("200 OK", VERSION),
        )
    )
    pauses = Pauses()
    kube.server_version(client_for(api, pauses))
    assert pauses.asked == [2.0]


def test_a_retry_after_beyond_the_deadline_ends_the_call(serve: Callable[[Answer], FakeApi]) -> None:
    api = serve(
        scripted(json_answer("429 Too Many Requests", status(429, "TooManyRequests", "busy"), AFTER_60))
    )
    pauses = Pauses()
    with pytest.raises(kube.TooManyRequests) as failed:
        kube.server_version(client_for(api, pauses, Limits(deadline=5)))
    assert len(api.requests) == 1 and pauses.asked == []
    assert failed.value.retryable is True and failed.value.retry_after == 60
    assert failed.value.message.endswith("answered HTTP 429 Too Many Requests: busy")


def test_attempts_are_bounded(serve: Callable[[Answer], FakeApi]) -> None:
    api = serve(scripted(json_answer("500 Internal Server Error", {})))
    with pytest.raises(kube.Unavailable) as failed:
        kube.server_version(client_for(api))
    assert len(api.requests) == kube.RETRY.attempts
    assert failed.value.retryable is True
    assert failed.value.message.endswith("answered HTTP 500 Internal Server Error")


def test_a_create_is_never_retried_but_apply_and_delete_are(serve: Callable[[Answer], FakeApi]) -> None:
    api = serve(scripted(json_answer("503 Service Unavailable", {})))
    client = client_for(api)
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    with pytest.raises(kube.Unavailable):
        kube.create(client, node)
    assert [method_of(r) for r in api.requests] == ["POST"]

    api.requests.clear()
    with pytest.raises(kube.Unavailable):
        kube.apply(client, node)
    assert [method_of(r) for r in api.requests] == ["PATCH"] * kube.RETRY.attempts
    assert b"content-type: application/apply-patch+yaml" in api.requests[0].lower()
    assert b"fieldManager=flotilla" in api.requests[0]

    api.requests.clear()
    with pytest.raises(kube.Unavailable):
        kube.patch(client, "v1", "Node", "n1", {"metadata": {"labels": {"a": "b"}}})
    assert [method_of(r) for r in api.requests] == ["PATCH"]  # a merge patch is not repeated

    api.requests.clear()
    with pytest.raises(kube.Unavailable):
        kube.delete(client, "v1", "Node", "n1")
    assert [method_of(r) for r in api.requests] == ["DELETE"] * kube.RETRY.attempts


@pytest.mark.parametrize(
    ("http", "body", "error", "retryable"),
    [
        ("401 Unauthorized", status(401, "Unauthorized", "Unauthorized"), kube.Unauthorized, False),
        ("403 Forbidden", status(403, "Forbidden", 'nodes is forbidden: User "x"'), kube.Forbidden, False),
        ("404 Not Found", status(404, "NotFound", 'nodes "n1" not found'), kube.NotFound, False),
        ("409 Conflict", status(409, "AlreadyExists", 'nodes "n1" exists'), kube.AlreadyExists, False),
        ("409 Conflict", status(409, "Conflict", "the object has been modified"), kube.Conflict, False),
        ("410 Gone", status(410, "Expired", "too old resource version"), kube.Gone, False),
        ("400 Bad Request", {"not": "a status"}, kube.KubeError, True),
    ],
)
def test_answers_are_translated_once(
    serve: Callable[[Answer], FakeApi], http: str, body: object, error: type[kube.KubeError], retryable: bool
) -> None:
    api = serve(scripted(json_answer(http, body)))
    with pytest.raises(error) as failed:
        kube.get(client_for(api), "v1", "Node", "n1")
    assert type(failed.value) is error
    assert failed.value.retryable is retryable
    assert len(api.requests) == 1  # none of these changes on a retry within the call
    if isinstance(body, dict) and body.get("kind") == "Status" and error is not kube.Unauthorized:
        assert str(body["message"]) in failed.value.message
        assert failed.value.reason == body["reason"]


def test_invalid_names_the_fields(serve: Callable[[Answer], FakeApi]) -> None:
    bad = 'Invalid value: "Bad_Name"'
    causes = [{"reason": "FieldValueInvalid", "message": bad, "field": "metadata.name"}]
    body = status(422, "Invalid", 'Node "Bad_Name" is invalid', details={"causes": causes})
    api = serve(scripted(json_answer("422 Unprocessable Entity", body)))
    with pytest.raises(kube.Invalid) as failed:
        kube.create(client_for(api), {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "Bad_Name"}})
    assert failed.value.causes == [("metadata.name", 'Invalid value: "Bad_Name"')]
    assert failed.value.fields == {"metadata.name": ['Invalid value: "Bad_Name"']}
    assert failed.value.retryable is False


def test_an_apply_conflict_names_managers_and_fields(serve: Callable[[Answer], FakeApi]) -> None:
    causes = [
        {"type": "FieldManagerConflict", "message": 'conflict with "kubectl" using v1: .spec.unschedulable',
         "field": ".spec.unschedulable"},
    ]  # fmt: skip
    body = status(409, "Conflict", "Apply failed with 1 conflict", details={"causes": causes})
    api = serve(scripted(json_answer("409 Conflict", body)))
    with pytest.raises(kube.Conflict) as failed:
        kube.apply(client_for(api), {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    assert failed.value.conflicts == [("kubectl", ".spec.unschedulable")]
    assert ".spec.unschedulable is managed by kubectl" in failed.value.message


def _list_page(names: list[str], token: str) -> bytes:
    return json_answer(
        "200 OK",
        {
            "kind": "NodeList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "42", "continue": token},
            "items": [{"metadata": {"name": n}} for n in names],
        },
    )


def test_an_expired_continue_token_is_its_own_error(serve: Callable[[Answer], FakeApi]) -> None:
    expired = json_answer("410 Gone", status(410, "Expired", "The provided continue parameter is too old"))
    api = serve(scripted(_list_page(["a", "b"], "tok"), expired))
    pages = kube.list_pages(client_for(api), ("v1", "Node"), limit=2)
    seen = []
    with pytest.raises(kube.ContinueExpired) as failed:
        for page in pages:
            seen += [i["metadata"]["name"] for i in page["items"]]
    assert seen == ["a", "b"] and failed.value.retryable is False
    assert b"limit=2" in api.requests[0] and b"continue=tok" in api.requests[1]


def test_an_expired_list_can_restart(serve: Callable[[Answer], FakeApi]) -> None:
    expired = json_answer("410 Gone", status(410, "Expired", "too old"))
    api = serve(scripted(_list_page(["a"], "tok"), expired, _list_page(["a"], "tok2"), _list_page(["b"], "")))
    pages = kube.list_pages(client_for(api), ("v1", "Node"), limit=1, on_expired="restart")
    taken: list[str] = []
    for page in pages:
        if pages.restarts and taken and page["metadata"]["continue"] == "tok2":
            taken = []  # what the first pass took is dropped
        taken += [i["metadata"]["name"] for i in page["items"]]
    assert pages.restarts == 1 and taken == ["a", "b"] and pages.resource_version == "42"


def _stream_head() -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"


def _event(kind: str, name: str, version: str) -> bytes:
    obj = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name, "resourceVersion": version}}
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def test_a_watch_reconnects_from_the_last_version_and_meets_410(serve: Callable[[Answer], FakeApi]) -> None:
    def answer(conn: socket.socket, request: bytes) -> None:
        if b"resourceVersion=10&" in request or request.split(b" ")[1].endswith(b"resourceVersion=10"):
            conn.sendall(_stream_head() + _event("ADDED", "a", "11") + _event("BOOKMARK", "", "17"))
        elif b"resourceVersion=17" in request:
            gone = {"type": "ERROR", "object": status(410, "Expired", "too old resource version: 17 (30)")}
            conn.sendall(_stream_head() + json.dumps(gone).encode() + b"\n")

    api = serve(answer)
    events = []
    with pytest.raises(kube.WatchExpired):
        for event in kube.watch(client_for(api), ("v1", "Node"), resource_version="10", deadline=30):
            events.append((event.type, event.object["metadata"]["name"]))
    assert events == [("ADDED", "a")]  # the bookmark moved the position without being handed out
    assert len(api.requests) == 2
    assert all(b"allowWatchBookmarks=true" in r and b"watch=1" in r for r in api.requests)


def test_a_silent_watch_ends_when_told_to_stop(serve: Callable[[Answer], FakeApi]) -> None:
    release = threading.Event()

    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(_stream_head() + _event("ADDED", "a", "11"))
        release.wait(60)  # then silent, connection open

    api = serve(answer)
    stop = threading.Event()
    events = kube.watch(client_for(api), ("v1", "Node"), resource_version="10", stop=stop)
    assert next(events).type == "ADDED"
    stop.set()
    assert list(events) == []  # returns although the server never ends the answer
    release.set()
    assert len(api.requests) == 1


def test_a_followed_log_is_not_cut_by_the_answer_cap(serve: Callable[[Answer], FakeApi]) -> None:
    line = b"x" * 1023 + b"\n"

    def answer(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        for _ in range(2048):  # 2 MiB, twice the cap of an ordinary call below
            conn.sendall(line)

    api = serve(answer)
    client = client_for(api, limits=Limits(max_bytes=1024 * 1024))
    lines = list(kube.logs(client, "web-0", "shop", follow=True, max_bytes=None))
    assert len(lines) == 2048 and lines[0] == "x" * 1023
    assert b"/api/v1/namespaces/shop/pods/web-0/log?follow=true" in api.requests[0]
    bounded = list(kube.logs(client, "web-0", "shop", follow=True, max_bytes=10 * 1024))
    assert len(bounded) == 10 and sum(len(x) + 1 for x in bounded) <= 10 * 1024


def test_clients_are_cached_per_kubeconfig_and_replaced_when_it_changes(
    serve: Callable[[Answer], FakeApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = serve(scripted(json_answer("200 OK", VERSION)))
    first = kube.connect(api.kubeconfig, trusted=True)
    assert kube.connect(api.kubeconfig, trusted=True) is first

    rotated = api.kubeconfig.replace("token: t", "token: t2")
    second = kube.connect(rotated, trusted=True)
    assert second is not first
    # The old credentials' client was dropped (and closed) when the new ones appeared.
    current = kube.connect(api.kubeconfig, trusted=True)
    assert current is not first
    # Another user of the same server is not a change of credentials: both clients stay.
    colleague = rotated.replace("- name: u\n", "- name: other\n").replace("user: u\n", "user: other\n")
    theirs = kube.connect(colleague, trusted=True)
    assert kube.connect(api.kubeconfig, trusted=True) is current is not theirs
    assert kube.connect(colleague, trusted=True) is theirs

    monkeypatch.setattr(kube_client, "CLIENT_CACHE_SIZE", 2)
    others = [FakeApi(scripted(json_answer("200 OK", VERSION))) for _ in range(3)]
    try:
        for other in others:
            kube.connect(other.kubeconfig, trusted=True)
        assert kube.cached_clients() == 2
    finally:
        for other in others:
            other.close()


def test_the_cache_builds_one_client_under_concurrency(serve: Callable[[Answer], FakeApi]) -> None:
    api = serve(scripted(json_answer("200 OK", VERSION)))
    kubeconfig = kubeconfig_for(f"http://127.0.0.1:{api.port}").replace("token: t", "token: concurrent")
    got: list[kube.Client] = []
    start = threading.Barrier(8)

    def connect() -> None:
        start.wait()
        got.append(kube.connect(kubeconfig, trusted=True))

    threads = [threading.Thread(target=connect) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8 and len({id(c) for c in got}) == 1


def test_a_body_dripped_after_a_connection_close_head_is_cut_at_the_deadline(
    serve: Callable[[Answer], FakeApi],
) -> None:
    """http.client lets go of a connection's socket once the head says "Connection: close"; the
    deadline must still reach the socket the body is read from."""
    finished = threading.Event()

    def drip(conn: socket.socket, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n")
        conn.sendall(b"Connection: close\r\n\r\n")
        for _ in range(400):
            if finished.wait(0.5):  # well within the read timeout: only the deadline stops it
                return
            conn.sendall(b" ")

    api = serve(drip)
    client = kube.connect(api.kubeconfig, trusted=True, limits=Limits(deadline=2.0)).with_retry(kube.NO_RETRY)
    try:
        with pytest.raises(kube.Unavailable, match="did not answer in full within 2 s"):
            kube.server_version(client)
    finally:
        finished.set()
