"""Apps on a real local cluster, through the API, with their rollouts run as the engine runs them
(one pass at a time, a waiting rollout released and run again when due).

What Flotilla says is checked against what the API server holds: the Deployment, its Secret and
Service, the pods kwok runs for them, and nothing left behind after a deletion.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django_tenants.utils import schema_context
from kubernetes import client as k8s
from rest_framework.test import APIClient

from clusters.choices import AppStatus, OperationStatus
from clusters.models import App, Operation
from orgs.models import Organization
from tests.api_checks import assert_error
from tests.clusters.app_helpers import cluster_on, read
from tests.clusters.helpers import run
from tests.local_kube import LocalCluster, wait_for

pytestmark = [pytest.mark.kube, pytest.mark.django_db]
BASE = "/api/v1/clusters/apps/"


def _finish(org: Organization, body: dict[str, Any]) -> Operation:
    """Run the operation a change answered with to its end."""
    with schema_context(org.schema_name):
        operation = Operation.objects.get(pk=body["operation"]["id"])
    return run(org, operation)


def _app(client: APIClient, app_id: int) -> dict[str, Any]:
    response = client.get(f"{BASE}{app_id}/")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_an_app_lifecycle_checked_in_the_api_server(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster, kube_namespace: str
) -> None:
    cluster = cluster_on(org_a, local_cluster)
    deployed = client_a.post(
        BASE,
        {
            "cluster": cluster.pk,
            "namespace": kube_namespace,
            "name": "web",
            "image": "nginx:1.27",
            "replicas": 2,
            "ports": [80],
            "env": {"MODE": "prod"},
            "secrets": {"API_TOKEN": "tok-7f3a-secret"},
            "resources": {"cpu_request": "100m", "memory_request": "64Mi", "memory_limit": "128Mi"},
            "readiness": "http:/healthz:80",
        },
        format="json",
    )
    assert deployed.status_code == 202, deployed.json()
    app_id = deployed.json()["app"]["id"]
    assert _finish(org_a, deployed.json()).status == OperationStatus.SUCCEEDED
    shown = _app(client_a, app_id)
    assert shown["status"] == AppStatus.AVAILABLE
    assert shown["replicas"] == {"desired": 2, "updated": 2, "ready": 2, "available": 2}

    deployment = read(local_cluster, "Deployment", kube_namespace, "web")
    container = deployment.spec.template.spec.containers[0]
    assert container.image == "nginx:1.27" and deployment.spec.replicas == 2
    assert container.readiness_probe.http_get.path == "/healthz"
    assert container.resources.requests == {"cpu": "100m", "memory": "64Mi"}
    env = {e.name: e for e in container.env}
    assert env["MODE"].value == "prod"
    assert env["API_TOKEN"].value is None and env["API_TOKEN"].value_from.secret_key_ref.key == "API_TOKEN"
    # Flotilla's own field manager applied it.
    assert "flotilla" in {m.manager for m in deployment.metadata.managed_fields}
    secret = read(local_cluster, "Secret", kube_namespace, "web-secrets")
    assert base64.b64decode(secret.data["API_TOKEN"]).decode() == "tok-7f3a-secret"
    service = read(local_cluster, "Service", kube_namespace, "web")
    assert [p.port for p in service.spec.ports] == [80]

    pods = client_a.get(f"{BASE}{app_id}/pods/").json()
    assert len(pods) == 2 and all(p["phase"] == "Running" and p["ready"] == p["total"] == 1 for p in pods)
    assert all(p["node"] for p in pods)

    # Update the image: a new revision, rolled out.
    updated = client_a.patch(f"{BASE}{app_id}/", {"image": "nginx:1.28"}, format="json")
    assert updated.status_code == 202 and updated.json()["app"]["revision"] == 2
    assert _finish(org_a, updated.json()).status == OperationStatus.SUCCEEDED
    assert (
        read(local_cluster, "Deployment", kube_namespace, "web").spec.template.spec.containers[0].image
        == "nginx:1.28"
    )

    # Scale, then restart: every pod replaced.
    scaled = client_a.post(f"{BASE}{app_id}/scale/", {"replicas": 3}, format="json")
    assert _finish(org_a, scaled.json()).status == OperationStatus.SUCCEEDED
    assert read(local_cluster, "Deployment", kube_namespace, "web").status.available_replicas == 3
    before = {p["name"] for p in client_a.get(f"{BASE}{app_id}/pods/").json()}
    restarted = client_a.post(f"{BASE}{app_id}/restart/", {}, format="json")
    assert _finish(org_a, restarted.json()).status == OperationStatus.SUCCEEDED
    template = read(local_cluster, "Deployment", kube_namespace, "web").spec.template
    assert "flotilla.dev/restarted-at" in (template.metadata.annotations or {})

    def replaced() -> bool:
        live = {
            p.metadata.name
            for p in local_cluster.core().list_namespaced_pod(kube_namespace).items
            if not p.metadata.deletion_timestamp
        }
        return len(live) == 3 and not (live & before)

    wait_for(replaced, timeout=60, what="every pod replaced by the restart")

    # Roll back to revision 1: nginx:1.27, 2 replicas.
    back = client_a.post(f"{BASE}{app_id}/rollback/", {"revision": 1}, format="json")
    assert back.status_code == 202, back.json()
    assert _finish(org_a, back.json()).status == OperationStatus.SUCCEEDED
    deployment = read(local_cluster, "Deployment", kube_namespace, "web")
    assert deployment.spec.template.spec.containers[0].image == "nginx:1.27" and deployment.spec.replicas == 2
    history = client_a.get(f"{BASE}{app_id}/revisions/").json()
    assert [r["kind"] for r in history] == ["rollback", "restart", "scale", "update", "deploy"]

    # Remove the only secret and the ports: the Secret and Service Flotilla made go.
    trimmed = client_a.patch(
        f"{BASE}{app_id}/", {"remove_secrets": ["API_TOKEN"], "ports": []}, format="json"
    )
    assert _finish(org_a, trimmed.json()).status == OperationStatus.SUCCEEDED
    assert read(local_cluster, "Secret", kube_namespace, "web-secrets") is None
    assert read(local_cluster, "Service", kube_namespace, "web") is None

    # A ConfigMap someone else made in the namespace is never touched by the deletion.
    local_cluster.core().create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "web"}, "data": {"keep": "me"}}
    )
    deletion = client_a.delete(f"{BASE}{app_id}/")
    assert _finish(org_a, deletion.json()).status == OperationStatus.SUCCEEDED
    assert _app(client_a, app_id)["status"] == AppStatus.DELETED
    assert read(local_cluster, "Deployment", kube_namespace, "web") is None
    assert local_cluster.core().read_namespaced_config_map("web", kube_namespace).data == {"keep": "me"}
    wait_for(
        lambda: not local_cluster.core().list_namespaced_pod(kube_namespace).items,
        timeout=60,
        what="the app's pods to go",
    )
    with schema_context(org_a.schema_name):
        assert App.objects.get(pk=app_id).secret_values() == {}


def test_a_rollout_that_cannot_complete_fails_with_the_reason_and_a_roll_back_fixes_it(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster, kube_namespace: str
) -> None:
    cluster = cluster_on(org_a, local_cluster)
    body = {"cluster": cluster.pk, "namespace": kube_namespace, "name": "api", "image": "nginx:1.27"}
    deployed = client_a.post(BASE, {**body, "progress_deadline": 10}, format="json")
    app_id = deployed.json()["app"]["id"]
    assert _finish(org_a, deployed.json()).status == OperationStatus.SUCCEEDED
    # No node has 500 CPUs: the new pods are never scheduled, the progress deadline passes.
    bad = client_a.patch(f"{BASE}{app_id}/", {"resources": {"cpu_request": "500"}}, format="json")
    failed = _finish(org_a, bad.json())
    assert failed.status == OperationStatus.FAILED
    shown = _app(client_a, app_id)
    assert shown["status"] == AppStatus.FAILED
    assert (
        "ProgressDeadlineExceeded" in shown["status_reason"] or "deadline" in shown["status_reason"].lower()
    )
    assert "cpu" in shown["status_reason"].lower(), shown["status_reason"]
    # The old revision kept serving meanwhile (a rolling update never takes the old pod away first).
    assert read(local_cluster, "Deployment", kube_namespace, "api").status.available_replicas == 1
    fixed = client_a.post(f"{BASE}{app_id}/rollback/", {}, format="json")
    assert fixed.status_code == 202, fixed.json()
    assert _finish(org_a, fixed.json()).status == OperationStatus.SUCCEEDED
    assert _app(client_a, app_id)["status"] == AppStatus.AVAILABLE
    requests = (
        read(local_cluster, "Deployment", kube_namespace, "api")
        .spec.template.spec.containers[0]
        .resources.requests
    )
    assert not requests or "cpu" not in requests


def test_adopt_a_deployment_made_with_the_kubernetes_client(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster, kube_namespace: str
) -> None:
    cluster = cluster_on(org_a, local_cluster)
    labels = {"app": "legacy"}
    local_cluster.apps().create_namespaced_deployment(
        kube_namespace,
        k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name="legacy", labels={"team": "core"}),
            spec=k8s.V1DeploymentSpec(
                replicas=2,
                selector=k8s.V1LabelSelector(match_labels=labels),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=labels),
                    spec=k8s.V1PodSpec(
                        containers=[
                            k8s.V1Container(
                                name="main",
                                image="redis:7",
                                env=[k8s.V1EnvVar(name="LEVEL", value="debug")],
                                ports=[k8s.V1ContainerPort(container_port=6379)],
                            )
                        ]
                    ),
                ),
            ),
        ),
    )
    workloads = client_a.get(
        f"/api/v1/clusters/{cluster.pk}/workloads/", {"namespace": kube_namespace}
    ).json()
    legacy = next(w for w in workloads if w["name"] == "legacy")
    assert legacy["kind"] == "Deployment" and legacy["app"] is None and legacy["adoptable"]
    assert legacy["managed"] is False
    wait_for(
        lambda: (
            local_cluster.apps()
            .read_namespaced_deployment("legacy", kube_namespace)
            .status.available_replicas
            == 2
        ),
        timeout=60,
        what="the legacy Deployment to be available",
    )

    adopted = client_a.post(
        f"/api/v1/clusters/{cluster.pk}/workloads/adopt/",
        {"kind": "Deployment", "namespace": kube_namespace, "name": "legacy"},
        format="json",
    )
    assert adopted.status_code == 202, adopted.json()
    app = adopted.json()["app"]
    assert app["adopted"] and app["spec"]["image"] == "redis:7" and app["spec"]["replicas"] == 2
    assert app["spec"]["env"] == [{"name": "LEVEL", "value": "debug"}]
    assert _finish(org_a, adopted.json()).status == OperationStatus.SUCCEEDED
    assert_error(
        client_a.post(
            f"/api/v1/clusters/{cluster.pk}/workloads/adopt/",
            {"namespace": kube_namespace, "name": "legacy"},
            format="json",
        ),
        409,
    )

    # Managed like any app: change it, and what Flotilla no longer sets goes.
    changed = client_a.patch(f"{BASE}{app['id']}/", {"image": "redis:7.2", "env": []}, format="json")
    assert _finish(org_a, changed.json()).status == OperationStatus.SUCCEEDED
    deployment = read(local_cluster, "Deployment", kube_namespace, "legacy")
    container = deployment.spec.template.spec.containers[0]
    assert container.image == "redis:7.2" and not container.env
    assert deployment.spec.selector.match_labels == labels
    listed = client_a.get(f"/api/v1/clusters/{cluster.pk}/workloads/", {"namespace": kube_namespace}).json()
    assert next(w for w in listed if w["name"] == "legacy")["app"]["id"] == app["id"]

    deletion = client_a.delete(f"{BASE}{app['id']}/")
    assert _finish(org_a, deletion.json()).status == OperationStatus.SUCCEEDED
    assert read(local_cluster, "Deployment", kube_namespace, "legacy") is None


def test_a_namespace_flotilla_made_goes_with_its_last_app(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster
) -> None:
    cluster = cluster_on(org_a, local_cluster)
    namespace = f"made-{org_a.pk}"
    ids = []
    for name in ("one", "two"):
        response = client_a.post(
            BASE,
            {"cluster": cluster.pk, "namespace": namespace, "name": name, "image": "nginx"},
            format="json",
        )
        assert _finish(org_a, response.json()).status == OperationStatus.SUCCEEDED
        ids.append(response.json()["app"]["id"])
    assert (
        read(local_cluster, "Namespace", namespace, namespace).metadata.labels["app.kubernetes.io/managed-by"]
        == "flotilla"
    )
    assert _finish(org_a, client_a.delete(f"{BASE}{ids[0]}/").json()).status == OperationStatus.SUCCEEDED
    assert read(local_cluster, "Namespace", namespace, namespace) is not None  # "two" still runs there
    assert _finish(org_a, client_a.delete(f"{BASE}{ids[1]}/").json()).status == OperationStatus.SUCCEEDED
    wait_for(
        lambda: (
            (ns := read(local_cluster, "Namespace", namespace, namespace)) is None
            or ns.metadata.deletion_timestamp is not None
        ),
        timeout=30,
        what="the namespace Flotilla made to be deleted",
    )


def test_secrets_never_leave_except_to_the_cluster(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster, kube_namespace: str
) -> None:
    cluster = cluster_on(org_a, local_cluster)
    value = "pw-91c2-never-shown"
    response = client_a.post(
        BASE,
        {
            "cluster": cluster.pk,
            "namespace": kube_namespace,
            "name": "db",
            "image": "postgres:16",
            "secrets": {"PW": value},
        },
        format="json",
    )
    operation = _finish(org_a, response.json())
    app_id = response.json()["app"]["id"]
    bodies = [
        response.content,
        client_a.get(f"{BASE}{app_id}/").content,
        client_a.get(BASE).content,
        client_a.get(f"{BASE}{app_id}/revisions/").content,
        client_a.get(f"{BASE}{app_id}/pods/").content,
        client_a.get(f"/api/v1/clusters/operations/{operation.pk}/").content,
        client_a.get(f"/api/v1/clusters/{cluster.pk}/events/").content,
        client_a.get("/api/v1/orgs/audit/").content,
    ]
    assert all(value.encode() not in body for body in bodies)
    with schema_context(org_a.schema_name):
        stored = Operation.objects.get(pk=operation.pk)
        assert value not in json.dumps([stored.params, stored.state, stored.step, stored.error])
    secret = read(local_cluster, "Secret", kube_namespace, "db-secrets")
    assert base64.b64decode(secret.data["PW"]).decode() == value


def test_a_readiness_check_that_never_passes_fails_the_rollout(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster, kube_namespace: str
) -> None:
    """The local provider runs pods annotated local.flotilla.dev/readiness=never without ever
    making them Ready (docs/local-provider.md): the rollout stalls, then fails saying why."""
    cluster = cluster_on(org_a, local_cluster)
    body = {"cluster": cluster.pk, "namespace": kube_namespace, "name": "ready", "image": "nginx:1.27"}
    deployed = client_a.post(BASE, {**body, "replicas": 2, "readiness": "http:/healthz:80"}, format="json")
    app_id = deployed.json()["app"]["id"]
    assert _finish(org_a, deployed.json()).status == OperationStatus.SUCCEEDED
    never = {"annotations": {"local.flotilla.dev/readiness": "never"}, "progress_deadline": 10}
    failed = _finish(org_a, client_a.patch(f"{BASE}{app_id}/", never, format="json").json())
    assert failed.status == OperationStatus.FAILED
    reason = _app(client_a, app_id)["status_reason"]
    assert "ProgressDeadlineExceeded" in reason and "readiness" in reason.lower(), reason
    pods = client_a.get(f"{BASE}{app_id}/pods/").json()
    assert any(p["phase"] == "Running" and p["ready"] == 0 for p in pods), pods
    fixed = _finish(org_a, client_a.post(f"{BASE}{app_id}/rollback/", {}, format="json").json())
    assert fixed.status == OperationStatus.SUCCEEDED
    assert _app(client_a, app_id)["status"] == AppStatus.AVAILABLE
