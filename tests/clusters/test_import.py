"""Importing an existing cluster by kubeconfig: a running (local) cluster imports and shows its
nodes; a malformed kubeconfig, an unreachable server and refused credentials each get a clear
error naming the kubeconfig, and create nothing."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from clusters.choices import ClusterStatus, OperationStatus
from clusters.models import Cluster, Node, Operation, ProviderAccount
from orgs.models import Organization
from tests.api_checks import assert_error
from tests.clusters.helpers import run
from tests.local_kube import LocalCluster

pytestmark = [pytest.mark.kube, pytest.mark.django_db]
URL = "/api/v1/clusters/import/"


def _nothing_created(org: Organization) -> None:
    with schema_context(org.schema_name):
        assert not Cluster.objects.exists()
        assert not Operation.objects.exists()
        assert not ProviderAccount.objects.exists()


def _edited(kubeconfig: str, edit: Any) -> str:
    doc = yaml.safe_load(kubeconfig)
    edit(doc)
    return yaml.safe_dump(doc)


def test_import_a_running_cluster(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster
) -> None:
    response = client_a.post(URL, {"name": "found", "kubeconfig": local_cluster.kubeconfig}, format="json")
    assert response.status_code == 202, response.json()
    cluster = response.json()["cluster"]
    assert cluster["provider_kind"] == "existing" and cluster["version"]
    with schema_context(org_a.schema_name):
        operation = Operation.objects.get(pk=response.json()["operation"]["id"])
    assert run(org_a, operation).status == OperationStatus.SUCCEEDED
    with schema_context(org_a.schema_name):
        imported = Cluster.objects.get(pk=cluster["id"])
        nodes = set(Node.objects.filter(cluster=imported).values_list("name", flat=True))
    assert imported.status == ClusterStatus.READY
    assert nodes == {n.metadata.name for n in local_cluster.core().list_node().items}
    listed = client_a.get(f"/api/v1/clusters/{cluster['id']}/nodes/").json()
    assert {n["name"] for n in listed} == nodes
    # Forgetting an imported cluster leaves the real one alone.
    deletion = client_a.delete(f"/api/v1/clusters/{cluster['id']}/").json()
    with schema_context(org_a.schema_name):
        assert run(org_a, Operation.objects.get(pk=deletion["id"])).status == OperationStatus.SUCCEEDED
    assert local_cluster.core().list_node().items


@pytest.mark.parametrize(
    ("kubeconfig", "says"),
    [
        ("clusters: [unclosed", "not valid YAML"),
        ("", "kubeconfig"),
        ("apiVersion: v1\nkind: Config\ncontexts: []\n", "no contexts"),
        ("- just\n- a list\n", "not a kubeconfig"),
    ],
)
def test_malformed_kubeconfig(client_a: APIClient, org_a: Organization, kubeconfig: str, says: str) -> None:
    error = assert_error(client_a.post(URL, {"name": "bad", "kubeconfig": kubeconfig}, format="json"), 400)
    assert says in error["message"] and "kubeconfig" in error["fields"]
    _nothing_created(org_a)


def test_unknown_context(client_a: APIClient, org_a: Organization, local_cluster: LocalCluster) -> None:
    payload = {"name": "bad", "kubeconfig": local_cluster.kubeconfig, "context": "nope"}
    error = assert_error(client_a.post(URL, payload, format="json"), 400, None, "kubeconfig")
    assert "no context named 'nope'" in error["message"]
    _nothing_created(org_a)


def test_unreachable_server(client_a: APIClient, org_a: Organization, local_cluster: LocalCluster) -> None:
    def unreachable(doc: dict[str, Any]) -> None:
        doc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"

    payload = {"name": "far", "kubeconfig": _edited(local_cluster.kubeconfig, unreachable)}
    error = assert_error(client_a.post(URL, payload, format="json"), 400, None, "kubeconfig")
    assert "not reachable" in error["message"]
    _nothing_created(org_a)


def test_refused_credentials(client_a: APIClient, org_a: Organization, local_cluster: LocalCluster) -> None:
    def bogus_token(doc: dict[str, Any]) -> None:
        doc["users"][0]["user"] = {"token": "not-a-real-token"}

    payload = {"name": "locked", "kubeconfig": _edited(local_cluster.kubeconfig, bogus_token)}
    error = assert_error(client_a.post(URL, payload, format="json"), 400, None, "kubeconfig")
    assert "refused the credentials" in error["message"]
    _nothing_created(org_a)


def test_exec_credentials_are_refused(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster
) -> None:
    def exec_plugin(doc: dict[str, Any]) -> None:
        doc["users"][0]["user"] = {
            "exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1"}
        }

    payload = {"name": "exec", "kubeconfig": _edited(local_cluster.kubeconfig, exec_plugin)}
    error = assert_error(client_a.post(URL, payload, format="json"), 400, None, "kubeconfig")
    assert "run a command" in error["message"]
    _nothing_created(org_a)
