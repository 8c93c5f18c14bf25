"""The gateway against a real kube-apiserver (a local kwok control plane): discovery, server-side
apply as `flotilla` with conflicts, errors as the server words them, paginated raw lists, a watch
that follows changes and stops on request, and pod logs (tail, follow, bounded)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import yaml

from clusters import kube
from tests.local_kube import LocalCluster, wait_for

GROUP = "gadgets.flotilla.io"


@pytest.fixture
def gateway(local_cluster: LocalCluster) -> kube.Client:
    return kube.connect(local_cluster.kubeconfig, trusted=True)


def config_map(namespace: str, name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def gadget_crd() -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gdg"]},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
            ],
        },
    }


def test_discovery_reports_versions_resources_and_aggregated_apis(gateway: kube.Client) -> None:
    found = kube.discovery(gateway, refresh=True)
    assert found.git_version.startswith("v1.")
    assert found.preferred["apps"] == "v1" and found.preferred[""] == "v1"
    deployments = found.find("apps/v1", "Deployment")
    assert deployments is not None and deployments.namespaced and deployments.plural == "deployments"
    assert {"get", "list", "watch", "patch"} <= set(deployments.verbs) and "deploy" in deployments.short_names
    nodes = found.find("v1", "Node")
    assert nodes is not None and not nodes.namespaced
    assert all("/" not in r.plural for r in found.resources)  # pods/log, deployments/scale left out
    # metrics-server runs as an aggregated API: flagged, and left out of the default selection.
    assert "metrics.k8s.io/v1beta1" in found.aggregated
    assert all(r.aggregated for r in found.resources if r.group == "metrics.k8s.io")
    assert not any(r.group == "metrics.k8s.io" for r in found.preferred_resources())
    assert any(r.group == "metrics.k8s.io" for r in found.preferred_resources(include_aggregated=True))
    assert kube.discovery(gateway) is found  # cached on the client


def test_a_crd_s_kind_is_found_and_applied(gateway: kube.Client, kube_namespace: str) -> None:
    kube.discovery(gateway)  # cached before the CRD exists: the miss refreshes it
    kube.apply(gateway, gadget_crd())
    try:
        meta = {"name": "g1", "namespace": kube_namespace}
        gadget = {"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": meta, "spec": {"size": 3}}

        def applied() -> dict[str, Any] | None:
            try:
                return kube.apply(gateway, gadget)
            except kube.NotFound:  # the CRD is not served yet
                return None

        got = wait_for(applied, what="the CRD to be served")
        assert got["spec"] == {"size": 3}
        resource = kube.resource(gateway, f"{GROUP}/v1", "Gadget")
        assert resource.namespaced and resource.short_names == ("gdg",)
        assert kube.discovery(gateway).preferred[GROUP] == "v1"
    finally:
        kube.delete(
            gateway,
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            f"gadgets.{GROUP}",
            missing_ok=True,
        )


def test_server_side_apply_is_flotilla_s_and_reports_conflicts(
    gateway: kube.Client, kube_namespace: str
) -> None:
    wanted = config_map(kube_namespace, "settings", mode="fast")
    dry = kube.apply(gateway, wanted, dry_run=True)
    assert dry["data"] == {"mode": "fast"}
    with pytest.raises(kube.NotFound):
        kube.get(gateway, "v1", "ConfigMap", "settings", kube_namespace)  # a dry run stores nothing

    made = kube.apply(gateway, wanted)
    assert [m["manager"] for m in made["metadata"]["managedFields"]] == [kube.FIELD_MANAGER]
    assert kube.apply(gateway, wanted)["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]

    # Someone else takes the field over; Flotilla's next apply is a conflict naming them.
    theirs = config_map(kube_namespace, "settings", mode="slow")
    gateway.request(
        "PATCH",
        kube.resource(gateway, "v1", "ConfigMap").path(kube_namespace, "settings"),
        query={"fieldManager": "operator-by-hand", "force": "true"},
        body=theirs,
        content_type=kube.APPLY_PATCH,
    )
    with pytest.raises(kube.Conflict) as conflict:
        kube.apply(gateway, wanted)
    assert conflict.value.conflicts == [("operator-by-hand", ".data.mode")]
    assert "operator-by-hand" in conflict.value.message and conflict.value.retryable is False

    forced = kube.apply(gateway, wanted, force=True)
    assert forced["data"] == {"mode": "fast"}


def test_errors_carry_the_server_s_reason(
    local_cluster: LocalCluster, gateway: kube.Client, kube_namespace: str
) -> None:
    with pytest.raises(kube.NotFound) as missing:
        kube.get(gateway, "v1", "ConfigMap", "nowhere", kube_namespace)
    assert missing.value.reason == "NotFound" and '"nowhere" not found' in missing.value.message

    kube.create(gateway, config_map(kube_namespace, "once"))
    with pytest.raises(kube.AlreadyExists) as taken:
        kube.create(gateway, config_map(kube_namespace, "once"))
    assert taken.value.reason == "AlreadyExists"

    with pytest.raises(kube.Invalid) as invalid:
        kube.create(gateway, config_map(kube_namespace, "Not_A_Name"))
    assert "metadata.name" in invalid.value.fields and invalid.value.retryable is False

    with pytest.raises(kube.NotFound, match="serves no kind Sprocket"):
        kube.get(gateway, "example.com/v1", "Sprocket", "x")

    with pytest.raises(kube.KubeError) as refused:
        kube.server_version(kube.connect(_with_token(local_cluster.kubeconfig, "not-a-token"), trusted=True))
    assert isinstance(refused.value, kube.Unauthorized) and refused.value.retryable is False


def _with_token(kubeconfig: str, token: str) -> str:
    doc = kube.load_yaml(kubeconfig)
    doc["users"][0]["user"] = {"token": token}
    return str(yaml.safe_dump(doc))


def test_lists_come_in_raw_pages(gateway: kube.Client, kube_namespace: str) -> None:
    for i in range(25):
        kube.create(gateway, config_map(kube_namespace, f"cm-{i:02d}", n=str(i)))
    pages = kube.list_pages(gateway, ("v1", "ConfigMap"), namespace=kube_namespace, limit=10)
    sizes, names = [], []
    for page in pages:
        assert isinstance(page, dict) and page["kind"] == "ConfigMapList"
        sizes.append(len(page["items"]))
        names += [i["metadata"]["name"] for i in page["items"] if i["metadata"]["name"].startswith("cm-")]
    assert names == [f"cm-{i:02d}" for i in range(25)]
    assert len(sizes) >= 3 and max(sizes) <= 10  # the namespace's own root CA ConfigMap comes too
    assert pages.resource_version and pages.restarts == 0
    selected = list(
        kube.list_items(gateway, ("v1", "ConfigMap"), namespace=kube_namespace, label_selector="x=y")
    )
    assert selected == []


def test_a_watch_follows_changes_and_stops(gateway: kube.Client, kube_namespace: str) -> None:
    pages = kube.list_pages(gateway, ("v1", "ConfigMap"), namespace=kube_namespace)
    for _ in pages:
        pass
    kube.apply(gateway, config_map(kube_namespace, "watched", v="1"))
    kube.apply(gateway, config_map(kube_namespace, "watched", v="2"))
    kube.delete(gateway, "v1", "ConfigMap", "watched", kube_namespace)
    stop = threading.Event()
    seen = []
    for event in kube.watch(
        gateway,
        ("v1", "ConfigMap"),
        namespace=kube_namespace,
        resource_version=pages.resource_version,
        # Only ours: the namespace's kube-root-ca.crt may be written by the controller-manager
        # after the list above, and then it is (rightly) seen by the watch.
        field_selector="metadata.name=watched",
        stop=stop,
    ):
        seen.append((event.type, event.object["metadata"]["name"], event.object.get("data")))
        if len(seen) == 3:
            stop.set()  # the watch is silent from here on: only the stop event ends it
    assert seen == [
        ("ADDED", "watched", {"v": "1"}),
        ("MODIFIED", "watched", {"v": "2"}),
        ("DELETED", "watched", {"v": "2"}),
    ]


def test_a_watch_goes_on_after_the_server_ends_a_request(
    gateway: kube.Client, kube_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = kube.list_pages(gateway, ("v1", "ConfigMap"), namespace=kube_namespace)
    for _ in pages:
        pass
    client = gateway.with_retry(kube.RETRY)
    opened: list[dict[str, Any]] = []
    real = client.open_stream

    def counting(path: str, **kwargs: Any) -> Any:
        opened.append(kwargs["query"])
        if len(opened) == 2:  # the first request has ended: the change happens between the two
            kube.apply(gateway, config_map(kube_namespace, "between"))
        return real(path, **kwargs)

    monkeypatch.setattr(client, "open_stream", counting)
    events = kube.watch(
        client, ("v1", "ConfigMap"), namespace=kube_namespace, resource_version=pages.resource_version,
        field_selector="metadata.name=between",  # not the root CA ConfigMap the namespace may get late
        request_seconds=1, deadline=60,
    )  # fmt: skip
    first = next(events)
    events.close()
    assert (first.type, first.object["metadata"]["name"]) == ("ADDED", "between")
    assert len(opened) == 2 and opened[0]["timeoutSeconds"] == 1
    assert opened[1]["resourceVersion"] == pages.resource_version  # resumed where it was


def _running_pod(gateway: kube.Client, namespace: str) -> str:
    def running() -> str:
        for pod in kube.list_items(gateway, ("v1", "Pod"), namespace=namespace, label_selector="app=logger"):
            if (pod.get("status") or {}).get("phase") == "Running":
                return str(pod["metadata"]["name"])
        return ""

    return str(wait_for(running, what="a Running pod"))


def test_pod_logs_tail_follow_and_bounds(
    local_cluster: LocalCluster, gateway: kube.Client, kube_namespace: str
) -> None:
    labels = {"app": "logger"}
    kube.apply(
        gateway,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "logger", "namespace": kube_namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx"}]},
                },
            },
        },
    )
    pod = _running_pod(gateway, kube_namespace)
    local_cluster.runtime.append_log(local_cluster.name, "first line", "second line")
    wait_for(
        lambda: any("second line" in x for x in kube.logs(gateway, pod, kube_namespace, container="web")),
        what="the simulated log",
    )
    assert len(list(kube.logs(gateway, pod, kube_namespace, tail_lines=1))) == 1
    stamped = list(kube.logs(gateway, pod, kube_namespace, tail_lines=1, timestamps=True))
    assert stamped[0][:4].isdigit() and "T" in stamped[0].split(" ", 1)[0]

    stop = threading.Event()
    followed = kube.logs(gateway, pod, kube_namespace, follow=True, tail_lines=1, stop=stop)
    assert next(followed)  # the last line so far; then new ones as they are written
    local_cluster.runtime.append_log(local_cluster.name, "written while following")
    for line in followed:
        if "written while following" in line:
            stop.set()
    assert stop.is_set()  # the loop ended because the stop event cut the endless stream

    bounded = list(kube.logs(gateway, pod, kube_namespace, max_bytes=12))
    assert sum(len(x) for x in bounded) <= 12


def test_an_aggregated_api_that_does_not_answer_does_not_fail_discovery(gateway: kube.Client) -> None:
    service = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1.broken.flotilla.io"},
        "spec": {
            "group": "broken.flotilla.io",
            "version": "v1",
            "service": {"namespace": "default", "name": "nobody-serves-this", "port": 443},
            "insecureSkipTLSVerify": True,
            "groupPriorityMinimum": 100,
            "versionPriority": 10,
        },
    }
    kube.apply(gateway, service)
    try:
        found = kube.discovery(gateway, refresh=True)
        assert "broken.flotilla.io/v1" in found.aggregated
        assert "broken.flotilla.io/v1" in found.unavailable, found.unavailable
        assert not any(r.group == "broken.flotilla.io" for r in found.resources)
        assert found.find("apps/v1", "Deployment") is not None  # the rest is discovered all the same
    finally:
        kube.delete(
            gateway, "apiregistration.k8s.io/v1", "APIService", "v1.broken.flotilla.io", missing_ok=True
        )
