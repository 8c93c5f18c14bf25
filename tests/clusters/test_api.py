"""The clusters API: shapes, bad input (nothing half-done), quotas, roles, idempotency and
tenant isolation, against real PostgreSQL. Operations are only queued here (the reconcile loop
runs in tests/clusters/test_lifecycle.py and the live tests)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from clusters.choices import ClusterStatus, OperationStatus
from clusters.models import Cluster, NodePool, Operation, ProviderAccount
from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import Organization
from tests.api_checks import assert_cross_org_isolated, assert_error
from tests.conftest import api_client_for
from tests.factories import add_member

pytestmark = pytest.mark.django_db
BASE = "/api/v1/clusters/"


def body(name: str = "web", *pools: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "pools": list(pools) or [{"name": "p", "size": "small", "count": 2}], **extra}


def create(client: APIClient, name: str = "web", **extra: Any) -> dict[str, Any]:
    response = client.post(BASE, body(name, **extra), format="json")
    assert response.status_code == 202, response.json()
    return dict(response.json())


def count_clusters(org: Organization) -> int:
    with schema_context(org.schema_name):
        return Cluster.objects.count()


def test_create_queues_an_operation_and_reads_back(client_a: APIClient, org_a: Organization) -> None:
    created = create(
        client_a, "web", pools=[{"name": "a", "size": "small", "count": 2, "labels": {"tier": "web"}}]
    )
    cluster, operation = created["cluster"], created["operation"]
    assert cluster["status"] == "pending" and cluster["provider"] == "local" and cluster["region"] == "local"
    assert cluster["pools"][0] | {"id": 0, "created_at": ""} == {
        "id": 0,
        "name": "a",
        "size": "small",
        "count": 2,
        "labels": {"tier": "web"},
        "taints": [],
        "removing": False,
        "created_at": "",
    }
    assert operation["kind"] == "create" and operation["status"] == "queued"
    assert cluster["active_operation"]["id"] == operation["id"]
    assert "kubeconfig" not in cluster
    detail = client_a.get(f"{BASE}{cluster['id']}/").json()
    assert detail["name"] == "web"
    assert client_a.get(BASE, {"name": "web"}).json()["count"] == 1
    assert client_a.get(f"{BASE}operations/{operation['id']}/").json()["status"] == "queued"
    with schema_context(org_a.schema_name):
        assert AuditEntry.objects.filter(action="cluster.created").count() == 1


def test_idempotency_key_returns_the_first_result(client_a: APIClient, org_a: Organization) -> None:
    first = client_a.post(BASE, body("idem"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client_a.post(BASE, body("idem"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["cluster"]["id"] == again.json()["cluster"]["id"]
    assert count_clusters(org_a) == 1
    # Without the key, the same name is a conflict.
    assert_error(client_a.post(BASE, body("idem"), format="json"), 409, "conflict", "name")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body("Bad_Name"), "name"),
        (body("x" * 41), "name"),
        ({"name": "nopools", "pools": []}, "pools"),
        (body("p", {"name": "p", "size": "huge", "count": 1}), "pools[0].size"),
        (body("p", {"name": "p", "size": "small", "count": 0}), "pools[0].count"),
        (body("p", {"name": "p", "size": "small", "count": 101}), "pools[0].count"),
        (body("p", {"name": "P!", "size": "small", "count": 1}), "pools[0].name"),
        (
            body("p", {"name": "p", "size": "small", "count": 1}, {"name": "p", "size": "small", "count": 1}),
            "pools",
        ),
        (
            body("p", {"name": "p", "size": "small", "count": 1, "labels": {"bad key": "x"}}),
            "pools[0].labels",
        ),
        (
            body("p", {"name": "p", "size": "small", "count": 1, "taints": [{"key": "k", "effect": "Nope"}]}),
            "pools[0].taints",
        ),
        (body("p", version="0.1.0"), "version"),
        (body("p", region="mars"), "region"),
        (body("p", colour="blue"), "colour"),
    ],
)
def test_bad_input_is_a_clear_400_and_creates_nothing(
    client_a: APIClient, org_a: Organization, payload: dict[str, Any], field: str
) -> None:
    assert_error(client_a.post(BASE, payload, format="json"), 400, None, field)
    assert count_clusters(org_a) == 0
    with schema_context(org_a.schema_name):
        assert not Operation.objects.exists() and not NodePool.objects.exists()


def test_unknown_provider_is_404(client_a: APIClient) -> None:
    assert_error(client_a.post(BASE, body(provider="nope"), format="json"), 404, "not_found")


def test_quotas(client_a: APIClient, org_a: Organization) -> None:
    Organization.objects.filter(pk=org_a.pk).update(max_clusters=1, max_nodes=3)
    create(client_a, "one")
    assert_error(client_a.post(BASE, body("two"), format="json"), 409, "quota_exceeded")
    cluster_id = client_a.get(BASE).json()["results"][0]["id"]
    pool_id = client_a.get(f"{BASE}{cluster_id}/pools/").json()[0]["id"]
    # The create operation is still queued: another operation is refused first.
    assert_error(client_a.patch(f"{BASE}{cluster_id}/pools/{pool_id}/", {"count": 3}, format="json"), 409)
    with schema_context(org_a.schema_name):
        Operation.objects.update(status=OperationStatus.SUCCEEDED)
        Cluster.objects.update(status=ClusterStatus.READY)
    assert_error(
        client_a.patch(f"{BASE}{cluster_id}/pools/{pool_id}/", {"count": 4}, format="json"),
        409,
        "quota_exceeded",
    )
    assert (
        client_a.patch(f"{BASE}{cluster_id}/pools/{pool_id}/", {"count": 3}, format="json").status_code == 202
    )
    assert count_clusters(org_a) == 1


def test_roles(org_a: Organization) -> None:
    viewer = api_client_for(add_member(org_a, Role.VIEWER))
    member = api_client_for(add_member(org_a, Role.MEMBER))
    assert_error(viewer.post(BASE, body("v"), format="json"), 403, "permission_denied")
    created = create(member, "m")
    cluster_id = created["cluster"]["id"]
    assert viewer.get(f"{BASE}{cluster_id}/").status_code == 200
    assert_error(viewer.get(f"{BASE}{cluster_id}/kubeconfig/"), 403, "permission_denied")
    assert_error(member.get(f"{BASE}{cluster_id}/kubeconfig/"), 409, "conflict")  # not provisioned yet
    assert_error(member.delete(f"{BASE}{cluster_id}/"), 403, "permission_denied")
    assert_error(member.post(f"{BASE}providers/", {"name": "x", "kind": "local"}, format="json"), 403)


def test_kubeconfig_download_is_audited(client_a: APIClient, org_a: Organization) -> None:
    cluster_id = create(client_a, "kc")["cluster"]["id"]
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": []})
    # Before the cluster has a kubeconfig there is nothing to hand out, and nothing is audited.
    assert_error(client_a.get(f"{BASE}{cluster_id}/kubeconfig/"), 409, "conflict")
    with schema_context(org_a.schema_name):
        assert not AuditEntry.objects.filter(action="cluster.kubeconfig_downloaded").exists()
        cluster = Cluster.objects.get(pk=cluster_id)
        cluster.kubeconfig = text
        cluster.save()
    response = client_a.get(f"{BASE}{cluster_id}/kubeconfig/")
    assert response.status_code == 200 and response.content.decode() == text
    assert response["Content-Type"] == "application/yaml" and response["Cache-Control"] == "no-store"
    with schema_context(org_a.schema_name):
        assert AuditEntry.objects.filter(
            action="cluster.kubeconfig_downloaded", object_id=str(cluster_id)
        ).exists()


def test_cancel_and_retry(client_a: APIClient, org_a: Organization) -> None:
    created = create(client_a, "c")
    op_url = f"{BASE}operations/{created['operation']['id']}/"
    cancelled = client_a.post(op_url + "cancel/").json()
    assert cancelled["status"] == "cancelled"
    assert client_a.get(f"{BASE}{created['cluster']['id']}/").json()["status"] == "error"
    assert_error(client_a.post(op_url + "cancel/"), 409, "invalid_transition")
    retried = client_a.post(op_url + "retry/")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"


def test_delete_supersedes_a_queued_operation(client_a: APIClient, org_a: Organization) -> None:
    created = create(client_a, "d")
    deletion = client_a.delete(f"{BASE}{created['cluster']['id']}/")
    assert deletion.status_code == 202 and deletion.json()["kind"] == "delete"
    first = client_a.get(f"{BASE}operations/{created['operation']['id']}/").json()
    assert first["status"] == "cancelled"
    # Deleting again returns the deletion already under way.
    assert client_a.delete(f"{BASE}{created['cluster']['id']}/").json()["id"] == deletion.json()["id"]


def test_providers(client_a: APIClient, org_a: Organization) -> None:
    kinds = {k["kind"]: k for k in client_a.get(f"{BASE}providers/kinds/").json()}
    assert {"local", "existing", "ec2"} <= set(kinds)
    created = client_a.post(f"{BASE}providers/", {"name": "here", "kind": "local"}, format="json")
    assert created.status_code == 201, created.json()
    catalogue = client_a.get(f"{BASE}providers/{created.json()['id']}/catalogue/").json()
    assert catalogue["regions"] == [{"id": "local", "name": "This Flotilla host"}]
    assert {s["id"] for s in catalogue["sizes"]} >= {"small", "medium"}
    assert len(catalogue["versions"]) >= 1
    assert_error(client_a.post(f"{BASE}providers/", {"name": "here", "kind": "local"}, format="json"), 409)
    assert_error(
        client_a.post(f"{BASE}providers/", {"name": "x", "kind": "mainframe"}, format="json"),
        400,
        None,
        "kind",
    )
    assert client_a.delete(f"{BASE}providers/{created.json()['id']}/").status_code == 204
    with schema_context(org_a.schema_name):
        assert not ProviderAccount.objects.filter(name="here").exists()


def test_cross_org_isolation(client_a: APIClient, client_b: APIClient, org_a: Organization) -> None:
    created = create(client_a, "secret")
    cluster_id, op_id = created["cluster"]["id"], created["operation"]["id"]
    pool_id = created["cluster"]["pools"][0]["id"]
    assert_cross_org_isolated(
        client_b, BASE, f"{BASE}{cluster_id}/", owner_id=cluster_id, methods=("get", "delete")
    )
    for url in ("kubeconfig/", "nodes/", "events/", "pools/"):
        assert_error(client_b.get(f"{BASE}{cluster_id}/{url}"), 404, "not_found")
    assert_error(client_b.post(f"{BASE}{cluster_id}/upgrade/", {"version": "1.35.4"}, format="json"), 404)
    assert_error(
        client_b.post(
            f"{BASE}{cluster_id}/pools/", {"name": "x", "size": "small", "count": 1}, format="json"
        ),
        404,
    )
    assert_error(client_b.patch(f"{BASE}{cluster_id}/pools/{pool_id}/", {"count": 5}, format="json"), 404)
    assert_cross_org_isolated(
        client_b, f"{BASE}operations/", f"{BASE}operations/{op_id}/", owner_id=op_id, methods=("get",)
    )
    assert_error(client_b.post(f"{BASE}operations/{op_id}/cancel/"), 404)
    assert_error(client_b.post(f"{BASE}operations/{op_id}/retry/"), 404)
    account_id = client_a.get(f"{BASE}providers/").json()["results"][0]["id"]
    assert_cross_org_isolated(
        client_b, f"{BASE}providers/", f"{BASE}providers/{account_id}/", owner_id=account_id
    )
    # B can make a cluster of the same name: names are per org.
    assert create(client_b, "secret")["cluster"]["name"] == "secret"


def test_list_query_budget(client_a: APIClient, django_assert_max_num_queries: Any) -> None:
    for i in range(6):
        create(
            client_a,
            f"c{i}",
            pools=[{"name": "a", "size": "small", "count": 1}, {"name": "b", "size": "small", "count": 1}],
        )
    with django_assert_max_num_queries(12):
        response = client_a.get(BASE)
    assert response.json()["count"] == 6


def test_imported_clusters_are_not_scaled(client_a: APIClient, org_a: Organization) -> None:
    with schema_context(org_a.schema_name):
        account = ProviderAccount.objects.create(name="imported", kind="existing")
        cluster = Cluster.objects.create(
            name="imp", provider=account, version="1.36.1", external_name="imp-1", status=ClusterStatus.READY
        )
        pool = NodePool.objects.create(cluster=cluster, name="observed", size="", count=1)
    assert_error(client_a.patch(f"{BASE}{cluster.pk}/pools/{pool.pk}/", {"count": 2}, format="json"), 400)
    assert_error(client_a.post(f"{BASE}{cluster.pk}/upgrade/", {"version": "1.35.4"}, format="json"), 400)


def test_refused_upgrades_are_400_and_change_nothing(client_a: APIClient, org_a: Organization) -> None:
    created = create(client_a, "u", version="1.36.1")
    url = f"{BASE}{created['cluster']['id']}/upgrade/"

    down = assert_error(client_a.post(url, {"version": "1.35.4"}, format="json"), 400, field="version")
    assert "downgrades" in down["fields"]["version"][0]
    assert_error(client_a.post(url, {"version": "1.36.1"}, format="json"), 400, field="version")
    assert_error(client_a.post(url, {"version": "1.99.0"}, format="json"), 400, field="version")

    with schema_context(org_a.schema_name):
        cluster = Cluster.objects.get(pk=created["cluster"]["id"])
        assert cluster.version == "1.36.1"
        assert list(cluster.operations.values_list("kind", flat=True)) == ["create"]
