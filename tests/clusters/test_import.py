"""Importing an existing cluster by kubeconfig.

The request checks the kubeconfig statically (shape, outbound policy) and records the cluster and
its import operation; the operation (run here as the worker runs it) makes the first call. A
malformed kubeconfig or a server the policy refuses gets a 400 naming the kubeconfig and creates
nothing; an unreachable server, refused credentials or a server that is not Kubernetes leave a
visible failed cluster with the reason, which can be retried or forgotten.

The local test cluster listens on loopback: each test that imports it allow-lists exactly its
address and port, as an operator would; the refusals run with the normal policy."""

from __future__ import annotations

import base64
import datetime
import os
import socket
import tempfile
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.test import override_settings
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from clusters import kube
from clusters.choices import ClusterStatus, OperationStatus
from clusters.models import Cluster, Node, Operation, ProviderAccount
from clusters.services.health import refresh_cluster_health
from orgs.models import Organization
from tests.api_checks import assert_error
from tests.clusters.fake_api import FakeApi, json_answer, kubeconfig_for, kubernetes
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


def _allow(kubeconfig: str) -> override_settings:
    """The operator allow-lists exactly this kubeconfig's server address and port."""
    parts = urlsplit(kube.server_of(kubeconfig))
    return override_settings(FLOTILLA_OUTBOUND_ALLOW=[f"{parts.hostname}:{parts.port}"])


def _import(client: APIClient, org: Organization, payload: dict[str, Any]) -> tuple[Cluster, Operation]:
    """Post an import (accepted), run its operation as the worker does; the cluster and operation after."""
    response = client.post(URL, payload, format="json")
    assert response.status_code == 202, response.json()
    with schema_context(org.schema_name):
        operation = Operation.objects.get(pk=response.json()["operation"]["id"])
    finished = run(org, operation)
    with schema_context(org.schema_name):
        return Cluster.objects.get(pk=response.json()["cluster"]["id"]), finished


def _failed_visibly(client: APIClient, org: Organization, cluster: Cluster, operation: Operation) -> str:
    """A failed import: the cluster is there, in error with the reason, and can be forgotten."""
    assert operation.status == OperationStatus.FAILED
    assert cluster.status == ClusterStatus.ERROR and cluster.status_reason
    shown = client.get(f"/api/v1/clusters/{cluster.pk}/").json()
    assert shown["status"] == "error" and shown["status_reason"] == cluster.status_reason
    deletion = client.delete(f"/api/v1/clusters/{cluster.pk}/").json()
    with schema_context(org.schema_name):
        assert run(org, Operation.objects.get(pk=deletion["id"])).status == OperationStatus.SUCCEEDED
        assert Cluster.objects.get(pk=cluster.pk).status == ClusterStatus.DELETED
    return cluster.status_reason


def test_import_a_running_cluster(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster
) -> None:
    with _allow(local_cluster.kubeconfig):
        response = client_a.post(
            URL, {"name": "found", "kubeconfig": local_cluster.kubeconfig}, format="json"
        )
        assert response.status_code == 202, response.json()
        cluster = response.json()["cluster"]
        # Nothing was asked of the cluster yet: the worker does that.
        assert cluster["provider_kind"] == "existing" and cluster["status"] == "pending"
        with schema_context(org_a.schema_name):
            operation = Operation.objects.get(pk=response.json()["operation"]["id"])
        assert run(org_a, operation).status == OperationStatus.SUCCEEDED
    with schema_context(org_a.schema_name):
        imported = Cluster.objects.get(pk=cluster["id"])
        nodes = set(Node.objects.filter(cluster=imported).values_list("name", flat=True))
    assert imported.status == ClusterStatus.READY and imported.version == imported.observed_version != ""
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

    kubeconfig = _edited(local_cluster.kubeconfig, unreachable)
    with _allow(kubeconfig):
        cluster, operation = _import(client_a, org_a, {"name": "far", "kubeconfig": kubeconfig})
    reason = _failed_visibly(client_a, org_a, cluster, operation)
    assert "https://127.0.0.1:9 is not reachable" in reason and "gave up after 3 attempts" in reason


def test_refused_credentials(client_a: APIClient, org_a: Organization, local_cluster: LocalCluster) -> None:
    def bogus_token(doc: dict[str, Any]) -> None:
        doc["users"][0]["user"] = {"token": "not-a-real-token"}

    kubeconfig = _edited(local_cluster.kubeconfig, bogus_token)
    with _allow(kubeconfig):
        cluster, operation = _import(client_a, org_a, {"name": "locked", "kubeconfig": kubeconfig})
    assert "refused the credentials (HTTP 401 Unauthorized)" in _failed_visibly(
        client_a, org_a, cluster, operation
    )


def test_a_server_that_is_not_kubernetes(client_a: APIClient, org_a: Organization) -> None:
    server = FakeApi(lambda conn, request: conn.sendall(json_answer("200 OK", {"status": "ok"})))
    try:
        kubeconfig = kubeconfig_for(f"http://127.0.0.1:{server.port}")
        with _allow(kubeconfig):
            cluster, operation = _import(client_a, org_a, {"name": "web", "kubeconfig": kubeconfig})
    finally:
        server.close()
    reason = _failed_visibly(client_a, org_a, cluster, operation)
    assert "not as a Kubernetes API server does" in reason
    assert operation.attempts == 0  # no retry: the answer would be the same


@pytest.mark.parametrize(
    ("server", "says"),
    [
        ("https://127.0.0.1:5432", "loopback"),  # the database
        ("http://127.0.0.1:8000/metrics?", "query"),  # "?" would turn /version into a query
        ("https://169.254.169.254", "link-local"),  # the cloud's metadata service
        ("https://localhost:6443", "loopback"),
        ("https://2130706433:6443", "loopback"),
        ("https://user:pw@8.8.8.8:6443", "user name or password"),
        ("http://8.8.8.8:6443", "https://"),
    ],
)
def test_servers_the_policy_refuses_are_refused_in_the_request(
    client_a: APIClient, org_a: Organization, server: str, says: str
) -> None:
    payload = {"name": "inside", "kubeconfig": kubeconfig_for(server)}
    error = assert_error(client_a.post(URL, payload, format="json"), 400, None, "kubeconfig")
    assert says in error["fields"]["kubeconfig"][0]
    _nothing_created(org_a)


def test_another_cluster_on_loopback_is_refused(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster
) -> None:
    """The local provider's clusters (another org's, say) are never reachable through an import."""
    error = assert_error(
        client_a.post(URL, {"name": "theirs", "kubeconfig": local_cluster.kubeconfig}, format="json"),
        400,
        None,
        "kubeconfig",
    )
    assert "loopback address" in error["message"]
    _nothing_created(org_a)


def test_a_proxy_url_is_refused(client_a: APIClient, org_a: Organization) -> None:
    kubeconfig = kubeconfig_for("https://8.8.8.8:6443").replace(
        "    server:", "    proxy-url: http://127.0.0.1:3128\n    server:"
    )
    error = assert_error(client_a.post(URL, {"name": "p", "kubeconfig": kubeconfig}, format="json"), 400)
    assert "proxy-url" in error["fields"]["kubeconfig"][0]
    _nothing_created(org_a)


def _client_certificate() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flotilla-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (
        base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
        base64.b64encode(pem_key).decode(),
    )


def test_a_failed_import_leaves_no_certificate_files(
    client_a: APIClient, org_a: Organization, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A port nobody listens on: the import fails after its attempts.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cert, key = _client_certificate()
    kubeconfig = kubeconfig_for(f"https://127.0.0.1:{port}").replace(
        "    token: t", f"    client-certificate-data: {cert}\n    client-key-data: {key}"
    )
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the system temporary directory, here
    before = sorted(os.listdir(tmp_path))
    with override_settings(FLOTILLA_OUTBOUND_ALLOW=[f"127.0.0.1:{port}"]):
        cluster, operation = _import(client_a, org_a, {"name": "certs", "kubeconfig": kubeconfig})
    assert operation.status == OperationStatus.FAILED and "not reachable" in cluster.status_reason
    assert sorted(os.listdir(tmp_path)) == before


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


def _kubernetes_with_a_node(conn: socket.socket, request: bytes) -> None:
    if request.split(b" ", 2)[1].startswith(b"/version"):
        kubernetes(conn, request)
        return
    node = {"metadata": {"name": "n1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    conn.sendall(json_answer("200 OK", {"kind": "NodeList", "apiVersion": "v1", "items": [node]}))


def test_every_later_call_is_checked_again(client_a: APIClient, org_a: Organization) -> None:
    server = FakeApi(_kubernetes_with_a_node)
    try:
        kubeconfig = kubeconfig_for(f"http://127.0.0.1:{server.port}")
        with _allow(kubeconfig):
            cluster, operation = _import(client_a, org_a, {"name": "ext", "kubeconfig": kubeconfig})
            assert operation.status == OperationStatus.SUCCEEDED and cluster.version == "1.30.2"
            with schema_context(org_a.schema_name):
                assert refresh_cluster_health(cluster.pk) == ClusterStatus.READY
        asked = len(server.requests)
        # The operator withdraws the exception: the next health check refuses before connecting.
        with schema_context(org_a.schema_name):
            assert refresh_cluster_health(cluster.pk) == ClusterStatus.DEGRADED
            assert "a loopback address" in Cluster.objects.get(pk=cluster.pk).status_reason
        assert len(server.requests) == asked
    finally:
        server.close()


def test_a_failed_import_can_be_retried(client_a: APIClient, org_a: Organization) -> None:
    state = {"up": False}

    def sometimes(conn: socket.socket, request: bytes) -> None:
        if state["up"]:
            _kubernetes_with_a_node(conn, request)
        else:
            conn.sendall(json_answer("503 Service Unavailable", {}))

    server = FakeApi(sometimes)
    try:
        kubeconfig = kubeconfig_for(f"http://127.0.0.1:{server.port}")
        with _allow(kubeconfig):
            cluster, operation = _import(client_a, org_a, {"name": "later", "kubeconfig": kubeconfig})
            assert operation.status == OperationStatus.FAILED
            assert "answered HTTP 503 Service Unavailable" in cluster.status_reason
            state["up"] = True
            retried = client_a.post(f"/api/v1/clusters/operations/{operation.pk}/retry/")
            assert retried.status_code == 202, retried.json()
            assert run(org_a, operation).status == OperationStatus.SUCCEEDED
        with schema_context(org_a.schema_name):
            assert Cluster.objects.get(pk=cluster.pk).status == ClusterStatus.READY
    finally:
        server.close()
