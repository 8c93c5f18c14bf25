"""The snapshots API without a cluster to talk to: bad input named field by field with nothing
recorded, the permission matrix, idempotent creates, states that refuse a restore, and another
org that sees none of it. (What the cluster and the storage say is in test_snapshots_live.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from clusters.choices import ClusterStatus
from clusters.models import Cluster, Operation
from clusters.services.providers import ensure_local_provider
from orgs.choices import Role
from orgs.models import Organization
from snapshots.models import Restore, Snapshot, StorageLocation
from tests.api_checks import assert_error
from tests.clusters.helpers import owner_actor
from tests.conftest import api_client_for
from tests.factories import add_member

pytestmark = pytest.mark.django_db
BASE = "/api/v1/snapshots/"


def _cluster(org: Organization, name: str = "src") -> Cluster:
    with schema_context(org.schema_name):
        provider = ensure_local_provider(owner_actor(org))
        return Cluster.objects.create(
            name=name, provider=provider, version="1.36.1", external_name=f"{org.schema_name}-{name}",
            status=ClusterStatus.READY, api_endpoint="local",
        )  # fmt: skip


def _counts(org: Organization) -> tuple[int, int, int]:
    with schema_context(org.schema_name):
        return Snapshot.objects.count(), Restore.objects.count(), Operation.objects.count()


def _completed(org: Organization, cluster: Cluster, name: str = "done") -> Snapshot:
    with schema_context(org.schema_name):
        location = StorageLocation.objects.get_or_create(name="local", defaults={"is_default": True})[0]
        return Snapshot.objects.create(
            name=name, cluster=cluster, cluster_name=cluster.name, location=location, status="completed"
        )


BAD_SELECTIONS: list[tuple[Any, str]] = [
    ({"include_namespaces": "shop"}, "selection.include_namespaces"),
    ({"include_namespaces": ["Shop"]}, "selection.include_namespaces[0]"),
    ({"exclude_namespaces": ["ok", "no/slash"]}, "selection.exclude_namespaces[1]"),
    ({"include_kinds": ["apps/v1/Deployment/extra"]}, "selection.include_kinds[0]"),
    ({"label_selector": "=value"}, "selection.label_selector"),
    ({"label_selector": "app in (a"}, "selection.label_selector"),
    ({"cluster_scoped": "yes"}, "selection.cluster_scoped"),
    ({"namespaces": ["shop"]}, "selection.namespaces"),
]


@pytest.mark.parametrize(("selection", "field"), BAD_SELECTIONS)
def test_a_bad_selection_is_named_and_nothing_is_recorded(
    client_a: APIClient, org_a: Organization, selection: Any, field: str
) -> None:
    cluster = _cluster(org_a)
    before = _counts(org_a)
    response = client_a.post(BASE, {"cluster": cluster.pk, "selection": selection}, format="json")
    body = assert_error(response, 400, "invalid")
    assert any(name.startswith(field) for name in body["fields"]), body
    assert _counts(org_a) == before


BAD_OPTIONS: list[tuple[Any, str]] = [
    ({"namespace_map": {"shop": "Shop"}}, "options.namespace_map.shop"),
    ({"namespace_map": {"a": "same", "b": "same"}}, "options.namespace_map"),
    ({"namespace_map": ["a=b"]}, "options.namespace_map"),
    ({"storage_class_map": {"fast": "no spaces"}}, "options.storage_class_map.fast"),
    ({"existing": "overwrite"}, "options.existing"),
    ({"include_namespaces": ["-bad"]}, "options.include_namespaces[0]"),
    ({"surprise": 1}, "options.surprise"),
]


@pytest.mark.parametrize(("options", "field"), BAD_OPTIONS)
def test_bad_restore_options_are_named_and_nothing_is_recorded(
    client_a: APIClient, org_a: Organization, options: Any, field: str
) -> None:
    cluster = _cluster(org_a)
    snapshot = _completed(org_a, cluster)
    before = _counts(org_a)
    response = client_a.post(
        f"{BASE}restores/", {"snapshot": snapshot.pk, "target": cluster.pk, "options": options}, format="json"
    )
    body = assert_error(response, 400, "invalid")
    assert any(name.startswith(field) for name in body["fields"]), body
    assert _counts(org_a) == before


def test_only_a_completed_snapshot_is_restored_and_only_into_a_ready_cluster(
    client_a: APIClient, org_a: Organization
) -> None:
    cluster = _cluster(org_a)
    taken = client_a.post(BASE, {"cluster": cluster.pk}, format="json")
    assert taken.status_code == 202 and taken.json()["status"] == "pending"
    refused = client_a.post(
        f"{BASE}restores/", {"snapshot": taken.json()["id"], "target": cluster.pk}, format="json"
    )
    assert_error(refused, 409, "not_ready", "snapshot")
    done = _completed(org_a, cluster)
    with schema_context(org_a.schema_name):
        Cluster.objects.filter(pk=cluster.pk).update(status=ClusterStatus.PROVISIONING)
    refused = client_a.post(f"{BASE}restores/", {"snapshot": done.pk, "target": cluster.pk}, format="json")
    assert_error(refused, 409, "conflict", "target")
    refused = client_a.post(BASE, {"cluster": cluster.pk}, format="json")
    assert_error(refused, 409, "conflict", "cluster")
    # A pending snapshot cannot be deleted (cancel its operation first).
    assert_error(client_a.delete(f"{BASE}{taken.json()['id']}/"), 409, "invalid_transition")


def test_creates_are_idempotent_with_a_key(client_a: APIClient, org_a: Organization) -> None:
    cluster = _cluster(org_a)
    first = client_a.post(BASE, {"cluster": cluster.pk}, format="json", HTTP_IDEMPOTENCY_KEY="nightly-1")
    again = client_a.post(BASE, {"cluster": cluster.pk}, format="json", HTTP_IDEMPOTENCY_KEY="nightly-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert _counts(org_a)[0] == 1
    done = _completed(org_a, cluster)
    body = {"snapshot": done.pk, "target": cluster.pk, "mode": "preview"}
    one = client_a.post(f"{BASE}restores/", body, format="json", HTTP_IDEMPOTENCY_KEY="look-1")
    two = client_a.post(f"{BASE}restores/", body, format="json", HTTP_IDEMPOTENCY_KEY="look-1")
    assert (one.status_code, two.status_code, one.json()["id"]) == (202, 200, two.json()["id"])
    # A key used for a snapshot is not a restore's.
    other = client_a.post(f"{BASE}restores/", body, format="json", HTTP_IDEMPOTENCY_KEY="nightly-1")
    assert_error(other, 409, "conflict")


def test_the_permission_matrix(org_a: Organization) -> None:
    cluster = _cluster(org_a)
    done = _completed(org_a, cluster)
    viewer = api_client_for(add_member(org_a, Role.VIEWER))
    member = api_client_for(add_member(org_a, Role.MEMBER))
    admin = api_client_for(add_member(org_a, Role.ADMIN))
    assert viewer.get(BASE).status_code == 200
    assert viewer.get(f"{BASE}locations/").status_code == 200
    assert_error(viewer.post(BASE, {"cluster": cluster.pk}, format="json"), 403, "permission_denied")
    assert_error(
        viewer.post(f"{BASE}restores/", {"snapshot": done.pk, "target": cluster.pk}, format="json"),
        403,
        "permission_denied",
    )
    assert member.post(BASE, {"cluster": cluster.pk}, format="json").status_code == 202
    assert_error(member.delete(f"{BASE}{done.pk}/"), 403, "permission_denied")
    assert_error(member.post(f"{BASE}locations/", {"name": "mine", "kind": "local"}, format="json"), 403)
    made = admin.post(f"{BASE}locations/", {"name": "second", "kind": "local"}, format="json")
    assert made.status_code == 201, made.content
    assert admin.delete(f"{BASE}{done.pk}/").status_code == 202


def test_a_location_is_refused_with_its_reason_and_not_saved(
    client_a: APIClient, org_a: Organization
) -> None:
    refused = client_a.post(
        f"{BASE}locations/",
        {
            "name": "evil",
            "kind": "s3",
            "bucket": "bucket",
            "endpoint": "http://169.254.169.254",
            "credentials": {"key": "k", "secret": "s"},
        },
        format="json",
    )
    assert_error(refused, 400, "invalid", "endpoint")
    refused = client_a.post(f"{BASE}locations/", {"name": "Bad Name", "kind": "local"}, format="json")
    assert_error(refused, 400, "invalid", "name")
    refused = client_a.post(f"{BASE}locations/", {"name": "x", "kind": "local", "bucket": "b"}, format="json")
    assert_error(refused, 400, "invalid", "bucket")
    with schema_context(org_a.schema_name):
        assert not StorageLocation.objects.exists()


def test_another_org_sees_none_of_it(client_a: APIClient, client_b: APIClient, org_a: Organization) -> None:
    cluster = _cluster(org_a)
    done = _completed(org_a, cluster)
    preview = client_a.post(
        f"{BASE}restores/", {"snapshot": done.pk, "target": cluster.pk, "mode": "preview"}, format="json"
    ).json()
    with schema_context(org_a.schema_name):
        location = StorageLocation.objects.get()
    for url in (
        f"{BASE}{done.pk}/",
        f"{BASE}restores/{preview['id']}/",
        f"{BASE}restores/{preview['id']}/items/",
        f"{BASE}locations/{location.pk}/",
    ):
        assert_error(client_b.get(url), 404, "not_found")
    assert_error(client_b.post(f"{BASE}restores/{preview['id']}/confirm/"), 404, "not_found")
    assert_error(client_b.post(f"{BASE}locations/{location.pk}/check/"), 404, "not_found")
    assert_error(client_b.delete(f"{BASE}{done.pk}/"), 404, "not_found")
    assert_error(client_b.post(BASE, {"cluster": cluster.pk}, format="json"), 404, "not_found")
    for url in (BASE, f"{BASE}restores/", f"{BASE}locations/"):
        assert client_b.get(url).json()["count"] == 0
