"""Fast tests of the `flotilla` CLI: the API is faked at the HTTP level with httpx.MockTransport.

No Django here: run with `pytest tests/cli -p no:django --noconftest`.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from cli.durations import expiry, parse_duration, parse_timestamp
from cli.errors import UsageError
from cli.main import build_app

ROOT = Path(__file__).resolve().parents[2]
SERVER = "http://flotilla.test"
TOKEN = "flt_0123abcd_s3cr3t"
ORG = {
    "slug": "alpha",
    "name": "Alpha Corp",
    "created_at": "2025-01-02T03:04:05.123456Z",
    "max_clusters": 10,
    "max_nodes": 50,
    "role": "owner",
}
ALICE = {
    "id": 1,
    "email": "alice@example.com",
    "full_name": "Alice",
    "role": "owner",
    "joined_at": "2025-01-02T03:04:05Z",
}
BOB = {"id": 2, "email": "Bob@Example.com", "full_name": "Bob", "role": "member", "joined_at": None}

Handler = Callable[[httpx.Request], httpx.Response]


class FakeApi:
    """An HTTP-level stand-in for the Flotilla API: routes by method and path, records requests."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        handler: Handler | None = None,
    ) -> None:
        """Answer `method path` with a JSON body (or let `handler` answer)."""
        self.routes[(method, path)] = handler or (
            lambda request: (
                httpx.Response(status, json=body, headers=headers)
                if body is not None
                else httpx.Response(status, headers=headers)
            )
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "Not found."}})
        return route(request)

    def calls(self) -> list[tuple[str, str]]:
        """(method, path) of every request received."""
        return [(request.method, request.url.path) for request in self.requests]


def page(
    results: list[dict[str, Any]], count: int | None = None, next_url: str | None = None
) -> dict[str, Any]:
    """A page of a paginated list, as the API sends it."""
    return {
        "count": len(results) if count is None else count,
        "next": next_url,
        "previous": None,
        "results": results,
    }


def error(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The API's error body."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test gets its own config dir and none of the caller's Flotilla variables."""
    config_dir = tmp_path / "config" / "flotilla"
    for name in ("FLOTILLA_SERVER", "FLOTILLA_TOKEN", "FLOTILLA_OUTPUT", "FLOTILLA_CLI_TRACEBACK", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOTILLA_CONFIG_DIR", str(config_dir))
    return config_dir


@pytest.fixture
def api() -> FakeApi:
    """The fake API, knowing the current org."""
    fake = FakeApi()
    fake.on("GET", "/api/v1/orgs/current/", ORG)
    return fake


@pytest.fixture
def logged_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials from the environment, as in CI."""
    monkeypatch.setenv("FLOTILLA_SERVER", SERVER)
    monkeypatch.setenv("FLOTILLA_TOKEN", TOKEN)


@pytest.fixture
def run(api: FakeApi) -> Callable[..., Result]:
    """Invoke the CLI with the fake API as its transport."""

    def invoke(*args: str, input: str | None = None, transport: httpx.BaseTransport | None = None) -> Result:
        app = build_app(transport=transport or httpx.MockTransport(api))
        return CliRunner().invoke(app, list(args), input=input)

    return invoke


def assert_clean_error(result: Result, exit_code: int, message: str) -> None:
    """The documented error shape: exit code, `error: ...` on stderr, no traceback, nothing on stdout."""
    assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


# --- login, logout, credentials ------------------------------------------------------------------


def test_login_verifies_and_writes_a_private_config_file(
    run: Callable[..., Result], api: FakeApi, clean_env: Path
) -> None:
    result = run("login", "--server", f"{SERVER}/api/v1/", "--token", TOKEN)

    assert result.exit_code == 0, result.output
    assert "Alpha Corp (alpha)" in result.stdout
    path = clean_env / "config.json"
    assert json.loads(path.read_text()) == {"server": SERVER, "token": TOKEN, "org": "alpha"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(clean_env.stat().st_mode) == 0o700
    (request,) = api.requests
    assert str(request.url) == f"{SERVER}/api/v1/orgs/current/"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"].startswith("flotilla-cli/")
    assert TOKEN not in result.output


def test_login_replaces_a_loose_config_file_with_a_private_one(
    run: Callable[..., Result], clean_env: Path
) -> None:
    clean_env.mkdir(parents=True)
    old = clean_env / "config.json"
    old.write_text("{}")
    old.chmod(0o644)

    assert run("login", "--server", SERVER, "--token", TOKEN).exit_code == 0

    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert json.loads(old.read_text())["token"] == TOKEN
    assert [p.name for p in clean_env.iterdir()] == ["config.json"]  # no temporary file left


def test_login_reads_the_token_from_stdin(run: Callable[..., Result], api: FakeApi, clean_env: Path) -> None:
    result = run("login", "--server", SERVER, "--token", "-", input=f"{TOKEN}\n")

    assert result.exit_code == 0, result.output
    assert api.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads((clean_env / "config.json").read_text())["token"] == TOKEN


def test_login_without_a_token_and_no_terminal_is_a_usage_error(
    run: Callable[..., Result], api: FakeApi
) -> None:
    result = run("login", "--server", SERVER)

    assert_clean_error(result, 2, "no token given")
    assert api.requests == []


def test_login_with_a_bad_server_url_is_a_usage_error(run: Callable[..., Result], api: FakeApi) -> None:
    assert_clean_error(run("login", "--server", "flotilla.test", "--token", TOKEN), 2, "invalid server URL")
    assert api.requests == []


def test_login_with_a_rejected_token_saves_nothing(
    run: Callable[..., Result], api: FakeApi, clean_env: Path
) -> None:
    api.on("GET", "/api/v1/orgs/current/", error("authentication_failed", "Invalid token."), status=401)

    result = run("login", "--server", SERVER, "--token", "flt_deadbeef_nope")

    assert_clean_error(result, 3, "error: Invalid token.")
    assert "hint: run `flotilla login" in result.stderr
    assert not (clean_env / "config.json").exists()


def test_login_that_cannot_be_saved_is_a_clean_error(
    run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("FLOTILLA_CONFIG_DIR", str(blocker / "flotilla"))

    result = run("login", "--server", SERVER, "--token", TOKEN)

    assert_clean_error(result, 1, f"cannot save the login to {blocker / 'flotilla' / 'config.json'}")
    assert TOKEN not in result.output


def test_saved_login_is_used_then_logout_forgets_it(
    run: Callable[..., Result], api: FakeApi, clean_env: Path
) -> None:
    assert run("login", "--server", SERVER, "--token", TOKEN).exit_code == 0
    api.requests.clear()

    result = run("whoami")
    assert result.exit_code == 0, result.output
    assert "Alpha Corp" in result.stdout and "owner" in result.stdout
    assert "flt_0123abcd" in result.stdout and "s3cr3t" not in result.stdout
    assert api.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"

    result = run("logout")
    assert result.exit_code == 0 and "Logged out" in result.stdout
    assert not (clean_env / "config.json").exists()
    assert_clean_error(run("whoami"), 3, "not logged in")


def test_environment_overrides_the_config_file(
    run: Callable[..., Result], api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("login", "--server", "http://saved.test", "--token", "flt_aaaaaaaa_saved").exit_code == 0
    api.requests.clear()

    monkeypatch.setenv("FLOTILLA_TOKEN", TOKEN)
    assert run("orgs", "current").exit_code == 0
    monkeypatch.setenv("FLOTILLA_SERVER", SERVER)
    assert run("orgs", "current").exit_code == 0

    first, second = api.requests
    assert (first.url.host, first.headers["Authorization"]) == ("saved.test", f"Bearer {TOKEN}")
    assert (second.url.host, second.headers["Authorization"]) == ("flotilla.test", f"Bearer {TOKEN}")


def test_token_without_a_server_is_not_logged_in(
    run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOTILLA_TOKEN", TOKEN)
    assert_clean_error(run("members", "list"), 3, "FLOTILLA_TOKEN is set but no server")


def test_a_corrupt_config_file_is_reported(run: Callable[..., Result], clean_env: Path) -> None:
    clean_env.mkdir(parents=True)
    (clean_env / "config.json").write_text("{not json")
    assert_clean_error(run("members", "list"), 3, "is not valid JSON")


def test_login_over_plain_http_warns_unless_loopback(run: Callable[..., Result]) -> None:
    remote = run("login", "--server", SERVER, "--token", TOKEN)
    local = run("login", "--server", "http://127.0.0.1:8000", "--token", TOKEN)

    assert remote.exit_code == local.exit_code == 0
    assert "warning: http://flotilla.test is not https" in remote.stderr
    assert "warning" not in local.stderr


@pytest.mark.parametrize("token", ["", "flt_abc def", "flt_é_x"])
def test_login_refuses_a_malformed_token_without_calling(
    run: Callable[..., Result], api: FakeApi, token: str
) -> None:
    assert_clean_error(run("login", "--server", SERVER, "--token", token), 2, "--token")
    assert api.requests == []


# --- output: json and tables ---------------------------------------------------------------------


def test_orgs_current_as_json_is_the_api_body(run: Callable[..., Result], logged_in: None) -> None:
    for args in (("-o", "json", "orgs", "current"), ("orgs", "current", "--output", "json")):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == ORG


def test_output_format_from_the_environment(
    run: Callable[..., Result], logged_in: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOTILLA_OUTPUT", "json")
    assert json.loads(run("whoami").stdout) == ORG


def test_lists_follow_every_page_on_the_configured_server(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    members = [{**ALICE, "id": n, "email": f"user{n}@example.com"} for n in range(1, 6)]
    path = "/api/v1/orgs/members/"
    # The server's `next` links name another host (as behind a proxy); the CLI keeps to its own.
    pages = {
        None: page(members[:2], 5, f"http://internal:8000{path}?page=2&page_size=200"),
        "2": page(members[2:4], 5, f"https://elsewhere.test{path}?page=3&page_size=200"),
        "3": page(members[4:], 5),
    }
    api.on(
        "GET", path, handler=lambda request: httpx.Response(200, json=pages[request.url.params.get("page")])
    )

    result = run("-o", "json", "members", "list")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == members
    assert [request.url.host for request in api.requests] == ["flotilla.test"] * 3
    assert [request.url.params.get("page_size") for request in api.requests] == ["200"] * 3


def test_tables_are_plain_and_unwrapped_off_a_terminal(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    long_name = "Bartholomew " * 12 + "[bold]not markup[/bold]"
    api.on("GET", "/api/v1/orgs/members/", page([ALICE, {**BOB, "full_name": long_name}]))

    result = run("members", "list")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "EMAIL", "NAME", "ROLE", "JOINED"]
    assert len(lines) == 3
    assert lines[1].split() == ["1", "alice@example.com", "Alice", "owner", "2025-01-02", "03:04:05Z"]
    assert long_name in lines[2] and lines[2].rstrip().endswith("member  -")
    assert all(line == line.rstrip() for line in lines)
    assert "\x1b[" not in result.stdout


def test_empty_list_says_so_on_stderr(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on("GET", "/api/v1/orgs/members/", page([]))

    result = run("members", "list")
    assert result.exit_code == 0
    assert (result.stdout, result.stderr.strip()) == ("", "No members.")
    assert json.loads(run("-o", "json", "members", "list").stdout) == []


# --- orgs and members ----------------------------------------------------------------------------


def test_orgs_rename_patches_the_name(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on("PATCH", "/api/v1/orgs/current/", {**ORG, "name": "Alpha Ltd"})

    result = run("orgs", "rename", "Alpha Ltd")

    assert result.exit_code == 0, result.output
    assert "Alpha Ltd" in result.stdout
    assert json.loads(api.requests[0].content) == {"name": "Alpha Ltd"}
    assert api.requests[0].headers["Content-Type"] == "application/json"


def test_members_invite_prints_the_link(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    invitation = {
        "id": 7,
        "email": "carol@example.com",
        "role": "admin",
        "created_at": "2025-01-01T00:00:00Z",
        "expires_at": "2025-01-08T00:00:00Z",
        "invited_by": "alice@example.com",
        "url": f"{SERVER}/invite/abc123/",
    }
    api.on("POST", "/api/v1/orgs/invitations/", invitation, status=201)

    result = run("members", "invite", "carol@example.com", "--role", "admin")

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{SERVER}/invite/abc123/\n"
    assert "carol@example.com as admin" in result.stderr
    assert json.loads(api.requests[0].content) == {"email": "carol@example.com", "role": "admin"}
    assert json.loads(run("-o", "json", "members", "invite", "carol@example.com").stdout) == invitation
    assert json.loads(api.requests[1].content)["role"] == "member"


def test_members_invite_refuses_an_unknown_role_before_calling(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    result = run("members", "invite", "carol@example.com", "--role", "god")
    assert result.exit_code == 2
    assert api.requests == []


def test_members_set_role_by_email(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on("GET", "/api/v1/orgs/members/", page([ALICE, BOB]))
    api.on("PATCH", "/api/v1/orgs/members/2/", {**BOB, "role": "admin"})

    result = run("members", "set-role", "bob@example.COM", "admin")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Bob@Example.com is now admin.\n"
    assert json.loads(api.requests[-1].content) == {"role": "admin"}


def test_members_remove_needs_yes_off_a_terminal(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    result = run("members", "remove", "2")

    assert_clean_error(result, 2, "without confirmation")
    assert "--yes" in result.stderr
    assert api.requests == []


def test_members_remove_with_yes(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on("GET", "/api/v1/orgs/members/2/", BOB)
    api.on("DELETE", "/api/v1/orgs/members/2/", status=204)

    result = run("members", "remove", "2", "--yes")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Removed Bob@Example.com.\n"
    assert api.calls() == [("GET", "/api/v1/orgs/members/2/"), ("DELETE", "/api/v1/orgs/members/2/")]


def test_members_remove_unknown_email_is_not_found(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    api.on("GET", "/api/v1/orgs/members/", page([ALICE]))
    assert_clean_error(run("members", "remove", "nobody@example.com", "--yes"), 5, "no member with email")
    assert [method for method, _ in api.calls()] == ["GET"]


def test_members_invitations_and_revoke_invite(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    pending = {
        "id": 9,
        "email": "dan@example.com",
        "role": "viewer",
        "created_at": "2025-01-01T00:00:00Z",
        "expires_at": "2025-01-08T00:00:00Z",
        "invited_by": None,
    }
    api.on("GET", "/api/v1/orgs/invitations/", page([pending]))
    api.on("DELETE", "/api/v1/orgs/invitations/9/", status=204)

    listed = run("members", "invitations")
    assert listed.exit_code == 0 and "dan@example.com" in listed.stdout
    result = run("members", "revoke-invite", "DAN@example.com")
    assert result.exit_code == 0, result.output
    assert api.calls()[-1] == ("DELETE", "/api/v1/orgs/invitations/9/")


# --- tokens --------------------------------------------------------------------------------------

TOKEN_ROW = {
    "id": 12,
    "name": "ci",
    "role": "viewer",
    "prefix": "flt_9f8e7d6c",
    "owner": "alice@example.com",
    "created_at": "2025-01-01T00:00:00Z",
    "expires_at": None,
    "last_used_at": None,
    "revoked_at": None,
    "active": True,
}


def test_tokens_list_all_by_default_active_on_request(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    revoked = {**TOKEN_ROW, "id": 13, "name": "old", "revoked_at": "2025-02-01T00:00:00Z", "active": False}
    expired = {**TOKEN_ROW, "id": 14, "name": "stale", "expires_at": "2025-01-02T00:00:00Z", "active": False}
    api.on(
        "GET",
        "/api/v1/orgs/tokens/",
        handler=lambda request: httpx.Response(
            200,
            json=page(
                [TOKEN_ROW] if request.url.params.get("active") == "true" else [TOKEN_ROW, revoked, expired]
            ),
        ),
    )

    everything = run("tokens", "list")
    active = run("tokens", "list", "--active")
    explicit_all = run("tokens", "list", "--all")

    assert everything.exit_code == active.exit_code == explicit_all.exit_code == 0, everything.output
    rows = [line.split() for line in everything.stdout.splitlines()]
    header = ["ID", "NAME", "PREFIX", "ROLE", "OWNER", "CREATED", "EXPIRES", "LAST", "USED", "STATUS"]
    assert rows[0] == header
    assert [(row[0], row[1], row[-1]) for row in rows[1:]] == [
        ("12", "ci", "active"),
        ("13", "old", "revoked"),
        ("14", "stale", "expired"),
    ]
    assert len(active.stdout.splitlines()) == 2 and "revoked" not in active.stdout
    assert explicit_all.stdout == everything.stdout
    assert [request.url.params.get("active") for request in api.requests] == [None, "true", None]


def test_tokens_create_prints_the_secret_once_with_a_warning(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    created = {**TOKEN_ROW, "token": "flt_9f8e7d6c_brandnewsecret"}
    api.on("POST", "/api/v1/orgs/tokens/", created, status=201)

    result = run("tokens", "create", "ci")

    assert result.exit_code == 0, result.output
    assert result.stdout == "flt_9f8e7d6c_brandnewsecret\n"
    assert "warning:" in result.stderr and "only once" in result.stderr
    assert json.loads(api.requests[0].content) == {"name": "ci", "role": "viewer"}

    as_json = run("tokens", "create", "ci", "-o", "json")
    assert json.loads(as_json.stdout) == created
    assert as_json.stderr == ""


def test_tokens_create_expiry_options(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on("POST", "/api/v1/orgs/tokens/", {**TOKEN_ROW, "token": "flt_x_y"}, status=201)

    assert (
        run("tokens", "create", "ci", "--role", "admin", "--expires", "2026-12-31T00:00:00Z").exit_code == 0
    )
    before = datetime.now(UTC)
    assert run("tokens", "create", "ci", "--expires-in", "30d").exit_code == 0

    first, second = (json.loads(request.content) for request in api.requests)
    assert first == {"name": "ci", "role": "admin", "expires_at": "2026-12-31T00:00:00Z"}
    sent = datetime.fromisoformat(second["expires_at"])
    assert timedelta(days=30) - timedelta(seconds=5) <= sent - before <= timedelta(days=30, seconds=5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--expires", "2026-12-31T00:00:00"], "has no time zone"),
        (["--expires", "next tuesday"], "is not an ISO 8601"),
        (["--expires-in", "30x"], "is not a duration"),
        (["--expires-in", "0d"], "longer than zero"),
        (["--expires", "2026-12-31", "--expires-in", "1d"], "not both"),
    ],
)
def test_tokens_create_bad_expiry_is_a_usage_error(
    run: Callable[..., Result], api: FakeApi, logged_in: None, options: list[str], message: str
) -> None:
    assert_clean_error(run("tokens", "create", "ci", *options), 2, message)
    assert api.requests == []


def test_tokens_revoke(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on("GET", "/api/v1/orgs/tokens/12/", TOKEN_ROW)
    api.on("DELETE", "/api/v1/orgs/tokens/12/", status=204)

    result = run("tokens", "revoke", "12")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Revoked token 12 (ci, flt_9f8e7d6c).\n"
    assert api.calls()[-1] == ("DELETE", "/api/v1/orgs/tokens/12/")
    assert_clean_error(run("tokens", "revoke", "ci"), 2, "is not a token id")
    assert_clean_error(run("tokens", "revoke", "99"), 5, "no token with id 99")


def test_revoking_the_token_in_use_warns(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on("GET", "/api/v1/orgs/tokens/3/", {**TOKEN_ROW, "id": 3, "prefix": "flt_0123abcd"})
    api.on("DELETE", "/api/v1/orgs/tokens/3/", status=204)

    result = run("tokens", "revoke", "3")
    assert result.exit_code == 0
    assert "the token this CLI is using" in result.stderr


# --- audit ---------------------------------------------------------------------------------------

AUDIT_ROW = {
    "id": 1,
    "created_at": "2025-03-01T10:00:00Z",
    "actor": "alice@example.com",
    "token_prefix": "flt_0123abcd",
    "source": "cli",
    "ip": "127.0.0.1",
    "action": "member.role_changed",
    "object_type": "membership",
    "object_id": "2",
    "object_repr": "Bob@Example.com",
    "before": {"role": "member"},
    "after": {"role": "admin"},
}


def test_audit_filters_and_limit(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    rows = [{**AUDIT_ROW, "id": n} for n in range(3)]
    api.on("GET", "/api/v1/orgs/audit/", page(rows, count=40, next_url=f"{SERVER}/api/v1/orgs/audit/?page=2"))

    result = run("audit", "--action", "member.", "--actor", "alice@example.com", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3
    assert "member.role_changed" in result.stdout and "membership:2 Bob@Example.com" in result.stdout
    assert "Showing the newest 2 of 40" in result.stderr
    (request,) = api.requests
    assert dict(request.url.params) == {"action": "member.", "actor": "alice@example.com", "page_size": "2"}

    as_json = run("-o", "json", "audit", "-n", "2")
    assert json.loads(as_json.stdout) == rows[:2]


# --- errors and exit codes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "exit_code", "message"),
    [
        (
            400,
            error("invalid", "name: This field may not be blank.", {"name": ["May not be blank."]}),
            2,
            "name:",
        ),
        (400, error("malformed", "JSON parse error."), 2, "JSON parse error."),
        (413, error("payload_too_large", "The request body is too large."), 2, "too large"),
        (415, error("unsupported_media_type", 'Unsupported media type "text/plain".'), 2, "media type"),
        (401, error("not_authenticated", "Authentication credentials were not provided."), 3, "credentials"),
        (403, error("not_authenticated", "Authentication credentials were not provided."), 3, "credentials"),
        (403, error("permission_denied", "Admins only."), 4, "Admins only."),
        (404, error("not_found", "Not found."), 5, "Not found."),
        (409, error("quota_exceeded", "The organisation has reached its cluster quota."), 6, "quota"),
        (429, error("throttled", "Request was throttled."), 7, "throttled"),
        (500, error("server_error", "Internal error."), 8, "Internal error."),
        (503, None, 8, "HTTP 503 Service Unavailable from PATCH /api/v1/orgs/current/"),
    ],
)
def test_api_errors_map_to_exit_codes(
    run: Callable[..., Result],
    api: FakeApi,
    logged_in: None,
    status: int,
    body: dict[str, Any] | None,
    exit_code: int,
    message: str,
) -> None:
    headers = {"Retry-After": "17"} if status == 429 else None
    api.on("PATCH", "/api/v1/orgs/current/", body, status=status, headers=headers)

    result = run("orgs", "rename", "x")

    assert_clean_error(result, exit_code, message)


def test_an_authentication_error_hints_at_login(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    # DRF answers `not_authenticated` with 403 when no authentication class names a scheme.
    api.on("GET", "/api/v1/orgs/members/", error("authentication_failed", "Token revoked."), status=403)

    result = run("members", "list")

    assert_clean_error(result, 3, "error: Token revoked.")
    assert "hint: run `flotilla login" in result.stderr


def test_field_errors_are_listed_one_per_line(
    run: Callable[..., Result], api: FakeApi, logged_in: None
) -> None:
    fields = {"name": ["May not be blank."], "role": ['"god" is not a valid choice.', "Second reason."]}
    api.on("POST", "/api/v1/orgs/tokens/", error("invalid", "name: May not be blank.", fields), status=400)

    result = run("tokens", "create", "ci")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: name: May not be blank.",
        '  role: "god" is not a valid choice.',
        "  role: Second reason.",
    ]


def test_rate_limit_shows_when_to_retry(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on(
        "GET",
        "/api/v1/orgs/members/",
        error("throttled", "Slow down."),
        status=429,
        headers={"Retry-After": "17"},
    )
    result = run("members", "list")
    assert result.exit_code == 7
    assert "hint: retry in 17 s" in result.stderr


@pytest.mark.parametrize(
    ("exception", "message"),
    [
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            "cannot reach the server at http://flotilla.test",
        ),
        (httpx.ConnectTimeout("timed out"), "no connection within 5 s"),
        (httpx.ReadTimeout("timed out"), "did not answer within 30 s"),
        (httpx.RemoteProtocolError("Server disconnected"), "Server disconnected"),
    ],
)
def test_transport_failures_exit_8(
    run: Callable[..., Result], logged_in: None, exception: Exception, message: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exception

    assert_clean_error(run("members", "list", transport=httpx.MockTransport(fail)), 8, message)


def test_unreachable_real_server_exits_8(
    run: Callable[..., Result], logged_in: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FLOTILLA_SERVER", f"http://127.0.0.1:{port}")
    app = build_app()  # the real network transport

    result = CliRunner().invoke(app, ["members", "list"])

    assert_clean_error(result, 8, f"cannot reach the server at http://127.0.0.1:{port}")


def test_a_non_json_answer_exits_8(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on(
        "GET", "/api/v1/orgs/members/", handler=lambda request: httpx.Response(200, text="<html>hi</html>")
    )
    assert_clean_error(run("members", "list"), 8, "is not JSON")


def test_a_redirect_is_explained(run: Callable[..., Result], api: FakeApi, logged_in: None) -> None:
    api.on("GET", "/api/v1/orgs/current/", status=301, headers={"Location": "https://flotilla.test/api/v1/"})
    result = run("whoami")
    assert_clean_error(result, 1, "redirected")
    assert "https://flotilla.test/api/v1/" in result.stderr
    assert len(api.requests) == 1  # the token is not replayed to the new location


def test_an_unexpected_failure_is_one_line_and_exit_1(run: Callable[..., Result], logged_in: None) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("boom")

    result = run("members", "list", transport=httpx.MockTransport(broken))
    assert_clean_error(result, 1, "unexpected RuntimeError: boom")


# --- parsing helpers and packaging ---------------------------------------------------------------


def test_durations_and_timestamps() -> None:
    assert parse_duration("1d12h", option="x") == timedelta(days=1, hours=12)
    assert parse_duration("2W", option="x") == timedelta(weeks=2)
    assert parse_timestamp("2026-12-31", option="x") == datetime(2026, 12, 31, tzinfo=UTC)
    assert parse_timestamp("2026-12-31T02:00:00+02:00", option="x") == datetime(2026, 12, 31, tzinfo=UTC)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert expiry(None, "90m", now=now) == datetime(2025, 1, 1, 1, 30, tzinfo=UTC)
    assert expiry(None, None) is None
    with pytest.raises(UsageError):
        parse_duration("-3d", option="x")


def test_runs_as_a_module_without_django() -> None:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    version = subprocess.run(
        [sys.executable, "-m", "cli.main", "--version"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("flotilla-cli ")

    probe = "import sys, cli.main; sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env).returncode == 0
