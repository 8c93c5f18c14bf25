"""Fidelity: the corpus (tests/snapshots/corpus) snapshotted from one real cluster, restored into a
fresh one, snapshotted again: the two snapshots' objects have no semantic difference
(snapshots.restore.diff says what it ignores, and docs/snapshots.md why). Then the same snapshot
restored with its namespaces and storage classes mapped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django_tenants.utils import schema_context

from clusters.models import Cluster
from orgs.models import Organization
from snapshots import format as fmt
from snapshots.models import RestoreItem, Snapshot
from snapshots.restore import SEMANTIC_IGNORE, semantic_diff
from snapshots.restore.diff import object_key
from snapshots.services import restores as restore_services
from snapshots.services import snapshots as snapshot_services
from snapshots.services.locations import store_of
from snapshots.services.restore_writes import RESTORE_ANNOTATION
from tests.clusters.app_helpers import cluster_on
from tests.clusters.helpers import owner_actor, run
from tests.local_kube import ClusterFactory, LocalCluster
from tests.snapshots.corpus import corpus_namespaces, load_corpus, unload_corpus

pytestmark = [pytest.mark.kube, pytest.mark.django_db]
PREFIX = "fy"
IGNORE = (*SEMANTIC_IGNORE, f'metadata.annotations["{RESTORE_ANNOTATION}"]')


@pytest.fixture(scope="module")
def corpus_source(local_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The session's cluster with the corpus loaded (and removed after the module)."""
    load_corpus(local_cluster.kubeconfig, PREFIX)
    try:
        yield local_cluster
    finally:
        unload_corpus(local_cluster.kubeconfig, PREFIX)


@pytest.fixture(scope="module")
def fresh_cluster(make_local_cluster: ClusterFactory, local_runtime: Any) -> Iterator[LocalCluster]:
    """A new, empty cluster (deleted after the module; the mapping test restores beside the
    fidelity test's objects, into namespaces of its own)."""
    made = make_local_cluster()
    try:
        yield made
    finally:
        local_runtime.delete(made.name)


def _objects(org: Organization, snapshot_id: int) -> list[dict[str, Any]]:
    with schema_context(org.schema_name):
        snapshot = Snapshot.objects.select_related("location").get(pk=snapshot_id)
    store = store_of(snapshot.location, org.schema_name)  # type: ignore[arg-type]
    manifest, key = fmt.open_manifest(
        store.get(f"{snapshot.storage_prefix}/manifest"),
        fmt.org_keys(org.schema_name),
        snapshot_id=str(snapshot.uuid),
    )
    out: list[dict[str, Any]] = []
    for info in manifest.chunks:
        out.extend(
            fmt.open_chunk(
                str(snapshot.uuid), key, info, store.get(f"{snapshot.storage_prefix}/chunks/{info.name}")
            )
        )
    return out


def _take(org: Organization, cluster: Cluster) -> int:
    selection = {"include_namespaces": corpus_namespaces(PREFIX), "cluster_scoped": True}
    with schema_context(org.schema_name):
        requested = snapshot_services.create_snapshot(owner_actor(org), cluster, selection=selection)
    assert run(org, requested.operation).status == "succeeded"
    with schema_context(org.schema_name):
        snapshot = Snapshot.objects.get(pk=requested.snapshot.pk)
        assert snapshot.status == "completed", snapshot.reason
    return snapshot.pk


def _restore(
    org: Organization, snapshot_id: int, target: Cluster, **options: Any
) -> tuple[Any, list[RestoreItem]]:
    with schema_context(org.schema_name):
        snapshot = Snapshot.objects.get(pk=snapshot_id)
        requested = restore_services.start_restore(owner_actor(org), snapshot, target, options=options)
    run(org, requested.operation)
    with schema_context(org.schema_name):
        restore = type(requested.restore).objects.get(pk=requested.restore.pk)
        return restore, list(RestoreItem.objects.filter(restore=restore).order_by("seq"))


def _unmarked(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The restored objects without the restore's own mark (the one annotation a restore adds, so
    that a resumed restore knows its own objects; documented in docs/snapshots.md)."""
    for obj in objects:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        annotations.pop(RESTORE_ANNOTATION, None)
        if not annotations:
            obj["metadata"].pop("annotations", None)
    return objects


def _corpus_only(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    namespaces = set(corpus_namespaces(PREFIX))
    return [
        o
        for o in objects
        if (o.get("metadata") or {}).get("namespace") in namespaces
        or (o["kind"] == "Namespace" and o["metadata"]["name"] in namespaces)
        or (
            not (o.get("metadata") or {}).get("namespace")
            and str(o["metadata"]["name"]).startswith((PREFIX, "corpus"))
        )
    ]


def test_snapshot_restore_snapshot_has_no_semantic_difference(
    org_a: Organization, corpus_source: LocalCluster, fresh_cluster: LocalCluster
) -> None:
    source = cluster_on(org_a, corpus_source, name="fid-source")
    target = cluster_on(org_a, fresh_cluster, name="fid-target")
    first = _take(org_a, source)
    restore, items = _restore(org_a, first, target)
    failed = [f"{i.kind} {i.namespace}/{i.name}: {i.message}" for i in items if i.result == "failed"]
    assert restore.status == "completed", (restore.reason, failed)
    assert not failed
    # Every corpus object of the source is in the report (restored or skipped with a reason).
    reported = {(i.kind, i.namespace, i.name) for i in items}
    for obj in _corpus_only(_objects(org_a, first)):
        meta = obj["metadata"]
        assert (obj["kind"], meta.get("namespace", ""), meta["name"]) in reported, (
            obj["kind"] + " " + meta["name"]
        )
    second = _take(org_a, target)
    reassigned = {
        ("", "Service", i.namespace, i.name) for i in items if i.kind == "Service" and "assigned" in i.message
    }
    before, after = _corpus_only(_objects(org_a, first)), _unmarked(_corpus_only(_objects(org_a, second)))
    assert len(before) >= 60
    differences = semantic_diff(before, after, ignore=IGNORE, reassigned_services=reassigned)
    assert differences == [], "\n".join(json.dumps(d, default=str)[:300] for d in differences)
    # The biggest object (~900 KB) made it whole.
    big = max(before, key=lambda o: len(str(o)))
    assert any(object_key(o) == object_key(big) and o.get("data") == big.get("data") for o in after)


def test_restore_with_namespace_and_storage_class_mapping(
    org_a: Organization, corpus_source: LocalCluster, fresh_cluster: LocalCluster
) -> None:
    source = cluster_on(org_a, corpus_source, name="map-source")
    target = cluster_on(org_a, fresh_cluster, name="map-target")
    first = _take(org_a, source)
    namespaces = corpus_namespaces(PREFIX)
    mapping = {ns: f"{ns}-moved" for ns in namespaces}
    restore, items = _restore(
        org_a, first, target, namespace_map=mapping, storage_class_map={"corpus-fast": "standard"}
    )
    failed = [f"{i.kind} {i.namespace}/{i.name}: {i.message}" for i in items if i.result == "failed"]
    assert restore.status == "completed", (restore.reason, failed)
    core, apps = fresh_cluster.core(), fresh_cluster.apps()
    claims = [c for ns in mapping.values() for c in core.list_namespaced_persistent_volume_claim(ns).items]
    assert claims and all(
        c.spec.storage_class_name == "standard" for c in claims if c.spec.storage_class_name
    )
    sets = [s for ns in mapping.values() for s in apps.list_namespaced_stateful_set(ns).items]
    assert sets and all(
        t.spec.storage_class_name == "standard" for s in sets for t in s.spec.volume_claim_templates or []
    )
    moved = {c.metadata.name for ns in mapping.values() for c in core.list_namespaced_config_map(ns).items}
    assert {"big-payload", "bundle", "bundle-part"} <= moved
    from kubernetes import client as k8s

    rbac = k8s.RbacAuthorizationV1Api(fresh_cluster.api())
    bindings = [b for ns in mapping.values() for b in rbac.list_namespaced_role_binding(ns).items]
    subjects = [s for b in bindings for s in b.subjects or [] if s.kind == "ServiceAccount"]
    assert subjects and all(s.namespace in mapping.values() for s in subjects)
