"""An app's objects as rendered, rollouts read from the controller's status, pods and workloads
as the API server reports them, and adoption of existing Deployments (pure functions)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from clusters.workloads.adopt import spec_from_workload, takeover_patch
from clusters.workloads.manifests import APP_ID_ANNOTATION, APP_LABEL, render_app
from clusters.workloads.pods import pod_info, selects, workload_info
from clusters.workloads.rollout import interpret, pod_problems, revision_pods
from clusters.workloads.spec import AppSpec, parse_app_spec
from orgs.exceptions import ValidationFailed

FULL = {
    "image": "registry.example.com:5000/team/web:1.4.2",
    "replicas": 3,
    "command": ["/bin/web"],
    "args": ["--listen", ":8080"],
    "env": [{"name": "MODE", "value": "prod"}, {"name": "EMPTY", "value": ""}],
    "secret_keys": ["TOKEN", "DB_PASSWORD"],
    "ports": [
        {"port": 8080, "protocol": "TCP", "name": "http"},
        {"port": 9090, "protocol": "UDP", "name": ""},
    ],
    "resources": {"cpu_request": "250m", "cpu_limit": "", "memory_request": "", "memory_limit": "512Mi"},
    "readiness": {
        "type": "http",
        "path": "/healthz",
        "port": 8080,
        "command": [],
        "initial_delay": 2,
        "period": 5,
        "timeout": 2,
        "failure_threshold": 4,
    },
    "liveness": {
        "type": "exec",
        "path": "",
        "port": 0,
        "command": ["cat", "/tmp/ok"],
        "initial_delay": 0,
        "period": 10,
        "timeout": 1,
        "failure_threshold": 3,
    },
    "labels": {"team": "payments", "tier": "front"},
    "annotations": {"prometheus.io/scrape": "true"},
    "volumes": [
        {"claim": "data", "mount_path": "/var/lib/web", "read_only": False, "sub_path": ""},
        {"claim": "shared", "mount_path": "/srv/shared", "read_only": True, "sub_path": "web"},
    ],
    "progress_deadline": 300,
    "restarted_at": "",
}
SECRETS = {"TOKEN": "s3cr3t-token", "DB_PASSWORD": "pa:ss/wörd"}


def spec_of(**changes: Any) -> AppSpec:
    return AppSpec.from_dict({**copy.deepcopy(FULL), **changes})


RENDER_ARGS: dict[str, Any] = {
    "app_id": 7,
    "name": "web",
    "namespace": "shop",
    "kind": "deployment",
    "selector": {APP_LABEL: "web"},
    "revision": 4,
    "secrets": SECRETS,
    "secrets_revision": 2,
}


def render(spec: AppSpec, **kwargs: Any) -> Any:
    return render_app(**{**RENDER_ARGS, "spec": spec, **kwargs})


# --- render_app -------------------------------------------------------------------------------


def test_the_deployment_is_fully_specified_with_labels_selector_and_annotations() -> None:
    d = render(spec_of()).workload
    assert (d["apiVersion"], d["kind"]) == ("apps/v1", "Deployment")
    assert d["metadata"]["name"] == "web" and d["metadata"]["namespace"] == "shop"
    assert d["metadata"]["labels"] == {
        "team": "payments",
        "tier": "front",
        "app.kubernetes.io/name": "web",
        "app.kubernetes.io/managed-by": "flotilla",
        APP_LABEL: "web",
    }
    assert d["metadata"]["annotations"] == {APP_ID_ANNOTATION: "7", "flotilla.dev/revision": "4"}
    assert d["spec"]["selector"] == {"matchLabels": {APP_LABEL: "web"}}
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["progressDeadlineSeconds"] == 300
    assert d["spec"]["revisionHistoryLimit"] == 10
    assert d["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    template = d["spec"]["template"]
    assert template["metadata"]["labels"] == d["metadata"]["labels"]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "flotilla.dev/secrets-revision": "2",
    }


def test_an_adopted_selector_is_kept_and_its_labels_reach_the_pods() -> None:
    d = render(spec_of(), selector={"app": "legacy"}).workload
    assert d["spec"]["selector"] == {"matchLabels": {"app": "legacy"}}
    pod_labels = d["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app"] == "legacy" and pod_labels[APP_LABEL] == "web"
    assert selects(d["spec"]["selector"]["matchLabels"], pod_labels)


def test_the_container_carries_image_command_env_and_secret_refs_never_values() -> None:
    objects = render(spec_of())
    (container,) = objects.workload["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "web"
    assert container["image"] == FULL["image"]
    assert container["command"] == ["/bin/web"] and container["args"] == ["--listen", ":8080"]
    assert container["env"] == [
        {"name": "MODE", "value": "prod"},
        {"name": "EMPTY", "value": ""},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "web-secrets", "key": "TOKEN"}}},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "web-secrets", "key": "DB_PASSWORD"}}},
    ]
    text = json.dumps(objects.workload, ensure_ascii=False)
    for value in SECRETS.values():
        assert value not in text
        assert base64.b64encode(value.encode()).decode() not in text
    if objects.service is not None:
        assert "s3cr3t" not in json.dumps(objects.service)


def test_the_secret_holds_base64_values_and_comes_first() -> None:
    objects = render(spec_of())
    secret = objects.secret
    assert secret is not None
    assert (secret["apiVersion"], secret["kind"], secret["type"]) == ("v1", "Secret", "Opaque")
    assert secret["metadata"]["name"] == "web-secrets" and secret["metadata"]["namespace"] == "shop"
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == SECRETS
    assert [o["kind"] for o in objects.all()] == ["Secret", "Deployment", "Service"]


def test_without_secrets_no_secret_and_no_secrets_revision() -> None:
    objects = render(spec_of(secret_keys=[]), secrets={})
    assert objects.secret is None
    annotations = objects.workload["spec"]["template"]["metadata"]["annotations"]
    assert "flotilla.dev/secrets-revision" not in annotations
    assert all(
        "valueFrom" not in e for e in objects.workload["spec"]["template"]["spec"]["containers"][0]["env"]
    )


def test_a_secret_key_without_a_value_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="DB_PASSWORD"):
        render(spec_of(), secrets={"TOKEN": "x"})


def test_a_changed_secrets_revision_changes_the_pod_template() -> None:
    one = render(spec_of(), secrets_revision=2).workload["spec"]["template"]
    two = render(spec_of(), secrets_revision=3, secrets={**SECRETS, "TOKEN": "other"}).workload["spec"][
        "template"
    ]
    assert one != two
    assert two["metadata"]["annotations"]["flotilla.dev/secrets-revision"] == "3"


def test_the_service_has_one_port_per_container_port_with_generated_names() -> None:
    service = render(spec_of()).service
    assert service is not None
    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    assert service["metadata"]["name"] == "web" and service["metadata"]["namespace"] == "shop"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {APP_LABEL: "web"}
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"},
        {"name": "p-9090-udp", "port": 9090, "targetPort": 9090, "protocol": "UDP"},
    ]
    container = render(spec_of()).workload["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [
        {"containerPort": 8080, "protocol": "TCP", "name": "http"},
        {"containerPort": 9090, "protocol": "UDP"},
    ]


def test_an_adopted_selector_is_the_service_selector_and_no_ports_no_service() -> None:
    service = render(spec_of(), selector={"app": "legacy"}).service
    assert service is not None and service["spec"]["selector"] == {"app": "legacy"}
    objects = render(spec_of(ports=[]))
    assert objects.service is None
    assert "ports" not in objects.workload["spec"]["template"]["spec"]["containers"][0]
    assert [o["kind"] for o in objects.all()] == ["Secret", "Deployment"]


def test_probes_carry_their_kind_and_timings() -> None:
    container = render(spec_of()).workload["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/healthz", "port": 8080},
        "initialDelaySeconds": 2,
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 4,
    }
    assert container["livenessProbe"] == {
        "exec": {"command": ["cat", "/tmp/ok"]},
        "initialDelaySeconds": 0,
        "periodSeconds": 10,
        "timeoutSeconds": 1,
        "failureThreshold": 3,
    }
    tcp = {**FULL["readiness"], "type": "tcp", "path": "", "port": 5432}  # type: ignore[dict-item]
    container = render(spec_of(readiness=tcp, liveness=None)).workload["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["readinessProbe"]["tcpSocket"] == {"port": 5432}
    assert "httpGet" not in container["readinessProbe"]
    assert "livenessProbe" not in container


def test_only_the_set_resources_are_sent() -> None:
    container = render(spec_of()).workload["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "250m"}, "limits": {"memory": "512Mi"}}
    empty = {"cpu_request": "", "cpu_limit": "", "memory_request": "", "memory_limit": ""}
    container = render(spec_of(resources=empty)).workload["spec"]["template"]["spec"]["containers"][0]
    assert "resources" not in container


def test_volumes_mount_existing_claims() -> None:
    pod = render(spec_of()).workload["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "vol-0", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "vol-1", "persistentVolumeClaim": {"claimName": "shared"}},
    ]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "vol-0", "mountPath": "/var/lib/web"},
        {"name": "vol-1", "mountPath": "/srv/shared", "readOnly": True, "subPath": "web"},
    ]
    pod = render(spec_of(volumes=[])).workload["spec"]["template"]["spec"]
    assert "volumes" not in pod and "volumeMounts" not in pod["containers"][0]


def test_a_restart_stamps_the_pod_template() -> None:
    before = render(spec_of()).workload["spec"]["template"]
    after = render(spec_of(restarted_at="2026-12-02T09:30:00+00:00")).workload["spec"]["template"]
    assert "flotilla.dev/restarted-at" not in before["metadata"]["annotations"]
    assert after["metadata"]["annotations"]["flotilla.dev/restarted-at"] == "2026-12-02T09:30:00+00:00"
    assert before["spec"] == after["spec"]


def test_a_minimal_spec_renders_a_minimal_container() -> None:
    objects = render(parse_app_spec({"image": "nginx:1.27"}), secrets={})
    assert objects.secret is None and objects.service is None
    (container,) = objects.workload["spec"]["template"]["spec"]["containers"]
    assert container == {"name": "web", "image": "nginx:1.27"}
    assert objects.workload["spec"]["replicas"] == 1


def test_kinds_other_than_deployment_are_refused() -> None:
    with pytest.raises(ValueError, match="statefulset"):
        render(spec_of(), kind="statefulset")
    with pytest.raises(ValueError, match="cronjob"):
        render(spec_of(), kind="cronjob")


# --- realistic API objects ----------------------------------------------------------------------


def deployment(
    *,
    replicas: int = 3,
    generation: int = 2,
    observed: int = 2,
    updated: int = 3,
    ready: int = 3,
    available: int = 3,
    total: int | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": observed, "replicas": updated if total is None else total}
    for key, value in (
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
    ):
        if value:  # the controller leaves zero counts out
            status[key] = value
    if replicas - available > 0:
        status["unavailableReplicas"] = replicas - available
    status["conditions"] = conditions or [
        {
            "type": "Available",
            "status": "True",
            "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability.",
            "lastUpdateTime": "2026-12-02T09:00:05Z",
            "lastTransitionTime": "2026-12-02T09:00:05Z",
        },
        {
            "type": "Progressing",
            "status": "True",
            "reason": "NewReplicaSetAvailable",
            "message": 'ReplicaSet "web-7d9f8c6b5" has successfully progressed.',
            "lastUpdateTime": "2026-12-02T09:00:05Z",
            "lastTransitionTime": "2026-12-02T08:59:50Z",
        },
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "generation": generation,
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "labels": {"app.kubernetes.io/managed-by": "flotilla", APP_LABEL: "web"},
            "annotations": {APP_ID_ANNOTATION: "7", "deployment.kubernetes.io/revision": "2"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {APP_LABEL: "web"}},
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {APP_LABEL: "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
        "status": status,
    }


PROGRESSING = {
    "type": "Progressing",
    "status": "True",
    "reason": "ReplicaSetUpdated",
    "message": 'ReplicaSet "web-7d9f8c6b5" is progressing.',
}
UNAVAILABLE = {
    "type": "Available",
    "status": "False",
    "reason": "MinimumReplicasUnavailable",
    "message": "Deployment does not have minimum availability.",
}
DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "web-7d9f8c6b5" has timed out progressing.',
}
QUOTA = {
    "type": "ReplicaFailure",
    "status": "True",
    "reason": "FailedCreate",
    "message": 'pods "web-7d9f8c6b5-x2v9q" is forbidden: exceeded quota: compute, requested: pods=1, '
    "used: pods=2, limited: pods=2",
}
UNSCHEDULABLE_MESSAGE = (
    "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod."
)


def pod(
    name: str,
    *,
    phase: str = "Running",
    containers: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    init: list[dict[str, Any]] | None = None,
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "creationTimestamp": "2026-12-02T09:00:00Z",
        "labels": {APP_LABEL: "web", "pod-template-hash": "7d9f8c6b5"},
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8c6b5", "controller": True}
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-12-02T09:10:00Z"
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if containers is not None:
        status["containerStatuses"] = containers
    if init is not None:
        status["initContainerStatuses"] = init
    if phase == "Running":
        status["podIP"] = "10.244.1.7"
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    spec: dict[str, Any] = {"containers": [{"name": "web", "image": "nginx:1.27"}]}
    if phase != "Pending" or containers:
        spec["nodeName"] = "pool-a-1"
    if init is not None:
        spec["initContainers"] = [{"name": f"init-{i}"} for i in range(len(init))]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def cs(
    *,
    ready: bool = True,
    restarts: int = 0,
    state: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    name: str = "web",
) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "image": "docker.io/library/nginx:1.27",
        "imageID": "docker.io/library/nginx@sha256:" + "a" * 64,
        "state": state or {"running": {"startedAt": "2026-12-02T09:00:02Z"}},
        "lastState": last or {},
        "started": "running" in (state or {"running": {}}),
    }


def unschedulable_pod(name: str) -> dict[str, Any]:
    return pod(
        name,
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": UNSCHEDULABLE_MESSAGE,
            }
        ],
    )


def crashing_pod(name: str, *, last_reason: str = "Error", exit_code: int = 1) -> dict[str, Any]:
    waiting = {
        "reason": "CrashLoopBackOff",
        "message": f"back-off 40s restarting failed container=web pod={name}_shop(0b6c2c1e)",
    }
    last = {"terminated": {"exitCode": exit_code, "reason": last_reason, "startedAt": "x", "finishedAt": "y"}}
    return pod(
        name,
        containers=[cs(ready=False, restarts=4, state={"waiting": waiting}, last=last)],
        conditions=[{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
    )


def not_ready_pod(name: str) -> dict[str, Any]:
    return pod(
        name,
        containers=[cs(ready=False)],
        conditions=[
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        ],
    )


# --- interpret ----------------------------------------------------------------------------------


def test_a_complete_rollout_is_available() -> None:
    rollout = interpret(deployment(), [pod("web-a", containers=[cs()])], generation=2)
    assert rollout.phase == "available"
    assert (rollout.desired, rollout.updated, rollout.ready, rollout.available) == (3, 3, 3, 3)
    assert rollout.message == "3 of 3 replicas available"


def test_a_stale_observed_generation_waits_for_the_controller() -> None:
    # The status still shows the previous generation fully available: it says nothing of ours.
    rollout = interpret(deployment(generation=3, observed=2), [], generation=3)
    assert rollout.phase == "progressing"
    assert rollout.message == "waiting for the controller"
    rollout = interpret(deployment(generation=3, observed=2, conditions=[DEADLINE]), [], generation=3)
    assert rollout.phase == "progressing"


def test_a_rollout_under_way_counts_replicas_and_names_pod_problems() -> None:
    dep = deployment(updated=2, ready=1, available=1, total=4, conditions=[UNAVAILABLE, PROGRESSING])
    rollout = interpret(dep, [pod("web-a", containers=[cs()]), not_ready_pod("web-b")], generation=2)
    assert rollout.phase == "progressing"
    assert rollout.message == "2 of 3 replicas updated, 1 available; pod web-b: readiness check failing"
    assert (rollout.updated, rollout.ready, rollout.available) == (2, 1, 1)


def test_old_pods_still_terminating_keep_it_progressing() -> None:
    dep = deployment(total=4, conditions=[PROGRESSING])
    rollout = interpret(dep, [], generation=2)
    assert rollout.phase == "progressing"
    assert rollout.message == "3 of 3 replicas updated, 3 available, 1 old pending termination"


def test_ready_but_not_yet_available_is_progressing() -> None:
    # minReadySeconds: ready pods are not available yet.
    rollout = interpret(deployment(available=2, conditions=[PROGRESSING]), [], generation=2)
    assert rollout.phase == "progressing"


def test_progress_deadline_exceeded_fails_naming_the_scheduling_reason() -> None:
    dep = deployment(updated=1, ready=0, available=0, total=1, replicas=1, conditions=[UNAVAILABLE, DEADLINE])
    rollout = interpret(dep, [unschedulable_pod("web-7d9f8c6b5-x2v9q")], generation=2)
    assert rollout.phase == "failed"
    assert rollout.message.startswith("ProgressDeadlineExceeded")
    assert "within 600 s" in rollout.message
    assert (
        "pod web-7d9f8c6b5-x2v9q: Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."
        in rollout.message
    )


def test_progress_deadline_exceeded_with_crash_looping_pods() -> None:
    dep = deployment(updated=3, ready=0, available=0, conditions=[UNAVAILABLE, DEADLINE])
    pods = [
        crashing_pod("web-a"),
        crashing_pod("web-b"),
        crashing_pod("web-c", last_reason="OOMKilled", exit_code=137),
    ]
    rollout = interpret(dep, pods, generation=2)
    assert rollout.phase == "failed"
    assert "2 pods: CrashLoopBackOff: last exit Error (exit code 1)" in rollout.message
    assert "pod web-c: CrashLoopBackOff: last exit OOMKilled (exit code 137)" in rollout.message
    assert "back-off" not in rollout.message  # the kubelet's text names one pod: not repeated


def test_a_quota_refusal_fails_with_the_api_server_s_message() -> None:
    dep = deployment(updated=2, ready=2, available=2, total=2, conditions=[UNAVAILABLE, PROGRESSING, QUOTA])
    rollout = interpret(dep, [pod("web-a", containers=[cs()]), pod("web-b", containers=[cs()])], generation=2)
    assert rollout.phase == "failed"
    assert rollout.message.startswith("FailedCreate: pods ")
    assert "exceeded quota: compute" in rollout.message
    assert rollout.available == 2


def test_scaled_to_zero_is_available_once_observed() -> None:
    dep = deployment(replicas=0, updated=0, ready=0, available=0, total=0)
    assert interpret(dep, [], generation=2) == interpret(dep, [], generation=2)
    rollout = interpret(dep, [], generation=2)
    assert (rollout.phase, rollout.message, rollout.desired) == ("available", "scaled to 0", 0)
    assert interpret(
        deployment(replicas=0, updated=0, ready=0, available=0, observed=1), [], generation=2
    ).phase == ("progressing")
    draining = deployment(replicas=0, updated=0, ready=2, available=2, total=2)
    assert interpret(draining, [], generation=2).message == "scaling to 0: 2 pods still running"


def test_a_status_not_written_yet_is_progressing() -> None:
    dep = deployment()
    dep["status"] = {}
    assert interpret(dep, [], generation=1).message == "waiting for the controller"


# --- pod_problems -------------------------------------------------------------------------------


def image_pull_pod(name: str, reason: str = "ImagePullBackOff") -> dict[str, Any]:
    waiting = {"reason": reason, "message": 'Back-off pulling image "nginx:does-not-exist"'}
    return pod(name, phase="Pending", containers=[cs(ready=False, state={"waiting": waiting})])


def test_pod_problems_are_deduplicated_counted_and_at_most_three() -> None:
    config_error = {"reason": "CreateContainerConfigError", "message": 'secret "web-secrets" not found'}
    pods = [
        unschedulable_pod("web-a"),
        image_pull_pod("web-b"),
        image_pull_pod("web-c"),
        image_pull_pod("web-d"),
        pod("web-e", phase="Pending", containers=[cs(ready=False, state={"waiting": config_error})]),
        crashing_pod("web-f"),
        pod("web-g", containers=[cs()]),
        pod("web-h", deleting=True, containers=[cs(ready=False)]),
    ]
    problems = pod_problems(pods)
    assert problems == [
        '3 pods: ImagePullBackOff: Back-off pulling image "nginx:does-not-exist"',
        f"pod web-a: Unschedulable: {UNSCHEDULABLE_MESSAGE}",
        'pod web-e: CreateContainerConfigError: secret "web-secrets" not found',
    ]


def test_pod_problems_of_each_kind() -> None:
    err_pull = {"reason": "ErrImagePull", "message": "rpc error: code = NotFound desc = failed to pull"}
    oom_running = cs(
        ready=False, restarts=2, last={"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    )  # restarted, not ready again yet
    creating = {"reason": "ContainerCreating"}
    evicted = pod("web-e", phase="Failed", reason="Evicted", message="The node was low on resource: memory.")
    assert pod_problems([image_pull_pod("a", "ErrImagePull")]) == [
        'pod a: ErrImagePull: Back-off pulling image "nginx:does-not-exist"'
    ]
    assert pod_problems(
        [pod("b", phase="Pending", containers=[cs(ready=False, state={"waiting": err_pull})])]
    ) == ["pod b: ErrImagePull: rpc error: code = NotFound desc = failed to pull"]
    assert pod_problems([pod("c", containers=[oom_running])]) == [
        "pod c: restarted 2 times, last exit OOMKilled (exit code 137)"
    ]
    assert (
        pod_problems([pod("d", phase="Pending", containers=[cs(ready=False, state={"waiting": creating})])])
        == []
    )
    assert pod_problems([evicted]) == ["pod web-e: Evicted: The node was low on resource: memory."]
    assert pod_problems([not_ready_pod("f")]) == ["pod f: readiness check failing"]
    assert pod_problems([pod("g", containers=[cs()])]) == []
    exited = cs(ready=False, state={"terminated": {"exitCode": 2, "reason": "Error"}})
    assert pod_problems([pod("h", containers=[exited])]) == ["pod h: container web Error (exit code 2)"]


# --- pod_info -----------------------------------------------------------------------------------


def test_pod_info_of_a_running_pod() -> None:
    info = pod_info(pod("web-a", containers=[cs(restarts=1)]))
    assert (info.name, info.namespace, info.phase, info.reason) == ("web-a", "shop", "Running", "Running")
    assert (info.ready, info.total, info.restarts) == (1, 1, 1)
    assert (info.node, info.ip, info.created_at) == ("pool-a-1", "10.244.1.7", "2026-12-02T09:00:00Z")
    assert (info.owner_kind, info.owner_name, info.deleting) == ("ReplicaSet", "web-7d9f8c6b5", False)
    (c,) = info.containers
    assert (c.name, c.ready, c.state, c.image) == ("web", True, "running", "docker.io/library/nginx:1.27")
    data = info.to_dict()
    assert json.loads(json.dumps(data)) == data and data["containers"][0]["state"] == "running"


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (unschedulable_pod("p"), "Pending"),
        (crashing_pod("p"), "CrashLoopBackOff"),
        (image_pull_pod("p"), "ImagePullBackOff"),
        (not_ready_pod("p"), "Running"),
        (pod("p", containers=[cs()], deleting=True), "Terminating"),
        (pod("p", phase="Failed", reason="Evicted", message="low on memory"), "Evicted"),
        (
            pod(
                "p",
                phase="Running",
                containers=[cs(ready=False, state={"terminated": {"exitCode": 137, "reason": "OOMKilled"}})],
            ),
            "OOMKilled",
        ),
        (
            pod("p", phase="Running", containers=[cs(ready=False, state={"terminated": {"exitCode": 2}})]),
            "ExitCode:2",
        ),
        (
            pod(
                "p",
                phase="Pending",
                containers=[cs(ready=False, state={"waiting": {"reason": "PodInitializing"}})],
                init=[
                    cs(
                        name="init-0",
                        ready=False,
                        state={"terminated": {"exitCode": 0, "reason": "Completed"}},
                    ),
                    cs(name="init-1", ready=False, state={"running": {}}),
                ],
            ),
            "Init:1/2",
        ),
        (
            pod(
                "p",
                phase="Pending",
                init=[cs(name="init-0", ready=False, state={"waiting": {"reason": "CrashLoopBackOff"}})],
            ),
            "Init:CrashLoopBackOff",
        ),
        (
            pod(
                "p",
                phase="Succeeded",
                containers=[cs(ready=False, state={"terminated": {"exitCode": 0, "reason": "Completed"}})],
            ),
            "Completed",
        ),
    ],
)
def test_pod_info_reason_is_kubectl_s_status(obj: dict[str, Any], reason: str) -> None:
    assert pod_info(obj).reason == reason


def test_pod_info_of_a_crash_looping_pod_keeps_its_last_state() -> None:
    info = pod_info(crashing_pod("web-a", last_reason="OOMKilled", exit_code=137))
    (c,) = info.containers
    assert (c.state, c.reason, c.last_state, c.last_reason, c.last_exit_code) == (
        "waiting",
        "CrashLoopBackOff",
        "terminated",
        "OOMKilled",
        137,
    )
    assert c.message.startswith("back-off 40s") and (info.ready, info.restarts) == (0, 4)
    pending = pod_info(unschedulable_pod("web-b"))
    assert (pending.node, pending.ip, pending.ready, pending.total, pending.containers) == ("", "", 0, 1, ())


# --- workload_info ------------------------------------------------------------------------------


def test_workload_info_of_a_deployment() -> None:
    info = workload_info(deployment(updated=2, ready=1, available=1))
    assert (info.kind, info.name, info.namespace) == ("Deployment", "web", "shop")
    assert (info.desired, info.updated, info.ready, info.available) == (3, 2, 1, 1)
    assert info.images == ("nginx:1.27",) and info.selector == {APP_LABEL: "web"}
    assert (info.app_id, info.managed, info.created_at) == (7, True, "2026-12-01T10:00:00Z")
    assert json.loads(json.dumps(info.to_dict())) == info.to_dict()


def test_workload_info_of_a_statefulset_and_a_daemonset() -> None:
    base = {"metadata": {"name": "db", "namespace": "data", "creationTimestamp": "2026-11-30T08:00:00Z"}}
    template = {
        "spec": {
            "containers": [{"name": "pg", "image": "postgres:17"}, {"name": "exp", "image": "exporter:2"}]
        }
    }
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        **base,
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "db"}}, "template": template},
        "status": {"replicas": 3, "readyReplicas": 2, "availableReplicas": 2, "updatedReplicas": 3},
    }
    info = workload_info(sts)
    assert (info.kind, info.desired, info.ready, info.available, info.updated) == ("StatefulSet", 3, 2, 2, 3)
    assert info.images == ("postgres:17", "exporter:2")
    assert (info.app_id, info.managed) == (None, False)
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {**base["metadata"], "annotations": {APP_ID_ANNOTATION: "not-a-number"}},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template},
        "status": {
            "currentNumberScheduled": 3,
            "desiredNumberScheduled": 3,
            "numberReady": 2,
            "numberAvailable": 1,
            "updatedNumberScheduled": 3,
            "numberMisscheduled": 0,
        },
    }
    info = workload_info(ds)
    assert (info.kind, info.desired, info.ready, info.available, info.updated) == ("DaemonSet", 3, 2, 1, 3)
    assert info.selector == {"app": "agent"} and info.app_id is None
    with pytest.raises(ValueError):
        workload_info({"kind": "ReplicaSet"})


def test_selects_matches_every_label_of_the_selector() -> None:
    assert selects({"app": "web"}, {"app": "web", "pod-template-hash": "x"})
    assert not selects({"app": "web", "tier": "front"}, {"app": "web"})
    assert not selects({"app": "web"}, {"app": "api"})
    assert not selects({}, {"app": "web"})


# --- spec_from_workload -------------------------------------------------------------------------


def kubectl_deployment() -> dict[str, Any]:
    """As `kubectl create deployment web --image=nginx:1.27 --port=80 --replicas=2` leaves it,
    then edited to add env, resources, a probe and a claim mount, read back from the API server."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "annotations": {"deployment.kubernetes.io/revision": "3"},
            "creationTimestamp": "2026-11-20T12:00:00Z",
            "generation": 3,
            "labels": {"app": "web"},
            "name": "web",
            "namespace": "default",
            "resourceVersion": "81234",
            "uid": "3f1d3c8e-9a3c-4b8e-8f55-2f9d0c4b7a11",
        },
        "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                "type": "RollingUpdate",
            },
            "template": {
                "metadata": {
                    "annotations": {
                        "kubectl.kubernetes.io/restartedAt": "2026-11-21T08:00:00Z",
                        "team": "web",
                    },
                    "creationTimestamp": None,
                    "labels": {"app": "web"},
                },
                "spec": {
                    "containers": [
                        {
                            "image": "nginx:1.27",
                            "imagePullPolicy": "IfNotPresent",
                            "name": "nginx",
                            "env": [{"name": "MODE", "value": "prod"}],
                            "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
                            "readinessProbe": {
                                "httpGet": {"path": "/", "port": "http", "scheme": "HTTP"},
                                "failureThreshold": 3,
                                "periodSeconds": 10,
                                "successThreshold": 1,
                                "timeoutSeconds": 1,
                            },
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "volumeMounts": [
                                {"mountPath": "/usr/share/nginx/html", "name": "html", "readOnly": True}
                            ],
                        }
                    ],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30,
                    "volumes": [{"name": "html", "persistentVolumeClaim": {"claimName": "web-html"}}],
                },
            },
        },
        "status": {"observedGeneration": 3, "replicas": 2, "readyReplicas": 2, "availableReplicas": 2},
    }


def test_a_kubectl_deployment_becomes_a_spec() -> None:
    adoptable = spec_from_workload(kubectl_deployment())
    spec = adoptable.spec.to_dict()
    assert adoptable.selector == {"app": "web"} and adoptable.secret_refs == ()
    assert spec["image"] == "nginx:1.27" and spec["replicas"] == 2
    assert spec["env"] == [{"name": "MODE", "value": "prod"}]
    assert [(p["port"], p["protocol"], p["name"]) for p in spec["ports"]] == [(80, "TCP", "http")]
    assert spec["resources"]["cpu_request"] == "100m" and spec["resources"]["memory_request"] == "64Mi"
    assert not spec["resources"]["cpu_limit"] and not spec["resources"]["memory_limit"]
    readiness = spec["readiness"]
    assert (readiness["type"], readiness["path"], readiness["port"]) == ("http", "/", 80)
    assert (readiness["period"], readiness["timeout"], readiness["failure_threshold"]) == (10, 1, 3)
    assert spec["liveness"] is None
    assert spec["labels"] == {"app": "web"}
    assert spec["annotations"] == {"team": "web"}
    assert [(v["claim"], v["mount_path"], v["read_only"]) for v in spec["volumes"]] == [
        ("web-html", "/usr/share/nginx/html", True)
    ]
    assert spec["progress_deadline"] == 600
    # Rendered again under the selector it keeps, it selects its own pods.
    objects = render_app(
        app_id=9,
        name="web",
        namespace="default",
        kind="deployment",
        spec=adoptable.spec,
        selector=adoptable.selector,
        revision=1,
        secrets={},
        secrets_revision=0,
    )
    assert objects.workload["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert objects.service is not None and objects.service["spec"]["selector"] == {"app": "web"}


def test_reserved_labels_and_annotations_are_left_out() -> None:
    obj = kubectl_deployment()
    obj["metadata"]["labels"].update({"app.kubernetes.io/managed-by": "helm", "flotilla.dev/app": "x"})
    obj["spec"]["template"]["metadata"]["annotations"]["flotilla.dev/revision"] = "3"
    spec = spec_from_workload(obj).spec.to_dict()
    assert spec["labels"] == {"app": "web"}
    assert spec["annotations"] == {"team": "web"}


def refusals(obj: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationFailed) as refused:
        spec_from_workload(obj)
    assert set(refused.value.fields) == {"workload"}
    return refused.value.fields["workload"]


def test_every_reason_a_workload_cannot_be_adopted_is_named() -> None:
    obj = kubectl_deployment()
    pod_spec = obj["spec"]["template"]["spec"]
    pod_spec["initContainers"] = [{"name": "migrate", "image": "web:1"}]
    container = pod_spec["containers"][0]
    container["env"] += [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    container["livenessProbe"] = {"grpc": {"port": 9000}, "periodSeconds": 10}
    pod_spec["volumes"].append({"name": "conf", "configMap": {"name": "web-conf"}})
    obj["spec"]["selector"]["matchExpressions"] = [{"key": "tier", "operator": "In", "values": ["front"]}]
    reasons = refusals(obj)
    text = " | ".join(reasons)
    assert "1 init container(s)" in text
    assert "env TOKEN reads key 'token' of Secret 'creds'" in text and "references to Secrets" in text
    assert "env NODE takes its value from fieldRef" in text
    assert "the liveness probe is a grpc check" in text
    assert "volume 'conf' is a configMap volume" in text
    assert "matchExpressions" in text
    assert len(reasons) == 6


def test_several_containers_are_refused() -> None:
    obj = kubectl_deployment()
    containers = obj["spec"]["template"]["spec"]["containers"]
    containers.append({"name": "sidecar", "image": "envoy:1.30"})
    assert refusals(obj) == ["it has 2 containers; an app has exactly one"]


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_other_workload_kinds_cannot_be_adopted_yet(kind: str) -> None:
    obj = kubectl_deployment()
    obj["kind"] = kind
    assert refusals(obj) == [f"a {kind} cannot be adopted yet: only Deployments can"]


def test_settings_a_render_would_lose_are_refused() -> None:
    obj = kubectl_deployment()
    pod_spec = obj["spec"]["template"]["spec"]
    pod_spec["nodeSelector"] = {"disk": "ssd"}
    pod_spec["terminationGracePeriodSeconds"] = 120
    pod_spec["containers"][0]["imagePullPolicy"] = "Always"
    pod_spec["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": "1"}
    obj["spec"]["strategy"] = {"type": "Recreate"}
    text = " | ".join(refusals(obj))
    assert "its pod sets nodeSelector" in text and "its pod sets terminationGracePeriodSeconds" in text
    assert "sets imagePullPolicy" in text and "nvidia.com/gpu" in text and "Recreate" in text


def test_a_spec_the_validator_refuses_is_refused_with_its_reasons() -> None:
    obj = kubectl_deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27 bad"
    obj["spec"]["progressDeadlineSeconds"] = 7200
    reasons = refusals(obj)
    assert any(reason.startswith("image: ") for reason in reasons)
    assert any(reason.startswith("progress_deadline: ") for reason in reasons)


def test_takeover_patch_replaces_the_container_and_volume_lists() -> None:
    adoptable = spec_from_workload(kubectl_deployment())
    objects = render_app(
        app_id=9,
        name="web",
        namespace="default",
        kind="deployment",
        spec=adoptable.spec,
        selector=adoptable.selector,
        revision=1,
        secrets={},
        secrets_revision=0,
    )
    patch = takeover_patch(objects.workload)
    pod_spec = patch["spec"]["template"]["spec"]
    assert [c["name"] for c in pod_spec["containers"]] == ["web"]
    assert pod_spec["volumes"] == [{"name": "vol-0", "persistentVolumeClaim": {"claimName": "web-html"}}]
    bare = render_app(**{**RENDER_ARGS, "spec": parse_app_spec({"image": "nginx:1.27"}), "secrets": {}})
    assert takeover_patch(bare.workload)["spec"]["template"]["spec"]["volumes"] is None  # null removes them


def test_revision_pods_are_those_of_the_current_replica_set() -> None:
    dep = deployment()
    dep["metadata"].update(uid="d-1")
    dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2"

    def rs(uid: str, revision: str, owner: str = "d-1") -> dict[str, Any]:
        return {
            "metadata": {
                "uid": uid,
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"kind": "Deployment", "uid": owner, "controller": True}],
            }
        }

    def owned_pod(name: str, owner: str) -> dict[str, Any]:
        p = pod(name, containers=[cs()])
        p["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "uid": owner, "controller": True}]
        return p

    pods = [owned_pod("old", "rs-1"), owned_pod("new", "rs-2"), owned_pod("stranger", "rs-9")]
    found = revision_pods(dep, [rs("rs-1", "1"), rs("rs-2", "2"), rs("rs-9", "2", owner="d-2")], pods)
    assert [p["metadata"]["name"] for p in found] == ["new"]
    assert revision_pods(deployment(), [rs("rs-2", "2")], pods) == []  # no uid: nothing is claimed
