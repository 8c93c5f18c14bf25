"""A worker killed mid-snapshot and mid-restore (SIGKILL, the real `manage.py worker`): a new
worker takes the operation over, and the snapshot holds every object exactly once, the restore
writes every object exactly once and reports each exactly once."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django_tenants.utils import schema_context
from kubernetes import client as k8s

from clusters.choices import OperationStatus
from clusters.engine.sweeper import sweep as sweep_operations
from clusters.models import Operation
from orgs.models import Organization
from snapshots import format as fmt
from snapshots.models import Restore, RestoreItem, Snapshot
from snapshots.services import restores as restore_services
from snapshots.services import snapshots as snapshot_services
from snapshots.services.locations import store_of
from tests.clusters.app_helpers import cluster_on
from tests.clusters.helpers import KillableWorker, owner_actor, poll
from tests.factories import make_org
from tests.local_kube import LocalCluster

pytestmark = [pytest.mark.kube, pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]
STALE = 3
OBJECTS = 1500
# Small pages, small chunks and short steps: the kill lands in the middle, not after the end.
ENV = {
    "FLOTILLA_OPERATION_STALE_SECONDS": str(STALE),
    "FLOTILLA_SNAPSHOT_PAGE": "50",
    "FLOTILLA_SNAPSHOT_CHUNK_BYTES": "16384",
    "FLOTILLA_SNAPSHOT_STEP_SECONDS": "0.05",
    "FLOTILLA_RESTORE_CONCURRENCY": "2",
}


def _load(local: LocalCluster, namespace: str) -> None:
    core = local.core()

    def make(i: int) -> None:
        core.create_namespaced_config_map(
            namespace,
            k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=f"obj-{i:05d}"), data={"v": "x" * 200 + str(i)}),
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make, range(OBJECTS)))


def _operation(org: Organization, op_id: int) -> Operation:
    with schema_context(org.schema_name):
        return Operation.objects.get(pk=op_id)


def _kill_and_recover(org: Organization, op_id: int, tmp_path: Path, midway: Any) -> Operation:
    """Run a worker until `midway(state)` holds, SIGKILL it, run another to the end."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    first = KillableWorker(tmp_path / "worker-1.log", **ENV)
    try:
        poll(lambda: midway(_operation(org, op_id).state or {}), timeout=120, what="the operation midway")
    finally:
        first.kill()
    assert _operation(org, op_id).is_active, "the kill landed before the end"
    second = KillableWorker(tmp_path / "worker-2.log", **ENV)
    try:
        if _operation(org, op_id).status == OperationStatus.RUNNING:
            poll(
                lambda: sweep_operations()["requeued"],
                timeout=30,
                interval=0.5,
                what="the sweeper to requeue",
            )
        final = poll(
            lambda: None if (op := _operation(org, op_id)).is_active else op,
            timeout=180,
            interval=0.2,
            what="the end",
        )
    finally:
        second.stop()
    assert isinstance(final, Operation)
    assert final.status == OperationStatus.SUCCEEDED, (final.error, second.output()[-3000:])
    return final


def _snapshot_objects(org: Organization, snapshot: Snapshot) -> list[dict[str, Any]]:
    store = store_of(snapshot.location, org.schema_name)  # type: ignore[arg-type]
    manifest, key = fmt.open_manifest(
        store.get(f"{snapshot.storage_prefix}/manifest"),
        fmt.org_keys(org.schema_name),
        snapshot_id=str(snapshot.uuid),
    )
    stored = {k.rsplit("/", 1)[-1] for k in store.keys(f"{snapshot.storage_prefix}/chunks/")}
    assert stored == {c.name for c in manifest.chunks}, "no stray chunk is left beside the manifest's"
    out: list[dict[str, Any]] = []
    for info in manifest.chunks:
        out.extend(
            fmt.open_chunk(
                str(snapshot.uuid), key, info, store.get(f"{snapshot.storage_prefix}/chunks/{info.name}")
            )
        )
    return out


@override_settings(FLOTILLA_OPERATION_STALE_SECONDS=STALE)
def test_worker_killed_mid_snapshot_and_mid_restore(
    transactional_db: None, tmp_path: Path, local_cluster: LocalCluster
) -> None:
    namespace = local_cluster.new_namespace("crash")
    _load(local_cluster, namespace)
    org = make_org("snapcrash")
    cluster = cluster_on(org, local_cluster, name="crash")
    with schema_context(org.schema_name):
        requested = snapshot_services.create_snapshot(
            owner_actor(org),
            cluster,
            selection={"include_namespaces": [namespace], "include_kinds": ["ConfigMap"]},
        )
    _kill_and_recover(
        org,
        requested.operation.pk,
        tmp_path / "snap",
        lambda state: 300 <= int(state.get("objects") or 0) < OBJECTS,
    )
    with schema_context(org.schema_name):
        snapshot = Snapshot.objects.select_related("location").get(pk=requested.snapshot.pk)
        assert snapshot.status == "completed"
        objects = _snapshot_objects(org, snapshot)
    names = Counter(o["metadata"]["name"] for o in objects)
    assert sum(1 for n in names if n.startswith("obj-")) == OBJECTS
    assert max(names.values()) == 1, "an object was written twice"
    assert snapshot.object_count == len(objects)

    target = f"{namespace}-back"
    with schema_context(org.schema_name):
        restore = restore_services.start_restore(
            owner_actor(org), snapshot, cluster, options={"namespace_map": {namespace: target}}
        )
    _kill_and_recover(
        org,
        restore.operation.pk,
        tmp_path / "restore",
        lambda state: 10 <= int(state.get("pos") or 0) < len(state.get("order") or [0] * 10**6) - 5,
    )
    with schema_context(org.schema_name):
        done = Restore.objects.get(pk=restore.restore.pk)
        items = list(RestoreItem.objects.filter(restore=done).values_list("kind", "name", "action"))
    assert done.status == "completed", done.reason
    keys = Counter((kind, name) for kind, name, _ in items)
    assert max(keys.values()) == 1, "an object was reported twice"
    restored = {c.metadata.name for c in local_cluster.core().list_namespaced_config_map(target).items}
    assert {f"obj-{i:05d}" for i in range(OBJECTS)} <= restored
    assert sum(1 for kind, name, action in items if name.startswith("obj-") and action == "create") == OBJECTS
    assert done.counts["failed"] == 0 and done.counts["skipped"] == sum(1 for *_, a in items if a == "skip")
    assert Path(settings.FLOTILLA_SNAPSHOT_DIR).exists()
