"""The real `flotilla` command against a real server: login, members, tokens, JSON output."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps

if not apps.ready:  # collected by the Django-free unit run (`-p no:django --noconftest`)
    pytest.skip("the live CLI tests need pytest-django and the database", allow_module_level=True)

from orgs.choices import Role
from orgs.models import ApiToken
from tests.factories import add_member, make_org, make_token, owner_of
from tests.live import ROOT

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]


def flotilla(config_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOTILLA_")}
    env["FLOTILLA_CONFIG_DIR"] = str(config_dir)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_end_to_end(live_flotilla: str, tmp_path: Path) -> None:
    org = make_org("cli-live")
    add_member(org, Role.VIEWER)
    _, clear = make_token(owner_of(org))

    bad = flotilla(tmp_path, "login", "--server", live_flotilla, "--token", "flt_00000000_wrong")
    assert bad.returncode == 3 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
    assert not (tmp_path / "config.json").exists()

    login = flotilla(tmp_path, "login", "--server", live_flotilla, "--token", "-", stdin=clear + "\n")
    assert login.returncode == 0, login.stderr
    config = tmp_path / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    table = flotilla(tmp_path, "members", "list")
    assert table.returncode == 0 and "owner@cli-live.test" in table.stdout
    members = json.loads(flotilla(tmp_path, "-o", "json", "members", "list").stdout)
    assert {m["role"] for m in members} == {"owner", "viewer"}

    created = flotilla(tmp_path, "-o", "json", "tokens", "create", "pipeline", "--role", "viewer")
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert body["token"].startswith("flt_") and body["role"] == "viewer"
    token_id = str(body["id"])

    listed = json.loads(flotilla(tmp_path, "-o", "json", "tokens", "list").stdout)
    assert token_id in {str(t["id"]) for t in listed} and all("token" not in t for t in listed)

    revoked = flotilla(tmp_path, "tokens", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert ApiToken.objects.get(pk=int(token_id)).revoked_at is not None
    missing = flotilla(tmp_path, "tokens", "revoke", "999999")
    assert missing.returncode == 5 and "error:" in missing.stderr

    audit = json.loads(flotilla(tmp_path, "-o", "json", "audit", "--action", "token.").stdout)
    assert {"token.created", "token.revoked"} <= {e["action"] for e in audit}
    assert all(e["source"] == "cli" for e in audit if e["action"] in {"token.revoked"})


def test_cli_cannot_reach_another_org(live_flotilla: str, tmp_path: Path) -> None:
    org_a, org_b = make_org("cli-a"), make_org("cli-b")
    victim = add_member(org_a, Role.VIEWER)
    _, clear_b = make_token(owner_of(org_b))
    assert flotilla(tmp_path, "login", "--server", live_flotilla, "--token", clear_b).returncode == 0
    listed = json.loads(flotilla(tmp_path, "-o", "json", "members", "list").stdout)
    assert victim.user.email not in {m["email"] for m in listed}
    result = flotilla(tmp_path, "members", "remove", str(victim.pk), "--yes")
    assert result.returncode == 5
    result = flotilla(tmp_path, "members", "set-role", str(victim.pk), "admin")
    assert result.returncode == 5
    victim.refresh_from_db()
    assert victim.role == Role.VIEWER
