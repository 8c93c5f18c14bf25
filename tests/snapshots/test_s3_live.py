"""Snapshots in an S3 bucket (moto in server mode on loopback, through libcloud's real S3 driver):
a location checked before it is saved, a snapshot whose stored bytes never hold a Secret in
clear, a restore from it, a bucket that stops answering, and another org that sees none of it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import schema_context
from kubernetes import client as k8s
from rest_framework.test import APIClient

from clusters.models import Operation
from orgs.models import Organization
from snapshots.models import StorageLocation
from tests.api_checks import assert_error
from tests.clusters.app_helpers import cluster_on
from tests.clusters.helpers import run
from tests.local_kube import LocalCluster
from tests.snapshots.moto_s3 import S3Emulator

pytestmark = [pytest.mark.kube, pytest.mark.django_db]
BASE = "/api/v1/snapshots/"
BUCKET = "flotilla-snapshots"
SECRET_VALUE = "s3-secret-value-never-in-clear"


@pytest.fixture
def s3(s3_server: S3Emulator, settings: Any) -> Iterator[S3Emulator]:
    """The session's moto, admitted by the outbound policy as an operator would, emptied after."""
    settings.FLOTILLA_OUTBOUND_ALLOW = [f"127.0.0.1:{s3_server.port}"]
    settings.FLOTILLA_STORAGE_TIMEOUT = 2
    yield s3_server
    if not s3_server.running:
        s3_server.start()
    s3_server.empty_bucket()


def _location(s3: S3Emulator, **changes: Any) -> dict[str, Any]:
    return {
        "name": "bucket",
        "kind": "s3",
        "bucket": BUCKET,
        "endpoint": s3.url,
        "region": s3.region,
        "prefix": "flotilla",
        "credentials": {"key": s3.access_key, "secret": s3.secret_key},
        **changes,
    }


def _finish(org: Organization, body: dict[str, Any]) -> Operation:
    with schema_context(org.schema_name):
        operation = Operation.objects.get(pk=body["operation"]["id"])
    return run(org, operation)


def test_a_snapshot_in_s3_and_back(
    client_a: APIClient, client_b: APIClient, org_a: Organization, s3: S3Emulator, local_cluster: LocalCluster
) -> None:
    refused = client_a.post(f"{BASE}locations/", _location(s3, bucket="no-such-bucket"), format="json")
    assert refused.status_code == 400 and "bucket" in refused.json()["error"]["fields"]
    with schema_context(org_a.schema_name):
        assert not StorageLocation.objects.filter(kind="s3").exists()
    made = client_a.post(f"{BASE}locations/", _location(s3), format="json")
    assert made.status_code == 201, made.content
    location = made.json()
    assert location["has_credentials"] and "credentials" not in location
    assert s3.secret_key not in made.content.decode()

    namespace = local_cluster.new_namespace("s3")
    core = local_cluster.core()
    core.create_namespaced_secret(
        namespace, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="creds"), string_data={"token": SECRET_VALUE})
    )
    core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="cfg"), data={"a": "b"})
    )
    cluster = cluster_on(org_a, local_cluster, name="s3")
    taken = client_a.post(
        BASE,
        {"cluster": cluster.pk, "location": location["id"], "selection": {"include_namespaces": [namespace]}},
        format="json",
    )
    assert taken.status_code == 202, taken.content
    assert _finish(org_a, taken.json()).status == "succeeded"
    snapshot = client_a.get(f"{BASE}{taken.json()['id']}/").json()
    assert snapshot["status"] == "completed" and snapshot["location_name"] == "bucket"
    names = s3.object_names()
    assert names and all(
        n.startswith(f"flotilla/{org_a.schema_name}/snapshots/{snapshot['uuid']}/") for n in names
    )
    stored = b"".join(s3.client("s3").get_object(Bucket=BUCKET, Key=n)["Body"].read() for n in names)
    assert SECRET_VALUE.encode() not in stored and base64.b64encode(SECRET_VALUE.encode()) not in stored

    # Another org sees nothing of it, whatever id it names.
    for url in (f"{BASE}locations/{location['id']}/", f"{BASE}{snapshot['id']}/"):
        assert_error(client_b.get(url), 404, "not_found")
    assert_error(
        client_b.patch(f"{BASE}locations/{location['id']}/", {"prefix": "x"}, format="json"), 404, "not_found"
    )
    assert_error(client_b.delete(f"{BASE}locations/{location['id']}/"), 404, "not_found")
    assert_error(client_b.post(f"{BASE}locations/{location['id']}/check/"), 404, "not_found")
    assert [loc["name"] for loc in client_b.get(f"{BASE}locations/").json()["results"]] == []

    target = f"{namespace}-back"
    restored = client_a.post(
        f"{BASE}restores/",
        {"snapshot": snapshot["id"], "target": cluster.pk, "options": {"namespace_map": {namespace: target}}},
        format="json",
    )
    assert restored.status_code == 202
    _finish(org_a, restored.json())
    done = client_a.get(f"{BASE}restores/{restored.json()['id']}/").json()
    assert done["status"] == "completed", done
    assert (
        core.read_namespaced_secret("creds", target).data["token"]
        == base64.b64encode(SECRET_VALUE.encode()).decode()
    )
    for url in (f"{BASE}restores/{done['id']}/", f"{BASE}restores/{done['id']}/items/"):
        assert_error(client_b.get(url), 404, "not_found")
    assert_error(client_b.post(f"{BASE}restores/{done['id']}/confirm/"), 404, "not_found")
    assert client_b.get(f"{BASE}restores/").json()["count"] == 0

    # The bucket stops answering: the restore fails, says why, and writes nothing.
    assert_error(client_a.delete(f"{BASE}locations/{location['id']}/"), 409, "storage_in_use")
    s3.freeze()
    try:
        again = client_a.post(
            f"{BASE}restores/",
            {
                "snapshot": snapshot["id"],
                "target": cluster.pk,
                "options": {"namespace_map": {namespace: f"{target}2"}},
            },
            format="json",
        )
        assert again.status_code == 202
        _finish(org_a, again.json())
    finally:
        s3.resume()
    failed = client_a.get(f"{BASE}restores/{again.json()['id']}/").json()
    assert failed["status"] == "failed"
    assert "no answer" in failed["reason"] or "did not answer" in failed["reason"], failed["reason"]
    assert "nothing was written" in failed["reason"]
    assert s3.secret_key not in failed["reason"]
    assert not core.list_namespaced_config_map(f"{target}2").items
