"""End to end through the API, with the real web server and the real worker: create a local
cluster with two pools → Ready; scale → the new node Ready; upgrade to another locally built
version; delete → every process and file gone, the record kept as deleted."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from django_tenants.utils import schema_context

from clusters.local import binaries
from clusters.local.runtime import LocalRuntime
from clusters.models import Cluster
from tests.clusters.helpers import processes_mentioning
from tests.factories import make_org, make_token, owner_of
from tests.live import LiveProcess

pytestmark = [pytest.mark.live, pytest.mark.kube, pytest.mark.usefixtures("drop_org_schemas")]


def _finish(api: httpx.Client, operation: dict[str, Any], worker: LiveProcess) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        current: dict[str, Any] = api.get(f"/api/v1/clusters/operations/{operation['id']}/").json()
        if current["status"] in {"succeeded", "failed", "cancelled"}:
            assert current["status"] == "succeeded", (current, worker.output()[-3000:])
            return current
        time.sleep(0.3)
    pytest.fail(f"operation {operation['id']} did not finish:\n{worker.output()[-3000:]}")


def test_cluster_life_through_the_api(live_flotilla: str, live_worker: LiveProcess) -> None:
    versions = sorted(binaries.available_k8s_versions(), key=lambda v: tuple(map(int, v.split("."))))
    old, new = versions[0], versions[-1]
    org = make_org("api-live")
    _, token = make_token(owner_of(org))
    api = httpx.Client(base_url=live_flotilla, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    pools = [{"name": "web", "size": "small", "count": 2}, {"name": "db", "size": "large", "count": 1}]
    response = api.post("/api/v1/clusters/", json={"name": "shop", "version": old, "pools": pools})
    assert response.status_code == 202, response.text
    cluster_id = response.json()["cluster"]["id"]
    _finish(api, response.json()["operation"], live_worker)
    cluster = api.get(f"/api/v1/clusters/{cluster_id}/").json()
    assert (cluster["status"], cluster["nodes_ready"], cluster["observed_version"]) == ("ready", 3, old)
    nodes = {n["name"]: n for n in api.get(f"/api/v1/clusters/{cluster_id}/nodes/").json()}
    assert set(nodes) == {"web-0", "web-1", "db-0"} and nodes["db-0"]["cpu"] == "8"

    web = next(p for p in cluster["pools"] if p["name"] == "web")
    _finish(
        api,
        api.patch(f"/api/v1/clusters/{cluster_id}/pools/{web['id']}/", json={"count": 3}).json(),
        live_worker,
    )
    nodes = {n["name"]: n for n in api.get(f"/api/v1/clusters/{cluster_id}/nodes/").json()}
    assert nodes["web-2"]["ready"] is True and len(nodes) == 4

    _finish(
        api, api.post(f"/api/v1/clusters/{cluster_id}/upgrade/", json={"version": new}).json(), live_worker
    )
    cluster = api.get(f"/api/v1/clusters/{cluster_id}/").json()
    assert (cluster["status"], cluster["version"], cluster["observed_version"]) == ("ready", new, new)
    assert cluster["nodes_ready"] == 4

    kubeconfig = api.get(f"/api/v1/clusters/{cluster_id}/kubeconfig/").text
    assert "client-key-data" in kubeconfig
    with schema_context(org.schema_name):
        name = Cluster.objects.get(pk=cluster_id).external_name
    assert name in LocalRuntime().list_clusters()
    cluster_dir = str(LocalRuntime().cluster_dir(name)) + "/"
    assert processes_mentioning(cluster_dir)

    _finish(api, api.delete(f"/api/v1/clusters/{cluster_id}/").json(), live_worker)
    assert name not in LocalRuntime().list_clusters()
    assert processes_mentioning(cluster_dir) == []
    assert api.get(f"/api/v1/clusters/{cluster_id}/").status_code == 404
    assert api.get("/api/v1/clusters/").json()["count"] == 0
    operations = api.get("/api/v1/clusters/operations/", params={"cluster": cluster_id}).json()["results"]
    assert [o["kind"] for o in operations] == ["delete", "upgrade", "scale", "create"]
    with schema_context(org.schema_name):
        assert Cluster.objects.get(pk=cluster_id).status == "deleted"
