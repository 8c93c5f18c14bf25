"""The real `flotilla storage`, `snapshots`, `restore` and `restores` commands against a real server
and worker, on a real local cluster: a snapshot taken with --wait, a preview printed, a restore
into a mapped namespace with --wait and its report, the `fail` policy's exit code, a deletion —
each checked in the API server too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.apps import apps

if not apps.ready:  # collected by the Django-free unit run (`-p no:django --noconftest`)
    pytest.skip("the live CLI tests need pytest-django and the database", allow_module_level=True)

from kubernetes import client as k8s

from tests.cli.test_cli_clusters_live import _ok, flotilla
from tests.clusters.app_helpers import cluster_on
from tests.factories import make_org, make_token, owner_of
from tests.live import LiveProcess
from tests.local_kube import LocalCluster

pytestmark = [pytest.mark.live, pytest.mark.kube, pytest.mark.usefixtures("drop_org_schemas")]


def test_snapshot_and_restore_through_the_cli(
    live_flotilla: str, live_worker: LiveProcess, local_cluster: LocalCluster, tmp_path: Path
) -> None:
    org = make_org("cli-snaps")
    cluster_on(org, local_cluster, name="kind")
    _, token = make_token(owner_of(org))
    config_dir = tmp_path / "flotilla"
    assert flotilla(config_dir, "login", "--server", live_flotilla, "--token", token).returncode == 0
    namespace = local_cluster.new_namespace("cli-snap")
    core = local_cluster.core()
    for i in range(12):
        core.create_namespaced_config_map(
            namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=f"cm-{i}"), data={"i": str(i)})
        )
    core.create_namespaced_secret(
        namespace,
        k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="creds"), string_data={"token": "cli-secret-4"}),
    )

    def run(*args: str, timeout: float = 180) -> str:
        return _ok(flotilla(config_dir, *args, timeout=timeout), live_worker).stdout

    bad = flotilla(config_dir, "restore", "nope", "--into", "kind", "--namespace-map", "a")
    assert bad.returncode == 2 and "--namespace-map" in bad.stderr
    missing = flotilla(config_dir, "snapshots", "get", "nope")
    assert missing.returncode == 5, missing.stderr

    run(
        "snapshots",
        "create",
        "kind",
        "--name",
        "nightly",
        "--namespace",
        namespace,
        "--wait",
        "--timeout",
        "120",
    )
    got = json.loads(run("snapshots", "get", "nightly", "-o", "json"))
    assert got["status"] == "completed" and got["object_count"] >= 13
    assert "cli-secret-4" not in run("snapshots", "get", "nightly")
    listed = json.loads(run("snapshots", "list", "-o", "json"))
    assert [s["name"] for s in listed] == ["nightly"]
    storage = json.loads(run("storage", "list", "-o", "json"))
    assert [(s["name"], s["kind"], s["snapshot_count"]) for s in storage] == [("local", "local", 1)]

    target = f"{namespace}-copy"
    preview = run(
        "restore", "nightly", "--into", "kind", "--namespace-map", f"{namespace}={target}", "--preview"
    )
    assert "cm-3" in preview and "create" in preview
    assert not core.list_namespaced_config_map(target).items

    done = run(
        "restore",
        "nightly",
        "--into",
        "kind",
        "--namespace-map",
        f"{namespace}={target}",
        "--wait",
        "--timeout",
        "120",
    )
    assert "cm-3" in done
    names = {c.metadata.name for c in core.list_namespaced_config_map(target).items}
    assert {f"cm-{i}" for i in range(12)} <= names
    assert core.read_namespaced_secret("creds", target).data["token"]
    restores = json.loads(run("restores", "list", "-o", "json"))
    expected = [("restore", "completed"), ("preview", "completed")]
    assert [(r["mode"], r["status"]) for r in restores] == expected
    report = json.loads(run("restores", "report", str(restores[0]["id"]), "-o", "json"))
    rows = report if isinstance(report, list) else report["items"]
    assert {r["name"] for r in rows if r["kind"] == "ConfigMap" and r["action"] == "create"} >= {
        "cm-0",
        "cm-11",
    }

    # The same restore again with `fail`: everything exists, nothing is written, exit 9.
    refused = flotilla(
        config_dir, "restore", "nightly", "--into", "kind", "--namespace-map", f"{namespace}={target}",
        "--existing", "fail", "--wait", "--timeout", "120", timeout=180,
    )  # fmt: skip
    assert refused.returncode == 9, (refused.stdout, refused.stderr)
    assert "already exist" in refused.stdout + refused.stderr

    run("snapshots", "delete", "nightly", "--yes", "--wait", "--timeout", "120")
    assert json.loads(run("snapshots", "list", "-o", "json")) == []
