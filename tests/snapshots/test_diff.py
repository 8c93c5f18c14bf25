"""Field diffs for previews, and the semantic diff of two snapshots."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from snapshots.restore.diff import SEMANTIC_IGNORED, field_diff, format_path, parse_path, semantic_diff


def deployment(replicas: int = 2, image: str = "web:1", **meta: Any) -> dict[str, Any]:
    """A Deployment as the API server returns it (with server-set metadata)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u",
            "resourceVersion": "1",
            "generation": 1,
            **meta,
        },
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        },
        "status": {"readyReplicas": replicas},
    }


def test_paths_round_trip() -> None:
    segments = ("metadata", "annotations", "app.kubernetes.io/name", 0, "x-y", 'q"uote')
    text = format_path(segments)
    assert text == 'metadata.annotations["app.kubernetes.io/name"][0].x-y["q\\"uote"]'
    assert parse_path(text) == segments
    assert parse_path("spec.ports[*].nodePort") == ("spec", "ports", "*", "nodePort")
    with pytest.raises(ValueError, match="bad path"):
        parse_path("spec..x")


def test_field_diff_reports_changed_fields_with_paths() -> None:
    live = deployment()
    desired = deployment(replicas=3, image="web:2")
    desired["metadata"]["resourceVersion"] = "2"
    desired["metadata"]["generation"] = 2
    assert field_diff(live, desired) == [
        {"path": "spec.replicas", "before": 2, "after": 3},
        {"path": "spec.template.spec.containers[0].image", "before": "web:1", "after": "web:2"},
    ]


def test_field_diff_only_fields_desired_sets() -> None:
    live = deployment()
    live["spec"]["progressDeadlineSeconds"] = 600
    desired = deployment()
    del desired["spec"]["replicas"]
    assert field_diff(live, desired) == []


def test_field_diff_new_fields_and_lists() -> None:
    live = deployment()
    desired = deployment()
    desired["metadata"]["labels"] = {"app.kubernetes.io/name": "web"}
    desired["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s:1"})
    changes = field_diff(live, desired)
    assert changes[0] == {
        "path": "metadata.labels",
        "before": None,
        "after": {"app.kubernetes.io/name": "web"},
    }
    assert changes[1]["path"] == "spec.template.spec.containers"
    assert len(changes[1]["after"]) == 2 and len(changes[1]["before"]) == 1


def test_field_diff_ignore_patterns() -> None:
    live = deployment(annotations={"deployment.kubernetes.io/revision": "1", "team": "a"})
    desired = deployment(annotations={"deployment.kubernetes.io/revision": "2", "team": "b"}, replicas=5)
    assert [c["path"] for c in field_diff(live, desired)] == ["metadata.annotations.team", "spec.replicas"]
    assert field_diff(live, desired, ignore=("spec", "status", "metadata.annotations.*")) == []
    changes = field_diff(live, desired, ignore=())
    assert {"path": "status.readyReplicas", "before": 2, "after": 5} in changes


def source_objects() -> list[dict[str, Any]]:
    """A small source snapshot: objects a restore writes and objects it leaves out."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "shop", "uid": "ns", "labels": {"kubernetes.io/metadata.name": "shop"}},
        },
        deployment(annotations={"deployment.kubernetes.io/revision": "4"}),
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "web-5d",
                "namespace": "shop",
                "ownerReferences": [
                    {
                        "kind": "Deployment",
                        "name": "web",
                        "uid": "u",
                        "controller": True,
                        "apiVersion": "apps/v1",
                    }
                ],
            },
        },
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "shop"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "selector": {"app": "web"},
                "clusterIP": "10.96.0.5",
                "ports": [{"port": 80, "nodePort": 30080}],
                "type": "NodePort",
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "shop"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "owned",
                "namespace": "shop",
                "uid": "c1",
                "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u"}
                ],
            },
            "data": {"a": "1"},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop"},
            "spec": {"volumeName": "pvc-1", "storageClassName": "fast"},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "j1"}},
                "template": {
                    "metadata": {"labels": {"batch.kubernetes.io/controller-uid": "j1", "job-name": "once"}}
                },
            },
        },
    ]


def restored(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a snapshot of a faithful restore looks like: new uids, versions, volumes, Events, RSs."""
    result = copy.deepcopy(objects)
    for index, obj in enumerate(result):
        metadata = obj["metadata"]
        metadata["resourceVersion"] = str(1000 + index)
        if "uid" in metadata:
            metadata["uid"] = f"new-{metadata['uid']}"
        for ref in metadata.get("ownerReferences") or []:
            ref["uid"] = f"new-{ref['uid']}"
        annotations = metadata.get("annotations") or {}
        if "deployment.kubernetes.io/revision" in annotations:
            annotations["deployment.kubernetes.io/revision"] = "1"
        if obj["kind"] == "PersistentVolumeClaim":
            obj["spec"]["volumeName"] = "pvc-2"
        if obj["kind"] == "Job":
            obj["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] = "j2"
            obj["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/controller-uid"] = "j2"
        if obj["kind"] == "Endpoints":
            obj["subsets"][0]["addresses"][0]["ip"] = "10.1.0.9"
        if obj["kind"] == "ReplicaSet":
            metadata["name"] = "web-7f"
        if obj["kind"] == "Event":
            metadata["name"] = "e2"
    return result


def test_a_faithful_restore_has_an_empty_semantic_diff() -> None:
    source = source_objects()
    assert semantic_diff(source, restored(source)) == []


def test_missing_extra_and_changed() -> None:
    source = source_objects()
    target = restored(source)
    target = [o for o in target if o["kind"] != "ConfigMap"]
    target.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "new", "namespace": "shop"}})
    target[1]["spec"]["replicas"] = 7
    diff = semantic_diff(source, target)
    assert {
        "group": "",
        "kind": "ConfigMap",
        "namespace": "shop",
        "name": "owned",
        "change": "missing",
        "path": "",
        "before": None,
        "after": None,
    } in diff
    assert any(d["change"] == "extra" and d["kind"] == "Secret" for d in diff)
    assert {
        "group": "apps",
        "kind": "Deployment",
        "namespace": "shop",
        "name": "web",
        "change": "changed",
        "path": "spec.replicas",
        "before": 2,
        "after": 7,
    } in diff
    assert len(diff) == 3


def test_owners_compared_by_kind_and_name() -> None:
    source = source_objects()
    target = restored(source)
    target[6]["metadata"]["ownerReferences"][0]["name"] = "other"
    diff = semantic_diff(source, target)
    assert [d["path"] for d in diff] == ["metadata.ownerReferences[0].name"]


def test_service_addresses_ignored_only_where_reassigned() -> None:
    source = source_objects()
    target = restored(source)
    target[4]["spec"]["clusterIP"] = "10.96.0.77"
    target[4]["spec"]["ports"][0]["nodePort"] = 31000
    assert [d["path"] for d in semantic_diff(source, target)] == ["spec.clusterIP", "spec.ports[0].nodePort"]
    assert semantic_diff(source, target, reassigned_services={("", "Service", "shop", "web")}) == []


def test_namespace_and_storage_class_maps() -> None:
    source = source_objects()
    target = restored(source)
    for obj in target:
        if obj["kind"] == "Namespace":
            obj["metadata"]["name"] = "shop-copy"
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = "shop-copy"
        else:
            obj["metadata"]["namespace"] = "shop-copy"
        if obj["kind"] == "PersistentVolumeClaim":
            obj["spec"]["storageClassName"] = "standard"
    assert len(semantic_diff(source, target)) > 0
    assert (
        semantic_diff(
            source, target, namespace_map={"shop": "shop-copy"}, storage_class_map={"fast": "standard"}
        )
        == []
    )


def test_ignored_list_is_documented() -> None:
    assert all(what and why for what, why in SEMANTIC_IGNORED)
