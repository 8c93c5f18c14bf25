"""The benchmark loader: distinct, labelled ConfigMaps and Secrets through the gateway, 429s waited out."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bench import load_objects
from clusters import kube
from tests.local_kube import LocalCluster


def _items(cluster: LocalCluster, kind: str, namespace: str) -> list[dict[str, Any]]:
    client = kube.connect(cluster.kubeconfig, trusted=True)
    selector = f"{load_objects.BENCH_LABEL}=1"
    return list(kube.list_items(client, ("v1", kind), namespace=namespace, label_selector=selector))


@pytest.mark.kube
def test_load_makes_distinct_labelled_objects_of_the_size_asked(
    local_cluster: LocalCluster, kube_namespace: str
) -> None:
    stats: dict[str, int] = {}
    seconds = load_objects.load(
        local_cluster.kubeconfig, kube_namespace, configmaps=40, secrets=25, size=600, workers=8, stats=stats
    )
    assert seconds > 0
    assert stats["objects"] == 65

    configmaps = _items(local_cluster, "ConfigMap", kube_namespace)
    secrets = _items(local_cluster, "Secret", kube_namespace)
    assert len(configmaps) == 40 and len(secrets) == 25
    payloads = {cm["data"]["payload"] for cm in configmaps}
    assert len(payloads) == 40 and all(len(p) == 600 for p in payloads)
    assert sorted(int(cm["data"]["index"]) for cm in configmaps) == list(range(40))
    tiers = {cm["metadata"]["labels"]["tier"] for cm in configmaps}
    assert tiers == set(load_objects.TIERS)
    tokens = {base64.b64decode(s["data"]["token"]) for s in secrets}
    assert len(tokens) == 25 and all(440 <= len(t) <= 450 for t in tokens)
    assert all(s["type"] == "Opaque" for s in secrets)


@pytest.mark.kube
def test_load_spreads_over_namespaces_it_creates(local_cluster: LocalCluster) -> None:
    prefix = f"spread-{id(local_cluster) % 10000}"
    client = kube.connect(local_cluster.kubeconfig, trusted=True)
    spaces = load_objects.namespaces_for(prefix, 3)
    try:
        load_objects.load(local_cluster.kubeconfig, prefix, configmaps=10, secrets=5, namespaces=3)
        counts = [len(_items(local_cluster, "ConfigMap", ns)) for ns in spaces]
        assert counts == [4, 3, 3]
        assert sum(len(_items(local_cluster, "Secret", ns)) for ns in spaces) == 5
    finally:
        for ns in spaces:
            kube.delete(client, "v1", "Namespace", ns, missing_ok=True)


@pytest.mark.kube
def test_loading_into_taken_names_fails(local_cluster: LocalCluster, kube_namespace: str) -> None:
    load_objects.load(local_cluster.kubeconfig, kube_namespace, configmaps=3, secrets=0)
    with pytest.raises(kube.AlreadyExists):
        load_objects.load(local_cluster.kubeconfig, kube_namespace, configmaps=3, secrets=0)


class FlakyCreate:
    """kube.create that first answers with the given errors, then succeeds (or raises `last`)."""

    def __init__(self, errors: list[Exception], last: Exception | None = None) -> None:
        self.errors = errors
        self.last = last
        self.calls = 0

    def __call__(self, client: Any, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        if self.last is not None:
            raise self.last
        return obj


def test_create_one_waits_out_429s_with_the_servers_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FlakyCreate([kube.TooManyRequests("slow down", retry_after=1.5), kube.TooManyRequests("again")])
    monkeypatch.setattr(kube, "create", fake)
    pauses: list[float] = []
    obj = load_objects.make_object("ConfigMap", 7, "ns", 100)
    assert load_objects.create_one(None, obj, sleep=pauses.append) == 2  # type: ignore[arg-type]
    assert fake.calls == 3
    assert pauses[0] == 1.5 and 0 < pauses[1] <= 2.0


def test_create_one_counts_a_name_taken_after_a_lost_answer_as_done(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FlakyCreate([kube.Unavailable("connection reset")], last=kube.AlreadyExists("taken"))
    monkeypatch.setattr(kube, "create", fake)
    obj = load_objects.make_object("Secret", 1, "ns", 100)
    assert load_objects.create_one(None, obj, sleep=lambda s: None) == 1  # type: ignore[arg-type]


def test_create_one_gives_up_after_max_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[Exception] = [kube.TooManyRequests("busy") for _ in range(load_objects.MAX_ATTEMPTS)]
    monkeypatch.setattr(kube, "create", FlakyCreate(errors))
    obj = load_objects.make_object("ConfigMap", 2, "ns", 100)
    with pytest.raises(load_objects.LoadFailed, match="ns/configmap-000002"):
        load_objects.create_one(None, obj, sleep=lambda s: None)  # type: ignore[arg-type]
