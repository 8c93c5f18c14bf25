"""`flotilla clusters import` against a real server and worker: the server refuses a kubeconfig
whose server the outbound policy refuses (exit 2, nothing saved); an accepted import that the
worker cannot complete makes `--wait` exit 9 with the reason, and leaves the cluster to forget."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps

if not apps.ready:  # collected by the Django-free unit run (`-p no:django --noconftest`)
    pytest.skip("the live CLI tests need pytest-django and the database", allow_module_level=True)

from tests.cli.test_cli_clusters_live import flotilla
from tests.factories import make_org, make_token, owner_of
from tests.live import LiveProcess

pytestmark = [pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]


def kubeconfig(server: str) -> str:
    return (
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: k\n  cluster:\n    server: {server}\n"
        "users:\n- name: u\n  user:\n    token: t\n"
        "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
    )


@pytest.fixture
def closed_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A loopback port nobody listens on, allow-listed for the server and worker processes
    (they inherit this environment when the live fixtures start them, after this one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    monkeypatch.setenv("FLOTILLA_OUTBOUND_ALLOW", f"127.0.0.1:{port}")
    yield port


def test_import_refusals_and_failures_through_the_cli(
    closed_port: int, live_flotilla: str, live_worker: LiveProcess, tmp_path: Path
) -> None:
    org = make_org("cli-import")
    _, token = make_token(owner_of(org))
    config_dir = tmp_path / "flotilla"
    assert flotilla(config_dir, "login", "--server", live_flotilla, "--token", token).returncode == 0
    refused_file, far_file = tmp_path / "refused.yaml", tmp_path / "far.yaml"
    refused_file.write_text(kubeconfig("https://127.0.0.1:5432"))
    far_file.write_text(kubeconfig(f"https://127.0.0.1:{closed_port}"))

    refused = flotilla(config_dir, "clusters", "import", "db", "--kubeconfig", str(refused_file), "--wait")
    assert refused.returncode == 2, refused.stderr
    assert "127.0.0.1, a loopback address" in refused.stderr
    listed = flotilla(config_dir, "clusters", "list", "-o", "json")
    assert json.loads(listed.stdout) == []

    failed = flotilla(
        config_dir, "clusters", "import", "far", "--kubeconfig", str(far_file), "--wait", "--timeout", "120",
        timeout=150,
    )  # fmt: skip
    assert failed.returncode == 9, f"{failed.stdout}\n{failed.stderr}\n{live_worker.output()[-3000:]}"
    assert f"https://127.0.0.1:{closed_port} is not reachable" in failed.stderr
    shown = json.loads(flotilla(config_dir, "clusters", "get", "far", "-o", "json").stdout)
    assert shown["status"] == "error" and "not reachable" in shown["status_reason"]
    forgotten = flotilla(
        config_dir, "clusters", "delete", "far", "--yes", "--wait", "--timeout", "120", timeout=150
    )
    assert forgotten.returncode == 0, forgotten.stderr
