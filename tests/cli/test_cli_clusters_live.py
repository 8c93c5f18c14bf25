"""The real `flotilla` command against a real server and worker: a local cluster's whole life.

create --wait, list, scale --wait, kubeconfig (used by the `kubernetes` client), delete --wait.
"""

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

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from clusters.local import binaries
from tests.factories import make_org, make_token, owner_of
from tests.live import ROOT, LiveProcess

pytestmark = [pytest.mark.live, pytest.mark.kube, pytest.mark.usefixtures("drop_org_schemas")]

WAIT_TIMEOUT = "240"


_VERSIONS = binaries.available_k8s_versions()[::-1]  # oldest first
OLDEST, NEWEST = (_VERSIONS[0], _VERSIONS[-1]) if _VERSIONS else ("", "")


def flotilla(
    config_dir: Path, *args: str, timeout: float = 60, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOTILLA_") and k != "KUBECONFIG"}
    env["FLOTILLA_CONFIG_DIR"] = str(config_dir)
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ok(result: subprocess.CompletedProcess[str], worker: LiveProcess) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
        f"worker:\n{worker.output()[-4000:]}"
    )
    assert "Traceback" not in result.stderr
    return result


def test_cluster_life_through_the_cli(live_flotilla: str, live_worker: LiveProcess, tmp_path: Path) -> None:
    org = make_org("cli-kube")
    _, token = make_token(owner_of(org))
    config_dir = tmp_path / "flotilla"
    home = tmp_path / "home"
    home.mkdir()
    assert flotilla(config_dir, "login", "--server", live_flotilla, "--token", token).returncode == 0

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return flotilla(config_dir, *args, timeout=timeout, home=home)

    # An unknown cluster is "not found", before any change.
    missing = run("clusters", "scale", "nope", "p", "2")
    assert missing.returncode == 5 and "no cluster named 'nope'" in missing.stderr

    created = _ok(
        run(
            "clusters", "create", "demo", "--pool", "name=p,size=small,count=1", "--version", OLDEST,
            "--wait", "--timeout", WAIT_TIMEOUT, timeout=300,
        ),
        live_worker,
    )  # fmt: skip
    assert "Cluster demo is ready: 1/1 nodes ready" in created.stdout
    # Not a terminal: the progress is plain lines on stderr, ending with the finished operation.
    assert "(create demo): 100% succeeded" in created.stderr

    listed = json.loads(_ok(run("clusters", "list", "-o", "json"), live_worker).stdout)
    (demo,) = listed
    assert (demo["name"], demo["status"], demo["provider_kind"]) == ("demo", "ready", "local")
    assert (demo["nodes_ready"], demo["nodes_total"]) == (1, 1)
    assert demo["active_operation"] is None
    table = _ok(run("clusters", "list"), live_worker).stdout
    assert table.splitlines()[0].split() == [
        "NAME",
        "STATUS",
        "PROVIDER",
        "REGION",
        "VERSION",
        "NODES",
        "OPERATION",
    ]
    assert table.splitlines()[1].split()[:2] == ["demo", "ready"]

    scaled = _ok(
        run("clusters", "scale", "demo", "p", "2", "--wait", "--timeout", WAIT_TIMEOUT, timeout=300),
        live_worker,
    )
    assert "Pool p of demo has 2 nodes." in scaled.stdout

    nodes_json = json.loads(_ok(run("clusters", "nodes", "demo", "-o", "json"), live_worker).stdout)
    assert sorted((n["name"], n["pool_name"], n["ready"]) for n in nodes_json) == [
        ("p-0", "p", True),
        ("p-1", "p", True),
    ]
    assert _ok(run("clusters", "events", "demo"), live_worker).stdout.startswith("TIME")
    catalogue = json.loads(_ok(run("providers", "catalogue", "local", "-o", "json"), live_worker).stdout)
    assert "small" in {size["id"] for size in catalogue["sizes"]} and catalogue["versions"]
    kinds = json.loads(_ok(run("providers", "kinds", "-o", "json"), live_worker).stdout)
    assert {"local", "existing"} <= {k["kind"] for k in kinds}

    upgrade = run("clusters", "upgrade", "demo", NEWEST, "--wait", "--timeout", WAIT_TIMEOUT, timeout=300)
    _ok(upgrade, live_worker)
    demo = json.loads(_ok(run("clusters", "get", "demo", "-o", "json"), live_worker).stdout)
    assert (demo["version"], demo["observed_version"], demo["status"]) == (NEWEST, NEWEST, "ready")

    operations = json.loads(_ok(run("clusters", "operations", "demo", "-o", "json"), live_worker).stdout)
    assert [(o["kind"], o["status"]) for o in operations] == [
        ("upgrade", "succeeded"),
        ("scale", "succeeded"),
        ("create", "succeeded"),
    ]

    # The kubeconfig, merged into a file that already has another context, works with the client.
    kubeconfig = tmp_path / "kube" / "config"
    kubeconfig.parent.mkdir()
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: other\n"
        "clusters: [{name: other, cluster: {server: 'https://other.invalid'}}]\n"
        "users: [{name: other, user: {token: x}}]\n"
        "contexts: [{name: other, context: {cluster: other, user: other}}]\n"
    )
    written = _ok(run("kubeconfig", "demo", "--file", str(kubeconfig)), live_worker)
    context = "flotilla-cli-kube-demo"
    assert f"as context {context}" in written.stdout
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    api = k8s_config.new_client_from_config(config_file=str(kubeconfig), context=context)
    try:
        nodes = k8s.CoreV1Api(api).list_node().items
    finally:
        api.close()
    assert sorted(n.metadata.name for n in nodes) == ["p-0", "p-1"]
    assert "current-context: other" in kubeconfig.read_text()

    declined = run("clusters", "delete", "demo")  # no terminal, no --yes: refused before any call
    assert declined.returncode == 2 and "--yes" in declined.stderr

    deleted = _ok(
        run("clusters", "delete", "demo", "--yes", "--wait", "--timeout", WAIT_TIMEOUT, timeout=300),
        live_worker,
    )
    assert "Deleted cluster demo." in deleted.stdout
    assert json.loads(_ok(run("clusters", "list", "-o", "json"), live_worker).stdout) == []
    gone = run("clusters", "get", "demo")
    assert gone.returncode == 5 and "no cluster named 'demo'" in gone.stderr
