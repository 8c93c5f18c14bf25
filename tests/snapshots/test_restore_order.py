"""The restore's order: phases by kind, custom resources, owners first, cycles broken and reported."""

from __future__ import annotations

from typing import Any

from snapshots.restore.order import (
    PHASE_ADMISSION,
    PHASE_CLUSTER,
    PHASE_CONFIG,
    PHASE_CRDS,
    PHASE_CUSTOM,
    PHASE_NAMESPACES,
    PHASE_OTHER,
    PHASE_SERVICES,
    PHASE_STORAGE,
    PHASE_WORKLOADS,
    PHASES,
    is_custom,
    order_owners,
    phase_of,
    plan_phases,
    sort_owned_last,
)


def obj(
    kind: str, name: str, uid: str, *owners: str, api: str = "v1", namespace: str = "shop"
) -> dict[str, Any]:
    """An object with a uid and ownerReferences to the given uids."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid}
    if owners:
        metadata["ownerReferences"] = [{"apiVersion": "v1", "kind": "X", "name": o, "uid": o} for o in owners]
    return {"apiVersion": api, "kind": kind, "metadata": metadata}


def names(objects: list[dict[str, Any]]) -> list[str]:
    """The objects' names, in order."""
    return [o["metadata"]["name"] for o in objects]


def test_phases_are_increasing_and_labelled() -> None:
    numbers = [number for number, _ in PHASES]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert all(label for _, label in PHASES)


def test_the_documented_order() -> None:
    sequence = [
        phase_of("apiextensions.k8s.io", "CustomResourceDefinition"),
        phase_of("", "Namespace"),
        phase_of("storage.k8s.io", "StorageClass"),
        phase_of("", "ServiceAccount"),
        phase_of("", "Secret"),
        phase_of("rbac.authorization.k8s.io", "RoleBinding"),
        phase_of("", "PersistentVolumeClaim"),
        phase_of("", "Service"),
        phase_of("apps", "Deployment"),
        phase_of("networking.k8s.io", "Ingress"),
        phase_of("example.com", "Widget", crd_groups={"example.com"}),
        phase_of("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ]
    assert sequence == sorted(sequence)
    assert len(set(sequence)) == len(sequence)


def test_specific_kinds() -> None:
    assert phase_of("apiextensions.k8s.io", "CustomResourceDefinition") == PHASE_CRDS
    assert phase_of("scheduling.k8s.io", "PriorityClass") == PHASE_CLUSTER
    assert phase_of("rbac.authorization.k8s.io", "ClusterRoleBinding") == PHASE_CLUSTER
    assert phase_of("", "ConfigMap") == PHASE_CONFIG
    assert phase_of("", "PersistentVolume") == PHASE_STORAGE
    assert phase_of("batch", "CronJob") == PHASE_WORKLOADS
    assert phase_of("policy", "PodDisruptionBudget") == PHASE_OTHER
    assert phase_of("autoscaling", "HorizontalPodAutoscaler") == PHASE_OTHER
    assert phase_of("admissionregistration.k8s.io", "MutatingWebhookConfiguration") == PHASE_ADMISSION
    assert phase_of("", "Namespace") == PHASE_NAMESPACES
    assert phase_of("", "Service") == PHASE_SERVICES


def test_custom_resources() -> None:
    assert is_custom("example.com", {"example.com"})
    assert not is_custom("apps", {"example.com"})
    # A CRD may serve a kind whose name collides with a built-in one: the group decides.
    assert phase_of("example.com", "Deployment", crd_groups={"example.com"}) == PHASE_CUSTOM
    # Unknown non-built-in groups are treated as custom even without the CRD list.
    assert phase_of("other.io", "Thing") == PHASE_CUSTOM


def test_owned_last_is_stable() -> None:
    objects = [obj("A", "child", "c", "p"), obj("A", "free", "f"), obj("A", "parent", "p")]
    assert names(sort_owned_last(objects)) == ["free", "parent", "child"]
    unrelated = [obj("A", str(i), str(i)) for i in range(5)]
    assert names(sort_owned_last(unrelated)) == ["0", "1", "2", "3", "4"]


def test_owned_last_chains_and_multiple_owners() -> None:
    objects = [
        obj("A", "grandchild", "g", "c"),
        obj("A", "child", "c", "p1", "p2"),
        obj("A", "p2", "p2"),
        obj("A", "p1", "p1"),
    ]
    assert names(sort_owned_last(objects)) == ["p2", "p1", "child", "grandchild"]


def test_owners_outside_the_batch_and_self_references_are_ignored() -> None:
    objects = [obj("A", "a", "a", "elsewhere"), obj("A", "self", "s", "s")]
    ordered, notes = order_owners(objects)
    assert names(ordered) == ["a", "self"] and notes == []


def test_cycles_are_broken_and_reported() -> None:
    objects = [obj("A", "x", "x", "y"), obj("A", "y", "y", "x"), obj("A", "z", "z", "y")]
    ordered, notes = order_owners(objects)
    assert names(ordered) == ["x", "y", "z"]
    assert len(notes) == 1
    assert "cycle" in notes[0] and "A shop/x" in notes[0] and "A shop/y" in notes[0]


def test_a_waiter_on_a_cycle_is_not_the_one_broken() -> None:
    objects = [obj("A", "w", "w", "b"), obj("A", "b", "b", "c"), obj("A", "c", "c", "b")]
    ordered, notes = order_owners(objects)
    assert names(ordered) == ["b", "w", "c"]
    assert "A shop/b was restored first" in notes[0]


def test_two_cycles_two_notes() -> None:
    objects = [
        obj("A", "a", "a", "b"),
        obj("A", "b", "b", "a"),
        obj("A", "c", "c", "d"),
        obj("A", "d", "d", "c"),
    ]
    ordered, notes = order_owners(objects)
    assert names(ordered) == ["a", "b", "c", "d"]
    assert len(notes) == 2


def test_plan_phases_groups_and_moves_owned_objects_after_their_owner() -> None:
    objects = [
        obj("Widget", "w", "w1", api="example.com/v1"),
        obj("ConfigMap", "owned-by-deploy", "cm", "d"),
        obj("Secret", "owned-by-widget", "s", "w1"),
        obj("Deployment", "web", "d", api="apps/v1"),
        obj("PersistentVolumeClaim", "data", "pvc", "sts"),
        obj("StatefulSet", "db", "sts", api="apps/v1"),
        obj(
            "CustomResourceDefinition",
            "widgets.example.com",
            "crd",
            api="apiextensions.k8s.io/v1",
            namespace="",
        ),
    ]
    batches, notes = plan_phases(objects, crd_groups={"example.com"})
    as_names = [(phase, names(batch)) for phase, batch in batches]
    assert as_names == [
        (PHASE_CRDS, ["widgets.example.com"]),
        (PHASE_STORAGE, ["data"]),
        (PHASE_WORKLOADS, ["web", "owned-by-deploy", "db"]),
        (PHASE_CUSTOM, ["w", "owned-by-widget"]),
    ]
    assert notes == []


def test_plan_phases_reports_cycles() -> None:
    objects = [obj("ConfigMap", "a", "a", "b"), obj("ConfigMap", "b", "b", "a")]
    batches, notes = plan_phases(objects)
    assert [names(batch) for _, batch in batches] == [["a", "b"]]
    assert len(notes) == 1
