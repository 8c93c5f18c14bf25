"""Snapshots and restores on real local clusters, through the API, run as the engine runs them.

What Flotilla says is checked against what the API server holds and what the storage holds: the
objects restored (namespaces mapped, owners re-linked, Services' addresses kept), the per-object
report, a Secret's value absent from every stored byte, and the errors of broken snapshots.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django_tenants.utils import schema_context
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from rest_framework.test import APIClient

from clusters.models import Operation
from orgs.models import Organization
from snapshots.models import Restore, RestoreItem, Snapshot
from tests.api_checks import assert_error
from tests.clusters.app_helpers import cluster_on
from tests.clusters.helpers import run
from tests.local_kube import LocalCluster

pytestmark = [pytest.mark.kube, pytest.mark.django_db]
BASE = "/api/v1/snapshots/"
SECRET_VALUE = "s3cr3t-value-that-must-never-reach-storage-in-clear"


def _finish(org: Organization, body: dict[str, Any]) -> Operation:
    with schema_context(org.schema_name):
        operation = Operation.objects.get(pk=body["operation"]["id"])
    return run(org, operation)


def _seed(local: LocalCluster, namespace: str) -> int:
    """A small namespace: config, a secret, a service with a fixed port, owners and owned."""
    core = local.core()
    taken = {
        p.node_port
        for s in core.list_service_for_all_namespaces().items
        for p in s.spec.ports or []
        if p.node_port
    }
    node_port = next(p for p in range(31000, 32700, 7) if p not in taken)
    owner = core.create_namespaced_config_map(
        namespace, k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="owner"), data={"role": "owner"})
    )
    ref = k8s.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_config_map(
        namespace,
        k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(name="owned", owner_references=[ref]), data={"role": "owned"}
        ),
    )
    for i in range(30):
        core.create_namespaced_config_map(
            namespace,
            k8s.V1ConfigMap(
                metadata=k8s.V1ObjectMeta(name=f"cm-{i}", labels={"set": "bulk"}), data={"i": str(i)}
            ),
        )
    core.create_namespaced_secret(
        namespace,
        k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="creds"), string_data={"token": SECRET_VALUE}),
    )
    core.create_namespaced_service(
        namespace,
        k8s.V1Service(
            metadata=k8s.V1ObjectMeta(name="web"),
            spec=k8s.V1ServiceSpec(
                type="NodePort",
                selector={"app": "web"},
                ports=[k8s.V1ServicePort(port=80, target_port=8080, node_port=node_port)],
            ),
        ),
    )
    return node_port


def _snapshot(client: APIClient, org: Organization, cluster_id: int, **selection: Any) -> dict[str, Any]:
    made = client.post(BASE, {"cluster": cluster_id, "selection": selection}, format="json")
    assert made.status_code == 202, made.content
    assert _finish(org, made.json()).status == "succeeded"
    got = client.get(f"{BASE}{made.json()['id']}/").json()
    assert got["status"] == "completed", got
    return dict(got)


def _restore(
    client: APIClient, org: Organization, snapshot_id: int, target: int, **options: Any
) -> dict[str, Any]:
    mode = options.pop("mode", "restore")
    made = client.post(
        f"{BASE}restores/",
        {"snapshot": snapshot_id, "target": target, "mode": mode, "options": options},
        format="json",
    )
    assert made.status_code == 202, made.content
    _finish(org, made.json())
    return dict(client.get(f"{BASE}restores/{made.json()['id']}/").json())


def _items(client: APIClient, restore_id: int, **filters: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    url: str | None = f"{BASE}restores/{restore_id}/items/?page_size=200&" + "&".join(
        f"{k}={v}" for k, v in filters.items()
    )
    while url:
        page = client.get(url).json()
        rows.extend(page["results"])
        url = page["next"]
    return rows


def _stored_bytes(org: Organization) -> bytes:
    root = Path(settings.FLOTILLA_SNAPSHOT_DIR) / org.schema_name
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_snapshot_and_restore_into_a_mapped_namespace(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster
) -> None:
    source = local_cluster.new_namespace("snap")
    target = f"{source}-copy"
    node_port = _seed(local_cluster, source)
    cluster = cluster_on(org_a, local_cluster, name="snap")
    snap = _snapshot(client_a, org_a, cluster.pk, include_namespaces=[source])

    assert snap["object_count"] >= 35
    assert snap["kinds"]["v1/ConfigMap"] >= 32
    assert snap["kinds"]["v1/Secret"] >= 1
    assert snap["format_version"] == 1 and snap["chunk_count"] >= 1
    assert any(c["type"] == "Consistent" and c["status"] == "True" for c in snap["conditions"])
    stored = _stored_bytes(org_a)
    assert stored, "the local location holds the snapshot"
    for clear in (SECRET_VALUE.encode(), base64.b64encode(SECRET_VALUE.encode()), b'"owner"', b"role"):
        assert clear not in stored, clear

    # The Service's nodePort is taken by the source itself: the mapped copy gets a new one.
    done = _restore(client_a, org_a, snap["id"], cluster.pk, namespace_map={source: target})
    assert done["status"] == "completed", done
    assert done["counts"]["created"] >= 35 and done["counts"]["failed"] == 0
    core = local_cluster.core()
    owner = core.read_namespaced_config_map("owner", target)
    owned = core.read_namespaced_config_map("owned", target)
    assert owned.metadata.owner_references[0].uid == owner.metadata.uid  # re-linked, not the source's
    assert (
        core.read_namespaced_secret("creds", target).data["token"]
        == base64.b64encode(SECRET_VALUE.encode()).decode()
    )
    service = core.read_namespaced_service("web", target)
    assert service.spec.ports[0].node_port != node_port
    rows = {(r["kind"], r["name"]): r for r in _items(client_a, done["id"])}
    assert rows[("Service", "web")]["action"] == "create"
    assert "nodePort" in rows[("Service", "web")]["message"]
    assert rows[("ConfigMap", "owned")]["namespace"] == target
    assert rows[("ConfigMap", "owned")]["source_namespace"] == source

    # The owned object survives the garbage collector (its owner reference is a live uid).
    core.delete_namespaced_config_map("cm-0", source)
    assert core.read_namespaced_config_map("owned", target).metadata.name == "owned"


def test_existing_objects_skip_update_fail_and_the_preview(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster
) -> None:
    source = local_cluster.new_namespace("pol")
    _seed(local_cluster, source)
    cluster = cluster_on(org_a, local_cluster, name="pol")
    snap = _snapshot(client_a, org_a, cluster.pk, include_namespaces=[source], include_kinds=["ConfigMap"])
    core = local_cluster.core()
    core.patch_namespaced_config_map("cm-1", source, {"data": {"i": "changed"}})
    core.delete_namespaced_config_map("cm-2", source)

    preview = _restore(client_a, org_a, snap["id"], cluster.pk, mode="preview", existing="update")
    assert preview["status"] == "completed" and preview["mode"] == "preview"
    rows = {r["name"]: r for r in _items(client_a, preview["id"]) if r["kind"] == "ConfigMap"}
    assert rows["cm-2"]["action"] == "create" and rows["cm-2"]["result"] == "planned"
    assert rows["cm-1"]["action"] == "update"
    assert {"path": "data.i", "before": "changed", "after": "1"} in rows["cm-1"]["diff"]
    assert rows["cm-3"]["action"] == "unchanged"
    # Nothing was written by the preview.
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("cm-2", source)
    assert core.read_namespaced_config_map("cm-1", source).data["i"] == "changed"

    skipped = _restore(client_a, org_a, snap["id"], cluster.pk, existing="skip")
    assert skipped["status"] == "completed"
    by_name = {r["name"]: r for r in _items(client_a, skipped["id"]) if r["kind"] == "ConfigMap"}
    assert by_name["cm-2"]["action"] == "create"
    assert by_name["cm-1"]["action"] == "skip"
    assert core.read_namespaced_config_map("cm-1", source).data["i"] == "changed"

    updated = _restore(client_a, org_a, snap["id"], cluster.pk, existing="update")
    assert updated["status"] == "completed"
    assert core.read_namespaced_config_map("cm-1", source).data["i"] == "1"
    fields = core.read_namespaced_config_map("cm-1", source).metadata.managed_fields
    assert any(f.manager == "flotilla" and f.operation == "Apply" for f in fields)

    failed = _restore(client_a, org_a, snap["id"], cluster.pk, existing="fail")
    assert failed["status"] == "failed"
    assert "already exist in the target" in failed["reason"] and "nothing was written" in failed["reason"]
    conflicts = _items(client_a, failed["id"], action="conflict")
    assert {r["name"] for r in conflicts} >= {f"cm-{i}" for i in range(30)}
    assert not _items(client_a, failed["id"], action="create")


def test_a_snapshot_of_a_cluster_that_does_not_serve_a_kind_is_refused_before_writing(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster
) -> None:
    source = local_cluster.new_namespace("ver")
    _seed(local_cluster, source)
    cluster = cluster_on(org_a, local_cluster, name="ver")
    snap = _snapshot(client_a, org_a, cluster.pk, include_namespaces=[source], include_kinds=["ConfigMap"])
    # Rewrite the snapshot as if it held a kind this cluster does not serve, sealed properly.
    from snapshots import format as fmt
    from snapshots.services.locations import store_of

    with schema_context(org_a.schema_name):
        snapshot = Snapshot.objects.select_related("location").get(pk=snap["id"])
        store = store_of(snapshot.location, org_a.schema_name)  # type: ignore[arg-type]
        raw = store.get(f"{snapshot.storage_prefix}/manifest")
        manifest, key = fmt.open_manifest(
            raw, fmt.org_keys(org_a.schema_name), snapshot_id=str(snapshot.uuid)
        )
        header = fmt.read_header(raw)
        manifest.chunks = [
            fmt.ChunkInfo.from_dict({**c.to_dict(), "api_version": "example.org/v9", "kind": "Gadget"})
            for c in manifest.chunks
        ]
        sealed = fmt.seal_manifest(manifest, key, header["key"])
        store.put(f"{snapshot.storage_prefix}/manifest", sealed)
        Snapshot.objects.filter(pk=snapshot.pk).update(manifest_sha256=fmt.manifest_digest(sealed))
    target = local_cluster.new_namespace("ver-target")
    done = _restore(client_a, org_a, snap["id"], cluster.pk, namespace_map={source: target})
    assert done["status"] == "failed"
    assert "does not serve example.org/v9 Gadget" in done["reason"]
    assert "nothing was written" in done["reason"]
    assert local_cluster.core().list_namespaced_config_map(target).items == [] or all(
        c.metadata.name == "kube-root-ca.crt"
        for c in local_cluster.core().list_namespaced_config_map(target).items
    )


@pytest.mark.parametrize("damage", ["tampered", "truncated", "version", "wrong_key"])
def test_a_damaged_snapshot_is_refused_with_a_clear_reason_and_nothing_written(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster, damage: str
) -> None:
    source = local_cluster.new_namespace("dmg")
    _seed(local_cluster, source)
    cluster = cluster_on(org_a, local_cluster, name="dmg")
    snap = _snapshot(
        client_a, org_a, cluster.pk, include_namespaces=[source], include_kinds=["ConfigMap", "Secret"]
    )
    root = Path(settings.FLOTILLA_SNAPSHOT_DIR) / org_a.schema_name
    chunks = sorted(
        p for p in root.rglob("*") if p.is_file() and snap["uuid"] in str(p) and "/chunks/" in str(p)
    )
    manifest = next(p for p in root.rglob("manifest") if snap["uuid"] in str(p))
    expected = {
        "tampered": "was altered",
        "truncated": "is truncated",
        "version": "format version",
        "wrong_key": "key",
    }[damage]
    if damage == "tampered":
        data = bytearray(chunks[0].read_bytes())
        data[len(data) // 2] ^= 0x01
        chunks[0].write_bytes(bytes(data))
    elif damage == "truncated":
        chunks[0].write_bytes(chunks[0].read_bytes()[:-100])
    elif damage == "version":
        text = manifest.read_bytes()
        header_end = text.index(b"\n")
        header = json.loads(text[:header_end])
        header["format_version"] = 99
        manifest.write_bytes(json.dumps(header).encode() + text[header_end:])
    else:
        from snapshots import format as fmt

        data = manifest.read_bytes()
        other = fmt.org_keys("another_org")[0]
        header = fmt.read_header(data)
        key = fmt.new_data_key()
        header["key"] = fmt.wrap_key(key, other, snapshot_id=snap["uuid"])
        text = data
        header_end = text.index(b"\n")
        manifest.write_bytes(json.dumps(header).encode() + text[header_end:])
    target = f"{source}-r"
    done = _restore(client_a, org_a, snap["id"], cluster.pk, namespace_map={source: target})
    assert done["status"] == "failed", done
    assert expected.lower() in done["reason"].lower(), done["reason"]
    assert "nothing was written" in done["reason"]
    assert not local_cluster.core().list_namespaced_config_map(target).items


def test_another_org_cannot_see_or_restore_a_snapshot(
    client_a: APIClient,
    client_b: APIClient,
    org_a: Organization,
    org_b: Organization,
    local_cluster: LocalCluster,
) -> None:
    source = local_cluster.new_namespace("iso")
    _seed(local_cluster, source)
    cluster = cluster_on(org_a, local_cluster, name="iso")
    snap = _snapshot(client_a, org_a, cluster.pk, include_namespaces=[source], include_kinds=["ConfigMap"])
    cluster_b = cluster_on(org_b, local_cluster, name="iso-b")
    for url in (f"{BASE}{snap['id']}/",):
        assert_error(client_b.get(url), 404, "not_found")
        assert_error(client_b.delete(url), 404, "not_found")
    assert client_b.get(BASE).json()["count"] == 0
    refused = client_b.post(
        f"{BASE}restores/", {"snapshot": snap["id"], "target": cluster_b.pk}, format="json"
    )
    assert_error(refused, 404, "not_found")
    # Org B's storage is its own directory: even A's snapshot copied there does not open for B.
    a_root = Path(settings.FLOTILLA_SNAPSHOT_DIR) / org_a.schema_name
    assert not (Path(settings.FLOTILLA_SNAPSHOT_DIR) / org_b.schema_name).exists() or not any(
        snap["uuid"] in str(p) for p in (Path(settings.FLOTILLA_SNAPSHOT_DIR) / org_b.schema_name).rglob("*")
    )
    from snapshots import format as fmt

    manifest = next(p for p in a_root.rglob("manifest") if snap["uuid"] in str(p))
    with pytest.raises(fmt.WrongKey):
        fmt.open_manifest(manifest.read_bytes(), fmt.org_keys(org_b.schema_name), snapshot_id=snap["uuid"])
    with schema_context(org_a.schema_name):
        assert Restore.objects.count() == 0 and RestoreItem.objects.count() == 0


def test_deleting_a_snapshot_removes_its_storage_and_keeps_its_record(
    client_a: APIClient, org_a: Organization, local_cluster: LocalCluster
) -> None:
    source = local_cluster.new_namespace("del")
    _seed(local_cluster, source)
    cluster = cluster_on(org_a, local_cluster, name="del")
    snap = _snapshot(client_a, org_a, cluster.pk, include_namespaces=[source], include_kinds=["ConfigMap"])
    deleted = client_a.delete(f"{BASE}{snap['id']}/")
    assert deleted.status_code == 202 and deleted.json()["status"] == "deleting"
    _finish(org_a, deleted.json())
    assert client_a.get(f"{BASE}{snap['id']}/").json()["status"] == "deleted"
    root = Path(settings.FLOTILLA_SNAPSHOT_DIR) / org_a.schema_name
    assert not any(snap["uuid"] in str(p) for p in root.rglob("*") if p.is_file())
    again = client_a.delete(f"{BASE}{snap['id']}/")
    assert again.status_code == 200
    refused = client_a.post(f"{BASE}restores/", {"snapshot": snap["id"], "target": cluster.pk}, format="json")
    assert_error(refused, 404, "not_found")
