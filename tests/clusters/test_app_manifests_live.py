"""Rendered apps against a real kube-apiserver (a local kwok control plane) through the gateway:
the objects are accepted, rollouts are read from the controllers' real status, an unschedulable
app fails past its progress deadline with the scheduler's reason, and a Deployment made with the
Kubernetes client is adopted and rendered back over itself."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from clusters import kube
from clusters.workloads.adopt import spec_from_workload, takeover_patch
from clusters.workloads.manifests import APP_LABEL, render_app
from clusters.workloads.rollout import Rollout, interpret, revision_pods
from clusters.workloads.spec import AppSpec, parse_app_spec
from tests.local_kube import LocalCluster, wait_for

pytestmark = pytest.mark.kube


@pytest.fixture
def gateway(local_cluster: LocalCluster) -> kube.Client:
    return kube.connect(local_cluster.kubeconfig, trusted=True)


def rendered(name: str, namespace: str, spec: AppSpec, **kwargs: Any) -> Any:
    args: dict[str, Any] = {
        "app_id": 41,
        "name": name,
        "namespace": namespace,
        "kind": "deployment",
        "spec": spec,
        "selector": {APP_LABEL: name},
        "revision": 1,
        "secrets": {},
        "secrets_revision": 0,
    }
    return render_app(**{**args, **kwargs})


def rollout_of(client: kube.Client, namespace: str, name: str, generation: int) -> Rollout:
    workload = kube.get(client, "apps/v1", "Deployment", name, namespace)
    selector = ",".join(f"{k}={v}" for k, v in workload["spec"]["selector"]["matchLabels"].items())
    replica_sets = list(
        kube.list_items(client, ("apps/v1", "ReplicaSet"), namespace=namespace, label_selector=selector)
    )
    pods = list(kube.list_items(client, ("v1", "Pod"), namespace=namespace, label_selector=selector))
    return interpret(workload, revision_pods(workload, replica_sets, pods), generation=generation)


def apply_all(client: kube.Client, objects: Any, *, force: bool = False) -> int:
    generation = 0
    for obj in objects.all():
        applied = kube.apply(client, obj, force=force)
        if applied["kind"] == "Deployment":
            generation = int(applied["metadata"]["generation"])
    return generation


def test_a_rendered_app_is_accepted_and_becomes_available(gateway: kube.Client, kube_namespace: str) -> None:
    spec = parse_app_spec(
        {
            "image": "nginx:1.27",
            "replicas": 2,
            "args": ["nginx", "-g", "daemon off;"],
            "env": [{"name": "MODE", "value": "prod"}],
            "secret_keys": ["TOKEN"],
            "ports": [
                {"port": 80, "protocol": "TCP", "name": "http"},
                {"port": 9090, "protocol": "UDP", "name": ""},
            ],
            "resources": {"cpu_request": "100m", "memory_limit": "128Mi"},
            "readiness": {"type": "http", "path": "/", "port": 80, "period": 5},
            "liveness": {"type": "tcp", "port": 80, "initial_delay": 3},
            "annotations": {"example.com/owner": "team-a"},
        }
    )
    objects = rendered("web", kube_namespace, spec, secrets={"TOKEN": "t0ken"}, secrets_revision=1)
    generation = apply_all(gateway, objects)

    secret = kube.get(gateway, "v1", "Secret", "web-secrets", kube_namespace)
    assert base64.b64decode(secret["data"]["TOKEN"]).decode() == "t0ken" and secret["type"] == "Opaque"
    service = kube.get(gateway, "v1", "Service", "web", kube_namespace)
    assert [(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [
        ("http", 80, "TCP"),
        ("p-9090-udp", 9090, "UDP"),
    ]
    assert service["spec"]["selector"] == {APP_LABEL: "web"}

    def available() -> Rollout | None:
        rollout = rollout_of(gateway, kube_namespace, "web", generation)
        return rollout if rollout.phase == "available" else None

    rollout = wait_for(available, timeout=90, what="the Deployment to become available")
    assert (rollout.desired, rollout.updated, rollout.ready, rollout.available) == (2, 2, 2, 2)

    # A second apply of the same objects changes nothing: no new generation, still available.
    assert apply_all(gateway, objects) == generation
    assert rollout_of(gateway, kube_namespace, "web", generation).phase == "available"


def test_volumes_and_exec_probes_are_accepted(gateway: kube.Client, kube_namespace: str) -> None:
    spec = parse_app_spec(
        {
            "image": "busybox:1.36",
            "command": ["sh", "-c", "touch /tmp/ok && sleep 3600"],
            "readiness": {"type": "exec", "command": ["cat", "/tmp/ok"]},
            "volumes": [
                {"claim": "data", "mount_path": "/data", "read_only": False, "sub_path": ""},
                {"claim": "shared", "mount_path": "/shared", "read_only": True, "sub_path": "app"},
            ],
            "restarted_at": "2026-12-02T09:30:00+00:00",
        }
    )
    for obj in rendered("worker", kube_namespace, spec).all():
        accepted = kube.apply(gateway, obj, dry_run=True)
        assert accepted["kind"] == obj["kind"]
    pod = accepted["spec"]["template"]["spec"]
    assert [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]] == ["data", "shared"]
    assert pod["containers"][0]["readinessProbe"]["exec"]["command"] == ["cat", "/tmp/ok"]


def test_an_unschedulable_app_fails_past_its_deadline_with_the_scheduler_s_reason(
    gateway: kube.Client, kube_namespace: str
) -> None:
    spec = parse_app_spec(
        {"image": "nginx:1.27", "replicas": 1, "resources": {"cpu_request": "500"}, "progress_deadline": 10}
    )
    generation = apply_all(gateway, rendered("huge", kube_namespace, spec))

    def failed() -> Rollout | None:
        rollout = rollout_of(gateway, kube_namespace, "huge", generation)
        return rollout if rollout.phase == "failed" else None

    rollout = wait_for(failed, timeout=90, what="the rollout to pass its progress deadline")
    assert rollout.message.startswith("ProgressDeadlineExceeded")
    assert "within 10 s" in rollout.message and "; pod huge-" in rollout.message
    assert (
        "Unschedulable: 0/3 nodes are available" in rollout.message and "Insufficient cpu" in rollout.message
    )
    assert rollout.available == 0


def kubectl_like_deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "env": [{"name": "MODE", "value": "legacy"}],
                            "ports": [{"containerPort": 80}],
                            "resources": {"requests": {"cpu": "50m"}},
                        }
                    ]
                },
            },
        },
    }


def test_a_deployment_made_elsewhere_is_adopted_and_rendered_back_over_itself(
    gateway: kube.Client, local_cluster: LocalCluster, kube_namespace: str
) -> None:
    local_cluster.apps().create_namespaced_deployment(kube_namespace, kubectl_like_deployment("legacy"))
    existing = kube.get(gateway, "apps/v1", "Deployment", "legacy", kube_namespace)
    adoptable = spec_from_workload(existing)
    assert adoptable.selector == {"app": "legacy"}
    assert adoptable.spec.image == "nginx:1.27" and adoptable.spec.replicas == 2
    objects = rendered("legacy", kube_namespace, adoptable.spec, selector=adoptable.selector)

    # Applied as is, server-side apply would keep the old "nginx" container beside the app's.
    merged = kube.apply(gateway, objects.workload, force=True, dry_run=True)
    assert sorted(c["name"] for c in merged["spec"]["template"]["spec"]["containers"]) == ["legacy", "nginx"]

    kube.patch(
        gateway, "apps/v1", "Deployment", "legacy", takeover_patch(objects.workload), namespace=kube_namespace
    )
    generation = apply_all(gateway, objects, force=True)
    now = kube.get(gateway, "apps/v1", "Deployment", "legacy", kube_namespace)
    (container,) = now["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "legacy" and container["env"] == [{"name": "MODE", "value": "legacy"}]
    assert now["spec"]["selector"] == {"matchLabels": {"app": "legacy"}}
    assert now["metadata"]["labels"][APP_LABEL] == "legacy"
    assert now["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "flotilla"
    # Read back, it is the same app: adoption is stable.
    assert spec_from_workload(now).spec == adoptable.spec

    def available() -> Rollout | None:
        rollout = rollout_of(gateway, kube_namespace, "legacy", generation)
        return rollout if rollout.phase == "available" else None

    rollout = wait_for(available, timeout=90, what="the adopted Deployment to become available")
    assert rollout.available == 2
