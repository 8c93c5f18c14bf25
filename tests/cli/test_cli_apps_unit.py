"""Fast tests of `flotilla apps`: the API is faked at the HTTP level.

No Django here: run with `pytest tests/cli/test_cli_apps_unit.py -p no:django --noconftest`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from cli import app_tables, progress, runtime
from cli.app_flags import check_health, parse_port, parse_seconds
from cli.commands import apps as apps_cmd
from cli.errors import UsageError
from cli.main import build_app
from tests.cli.test_cli_clusters_unit import FakeApi, assert_error, cluster, error, operation, page

SERVER = "http://flotilla.test"
TOKEN = "flt_0123abcd_s3cr3t"
API = "/api/v1/clusters/"
APPS = f"{API}apps/"
NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)


def app_json(**extra: Any) -> dict[str, Any]:
    """An app as the API shows it."""
    spec = {
        "image": "nginx:1.27",
        "replicas": 3,
        "command": [],
        "args": [],
        "env": [{"name": "MODE", "value": "prod"}, {"name": "DEBUG", "value": "0"}],
        "secret_keys": ["TOKEN"],
        "ports": [{"port": 80, "protocol": "TCP", "name": "http"}],
        "resources": {"cpu_request": "250m", "cpu_limit": "", "memory_request": "", "memory_limit": "512Mi"},
        "readiness": {"type": "http", "path": "/healthz", "port": 80},
        "liveness": None,
        "labels": {"tier": "web"},
        "annotations": {},
        "volumes": [],
        "progress_deadline": 600,
        "restarted_at": "",
        **extra.pop("spec", {}),
    }
    return {
        "id": 21,
        "name": "web",
        "namespace": "default",
        "kind": "deployment",
        "cluster": {"id": 7, "name": "demo"},
        "status": "available",
        "status_reason": "",
        "revision": 4,
        "adopted": False,
        "spec": spec,
        "replicas": {"desired": 3, "updated": 3, "ready": 3, "available": 3},
        "observed_at": "2026-12-02T11:59:00Z",
        "operation": None,
        "created_at": "2026-12-02T09:00:00Z",
        "updated_at": "2026-12-02T11:00:00Z",
        **extra,
    }


def app_op(ident: int = 30, kind: str = "app_update", status: str = "queued", **extra: Any) -> dict[str, Any]:
    """An operation on an app."""
    return operation(ident=ident, kind=kind, status=status, **extra)


def accepted(item: dict[str, Any] | None = None, op: dict[str, Any] | None = None) -> dict[str, Any]:
    """The 202 answer of a change."""
    return {"app": item or app_json(status="deploying"), "operation": op or app_op()}


def pod(name: str, **extra: Any) -> dict[str, Any]:
    """A pod as `apps pods` gets it (PodInfo.to_dict())."""
    return {
        "name": name,
        "namespace": "default",
        "phase": "Running",
        "ready": 1,
        "total": 1,
        "restarts": 0,
        "node": "demo-web-0",
        "ip": "10.0.0.5",
        "created_at": "2026-12-02T11:55:00Z",
        "deleting": False,
        "owner_kind": "ReplicaSet",
        "owner_name": "web-6d4b",
        "reason": "",
        "containers": [],
        **extra,
    }


REVISIONS = [
    {
        "number": 1,
        "kind": "deploy",
        "changes": [],
        "created_by": "alice@example.com",
        "created_at": "2026-12-02T09:00:00Z",
        "current": False,
        "rolled_back_to": None,
    },
    {
        "number": 2,
        "kind": "update",
        "changes": ["image: nginx:1.25 → nginx:1.27", "env DEBUG added"],
        "created_by": "bob@example.com",
        "created_at": "2026-12-02T10:00:00Z",
        "current": False,
        "rolled_back_to": None,
    },
    {
        "number": 4,
        "kind": "scale",
        "changes": ["replicas: 2 → 3"],
        "created_by": "alice@example.com",
        "created_at": "2026-12-02T11:00:00Z",
        "current": True,
        "rolled_back_to": None,
    },
    {
        "number": 3,
        "kind": "rollback",
        "changes": ["image: nginx:1.27 → nginx:1.25"],
        "created_by": "bob@example.com",
        "created_at": "2026-12-02T10:30:00Z",
        "current": False,
        "rolled_back_to": 1,
    },
]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Credentials from the environment, no real waits, no terminal, a fixed clock."""
    for name in ("FLOTILLA_OUTPUT", "FLOTILLA_CLI_TRACEBACK", "KUBECONFIG", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOTILLA_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("FLOTILLA_SERVER", SERVER)
    monkeypatch.setenv("FLOTILLA_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(progress, "_sleep", lambda seconds: None)
    monkeypatch.setattr(app_tables, "_now", lambda: NOW)
    yield


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    fake.on("GET", API, page([cluster()]))
    fake.on("GET", APPS, page([app_json()]))
    fake.on("GET", f"{APPS}21/", app_json())
    return fake


@pytest.fixture
def run(api: FakeApi) -> Callable[..., Result]:
    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(build_app(transport=httpx.MockTransport(api)), list(args), input=input)

    return invoke


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line.strip()]


# --- the flags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "port"),
    [
        ("80", {"port": 80, "protocol": "TCP", "name": ""}),
        ("53/udp", {"port": 53, "protocol": "UDP", "name": ""}),
        ("http=8080", {"port": 8080, "protocol": "TCP", "name": "http"}),
        (" metrics = 9090/TCP ", {"port": 9090, "protocol": "TCP", "name": "metrics"}),
        ("sig=3868/sctp", {"port": 3868, "protocol": "SCTP", "name": "sig"}),
    ],
)
def test_parse_port(text: str, port: dict[str, Any]) -> None:
    assert parse_port(text) == port


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("http", "'http' is not a port number"),
        ("0", "0 is not between 1 and 65535"),
        ("70000", "70000 is not between 1 and 65535"),
        ("-1", "'-1' is not a port number"),
        ("80/icmp", "the protocol must be one of tcp, udp, sctp"),
        ("=80", "the name before '=' is empty"),
        ("", "'' is not a port number"),
    ],
)
def test_parse_port_refuses(text: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_port(text)
    assert caught.value.message == f"--port {text!r}: {reason}"
    assert caught.value.hint == "--port 80, --port 53/udp or --port http=8080"


def test_health_check_shapes() -> None:
    assert check_health("http:/healthz:8080", option="--health") == "http:/healthz:8080"
    assert check_health("HTTP:/a:b:81", option="--health") == "http:/a:b:81"
    assert check_health("tcp:5432", option="--health") == "tcp:5432"
    assert check_health("exec:cat /tmp/ok", option="--health") == "exec:cat /tmp/ok"
    assert check_health("none", option="--health", clearable=True) is None
    for bad, reason in (
        ("none", "start with http:, tcp: or exec:"),
        ("grpc:50051", "start with http:, tcp: or exec:"),
        ("http:healthz:80", "the path starting with '/'"),
        ("http:/healthz", "the path starting with '/'"),
        ("http:/healthz:0", "'0' is not a port between 1 and 65535"),
        ("tcp:db", "'db' is not a port between 1 and 65535"),
        ("exec: ", "the exec command is empty"),
    ):
        with pytest.raises(UsageError) as caught:
            check_health(bad, option="--health")
        assert caught.value.message.startswith("--health ") and reason in caught.value.message, bad


def test_seconds() -> None:
    assert parse_seconds("600", option="--progress-deadline") == 600
    assert parse_seconds("10m", option="--progress-deadline") == 600
    with pytest.raises(UsageError, match="--progress-deadline"):
        parse_seconds("soon", option="--progress-deadline")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "http"], "--port 'http': 'http' is not a port number"),
        (["--port", "80", "--port", "http=80/tcp"], "--port 'http=80/tcp': 80/tcp is given twice"),
        (["--env", "MODE"], "--env: expected KEY=VALUE (its occurrence number 1 is not)"),
        (["--env", "A=1", "--env", "=2"], "--env: expected KEY=VALUE (its occurrence number 2 is not)"),
        (["--env", "1X=a"], "--env 1X: a variable name is"),
        (["--env", "A=1", "--env", "A=2"], "--env A: given twice"),
        (["--health", "http:/healthz"], "--health 'http:/healthz': write http:PATH:PORT"),
        (["--liveness", "udp:53"], "--liveness 'udp:53': start with http:, tcp: or exec:"),
        (["--label", "tier"], "--label: expected KEY=VALUE"),
        (["--cpu", " "], "--cpu ' ': give a quantity"),
        (["--command", "sh -c 'unclosed"], "--command: No closing quotation"),
        (["--progress-deadline", "later"], "--progress-deadline: 'later' is not a duration"),
        (
            ["--secret", "A=1", "--secret-from-file", "A=/dev/null"],
            "--secret and --secret-from-file both give A",
        ),
        (
            ["--secret-from-file", "K=/nonexistent/file"],
            "--secret-from-file K: cannot read /nonexistent/file",
        ),
        (["--timeout", "soon"], "--timeout: 'soon' is not a duration"),
    ],
)
def test_deploy_bad_flags_are_usage_errors_before_any_call(
    run: Callable[..., Result], api: FakeApi, flags: list[str], message: str
) -> None:
    result = run("apps", "deploy", "web", "--cluster", "demo", "--image", "nginx", *flags)

    assert_error(result, 2, message)
    assert api.requests == []


def test_a_bad_secret_is_never_echoed(run: Callable[..., Result], api: FakeApi) -> None:
    result = run("apps", "deploy", "web", "--cluster", "demo", "--image", "nginx", "--secret", "hunter2")

    assert_error(result, 2, "--secret: expected KEY=VALUE")
    assert "hunter2" not in result.output


def test_a_missing_option_is_a_usage_error(run: Callable[..., Result], api: FakeApi) -> None:
    result = run("apps", "deploy", "web", "--image", "nginx")

    assert result.exit_code == 2
    assert "--cluster" in result.output
    assert api.requests == []


# --- deploy -------------------------------------------------------------------------------------


def test_deploy_sends_the_whole_spec_and_the_idempotency_key(
    run: Callable[..., Result], api: FakeApi, tmp_path: Path
) -> None:
    api.on("POST", APPS, accepted(op=app_op(kind="app_deploy")), status=202)
    key_file = tmp_path / "key.pem"
    key_file.write_text("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    token_file = tmp_path / "token"
    token_file.write_text("tok-from-file\n")

    result = run(
        "apps", "deploy", "web", "--cluster", "demo", "--image", "nginx:1.27", "--namespace", "shop",
        "--replicas", "3", "--port", "80", "--port", "53/udp", "--port", "metrics=9090",
        "--env", "MODE=prod", "--env", "URL=http://x/?a=b", "--env", "EMPTY=",
        "--secret", "PASSWORD=hunter2", "--secret-from-file", f"TLS_KEY={key_file}",
        "--secret-from-file", f"TOKEN={token_file}",
        "--cpu", "250m", "--memory", "256Mi", "--cpu-limit", "1", "--memory-limit", "512Mi",
        "--health", "http:/healthz:80", "--liveness", "tcp:80", "--label", "tier=web",
        "--annotation", "team=shop", "--command", "sh -c 'exec nginx -g \"daemon off;\"'",
        "--args", "--verbose", "--progress-deadline", "5m", "--idempotency-key", "ci-42",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout == "Deploying app web (demo/default): operation 30 is queued.\n"
    assert "flotilla clusters wait 30" in result.stderr
    assert "hunter2" not in result.output and "warning" not in result.stderr
    assert api.calls() == [("GET", API), ("POST", APPS)]
    post = api.requests[-1]
    assert post.headers["Idempotency-Key"] == "ci-42"
    assert json.loads(post.content) == {
        "cluster": 7,
        "name": "web",
        "namespace": "shop",
        "image": "nginx:1.27",
        "replicas": 3,
        "command": ["sh", "-c", 'exec nginx -g "daemon off;"'],
        "args": ["--verbose"],
        "readiness": "http:/healthz:80",
        "liveness": "tcp:80",
        "progress_deadline": 300,
        "ports": [
            {"port": 80, "protocol": "TCP", "name": ""},
            {"port": 53, "protocol": "UDP", "name": ""},
            {"port": 9090, "protocol": "TCP", "name": "metrics"},
        ],
        "env": {"MODE": "prod", "URL": "http://x/?a=b", "EMPTY": ""},
        "secrets": {
            "PASSWORD": "hunter2",
            "TLS_KEY": "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
            "TOKEN": "tok-from-file",
        },
        "resources": {
            "cpu_request": "250m",
            "memory_request": "256Mi",
            "cpu_limit": "1",
            "memory_limit": "512Mi",
        },
        "labels": {"tier": "web"},
        "annotations": {"team": "shop"},
    }


def test_deploy_minimal_has_no_idempotency_header_and_json_is_the_answer(
    run: Callable[..., Result], api: FakeApi
) -> None:
    api.on("POST", APPS, accepted(), status=202)

    result = run("-o", "json", "apps", "deploy", "web", "-c", "demo", "--image", "nginx")

    assert result.exit_code == 0, result.output
    assert "Idempotency-Key" not in api.requests[-1].headers
    assert json.loads(api.requests[-1].content) == {
        "cluster": 7,
        "name": "web",
        "namespace": "default",
        "image": "nginx",
    }
    assert json.loads(result.stdout) == accepted()


def test_deploy_to_an_unknown_cluster_is_not_found(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("GET", API, page([]))

    assert_error(
        run("apps", "deploy", "web", "-c", "ghost", "--image", "nginx"), 5, "no cluster named 'ghost'"
    )
    assert ("POST", APPS) not in api.calls()


def test_deploy_refused_by_the_api_shows_its_field_errors(run: Callable[..., Result], api: FakeApi) -> None:
    body = {
        "error": {
            "code": "invalid",
            "message": "Invalid app.",
            "fields": {"image": ["is not a valid image reference"], "resources.cpu_request": ["bad"]},
        }
    }
    api.on("POST", APPS, body, status=400)

    result = run("apps", "deploy", "web", "-c", "demo", "--image", "Nginx:latest!")

    assert_error(result, 2, "Invalid app.")
    assert "  image: is not a valid image reference" in result.stderr
    assert "  resources.cpu_request: bad" in result.stderr


def test_deploy_wait_reports_the_available_app(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", APPS, accepted(op=app_op(kind="app_deploy")), status=202)
    api.on(
        "GET",
        f"{API}operations/30/",
        app_op(kind="app_deploy", status="running", progress=50, step="2 of 3 replicas updated"),
        app_op(kind="app_deploy", status="succeeded", progress=100),
    )

    text = run("apps", "deploy", "web", "-c", "demo", "--image", "nginx", "--wait")
    assert text.exit_code == 0, text.output
    assert text.stdout == "App web is available: 3/3 ready, revision 4.\n"
    assert "running - 2 of 3 replicas updated" in text.stderr

    api.on("GET", f"{API}operations/30/", app_op(kind="app_deploy", status="succeeded", progress=100))
    as_json = run("-o", "json", "apps", "deploy", "web", "-c", "demo", "--image", "nginx", "--wait")
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert (body["app"]["status"], body["operation"]["status"]) == ("available", "succeeded")


def test_deploy_wait_on_a_failed_rollout_exits_9(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", APPS, accepted(op=app_op(kind="app_deploy")), status=202)
    api.on(
        "GET",
        f"{API}operations/30/",
        app_op(
            kind="app_deploy",
            status="failed",
            error="ProgressDeadlineExceeded: 3 pods: ImagePullBackOff",
        ),
    )

    result = run("apps", "deploy", "web", "-c", "demo", "--image", "nginx:nope", "--wait")

    assert result.exit_code == 9
    assert result.stdout == ""
    assert "failed: ProgressDeadlineExceeded: 3 pods: ImagePullBackOff" in result.stderr


def test_deploy_wait_times_out_with_10(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    monkeypatch.setattr(progress, "_clock", lambda: now[0])
    monkeypatch.setattr(progress, "_sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    api.on("POST", APPS, accepted(op=app_op(kind="app_deploy")), status=202)
    api.on("GET", f"{API}operations/30/", app_op(kind="app_deploy", status="running"))

    result = run("apps", "deploy", "web", "-c", "demo", "--image", "nginx", "--wait", "--timeout", "3s")

    assert result.exit_code == 10
    assert "timed out waiting for operation 30" in result.stderr


def test_an_answer_without_an_operation_is_a_server_error(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", APPS, {"app": app_json()}, status=202)

    assert_error(run("apps", "deploy", "web", "-c", "demo", "--image", "nginx"), 8, "no app and operation")


# --- naming -------------------------------------------------------------------------------------


def test_an_ambiguous_name_asks_for_cluster_or_namespace(run: Callable[..., Result], api: FakeApi) -> None:
    other = app_json(id=22, namespace="shop")
    elsewhere = app_json(id=23, cluster={"id": 8, "name": "prod"})
    api.on("GET", APPS, page([app_json(), other, elsewhere]))

    for args in (
        ("apps", "get", "web"),
        ("apps", "scale", "web", "2"),
        ("apps", "delete", "web", "--yes"),
    ):
        result = run(*args)
        assert_error(
            result,
            2,
            "several apps are named 'web' (cluster/namespace: demo/default, demo/shop, prod/default)",
        )
        assert "hint: add --cluster and/or --namespace to pick one" in result.stderr
    assert {method for method, _ in api.calls()} == {"GET"}


def test_cluster_and_namespace_pick_one_app(run: Callable[..., Result], api: FakeApi) -> None:
    def by_query(request: httpx.Request) -> httpx.Response:
        items = [
            app_json(),
            app_json(id=22, namespace="shop"),
            app_json(id=23, cluster={"id": 8, "name": "x"}),
        ]
        params = request.url.params
        items = [
            item
            for item in items
            if ("cluster" not in params or str(item["cluster"]["id"]) == params["cluster"])
            and ("namespace" not in params or item["namespace"] == params["namespace"])
        ]
        return httpx.Response(200, json=page(items))

    api.on_handler("GET", APPS, by_query)
    api.on("POST", f"{APPS}22/restart/", accepted(app_json(id=22, namespace="shop")), status=202)

    result = run("apps", "restart", "web", "--cluster", "demo", "--namespace", "shop")

    assert result.exit_code == 0, result.output
    lookup = next(r for r in api.requests if r.url.path == APPS)
    assert dict(lookup.url.params) == {"name": "web", "cluster": "7", "namespace": "shop", "page_size": "200"}
    assert result.stdout == "Restarting app web (demo/shop): operation 30 is queued.\n"
    assert api.body("POST", f"{APPS}22/restart/") == {}


def test_a_server_that_ignores_the_filters_cannot_pick_a_wrong_app(
    run: Callable[..., Result], api: FakeApi
) -> None:
    api.on("GET", APPS, page([app_json(name="web-2"), app_json(id=22, namespace="shop")]))

    assert_error(run("apps", "get", "web", "-n", "default"), 5, "no app named 'web' in namespace default")


def test_unknown_app_is_not_found(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("GET", APPS, page([]))

    for args in (
        ("apps", "get", "ghost"),
        ("apps", "pods", "ghost"),
        ("apps", "history", "ghost"),
        ("apps", "rollback", "ghost"),
        ("apps", "update", "ghost", "--image", "x"),
    ):
        result = run(*args)
        assert_error(result, 5, "no app named 'ghost'")
        assert result.stdout == ""
    assert_error(run("apps", "get", "ghost", "-c", "demo"), 5, "no app named 'ghost' in cluster demo")


# --- reading ------------------------------------------------------------------------------------


def test_list_table_and_filters(run: Callable[..., Result], api: FakeApi) -> None:
    busy = app_json(
        id=22,
        name="api",
        status="deploying",
        revision=2,
        replicas={"desired": 2, "updated": 1, "ready": 1, "available": 1},
        created_at="2026-11-28T12:00:00Z",
        spec={"image": "ghcr.io/acme/api:2.0", "replicas": 2},
    )
    api.on("GET", APPS, page([app_json(), busy]))

    result = run("apps", "list", "--cluster", "demo", "--namespace", "default", "--status", "available")

    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == [
        ["NAME", "CLUSTER", "NAMESPACE", "IMAGE", "READY", "STATUS", "REVISION", "AGE"],
        ["web", "demo", "default", "nginx:1.27", "3/3", "available", "4", "3h"],
        ["api", "demo", "default", "ghcr.io/acme/api:2.0", "1/2", "deploying", "2", "4d"],
    ]
    listed = api.requests[-1]
    assert (listed.url.params["cluster"], listed.url.params["namespace"], listed.url.params["status"]) == (
        "7",
        "default",
        "available",
    )


def test_list_json_and_empty(run: Callable[..., Result], api: FakeApi) -> None:
    as_json = run("apps", "list", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [app_json()]
    assert "cluster" not in api.requests[-1].url.params

    api.on("GET", APPS, page([]))
    empty = run("apps", "list")
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "", "No apps.\n")


def test_age() -> None:
    assert app_tables.age("2026-12-02T11:59:15Z") == "45s"
    assert app_tables.age("2026-12-02T11:30:00+00:00") == "30m"
    assert app_tables.age("2026-12-01T12:00:00Z") == "24h"
    assert app_tables.age("2026-11-02T12:00:00Z") == "30d"
    assert app_tables.age(None) == "-"
    assert app_tables.age("yesterday") == "-"


def test_get_shows_the_app_its_pods_and_revisions(run: Callable[..., Result], api: FakeApi) -> None:
    detail = app_json(
        status="degraded",
        status_reason="1 of 3 pods not ready",
        operation=app_op(kind="app_update", status="running", progress=40, step="rolling out"),
    )
    api.on("GET", f"{APPS}21/", detail)
    api.on(
        "GET",
        f"{APPS}21/pods/",
        [pod("web-6d4b-a"), pod("web-6d4b-b", ready=0, reason="CrashLoopBackOff", restarts=4)],
    )
    api.on("GET", f"{APPS}21/revisions/", REVISIONS)

    result = run("apps", "get", "web")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Status:" in out and "degraded (1 of 3 pods not ready)" in out
    assert "3 desired, 3 updated, 3 ready, 3 available" in out
    assert "http=80/tcp" in out and "MODE=prod, DEBUG=0" in out and "TOKEN" in out
    assert "cpu request 250m, memory limit 512Mi" in out and "http:/healthz:80" in out
    assert "30 app_update 40% - rolling out" in out
    table = rows(out)
    pods_at = table.index(["NAME", "READY", "STATUS", "RESTARTS", "NODE", "AGE"])
    assert table[pods_at + 2] == ["web-6d4b-b", "0/1", "CrashLoopBackOff", "4", "demo-web-0", "5m"]
    revisions_at = table.index(["REVISION", "KIND", "CHANGES", "BY", "WHEN"])
    assert [row[0] for row in table[revisions_at + 1 :]] == ["1", "2", "3", "4*"]


def test_get_still_shows_the_app_when_the_cluster_cannot_list_pods(
    run: Callable[..., Result], api: FakeApi
) -> None:
    api.on("GET", f"{APPS}21/pods/", error("cluster_unreachable", "demo cannot be reached."), status=503)
    api.on("GET", f"{APPS}21/revisions/", [])

    result = run("apps", "get", "web")

    assert result.exit_code == 0, result.output
    assert "nginx:1.27" in result.stdout
    assert "warning: cannot list the pods: demo cannot be reached." in result.stderr


def test_get_json_is_the_app(run: Callable[..., Result], api: FakeApi) -> None:
    result = run("-o", "json", "apps", "get", "web")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == app_json()
    assert api.calls() == [("GET", APPS), ("GET", f"{APPS}21/")]


def test_pods_like_kubectl(run: Callable[..., Result], api: FakeApi) -> None:
    api.on(
        "GET",
        f"{APPS}21/pods/",
        [
            pod("web-a"),
            pod("web-b", phase="Pending", reason="Unschedulable", node="", ready=0),
            pod("web-c", deleting=True),
        ],
    )

    result = run("apps", "pods", "web")

    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == [
        ["NAME", "READY", "STATUS", "RESTARTS", "NODE", "AGE"],
        ["web-a", "1/1", "Running", "0", "demo-web-0", "5m"],
        ["web-b", "0/1", "Unschedulable", "0", "-", "5m"],
        ["web-c", "1/1", "Terminating", "0", "demo-web-0", "5m"],
    ]
    assert json.loads(run("apps", "pods", "web", "-o", "json").stdout)[0]["name"] == "web-a"


def test_history_marks_the_current_revision(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("GET", f"{APPS}21/revisions/", REVISIONS)

    result = run("apps", "history", "web")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["REVISION", "KIND", "CHANGES", "BY", "WHEN"]
    assert lines[2].split()[:2] == ["2", "update"]
    assert "image: nginx:1.25 → nginx:1.27; env DEBUG added" in lines[2]
    assert "back to revision 1; image: nginx:1.27 → nginx:1.25" in lines[3]
    assert lines[4].split()[:2] == ["4*", "scale"] and "2026-12-02 11:00:00Z" in lines[4]
    assert json.loads(run("apps", "history", "web", "-o", "json").stdout) == REVISIONS


def test_workloads_of_a_cluster(run: Callable[..., Result], api: FakeApi) -> None:
    workloads = [
        {
            "kind": "Deployment",
            "name": "web",
            "namespace": "default",
            "desired": 3,
            "ready": 3,
            "available": 3,
            "updated": 3,
            "images": ["nginx:1.27"],
            "selector": {"flotilla.dev/app": "web"},
            "created_at": "2026-12-02T09:00:00Z",
            "app_id": 21,
            "managed": True,
            "pods": [],
            "app": {"id": 21, "name": "web"},
        },
        {
            "kind": "DaemonSet",
            "name": "fluentd",
            "namespace": "logging",
            "desired": 2,
            "ready": 1,
            "available": 1,
            "updated": 2,
            "images": ["fluentd:1", "busybox"],
            "selector": {"app": "fluentd"},
            "created_at": "2026-12-01T12:00:00Z",
            "app_id": None,
            "managed": False,
            "pods": [],
            "app": None,
        },
    ]
    api.on("GET", f"{API}7/workloads/", workloads)

    result = run("apps", "workloads", "--cluster", "demo")

    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == [
        ["NAMESPACE", "NAME", "KIND", "READY", "IMAGES", "APP", "AGE"],
        ["default", "web", "Deployment", "3/3", "nginx:1.27", "web", "3h"],
        ["logging", "fluentd", "DaemonSet", "1/2", "fluentd:1,busybox", "-", "24h"],
    ]
    only = run("apps", "workloads", "-c", "demo", "-n", "logging", "-o", "json")
    assert [w["name"] for w in json.loads(only.stdout)] == ["fluentd"]
    assert run("apps", "workloads").exit_code == 2  # --cluster is required


# --- changes ------------------------------------------------------------------------------------


def test_update_merges_into_the_current_spec(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("PATCH", f"{APPS}21/", accepted(), status=202)

    result = run(
        "apps", "update", "web", "--image", "nginx:1.28", "--replicas", "5",
        "--env", "MODE=staging", "--env", "NEW=1", "--unset-env", "DEBUG",
        "--secret", "TOKEN=t2", "--unset-secret", "OLD", "--cpu", "500m",
        "--health", "none", "--liveness", "exec:cat /tmp/alive", "--label", "team=shop",
        "--port", "http=8080",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout == "Updating app web (demo/default): operation 30 is queued.\n"
    assert "warning: web has no secret variable OLD" in result.stderr
    assert "t2" not in result.output
    assert api.body("PATCH", f"{APPS}21/") == {
        "image": "nginx:1.28",
        "replicas": 5,
        "readiness": None,
        "liveness": "exec:cat /tmp/alive",
        "ports": [{"port": 8080, "protocol": "TCP", "name": "http"}],
        "env": [{"name": "MODE", "value": "staging"}, {"name": "NEW", "value": "1"}],
        "resources": {"cpu_request": "500m", "cpu_limit": "", "memory_request": "", "memory_limit": "512Mi"},
        "labels": {"tier": "web", "team": "shop"},
        "secrets": {"TOKEN": "t2"},
    }


def test_update_removes_secrets_and_ports(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("PATCH", f"{APPS}21/", accepted(), status=202)

    result = run("apps", "update", "web", "--unset-secret", "TOKEN", "--port", "none")

    assert result.exit_code == 0, result.output
    assert api.body("PATCH", f"{APPS}21/") == {"ports": [], "remove_secrets": ["TOKEN"]}


def test_update_refuses_nothing_and_contradictions(run: Callable[..., Result], api: FakeApi) -> None:
    assert_error(run("apps", "update", "web"), 2, "nothing to change")
    assert_error(run("apps", "update", "web", "--env", "A=1", "--unset-env", "A"), 2, "--env and --unset-env")
    assert_error(run("apps", "update", "web", "--env", "A"), 2, "--env: expected KEY=VALUE")
    assert_error(run("apps", "update", "web", "--port", "80/xdp"), 2, "--port '80/xdp'")
    assert_error(run("apps", "update", "web", "--health", "http:/x"), 2, "--health 'http:/x'")
    assert ("PATCH", f"{APPS}21/") not in api.calls()


def test_update_wait_reports_the_new_revision(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("PATCH", f"{APPS}21/", accepted(), status=202)
    api.on("GET", f"{API}operations/30/", app_op(status="succeeded", progress=100))
    api.on("GET", f"{APPS}21/", app_json(revision=5))

    result = run("apps", "update", "web", "--image", "nginx:1.28", "--wait")

    assert result.exit_code == 0, result.output
    assert result.stdout == "App web is available: 3/3 ready, revision 5.\n"


def test_scale(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", f"{APPS}21/scale/", accepted(op=app_op(kind="app_scale")), status=202)

    result = run("apps", "scale", "web", "0")

    assert result.exit_code == 0, result.output
    assert api.body("POST", f"{APPS}21/scale/") == {"replicas": 0}
    assert result.stdout == "Scaling app web (demo/default) to 0: operation 30 is queued.\n"
    assert run("apps", "scale", "web", "-1").exit_code == 2
    assert run("apps", "scale", "web", "many").exit_code == 2


def test_rollback_defaults_to_the_previous_revision(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("GET", f"{APPS}21/revisions/", REVISIONS)
    api.on("POST", f"{APPS}21/rollback/", accepted(op=app_op(kind="app_rollback")), status=202)

    result = run("apps", "rollback", "web")

    assert result.exit_code == 0, result.output
    assert api.body("POST", f"{APPS}21/rollback/") == {"revision": 3}
    assert result.stdout.startswith("Rolling back app web (demo/default) to revision 3: operation 30")

    api.requests.clear()
    explicit = run("apps", "rollback", "web", "1")
    assert explicit.exit_code == 0, explicit.output
    assert api.body("POST", f"{APPS}21/rollback/") == {"revision": 1}
    assert ("GET", f"{APPS}21/revisions/") not in api.calls()


def test_rollback_without_an_earlier_revision(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("GET", f"{APPS}21/revisions/", [REVISIONS[0] | {"current": True}])

    assert_error(run("apps", "rollback", "web"), 2, "the app has no revision before its current one")
    assert ("POST", f"{APPS}21/rollback/") not in api.calls()


def test_rollback_refused_by_the_api(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", f"{APPS}21/rollback/", error("conflict", "Revision 4 is the current one."), status=409)

    assert_error(run("apps", "rollback", "web", "4"), 6, "Revision 4 is the current one.")


def test_delete_needs_yes_off_a_terminal(run: Callable[..., Result], api: FakeApi) -> None:
    result = run("apps", "delete", "web")

    assert_error(result, 2, "refusing to delete an app without confirmation")
    assert api.requests == []


def test_delete_asks_and_follows(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "stdin_is_terminal", lambda: True)
    monkeypatch.setattr(apps_cmd, "stdin_is_terminal", lambda: True)
    declined = run("apps", "delete", "web", input="n\n")
    assert declined.exit_code == 1
    assert "Delete app web (demo/default, 3/3 ready)" in declined.output
    assert ("DELETE", f"{APPS}21/") not in api.calls()

    api.on(
        "DELETE", f"{APPS}21/", accepted(app_json(status="deleting"), app_op(kind="app_delete")), status=202
    )
    api.on("GET", f"{API}operations/30/", app_op(kind="app_delete", status="succeeded", progress=100))
    api.on("GET", f"{APPS}21/", error("not_found", "Not found."), status=404)

    result = run("apps", "delete", "web", "--yes", "--wait")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Deleted app web from demo/default.\n"
    as_json = run("-o", "json", "apps", "delete", "web", "--yes", "--wait")
    assert json.loads(as_json.stdout)["app"]["status"] == "deleting"


def test_adopt_a_workload(run: Callable[..., Result], api: FakeApi) -> None:
    api.on(
        "POST",
        f"{API}7/workloads/adopt/",
        accepted(app_json(name="legacy", adopted=True, status="pending"), app_op(kind="app_adopt")),
        status=202,
    )
    api.on("GET", f"{API}operations/30/", app_op(kind="app_adopt", status="succeeded", progress=100))
    api.on("GET", f"{APPS}21/", app_json(name="legacy", adopted=True, revision=1))

    result = run("apps", "adopt", "legacy", "--cluster", "demo", "--namespace", "default", "--wait")

    assert result.exit_code == 0, result.output
    assert api.body("POST", f"{API}7/workloads/adopt/") == {
        "kind": "Deployment",
        "namespace": "default",
        "name": "legacy",
    }
    assert result.stdout == "App legacy is available: 3/3 ready, revision 1.\n"
    assert run("apps", "adopt", "legacy", "--cluster", "demo").exit_code == 2  # --namespace is required


def test_adopt_refused_names_every_reason(run: Callable[..., Result], api: FakeApi) -> None:
    refused = {
        "error": {
            "code": "invalid",
            "message": "This workload cannot be adopted.",
            "fields": {"workload": ["has 2 containers", "env[0] uses valueFrom"]},
        }
    }
    api.on("POST", f"{API}7/workloads/adopt/", refused, status=400)

    result = run("apps", "adopt", "legacy", "-c", "demo", "-n", "default", "--kind", "StatefulSet")

    assert_error(result, 2, "This workload cannot be adopted.")
    assert (
        "  workload: has 2 containers" in result.stderr
        and "  workload: env[0] uses valueFrom" in result.stderr
    )
    assert api.body("POST", f"{API}7/workloads/adopt/")["kind"] == "StatefulSet"


def test_delete_pod(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", f"{APPS}21/pods/web-6d4b-a/delete/", status=204)

    result = run("apps", "delete-pod", "web", "web-6d4b-a")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Deleted pod web-6d4b-a of app web; its workload starts another.\n"
    as_json = run("-o", "json", "apps", "delete-pod", "web", "web-6d4b-a")
    assert (as_json.exit_code, as_json.stdout) == (0, "")
    assert_error(run("apps", "delete-pod", "web", "nope"), 5, "app web has no pod named 'nope'")
    assert_error(run("apps", "delete-pod", "web", "../../7"), 5, "no pod named '../../7'")
    assert api.requests[-1].url.raw_path.endswith(b"/pods/..%2F..%2F7/delete/")
