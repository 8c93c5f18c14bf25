"""The fidelity corpus: what it renders (no cluster), and that it loads into a real local cluster,
reads back through discovery and paginated lists, and unloads without a trace."""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import pytest

from clusters import kube
from tests.local_kube import LocalCluster
from tests.snapshots.corpus import (
    BIG_BYTES,
    BIG_CONFIG_MAP,
    CORPUS_LABEL,
    FINALIZER,
    GROUP,
    SHARED,
    STORAGE_CLASS,
    corpus_namespaces,
    corpus_objects,
    is_shared,
    load_corpus,
    unload_corpus,
)


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): the same object whatever version it is read at."""
    group = obj["apiVersion"].rpartition("/")[0]
    meta = obj["metadata"]
    return group, obj["kind"], meta.get("namespace", ""), meta["name"]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_corpus_covers_every_kind_the_fidelity_test_needs() -> None:
    objects = corpus_objects("cov")
    kinds = Counter((o["apiVersion"], o["kind"]) for o in objects)
    for needed in [
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("v1", "ServiceAccount"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("networking.k8s.io/v1", "Ingress"),
        ("networking.k8s.io/v1", "IngressClass"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("policy/v1", "PodDisruptionBudget"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("v1", "ResourceQuota"),
        ("v1", "LimitRange"),
        ("v1", "PersistentVolumeClaim"),
        ("storage.k8s.io/v1", "StorageClass"),
        (f"{GROUP}/v1", "Realm"),
    ]:
        assert kinds[needed], needed
    assert kinds[(f"{GROUP}/v1", "Widget")] + kinds[(f"{GROUP}/v1alpha1", "Widget")] >= 3

    widget_crd = named(objects, "CustomResourceDefinition", f"widgets.{GROUP}")
    assert widget_crd["spec"]["scope"] == "Namespaced"
    stored = [v for v in widget_crd["spec"]["versions"] if v["storage"]]
    assert len(stored) == 1 and stored[0]["served"] and stored[0]["subresources"] == {"status": {}}
    assert stored[0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert stored[0]["additionalPrinterColumns"]
    assert named(objects, "CustomResourceDefinition", f"realms.{GROUP}")["spec"]["scope"] == "Cluster"
    assert [w["metadata"]["name"] for w in by_kind(objects, "Widget") if w["metadata"].get("finalizers")]

    secrets = by_kind(objects, "Secret")
    assert {s.get("type", "Opaque") for s in secrets} >= {
        "Opaque",
        "kubernetes.io/tls",
        "kubernetes.io/dockerconfigjson",
        "kubernetes.io/dockercfg",
        "kubernetes.io/basic-auth",
        "kubernetes.io/ssh-auth",
        "kubernetes.io/service-account-token",
    }
    assert any(s.get("immutable") for s in secrets) and any(s.get("stringData") for s in secrets)
    pull = named(objects, "Secret", "shop-pull")
    assert "auths" in json.loads(base64.b64decode(pull["data"][".dockerconfigjson"]))
    config_maps = by_kind(objects, "ConfigMap")
    assert any(c.get("binaryData") for c in config_maps) and any(c.get("immutable") for c in config_maps)
    assert any(FINALIZER in c["metadata"].get("finalizers", []) for c in config_maps)

    services = {s["metadata"]["name"]: s["spec"] for s in by_kind(objects, "Service")}
    types = Counter(spec.get("type", "ClusterIP") for spec in services.values())
    assert {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"} <= set(types)
    assert services["db"]["clusterIP"] == "None"
    assert services["web"]["clusterIP"].startswith("10.0.0.")
    assert 30000 <= services["web-nodeport"]["ports"][0]["nodePort"] <= 32767
    assert any(len(spec.get("ports", [])) > 1 for spec in services.values())

    (stateful,) = by_kind(objects, "StatefulSet")
    assert stateful["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == STORAGE_CLASS
    assert named(objects, "PersistentVolumeClaim", "uploads")["spec"]["storageClassName"] == STORAGE_CLASS
    aggregated = [r for r in by_kind(objects, "ClusterRole") if "aggregationRule" in r]
    assert aggregated and any(
        "corpus.flotilla.dev/aggregate-to" in r["metadata"]["labels"] for r in by_kind(objects, "ClusterRole")
    )

    owned = [o for o in objects if o["metadata"].get("ownerReferences")]
    assert {o["kind"] for o in owned} == {"ConfigMap", "Secret"}
    assert all(ref["uid"] == "" for o in owned for ref in o["metadata"]["ownerReferences"])

    big = named(objects, "ConfigMap", BIG_CONFIG_MAP)
    size = sum(len(v.encode()) for v in big["data"].values())
    assert size == BIG_BYTES and 800_000 < size < 1024 * 1024
    assert len(json.dumps(big).encode()) < 1024 * 1024  # a ConfigMap's limit, under etcd's 1.5 MiB


def test_each_copy_has_its_own_namespaces_and_names_and_labels() -> None:
    first, second = corpus_objects("one"), corpus_objects("two")
    assert corpus_namespaces("one") == ["one-a", "one-b", "one-c"]
    for prefix, objects in (("one", first), ("two", second)):
        namespaces = set(corpus_namespaces(prefix))
        for obj in objects:
            meta = obj["metadata"]
            assert meta["labels"][CORPUS_LABEL] == (SHARED if is_shared(obj) else prefix)
            assert not meta.get("namespace", "").startswith("kube-")
            if meta.get("namespace"):
                assert meta["namespace"] in namespaces
            elif obj["kind"] == "Namespace":
                assert meta["name"] in namespaces
            elif not is_shared(obj):
                assert meta["name"].startswith(f"{prefix}-"), identity(obj)
    shared = {identity(o) for o in first if is_shared(o)}
    assert shared == {identity(o) for o in second if is_shared(o)}
    assert len(shared) == 3  # two CRDs and the StorageClass
    assert not ({identity(o) for o in first} - shared) & {identity(o) for o in second}
    assert len({identity(o) for o in first}) == len(first)  # no object twice in a copy
    # Distinct fixed addresses, and a taken one is skipped.
    web = [named(objects, "Service", "web")["spec"]["clusterIP"] for objects in (first, second)]
    assert web[0] != web[1]
    again = corpus_objects("one", taken=frozenset({web[0]}))
    assert named(again, "Service", "web")["spec"]["clusterIP"] not in (web[0], "")


def test_a_prefix_that_is_not_a_dns_label_is_refused() -> None:
    for bad in ("", "Upper", "-dash", "x" * 33, "a_b"):
        with pytest.raises(ValueError):
            corpus_namespaces(bad)


@pytest.mark.kube
def test_corpus_loads_reads_back_through_discovery_and_unloads(local_cluster: LocalCluster) -> None:
    prefix = "fid"
    client = kube.connect(local_cluster.kubeconfig, trusted=True)
    try:
        summary = load_corpus(local_cluster.kubeconfig, prefix)
        # A second copy side by side: the shared CRDs and StorageClass are found in place.
        assert load_corpus(local_cluster.kubeconfig, f"{prefix}2") == summary
        expected = {identity(o): o for o in corpus_objects(prefix)}
        assert summary["objects"] == len(expected)
        assert summary["kinds"][f"{GROUP}/v1/Widget"] == 4  # amber, written at v1alpha1, counted at v1
        assert summary["kinds"]["v1/ConfigMap"] == len(
            [o for o in expected.values() if o["kind"] == "ConfigMap"]
        )

        found: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        big_pages = []
        served = kube.discovery(client, refresh=True)
        for res in served.preferred_resources():
            if not res.can("list"):
                continue
            for page in kube.list_pages(client, res, label_selector=CORPUS_LABEL):
                for item in page.get("items") or []:
                    item.setdefault("apiVersion", res.api_version)
                    item.setdefault("kind", res.kind)
                    if item["metadata"]["labels"][CORPUS_LABEL] in (prefix, SHARED):
                        found[identity(item)] = item
                if res.kind == "ConfigMap" and any(
                    i["metadata"]["name"] == BIG_CONFIG_MAP for i in page.get("items") or []
                ):
                    big_pages.append(page)
        missing = sorted(set(expected) - set(found))
        assert not missing, missing
        # The label marks the corpus's own objects; only the endpoints controllers copy a
        # Service's labels onto what they make.
        assert {key[1] for key in set(found) - set(expected)} <= {"Endpoints", "EndpointSlice"}

        # Read back at the preferred version, with what the server did to them.
        amber = found[(GROUP, "Widget", f"{prefix}-a", "amber")]
        assert amber["apiVersion"] == f"{GROUP}/v1" and amber["spec"]["size"] == 1  # defaulted
        assert found[(GROUP, "Widget", f"{prefix}-b", "red")]["status"]["phase"] == "Ready"
        owner = found[("", "ConfigMap", f"{prefix}-c", "bundle")]
        for kind, name in (("ConfigMap", "bundle-part"), ("Secret", "bundle-secret")):
            (ref,) = found[("", kind, f"{prefix}-c", name)]["metadata"]["ownerReferences"]
            assert ref["uid"] == owner["metadata"]["uid"]
        string_data = found[("", "Secret", f"{prefix}-a", "shop-string-data")]
        assert "stringData" not in string_data and base64.b64decode(string_data["data"]["plain"])
        web = found[("", "Service", f"{prefix}-a", "web")]["spec"]
        assert web["clusterIP"] == expected[("", "Service", f"{prefix}-a", "web")]["spec"]["clusterIP"]

        # The ~900 KB ConfigMap comes back whole inside one page of a paginated list.
        (page,) = big_pages
        big = next(i for i in page["items"] if i["metadata"]["name"] == BIG_CONFIG_MAP)
        assert sum(len(v.encode()) for v in big["data"].values()) == BIG_BYTES
        assert big["data"] == expected[("", "ConfigMap", f"{prefix}-c", BIG_CONFIG_MAP)]["data"]

        # Unloading one copy leaves the other whole, shared objects included.
        unload_corpus(local_cluster.kubeconfig, f"{prefix}2")
        kube.get(client, "apiextensions.k8s.io/v1", "CustomResourceDefinition", f"widgets.{GROUP}")
        kube.get(client, "storage.k8s.io/v1", "StorageClass", STORAGE_CLASS)
        blue = kube.get(client, f"{GROUP}/v1", "Widget", "blue", f"{prefix}-b")
        assert blue["metadata"]["finalizers"] == [FINALIZER]
    finally:
        unload_corpus(local_cluster.kubeconfig, f"{prefix}2")  # a no-op when it is gone already
        unload_corpus(local_cluster.kubeconfig, prefix)

    left = []
    for obj in corpus_objects(prefix):
        meta = obj["metadata"]
        try:
            kube.get(client, obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        except kube.NotFound:
            continue
        left.append(identity(obj))
    assert not left, left  # the last copy took the shared objects with it too
