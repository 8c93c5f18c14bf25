"""The apps API without a cluster to talk to: what a request records, validation (a clear 400
naming the field, nothing recorded), permissions, idempotency, supersession, tenant isolation and
the list's query budget. The rollouts themselves run against real clusters in test_apps_live.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from clusters.choices import AppStatus, ClusterStatus, OperationStatus
from clusters.models import App, AppRevision, Cluster, ClusterEvent, Operation, ProviderAccount
from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import Organization
from tests.api_checks import assert_cross_org_isolated, assert_error
from tests.clusters.helpers import run
from tests.conftest import api_client_for
from tests.factories import add_member

pytestmark = pytest.mark.django_db
BASE = "/api/v1/clusters/apps/"


def ready_cluster(org: Organization, name: str = "prod", status: str = ClusterStatus.READY) -> Cluster:
    """A cluster row that is Ready (no cluster behind it: nothing here reaches one)."""
    with schema_context(org.schema_name):
        account, _ = ProviderAccount.objects.get_or_create(name="local", kind="local")
        return Cluster.objects.create(
            name=name, provider=account, version="1.36.1", external_name=f"{name}-x", status=status
        )


def deploy(client: APIClient, cluster: Cluster, name: str = "web", **spec: Any) -> Any:
    body = {"cluster": cluster.pk, "name": name, "image": "nginx:1.27", **spec}
    return client.post(BASE, body, format="json")


def _nothing_recorded(org: Organization) -> None:
    with schema_context(org.schema_name):
        assert not App.objects.exists()
        assert not AppRevision.objects.exists()
        assert not Operation.objects.filter(subject_type="app").exists()


def test_deploy_records_the_app_a_revision_and_its_rollout(client_a: APIClient, org_a: Organization) -> None:
    cluster = ready_cluster(org_a)
    response = deploy(
        client_a,
        cluster,
        replicas=3,
        ports=[80, {"port": 53, "protocol": "UDP"}],
        env={"MODE": "prod"},
        secrets={"TOKEN": "s3cr3t-value-42"},
        resources={"cpu_request": "250m", "memory_limit": "256Mi"},
        readiness="http:/healthz:80",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    app, operation = body["app"], body["operation"]
    assert app["status"] == AppStatus.DEPLOYING and app["revision"] == 1
    assert app["cluster"] == {"id": cluster.pk, "name": "prod"}
    assert app["spec"]["secret_keys"] == ["TOKEN"]
    assert app["spec"]["env"] == [{"name": "MODE", "value": "prod"}]
    assert app["spec"]["readiness"]["path"] == "/healthz"
    assert operation["kind"] == "app_rollout" and operation["subject_type"] == "app"
    assert operation["subject_id"] == app["id"] and operation["status"] == OperationStatus.QUEUED
    assert app["operation"]["id"] == operation["id"]
    assert "s3cr3t-value-42" not in response.content.decode()
    with schema_context(org_a.schema_name):
        stored = App.objects.get(pk=app["id"])
        assert stored.secret_values() == {"TOKEN": "s3cr3t-value-42"}
        # Encrypted at rest: the column's bytes never hold the value.
        with connection.cursor() as cursor:
            cursor.execute("SELECT secrets FROM clusters_app WHERE id = %s", [stored.pk])
            assert "s3cr3t-value-42" not in cursor.fetchone()[0]
            cursor.execute("SELECT secrets FROM clusters_apprevision WHERE app_id = %s", [stored.pk])
            assert "s3cr3t-value-42" not in cursor.fetchone()[0]
        audit: list[Any] = list(
            AuditEntry.objects.filter(action="app.deployed").values_list("after", flat=True)
        )
        assert audit and "s3cr3t-value-42" not in json.dumps(audit)
        assert audit[0]["secret_keys"] == ["TOKEN"]
        assert "s3cr3t-value-42" not in json.dumps(Operation.objects.get(pk=operation["id"]).params)
    shown = client_a.get(f"{BASE}{app['id']}/")
    assert shown.status_code == 200 and "s3cr3t-value-42" not in shown.content.decode()
    revisions = client_a.get(f"{BASE}{app['id']}/revisions/").json()
    assert [r["number"] for r in revisions] == [1] and revisions[0]["current"] is True
    assert "s3cr3t-value-42" not in json.dumps(revisions)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "Web_1"}, "name"),
        ({"name": "x" * 64}, "name"),
        ({"namespace": "Prod"}, "namespace"),
        ({"image": "NGINX:latest"}, "image"),
        ({"image": "nginx latest"}, "image"),
        ({"image": "nginx:"}, "image"),
        ({"replicas": -1}, "replicas"),
        ({"replicas": 5000}, "replicas"),
        ({"ports": [0]}, "ports[0].port"),
        ({"ports": [70000]}, "ports[0].port"),
        ({"ports": [80, 80]}, "ports[1].port"),
        ({"env": {"1BAD": "x"}}, "env[0].name"),
        ({"env": {"A": "x"}, "secrets": {"A": "y"}}, "env[0].name"),
        ({"secrets": {"bad name": "y"}}, "secrets.bad name"),
        ({"resources": {"cpu_request": "12MB"}}, "resources.cpu_request"),
        ({"resources": {"memory_request": "1Gi", "memory_limit": "512Mi"}}, "resources.memory_request"),
        ({"readiness": "http:healthz:8080"}, "readiness"),
        ({"readiness": "tcp:0"}, "readiness"),
        ({"liveness": "grpc:1"}, "liveness"),
        ({"labels": {"flotilla.dev/app": "x"}}, "labels"),
        ({"progress_deadline": 1}, "progress_deadline"),
        ({"volumes": [{"claim": "data", "mount_path": "relative"}]}, "volumes[0].mount_path"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_records_nothing(
    client_a: APIClient, org_a: Organization, spec: dict[str, Any], field: str
) -> None:
    cluster = ready_cluster(org_a)
    body: dict[str, Any] = {"cluster": cluster.pk, "name": "web", "image": "nginx:1.27", **spec}
    error = assert_error(client_a.post(BASE, body, format="json"), 400)
    assert any(name.startswith(field) for name in error["fields"]), error
    _nothing_recorded(org_a)


def test_every_bad_field_is_named_at_once(client_a: APIClient, org_a: Organization) -> None:
    cluster = ready_cluster(org_a)
    body = {"cluster": cluster.pk, "name": "Web!", "image": "Bad Image", "replicas": -2, "ports": [0]}
    error = assert_error(client_a.post(BASE, body, format="json"), 400)
    assert {"name", "image", "replicas", "ports[0].port"} <= set(error["fields"])


def test_unknown_fields_and_a_cluster_not_ready(client_a: APIClient, org_a: Organization) -> None:
    cluster = ready_cluster(org_a)
    assert_error(deploy(client_a, cluster, restarted_at="now"), 400, field="restarted_at")
    assert_error(deploy(client_a, cluster, bogus=1), 400, field="bogus")
    provisioning = ready_cluster(org_a, "new", status=ClusterStatus.PROVISIONING)
    assert_error(deploy(client_a, provisioning), 409, field="cluster")
    _nothing_recorded(org_a)


def test_names_are_unique_per_cluster_and_namespace(client_a: APIClient, org_a: Organization) -> None:
    cluster = ready_cluster(org_a)
    assert deploy(client_a, cluster).status_code == 202
    assert_error(deploy(client_a, cluster), 409, field="name")
    assert deploy(client_a, cluster, namespace="staging").status_code == 202
    other = ready_cluster(org_a, "other")
    assert deploy(client_a, other).status_code == 202


def test_idempotent_deploy(client_a: APIClient, org_a: Organization) -> None:
    cluster = ready_cluster(org_a)
    body = {"cluster": cluster.pk, "name": "web", "image": "nginx:1.27"}
    first = client_a.post(BASE, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client_a.post(BASE, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["app"]["id"] == first.json()["app"]["id"]
    assert again.json()["operation"]["id"] == first.json()["operation"]["id"]
    with schema_context(org_a.schema_name):
        assert App.objects.count() == 1


def test_changes_record_revisions_and_supersede_the_running_rollout(
    client_a: APIClient, org_a: Organization
) -> None:
    cluster = ready_cluster(org_a)
    app = deploy(client_a, cluster, secrets={"TOKEN": "one"}).json()["app"]
    url = f"{BASE}{app['id']}/"
    update = client_a.patch(url, {"image": "nginx:1.28", "env": {"A": "1"}}, format="json")
    assert update.status_code == 202, update.json()
    assert update.json()["app"]["revision"] == 2
    assert client_a.post(f"{url}scale/", {"replicas": 4}, format="json").status_code == 202
    assert client_a.post(f"{url}restart/", {}, format="json").status_code == 202
    secret = client_a.patch(url, {"secrets": {"TOKEN": "two"}}, format="json")
    assert secret.status_code == 202 and "two" not in secret.content.decode()
    back = client_a.post(f"{url}rollback/", {"revision": 1}, format="json")
    assert back.status_code == 202, back.json()
    revisions = client_a.get(f"{url}revisions/").json()
    assert [r["kind"] for r in revisions] == ["rollback", "update", "restart", "scale", "update", "deploy"]
    assert revisions[0]["rolled_back_to"] == 1 and revisions[0]["current"]
    assert any("image: nginx:1.28 → nginx:1.27" in line for line in revisions[0]["changes"]), revisions[0]
    assert "secret TOKEN changed" in revisions[1]["changes"]
    assert revisions[3]["changes"] == ["replicas: 1 → 4"]
    with schema_context(org_a.schema_name):
        stored = App.objects.get(pk=app["id"])
        assert stored.secret_values() == {"TOKEN": "one"}  # the roll back restored revision 1's secrets
        assert stored.spec["image"] == "nginx:1.27" and stored.spec["replicas"] == 1
        operations = list(Operation.objects.filter(subject_type="app", subject_id=stored.pk).order_by("id"))
        # Every earlier rollout was superseded: only the newest one is left to run.
        assert [op.cancel_requested or op.status == OperationStatus.CANCELLED for op in operations] == [
            True
        ] * 5 + [False]
        assert ClusterEvent.objects.filter(app=stored).count() >= 6


def test_refused_changes_change_nothing(client_a: APIClient, org_a: Organization) -> None:
    cluster = ready_cluster(org_a)
    app = deploy(client_a, cluster).json()["app"]
    url = f"{BASE}{app['id']}/"
    assert_error(client_a.patch(url, {"image": "nginx:1.27"}, format="json"), 400)  # nothing changes
    assert_error(client_a.patch(url, {"replicas": -1}, format="json"), 400, field="replicas")
    assert_error(
        client_a.patch(url, {"remove_secrets": ["NOPE"]}, format="json"), 400, field="remove_secrets"
    )
    assert_error(client_a.post(f"{url}scale/", {"replicas": 1}, format="json"), 400, field="replicas")
    assert_error(client_a.post(f"{url}rollback/", {"revision": 1}, format="json"), 400, field="revision")
    assert_error(client_a.post(f"{url}rollback/", {"revision": 9}, format="json"), 400, field="revision")
    assert_error(client_a.post(f"{url}rollback/", {}, format="json"), 400, field="revision")
    with schema_context(org_a.schema_name):
        assert AppRevision.objects.filter(app_id=app["id"]).count() == 1


def test_delete_supersedes_the_rollout_and_refuses_later_changes(
    client_a: APIClient, org_a: Organization
) -> None:
    cluster = ready_cluster(org_a)
    app = deploy(client_a, cluster).json()["app"]
    url = f"{BASE}{app['id']}/"
    deletion = client_a.delete(url)
    assert deletion.status_code == 202
    assert deletion.json()["app"]["status"] == AppStatus.DELETING
    assert deletion.json()["operation"]["kind"] == "app_delete"
    again = client_a.delete(url)
    assert again.status_code == 200 and again.json()["operation"]["id"] == deletion.json()["operation"]["id"]
    assert_error(client_a.patch(url, {"image": "nginx:1.28"}, format="json"), 409)


@pytest.mark.parametrize(("role", "may_deploy"), [(Role.VIEWER, False), (Role.MEMBER, True)])
def test_roles(org_a: Organization, client_a: APIClient, role: Role, may_deploy: bool) -> None:
    cluster = ready_cluster(org_a)
    app = deploy(client_a, cluster).json()["app"]
    client = api_client_for(add_member(org_a, role))
    assert client.get(BASE).json()["count"] == 1
    assert client.get(f"{BASE}{app['id']}/revisions/").status_code == 200
    responses = [
        deploy(client, cluster, "second"),
        client.patch(f"{BASE}{app['id']}/", {"image": "nginx:1.28"}, format="json"),
        client.post(f"{BASE}{app['id']}/scale/", {"replicas": 2}, format="json"),
    ]
    for response in responses:
        if may_deploy:
            assert response.status_code == 202, response.json()
        else:
            assert_error(response, 403)


def test_cross_org_isolation(
    client_a: APIClient, client_b: APIClient, org_a: Organization, org_b: Organization
) -> None:
    cluster = ready_cluster(org_a)
    app = deploy(client_a, cluster).json()["app"]
    detail = f"{BASE}{app['id']}/"
    assert_cross_org_isolated(client_b, BASE, detail, owner_id=app["id"])
    for suffix, body in [
        ("scale/", {"replicas": 2}),
        ("restart/", {}),
        ("rollback/", {"revision": 1}),
        ("pods/web-1/delete/", None),
    ]:
        assert_error(client_b.post(f"{detail}{suffix}", body, format="json"), 404)
    for suffix in ("revisions/", "pods/"):
        assert_error(client_b.get(f"{detail}{suffix}"), 404)
    # Org B cannot deploy to org A's cluster by its id, nor list its workloads or adopt from it.
    assert_error(
        client_b.post(BASE, {"cluster": cluster.pk, "name": "x", "image": "nginx"}, format="json"), 404
    )
    assert_error(client_b.get(f"/api/v1/clusters/{cluster.pk}/workloads/"), 404)
    adopt = {"namespace": "default", "name": "web"}
    assert_error(client_b.post(f"/api/v1/clusters/{cluster.pk}/workloads/adopt/", adopt, format="json"), 404)
    assert_error(client_b.post(f"/api/v1/clusters/{cluster.pk}/pods/delete/", adopt, format="json"), 404)
    with schema_context(org_b.schema_name):
        assert not App.objects.exists()


def test_list_has_a_fixed_query_count(client_a: APIClient, org_a: Organization) -> None:
    clusters = [ready_cluster(org_a, f"c{i}") for i in range(3)]

    def counted() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client_a.get(BASE, {"page_size": 200})
        assert response.status_code == 200
        return len(queries)

    for i in range(3):
        deploy(client_a, clusters[i % 3], f"a{i}")
    few = counted()
    for i in range(3, 30):
        deploy(client_a, clusters[i % 3], f"a{i}")
    assert counted() == few
    listing = client_a.get(BASE, {"cluster": clusters[0].pk, "page_size": 200}).json()
    assert listing["count"] == 10 and all(
        row["cluster"]["id"] == clusters[0].pk for row in listing["results"]
    )
    assert client_a.get(BASE, {"name": "a4"}).json()["count"] == 1
    assert_error(client_a.get(BASE, {"status": "bogus"}), 400, field="status")


def test_deleting_a_cluster_deletes_its_apps_and_their_secrets(
    client_a: APIClient, org_a: Organization
) -> None:
    with schema_context(org_a.schema_name):
        account = ProviderAccount.objects.create(name="imported", kind="existing")
        cluster = Cluster.objects.create(
            name="imp", provider=account, version="1.36.1", external_name="imp-1", status=ClusterStatus.READY
        )
    app = deploy(client_a, cluster, secrets={"TOKEN": "gone-with-it"}).json()["app"]
    deletion = client_a.delete(f"/api/v1/clusters/{cluster.pk}/")
    assert deletion.status_code == 202
    with schema_context(org_a.schema_name):
        # The deletion superseded the app's queued rollout.
        rollout = Operation.objects.get(subject_type="app", subject_id=app["id"])
        assert rollout.status == OperationStatus.CANCELLED or rollout.cancel_requested
        run(org_a, Operation.objects.get(pk=deletion.json()["id"]))
        stored = App.objects.get(pk=app["id"])
        assert stored.status == AppStatus.DELETED and stored.deleted_at is not None
        assert stored.secret_values() == {}
        assert all(r.secret_values() == {} for r in AppRevision.objects.filter(app=stored))
    assert client_a.get(BASE).json()["count"] == 0
    assert client_a.get(f"{BASE}{app['id']}/").json()["status"] == AppStatus.DELETED
