"""The real `flotilla apps` commands against a real server and worker, on a real local cluster:
deploy --wait, list, get, update --wait (a new revision), scale --wait, history, rollback --wait,
pods, restart --wait, a rollout that fails (exit 9 with the reason), delete --wait — each checked
in the API server too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.apps import apps

if not apps.ready:  # collected by the Django-free unit run (`-p no:django --noconftest`)
    pytest.skip("the live CLI tests need pytest-django and the database", allow_module_level=True)

from tests.cli.test_cli_clusters_live import _ok, flotilla
from tests.clusters.app_helpers import cluster_on, read
from tests.factories import make_org, make_token, owner_of
from tests.live import LiveProcess
from tests.local_kube import LocalCluster

pytestmark = [pytest.mark.live, pytest.mark.kube, pytest.mark.usefixtures("drop_org_schemas")]


def test_app_life_through_the_cli(
    live_flotilla: str, live_worker: LiveProcess, local_cluster: LocalCluster, tmp_path: Path
) -> None:
    org = make_org("cli-apps")
    cluster_on(org, local_cluster, name="kind")
    _, token = make_token(owner_of(org))
    config_dir = tmp_path / "flotilla"
    assert flotilla(config_dir, "login", "--server", live_flotilla, "--token", token).returncode == 0
    namespace = f"cli-{org.pk}"

    def run(*args: str, timeout: float = 120) -> str:
        return _ok(flotilla(config_dir, *args, timeout=timeout), live_worker).stdout

    missing = flotilla(config_dir, "apps", "scale", "nope", "2")
    assert missing.returncode == 5, missing.stderr
    bad = flotilla(
        config_dir, "apps", "deploy", "web", "--cluster", "kind", "--image", "nginx", "--port", "0"
    )
    assert bad.returncode == 2 and "--port" in bad.stderr

    run(
        "apps", "deploy", "web", "--cluster", "kind", "--namespace", namespace, "--image", "nginx:1.27",
        "--replicas", "2", "--port", "80", "--env", "MODE=prod", "--secret", "TOKEN=cli-secret-9",
        "--cpu", "100m", "--memory", "64Mi", "--health", "http:/healthz:80", "--wait", "--timeout", "120",
    )  # fmt: skip
    deployment = read(local_cluster, "Deployment", namespace, "web")
    assert deployment.status.available_replicas == 2
    assert read(local_cluster, "Secret", namespace, "web-secrets") is not None

    listed = json.loads(run("apps", "list", "--cluster", "kind", "-o", "json"))
    assert [(a["name"], a["status"]) for a in listed] == [("web", "available")]
    assert "cli-secret-9" not in run("apps", "get", "web")
    assert "web-" in run("apps", "pods", "web")

    run("apps", "update", "web", "--image", "nginx:1.28", "--wait", "--timeout", "120")
    image = read(local_cluster, "Deployment", namespace, "web").spec.template.spec.containers[0].image
    assert image == "nginx:1.28"
    run("apps", "scale", "web", "3", "--wait", "--timeout", "120")
    assert read(local_cluster, "Deployment", namespace, "web").status.available_replicas == 3
    history = json.loads(run("apps", "history", "web", "-o", "json"))
    assert [r["kind"] for r in history] == ["scale", "update", "deploy"]

    run("apps", "rollback", "web", "1", "--wait", "--timeout", "120")
    deployment = read(local_cluster, "Deployment", namespace, "web")
    assert deployment.spec.template.spec.containers[0].image == "nginx:1.27" and deployment.spec.replicas == 2
    run("apps", "restart", "web", "--wait", "--timeout", "120")

    # A rollout that cannot complete: exit 9, with the reason.
    stuck = flotilla(
        config_dir, "apps", "update", "web", "--cpu", "500", "--progress-deadline", "10", "--wait",
        "--timeout", "120", timeout=150,
    )  # fmt: skip
    assert stuck.returncode == 9, (stuck.stdout, stuck.stderr)
    assert "cpu" in (stuck.stdout + stuck.stderr).lower()
    shown = json.loads(run("apps", "get", "web", "-o", "json"))
    assert shown["status"] == "failed" and shown["status_reason"]
    run("apps", "rollback", "web", "--wait", "--timeout", "120")

    run("apps", "delete", "web", "--yes", "--wait", "--timeout", "120")
    assert read(local_cluster, "Deployment", namespace, "web") is None
    assert read(local_cluster, "Service", namespace, "web") is None
    assert read(local_cluster, "Secret", namespace, "web-secrets") is None
    assert json.loads(run("apps", "list", "-o", "json")) == []
