"""Fast tests of `flotilla clusters`, `providers` and `kubeconfig`: the API is faked at the HTTP level.

No Django here: run with `pytest tests/cli/test_cli_clusters_unit.py -p no:django --noconftest`.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from cli import progress, runtime
from cli.commands import clusters as clusters_cmd
from cli.commands import providers as providers_cmd
from cli.errors import UsageError
from cli.main import build_app
from cli.pools import parse_pool

SERVER = "http://flotilla.test"
TOKEN = "flt_0123abcd_s3cr3t"
API = "/api/v1/clusters/"
ORG = {"slug": "alpha", "name": "Alpha Corp", "role": "owner"}

Handler = Callable[[httpx.Request], httpx.Response]


def operation(ident: int = 12, kind: str = "scale", status: str = "queued", **extra: Any) -> dict[str, Any]:
    """An operation as the API shows it."""
    return {
        "id": ident,
        "cluster": 7,
        "cluster_name": "demo",
        "kind": kind,
        "status": status,
        "step": extra.pop("step", ""),
        "progress": extra.pop("progress", 0),
        "error": extra.pop("error", ""),
        "attempts": 1,
        **extra,
    }


def cluster(**extra: Any) -> dict[str, Any]:
    """A cluster as the API shows it."""
    return {
        "id": 7,
        "name": "demo",
        "provider": "local",
        "provider_kind": "local",
        "region": "local",
        "version": "1.31.0",
        "observed_version": "1.31.0",
        "status": "ready",
        "status_reason": "",
        "conditions": [],
        "api_endpoint": "https://127.0.0.1:34001",
        "pools": [
            {
                "id": 3,
                "name": "web",
                "size": "small",
                "count": 2,
                "labels": {},
                "taints": [],
                "removing": False,
            }
        ],
        "nodes_ready": 2,
        "nodes_total": 2,
        "active_operation": None,
        **extra,
    }


def page(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(results), "next": None, "previous": None, "results": results}


def error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class FakeApi:
    """Routes by method and path; a route may answer a sequence (the last answer repeats)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Handler]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *bodies: Any, status: int = 200) -> None:
        self.routes[(method, path)] = [self._answer(body, status) for body in bodies] or [
            self._answer(None, status)
        ]

    def on_handler(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method, path)] = [handler]

    @staticmethod
    def _answer(body: Any, status: int) -> Handler:
        if isinstance(body, httpx.Response):
            return lambda request: body
        return lambda request: (
            httpx.Response(status, json=body) if body is not None else httpx.Response(status)
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(404, json=error("not_found", "Not found."))
        handler = queue.pop(0) if len(queue) > 1 else queue[0]
        return handler(request)

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]

    def body(self, method: str, path: str) -> Any:
        (request,) = [r for r in self.requests if (r.method, r.url.path) == (method, path)]
        return json.loads(request.content)


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Credentials from the environment, no real waits, no terminal."""
    for name in ("FLOTILLA_OUTPUT", "FLOTILLA_CLI_TRACEBACK", "KUBECONFIG", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOTILLA_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("FLOTILLA_SERVER", SERVER)
    monkeypatch.setenv("FLOTILLA_TOKEN", TOKEN)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(progress, "_sleep", lambda seconds: None)
    yield


@pytest.fixture
def api() -> FakeApi:
    fake = FakeApi()
    fake.on("GET", "/api/v1/orgs/current/", ORG)
    fake.on("GET", API, page([cluster()]))
    return fake


@pytest.fixture
def run(api: FakeApi) -> Callable[..., Result]:
    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(build_app(transport=httpx.MockTransport(api)), list(args), input=input)

    return invoke


def on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the prompts think a person is there (CliRunner feeds `input=` to them)."""
    for module in (runtime, clusters_cmd, providers_cmd):
        monkeypatch.setattr(module, "stdin_is_terminal", lambda: True)


def assert_error(result: Result, exit_code: int, message: str) -> None:
    assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
    assert "error: " in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.output


# --- --pool -------------------------------------------------------------------------------------


def test_parse_pool_with_labels_and_taints() -> None:
    pool = parse_pool(
        "name=gpu,size=large,count=3,labels=accel=yes;tier=batch,taints=gpu=true:NoSchedule;dedicated:NoExecute"
    )

    assert pool == {
        "name": "gpu",
        "size": "large",
        "count": 3,
        "labels": {"accel": "yes", "tier": "batch"},
        "taints": [
            {"key": "gpu", "value": "true", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "", "effect": "NoExecute"},
        ],
    }
    assert parse_pool(" name=web , size=small, count=1 ") == {
        "name": "web",
        "size": "small",
        "count": 1,
        "labels": {},
        "taints": [],
    }
    assert parse_pool("name=a,size=s,count=1,taints=example.com/k=v")["taints"] == [
        {"key": "example.com/k", "value": "v", "effect": "NoSchedule"}
    ]
    # Commas inside labels and taints, as the portal writes them.
    assert parse_pool("name=a,labels=tier=web, team=shop,size=s,count=1,taints=a:NoExecute,b=c") == {
        "name": "a",
        "size": "s",
        "count": 1,
        "labels": {"tier": "web", "team": "shop"},
        "taints": [
            {"key": "a", "value": "", "effect": "NoExecute"},
            {"key": "b", "value": "c", "effect": "NoSchedule"},
        ],
    }


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("name=web,size=small", "count is missing"),
        ("size=small,count=1", "name is missing"),
        ("name=web,size=small,count=three", "count must be a whole number"),
        ("name=web,size=small,count=-1", "count must be a whole number"),
        ("name=web,size=small,count=1,colour=red", "unknown key 'colour'"),
        ("name=web,name=api,size=small,count=1", "name is given twice"),
        ("name=web,size=small,count=1,labels=novalue", "labels: 'novalue': write each label as key=value"),
        # The portal's syntax only: "key:value" was the CLI's own.
        ("name=web,size=small,count=1,labels=tier:web", "labels: 'tier:web': write each label as key=value"),
        ("name=web,size=small,count=1,labels=Tier_=x", "labels: 'Tier_' is not a label key you can set"),
        ("name=web,size=small,count=1,taints=gpu=true:", "taints: 'gpu=true:': write each taint as"),
        ("name=web,size=small,count=1,taints=k=v:Sometimes", "the effect must be one of"),
        ("name=web,small,count=1", "'small' is not key=value"),
    ],
)
def test_parse_pool_refuses_bad_specs(spec: str, reason: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_pool(spec)
    assert reason in caught.value.message
    assert caught.value.hint and "--pool name=NAME" in caught.value.hint


def test_create_with_a_bad_pool_is_a_usage_error_before_any_call(
    run: Callable[..., Result], api: FakeApi
) -> None:
    result = run("clusters", "create", "demo", "--pool", "name=web,size=small")

    assert_error(result, 2, "count is missing")
    assert api.requests == []


def test_create_sends_pools_provider_and_idempotency_key(run: Callable[..., Result], api: FakeApi) -> None:
    accepted = {"cluster": cluster(status="pending"), "operation": operation(kind="create")}
    api.on("POST", API, accepted, status=202)

    result = run(
        "clusters", "create", "demo",
        "--pool", "name=web,size=small,count=2,labels=tier=web",
        "--pool", "name=gpu,size=large,count=1,taints=gpu=true:NoSchedule",
        "--provider", "aws-prod", "--region", "eu-west-1", "--version", "1.31.0",
        "--idempotency-key", "ci-run-42",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stdout == "Creating cluster demo: operation 12 is queued.\n"
    assert "flotilla clusters wait 12" in result.stderr
    (request,) = api.requests
    assert request.headers["Idempotency-Key"] == "ci-run-42"
    assert json.loads(request.content) == {
        "name": "demo",
        "pools": [
            {"name": "web", "size": "small", "count": 2, "labels": {"tier": "web"}, "taints": []},
            {
                "name": "gpu",
                "size": "large",
                "count": 1,
                "labels": {},
                "taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}],
            },
        ],
        "provider": "aws-prod",
        "region": "eu-west-1",
        "version": "1.31.0",
    }


def test_create_without_a_key_sends_no_idempotency_header(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", API, {"cluster": cluster(), "operation": operation(kind="create")}, status=202)

    result = run("-o", "json", "clusters", "create", "demo", "--pool", "name=web,size=small,count=1")

    assert result.exit_code == 0, result.output
    assert "Idempotency-Key" not in api.requests[0].headers
    assert json.loads(result.stdout)["operation"]["id"] == 12
    assert "provider" not in json.loads(api.requests[0].content)


def test_create_rejected_by_the_api_shows_its_field_errors(run: Callable[..., Result], api: FakeApi) -> None:
    api.on(
        "POST",
        API,
        {
            "error": {
                "code": "invalid",
                "message": "Invalid input.",
                "fields": {"pools[0].size": ["Unknown size."]},
            }
        },
        status=400,
    )

    result = run("clusters", "create", "demo", "--pool", "name=web,size=huge,count=1")

    assert_error(result, 2, "Invalid input.")
    assert "  pools[0].size: Unknown size." in result.stderr


# --- name resolution ----------------------------------------------------------------------------


def test_scale_resolves_the_cluster_and_pool_by_name(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("PATCH", f"{API}7/pools/3/", operation(), status=202)

    result = run("clusters", "scale", "demo", "web", "5")

    assert result.exit_code == 0, result.output
    assert api.calls() == [("GET", API), ("PATCH", f"{API}7/pools/3/")]
    assert api.requests[0].url.params["name"] == "demo"
    assert api.body("PATCH", f"{API}7/pools/3/") == {"count": 5}
    assert result.stdout == "Scaling pool web of demo to 5: operation 12 is queued.\n"


def test_unknown_cluster_is_not_found(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("GET", API, page([]))

    for args in (
        ("clusters", "get", "ghost"),
        ("clusters", "scale", "ghost", "web", "2"),
        ("clusters", "delete", "ghost", "--yes"),
        ("kubeconfig", "ghost"),
    ):
        result = run(*args)
        assert_error(result, 5, "no cluster named 'ghost'")
        assert result.stdout == ""
    assert {method for method, _ in api.calls()} == {"GET"}


def test_name_filter_match_must_be_exact(run: Callable[..., Result], api: FakeApi) -> None:
    # A server that ignored ?name= would answer every cluster: the CLI still picks none of them.
    api.on("GET", API, page([cluster(name="demo-2", id=8)]))

    assert_error(run("clusters", "get", "demo"), 5, "no cluster named 'demo'")


def test_unknown_pool_is_not_found(run: Callable[..., Result], api: FakeApi) -> None:
    result = run("clusters", "scale", "demo", "db", "2")

    assert_error(result, 5, "cluster demo has no pool named 'db' (its pools: web)")
    assert api.calls() == [("GET", API)]


def test_get_shows_the_cluster_and_its_pools(run: Callable[..., Result], api: FakeApi) -> None:
    detail = cluster(
        status="updating",
        observed_version="1.30.2",
        active_operation=operation(kind="upgrade", status="running", progress=40, step="upgrading nodes"),
        conditions=[{"type": "ApiReachable", "status": "True", "reason": ""}],
    )
    api.on("GET", f"{API}7/", detail)

    result = run("clusters", "get", "demo")

    assert result.exit_code == 0, result.output
    assert "Operation:" in result.stdout and "12 upgrade 40% - upgrading nodes" in result.stdout
    assert "ApiReachable:" in result.stdout
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("NAME"))
    assert header.split() == ["NAME", "SIZE", "COUNT", "LABELS", "TAINTS", "REMOVING"]
    assert lines[lines.index(header) + 1].split() == ["web", "small", "2", "-", "-"]


def test_list_table_shows_nodes_and_the_running_operation(run: Callable[..., Result], api: FakeApi) -> None:
    busy = cluster(
        status="updating",
        version="1.31.0",
        observed_version="1.30.2",
        nodes_ready=1,
        active_operation=operation(kind="upgrade", status="running", progress=40),
    )
    api.on("GET", API, page([busy, cluster(name="idle", id=8)]))

    result = run("clusters", "list")

    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["NAME", "STATUS", "PROVIDER", "REGION", "VERSION", "NODES", "OPERATION"]
    assert rows[1] == [
        "demo",
        "updating",
        "local",
        "local",
        "1.30.2",
        "->",
        "1.31.0",
        "1/2",
        "upgrade",
        "40%",
    ]
    assert rows[2] == ["idle", "ready", "local", "local", "1.31.0", "2/2", "-"]


def test_list_json_is_the_api_items(run: Callable[..., Result], api: FakeApi) -> None:
    result = run("clusters", "list", "--status", "ready", "-o", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [cluster()]
    assert api.requests[0].url.params["status"] == "ready"


def test_nodes_events_and_operations(run: Callable[..., Result], api: FakeApi) -> None:
    api.on(
        "GET",
        f"{API}7/nodes/",
        [{"name": "web-0", "pool_name": "web", "ready": True, "kubelet_version": "v1.31.0"}],
    )
    api.on(
        "GET",
        f"{API}7/events/",
        [{"id": 1, "created_at": "2025-01-02T03:04:05Z", "level": "info", "message": "Ready"}],
    )
    api.on("GET", f"{API}operations/", page([operation(status="succeeded", progress=100)]))

    nodes = run("clusters", "nodes", "demo")
    assert nodes.exit_code == 0, nodes.output
    assert nodes.stdout.splitlines()[1].split()[:4] == ["web-0", "web", "yes", "v1.31.0"]
    events = run("clusters", "events", "demo")
    assert "2025-01-02 03:04:05Z  info   Ready" in events.stdout
    ops = run("clusters", "operations", "demo", "--active")
    assert ops.exit_code == 0, ops.output
    assert ops.stdout.splitlines()[1].split()[:5] == ["12", "demo", "scale", "succeeded", "100%"]
    listed = api.requests[-1]
    assert (listed.url.params["cluster"], listed.url.params["active"]) == ("7", "true")


def test_cancel_and_retry_an_operation_by_id(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("POST", f"{API}operations/12/cancel/", operation(status="running", cancel_requested=True))
    api.on("POST", f"{API}operations/13/retry/", operation(ident=13, status="queued"), status=202)

    cancel = run("clusters", "cancel", "12")
    assert cancel.exit_code == 0, cancel.output
    assert cancel.stdout == "Cancelling operation 12 (scale demo): it stops after its current step.\n"
    retry = run("clusters", "retry", "13")
    assert retry.exit_code == 0, retry.output
    assert retry.stdout.startswith("Retrying operation 13 (scale demo): operation 13 is queued.")

    assert_error(run("clusters", "cancel", "99"), 5, "no operation with id 99")
    assert_error(run("clusters", "cancel", "twelve"), 2, "is not an operation id")


# --- --wait -------------------------------------------------------------------------------------


def test_wait_follows_the_operation_to_success(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("PATCH", f"{API}7/pools/3/", operation(), status=202)
    api.on(
        "GET",
        f"{API}operations/12/",
        operation(status="running", progress=10, step="starting nodes"),
        operation(status="running", progress=10, step="starting nodes"),
        operation(status="running", progress=60, step="waiting for nodes"),
        operation(status="succeeded", progress=100, step="done"),
    )

    result = run("clusters", "scale", "demo", "web", "3", "--wait")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Pool web of demo has 3 nodes.\n"
    assert result.stderr.splitlines() == [
        "operation 12 (scale demo):   0% queued",
        "operation 12 (scale demo):  10% running - starting nodes",
        "operation 12 (scale demo):  60% running - waiting for nodes",
        "operation 12 (scale demo): 100% succeeded - done",
    ]
    assert api.calls().count(("GET", f"{API}operations/12/")) == 4


def test_wait_on_a_failed_operation_exits_9_with_its_error(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("PATCH", f"{API}7/pools/3/", operation(), status=202)
    api.on(
        "GET",
        f"{API}operations/12/",
        operation(status="running", progress=30),
        operation(status="failed", progress=30, error="quota of 10 nodes exceeded at the provider"),
    )

    result = run("clusters", "scale", "demo", "web", "30", "--wait")

    assert result.exit_code == 9
    assert result.stdout == ""
    assert (
        "error: operation 12 (scale demo) failed: quota of 10 nodes exceeded at the provider" in result.stderr
    )
    assert "hint: `flotilla clusters retry 12 --wait`" in result.stderr


def test_wait_on_a_cancelled_operation_exits_9(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("GET", f"{API}operations/12/", operation(status="cancelled"))

    result = run("clusters", "wait", "12")

    assert result.exit_code == 9
    assert "error: operation 12 (scale demo) was cancelled" in result.stderr


def test_wait_json_prints_the_final_state_even_on_failure(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("DELETE", f"{API}7/", operation(kind="delete"), status=202)
    api.on("GET", f"{API}operations/12/", operation(kind="delete", status="failed", error="boom"))

    result = run("-o", "json", "clusters", "delete", "demo", "--yes", "--wait")

    assert result.exit_code == 9
    assert json.loads(result.stdout)["status"] == "failed"
    assert "error: operation 12 (delete demo) failed: boom" in result.stderr


def test_create_wait_reports_the_ready_cluster(run: Callable[..., Result], api: FakeApi) -> None:
    api.on(
        "POST", API, {"cluster": cluster(status="pending"), "operation": operation(kind="create")}, status=202
    )
    api.on("GET", f"{API}operations/12/", operation(kind="create", status="succeeded", progress=100))
    api.on("GET", f"{API}7/", cluster())

    text = run("clusters", "create", "demo", "--pool", "name=web,size=small,count=2", "--wait")
    assert text.exit_code == 0, text.output
    assert text.stdout == "Cluster demo is ready: 2/2 nodes ready, Kubernetes 1.31.0.\n"

    as_json = run(
        "-o", "json", "clusters", "create", "demo", "--pool", "name=web,size=small,count=2", "--wait"
    )
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.stdout)
    assert (body["cluster"]["status"], body["operation"]["status"]) == ("ready", "succeeded")


def test_wait_gives_up_after_the_timeout(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(progress, "_clock", lambda: now[0])
    monkeypatch.setattr(progress, "_sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    api.on("GET", f"{API}operations/12/", operation(status="running", progress=50, step="booting"))

    result = run("clusters", "wait", "12", "--timeout", "5s")

    assert result.exit_code == 10
    assert (
        "error: timed out waiting for operation 12 (scale demo); it is still running (step: booting)"
        in result.stderr
    )
    assert api.calls().count(("GET", f"{API}operations/12/")) == 6  # the first look, then 5 polls


def test_ctrl_c_stops_waiting_without_cancelling(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(progress, "_sleep", interrupt)
    api.on("PATCH", f"{API}7/pools/3/", operation(), status=202)

    result = run("clusters", "scale", "demo", "web", "3", "--wait")

    assert result.exit_code == 130
    assert "Stopped waiting; operation 12 (scale demo) goes on (queued)." in result.stderr
    assert "flotilla clusters cancel 12" in result.stderr
    assert not any(path.endswith("/cancel/") for _, path in api.calls())


def test_wait_rides_out_a_server_restart(run: Callable[..., Result], api: FakeApi) -> None:
    api.on(
        "GET",
        f"{API}operations/12/",
        operation(status="running"),
        httpx.Response(503, json=error("unavailable", "Restarting.")),
        httpx.Response(502, text="Bad gateway"),
        operation(status="succeeded", progress=100),
    )

    result = run("clusters", "wait", "12")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Operation 12 (scale demo) succeeded.\n"


def test_wait_stops_on_an_error_that_is_not_transient(run: Callable[..., Result], api: FakeApi) -> None:
    api.on(
        "GET",
        f"{API}operations/12/",
        operation(status="running"),
        httpx.Response(401, json=error("authentication_failed", "Token revoked.")),
    )

    assert_error(run("clusters", "wait", "12"), 3, "Token revoked.")


@pytest.mark.parametrize(
    ("value", "seconds"), [("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0)]
)
def test_timeout_values(value: str, seconds: float) -> None:
    assert progress.parse_timeout(value) == seconds


def test_a_bad_timeout_is_a_usage_error(run: Callable[..., Result], api: FakeApi) -> None:
    assert_error(run("clusters", "wait", "12", "--timeout", "soon"), 2, "--timeout")
    assert api.requests == []


# --- confirmation -------------------------------------------------------------------------------


def test_delete_needs_yes_off_a_terminal(run: Callable[..., Result], api: FakeApi) -> None:
    result = run("clusters", "delete", "demo")

    assert_error(result, 2, "refusing to delete a cluster without confirmation")
    assert "--yes" in result.stderr
    assert api.requests == []


def test_delete_declined_at_the_prompt_exits_1_and_deletes_nothing(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_terminal(monkeypatch)

    result = run("clusters", "delete", "demo", input="n\n")

    assert result.exit_code == 1
    assert "Delete cluster demo" in result.output and "error: cancelled" in result.stderr
    assert api.calls() == [("GET", API)]


def test_delete_confirmed_at_the_prompt(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_terminal(monkeypatch)
    api.on("DELETE", f"{API}7/", operation(kind="delete"), status=202)

    result = run("clusters", "delete", "demo", input="y\n")

    assert result.exit_code == 0, result.output
    assert api.calls()[-1] == ("DELETE", f"{API}7/")
    assert "Deleting cluster demo: operation 12 is queued." in result.stdout


def test_remove_pool_asks_then_deletes_the_pool(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_error(run("clusters", "remove-pool", "demo", "web"), 2, "without confirmation")
    on_a_terminal(monkeypatch)
    assert run("clusters", "remove-pool", "demo", "web", input="n\n").exit_code == 1
    assert ("DELETE", f"{API}7/pools/3/") not in api.calls()
    api.on("DELETE", f"{API}7/pools/3/", operation(kind="remove_pool"), status=202)

    result = run("clusters", "remove-pool", "demo", "web", "--yes")

    assert result.exit_code == 0, result.output
    assert api.calls()[-1] == ("DELETE", f"{API}7/pools/3/")


# --- kubeconfig ---------------------------------------------------------------------------------

SERVER_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:34001
  name: kwok-demo-1a2b
contexts:
- context:
    cluster: kwok-demo-1a2b
    user: kwok-demo-1a2b
  name: kwok-demo-1a2b
current-context: kwok-demo-1a2b
users:
- name: kwok-demo-1a2b
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
"""
EXISTING_KUBECONFIG = """\
apiVersion: v1
kind: Config
preferences: {}
current-context: prod
clusters:
- name: prod
  cluster: {server: 'https://prod.example.com'}
contexts:
- name: prod
  context: {cluster: prod, user: prod-admin, namespace: web}
users:
- name: prod-admin
  user: {token: abc}
"""
CONTEXT = "flotilla-alpha-demo"


@pytest.fixture
def with_kubeconfig(api: FakeApi) -> FakeApi:
    api.on(
        "GET",
        f"{API}7/kubeconfig/",
        httpx.Response(200, text=SERVER_KUBECONFIG, headers={"Content-Type": "application/yaml"}),
    )
    return api


def test_kubeconfig_merges_into_an_existing_file(
    run: Callable[..., Result], with_kubeconfig: FakeApi, tmp_path: Path
) -> None:
    path = tmp_path / "kube" / "config"
    path.parent.mkdir()
    path.write_text(EXISTING_KUBECONFIG)
    path.chmod(0o644)

    result = run("kubeconfig", "demo", "--file", str(path))

    assert result.exit_code == 0, result.output
    assert result.stdout == f"Merged the kubeconfig of demo into {path} as context {CONTEXT}.\n"
    assert f"kubectl --context {CONTEXT}" in result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "prod"  # not changed without --use
    assert [c["name"] for c in config["clusters"]] == ["prod", CONTEXT]
    assert [u["name"] for u in config["users"]] == ["prod-admin", CONTEXT]
    assert config["contexts"][0] == {
        "name": "prod",
        "context": {"cluster": "prod", "user": "prod-admin", "namespace": "web"},
    }
    assert config["contexts"][1] == {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}}
    assert config["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:34001"
    assert config["users"][1]["user"]["client-key-data"] == "S0VZ"
    assert sorted(p.name for p in path.parent.iterdir()) == ["config"]  # no temporary or lock file left

    # Again, with --use: the entries are replaced, not duplicated, and the context becomes current.
    again = run("kubeconfig", "demo", "--file", str(path), "--use")
    assert again.exit_code == 0, again.output
    config = yaml.safe_load(path.read_text())
    assert [c["name"] for c in config["contexts"]] == ["prod", CONTEXT]
    assert config["current-context"] == CONTEXT
    assert f"Current context is now {CONTEXT}." in again.stderr


def test_kubeconfig_default_path_is_kubeconfig_env_then_home(
    run: Callable[..., Result], with_kubeconfig: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home_config = tmp_path / "home" / ".kube" / "config"
    result = run("-o", "json", "kubeconfig", "demo")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "cluster": "demo",
        "path": str(home_config),
        "context": CONTEXT,
        "current": True,
    }
    # A new file: nothing to displace, so the context is current; the new ~/.kube is private.
    assert yaml.safe_load(home_config.read_text())["current-context"] == CONTEXT
    assert stat.S_IMODE(home_config.parent.stat().st_mode) == 0o700

    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    second.write_text(EXISTING_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    assert run("kubeconfig", "demo").exit_code == 0
    assert not first.exists()  # the first file that exists is the one written, as kubectl does
    assert CONTEXT in {c["name"] for c in yaml.safe_load(second.read_text())["contexts"]}


def test_kubeconfig_stdout_and_no_merge(
    run: Callable[..., Result], with_kubeconfig: FakeApi, tmp_path: Path
) -> None:
    printed = run("kubeconfig", "demo", "--stdout")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == SERVER_KUBECONFIG

    alone = tmp_path / "demo.yaml"
    written = run("kubeconfig", "demo", "--no-merge", "--file", str(alone))
    assert written.exit_code == 0, written.output
    assert alone.read_text() == SERVER_KUBECONFIG
    assert stat.S_IMODE(alone.stat().st_mode) == 0o600

    assert_error(run("kubeconfig", "demo", "--no-merge"), 2, "needs --file")
    assert_error(run("kubeconfig", "demo", "--stdout", "--use"), 2, "cannot be combined")


def test_kubeconfig_refuses_to_overwrite_a_file_that_is_not_a_kubeconfig(
    run: Callable[..., Result], with_kubeconfig: FakeApi, tmp_path: Path
) -> None:
    path = tmp_path / "config"
    path.write_text("- just\n- a list\n")

    assert_error(run("kubeconfig", "demo", "--file", str(path)), 1, "is not a kubeconfig")
    assert path.read_text() == "- just\n- a list\n"


def test_kubeconfig_not_yet_available_is_a_conflict(run: Callable[..., Result], api: FakeApi) -> None:
    api.on("GET", f"{API}7/kubeconfig/", error("conflict", "demo has no kubeconfig yet."), status=409)

    assert_error(run("kubeconfig", "demo", "--stdout"), 6, "demo has no kubeconfig yet.")


# --- providers ----------------------------------------------------------------------------------

KINDS = [
    {"kind": "local", "label": "Local", "provisions": True, "fields": []},
    {
        "kind": "digitalocean",
        "label": "DigitalOcean",
        "provisions": True,
        "capabilities": ["compute", "firewall"],
        "fields": [
            {
                "name": "token",
                "label": "API token",
                "secret": True,
                "required": True,
                "help": "",
                "multiline": False,
            },
            {
                "name": "image",
                "label": "Image",
                "secret": False,
                "required": False,
                "help": "",
                "multiline": False,
            },
        ],
    },
]
ACCOUNT = {
    "id": 4,
    "name": "do-prod",
    "kind": "digitalocean",
    "settings": {"image": "ubuntu"},
    "has_credentials": True,
    "validated_at": "2025-01-02T03:04:05Z",
    "created_at": "2025-01-02T03:04:05Z",
    "cluster_count": 0,
}


@pytest.fixture
def with_providers(api: FakeApi) -> FakeApi:
    api.on("GET", f"{API}providers/kinds/", KINDS)
    api.on("GET", f"{API}providers/", page([ACCOUNT]))
    api.on("POST", f"{API}providers/", ACCOUNT, status=201)
    return api


def test_providers_add_reads_a_secret_from_the_environment(
    run: Callable[..., Result], with_providers: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOTILLA_PROVIDER_TOKEN", "dop_v1_secret")

    result = run("providers", "add", "do-prod", "--kind", "digitalocean", "--field", "image=ubuntu")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Connected provider account do-prod (digitalocean).\n"
    assert with_providers.body("POST", f"{API}providers/") == {
        "name": "do-prod",
        "kind": "digitalocean",
        "fields": {"image": "ubuntu", "token": "dop_v1_secret"},
    }
    assert "dop_v1_secret" not in result.output


def test_providers_add_prompts_for_a_secret_hidden(
    run: Callable[..., Result], with_providers: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_a_terminal(monkeypatch)

    result = run("providers", "add", "do-prod", "--kind", "digitalocean", input="dop_v1_typed\n")

    assert result.exit_code == 0, result.output
    assert with_providers.body("POST", f"{API}providers/")["fields"] == {"token": "dop_v1_typed"}
    assert "API token" in result.output and "dop_v1_typed" not in result.output


def test_providers_add_missing_secret_off_a_terminal(
    run: Callable[..., Result], with_providers: FakeApi
) -> None:
    result = run("providers", "add", "do-prod", "--kind", "digitalocean")

    assert_error(result, 2, "missing required field: token")
    assert "FLOTILLA_PROVIDER_TOKEN" in result.stderr
    assert ("POST", f"{API}providers/") not in with_providers.calls()


def test_providers_add_from_a_file_and_warns_about_typed_secrets(
    run: Callable[..., Result], with_providers: FakeApi, tmp_path: Path
) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("dop_v1_from_file\n")
    from_file = run(
        "providers", "add", "do-prod", "--kind", "digitalocean", "--field", f"token=@{secret_file}"
    )
    assert from_file.exit_code == 0, from_file.output
    assert with_providers.body("POST", f"{API}providers/")["fields"] == {"token": "dop_v1_from_file"}
    assert "warning" not in from_file.stderr

    with_providers.requests.clear()
    typed = run("providers", "add", "do-prod", "--kind", "digitalocean", "-f", "token=dop_v1_typed")
    assert typed.exit_code == 0, typed.output
    assert "warning: secret field token given on the command line" in typed.stderr
    assert "dop_v1_typed" not in typed.output


def test_providers_add_unknown_kind_and_bad_field(
    run: Callable[..., Result], with_providers: FakeApi
) -> None:
    assert_error(
        run("providers", "add", "x", "--kind", "nimbus"),
        2,
        "unknown kind 'nimbus'; choose one of: local, digitalocean",
    )
    bad = run("providers", "add", "x", "--kind", "digitalocean", "--field", "dop_v1_oops")
    assert_error(bad, 2, "--field: expected KEY=VALUE")
    assert "dop_v1_oops" not in bad.output


def test_providers_list_get_kinds_and_catalogue(run: Callable[..., Result], with_providers: FakeApi) -> None:
    with_providers.on(
        "GET",
        f"{API}providers/4/catalogue/",
        {
            "regions": [{"id": "fra1", "name": "Frankfurt 1"}],
            "sizes": [
                {"id": "s-2vcpu-4gb", "name": "Basic", "cpus": 2, "memory_mb": 4096, "price_hourly": 0.03571}
            ],
            "versions": ["1.31.0", "1.30.2"],
        },
    )
    with_providers.on("GET", f"{API}providers/4/", ACCOUNT)

    listed = run("providers", "list")
    assert listed.stdout.splitlines()[1].split()[:4] == ["do-prod", "digitalocean", "0", "yes"]
    got = run("providers", "get", "do-prod")
    assert "Settings:" in got.stdout and "image=ubuntu" in got.stdout
    kinds = run("providers", "kinds")
    assert "token* (secret), image" in kinds.stdout
    assert "compute, firewall" in kinds.stdout  # what each kind offers, as the API says
    cat = run("providers", "catalogue", "do-prod", "--region", "fra1")
    assert cat.exit_code == 0, cat.output
    assert "s-2vcpu-4gb" in cat.stdout and "4096 MiB" in cat.stdout and "0.0357" in cat.stdout
    assert "Kubernetes versions: 1.31.0, 1.30.2" in cat.stdout
    assert with_providers.requests[-1].url.params["region"] == "fra1"
    assert_error(run("providers", "get", "nope"), 5, "no provider account named 'nope'")


def test_providers_remove_confirms(
    run: Callable[..., Result], with_providers: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_providers.on("DELETE", f"{API}providers/4/", status=204)
    assert_error(run("providers", "remove", "do-prod"), 2, "without confirmation")
    on_a_terminal(monkeypatch)
    assert run("providers", "remove", "do-prod", input="n\n").exit_code == 1
    assert ("DELETE", f"{API}providers/4/") not in with_providers.calls()

    result = run("providers", "remove", "do-prod", input="y\n")

    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("Removed provider account do-prod.\n")
    assert with_providers.calls()[-1] == ("DELETE", f"{API}providers/4/")


def test_providers_refresh_posts_the_refresh_action(
    run: Callable[..., Result], with_providers: FakeApi
) -> None:
    with_providers.on(
        "POST",
        f"{API}providers/4/refresh-catalogue/",
        {"regions": [{"id": "fra1", "name": "Frankfurt 1"}], "sizes": [], "versions": ["1.31.0", "1.30.2"]},
    )
    result = run("providers", "refresh", "do-prod")
    assert result.exit_code == 0, result.output
    assert ("POST", f"{API}providers/4/refresh-catalogue/") in with_providers.calls()
    assert result.stdout == "Read the catalogue of do-prod again: 1 region(s), 2 version(s).\n"
