"""An app's Kubernetes objects, fully specified for server-side apply as `flotilla`."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clusters.workloads.spec import AppSpec, HealthCheck, Port

MANAGED_BY = "flotilla"
APP_LABEL = "flotilla.dev/app"
APP_ID_ANNOTATION = "flotilla.dev/app-id"
REVISION_ANNOTATION = "flotilla.dev/revision"
SECRETS_REVISION_ANNOTATION = "flotilla.dev/secrets-revision"
RESTARTED_AT_ANNOTATION = "flotilla.dev/restarted-at"
NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
REVISION_HISTORY_LIMIT = 10
KINDS = ("deployment", "statefulset")


@dataclass(frozen=True)
class AppObjects:
    """The objects one app is made of; `secret` and `service` are None when not needed."""

    workload: dict[str, Any]
    secret: dict[str, Any] | None
    service: dict[str, Any] | None

    def all(self) -> list[dict[str, Any]]:
        """Apply order: the Secret before the pods that read it, the Service last."""
        return [obj for obj in (self.secret, self.workload, self.service) if obj is not None]


def secret_name(name: str) -> str:
    """The Secret holding an app's secret variables."""
    return f"{name}-secrets"


def app_labels(name: str, spec: AppSpec) -> dict[str, str]:
    """The labels of every object of an app: the user's, then Flotilla's (which win)."""
    labels = dict(spec.labels)
    labels.update({NAME_LABEL: name, MANAGED_BY_LABEL: MANAGED_BY, APP_LABEL: name})
    return labels


def port_name(port: Port) -> str:
    """A port's name, generated when the user gave none (a Service with several ports needs them)."""
    return port.name or f"p-{port.port}-{port.protocol.lower()}"


def render_app(
    *,
    app_id: int,
    name: str,
    namespace: str,
    kind: str,
    spec: AppSpec,
    selector: Mapping[str, str],
    revision: int,
    secrets: Mapping[str, str],
    secrets_revision: int,
) -> AppObjects:
    """Render an app's workload, Secret and Service from its spec (secret values only in the Secret)."""
    if kind not in KINDS:
        raise ValueError(f"unknown app kind {kind!r}")
    if kind != "deployment":
        raise ValueError(f"rendering a {kind} is not supported yet")
    labels = app_labels(name, spec)
    metadata = {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": {APP_ID_ANNOTATION: str(app_id), REVISION_ANNOTATION: str(revision)},
    }
    pod_labels = {**labels, **selector}
    pod_annotations = dict(spec.annotations)
    if spec.secret_keys:
        pod_annotations[SECRETS_REVISION_ANNOTATION] = str(secrets_revision)
    if spec.restarted_at:
        pod_annotations[RESTARTED_AT_ANNOTATION] = spec.restarted_at
    template: dict[str, Any] = {
        "metadata": {"labels": pod_labels, "annotations": pod_annotations},
        "spec": _pod_spec(name, spec),
    }
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": template,
            "progressDeadlineSeconds": spec.progress_deadline,
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
        },
    }
    return AppObjects(
        workload=workload,
        secret=_secret(name, namespace, labels, app_id, spec, secrets),
        service=_service(name, namespace, labels, app_id, spec, selector),
    )


def _pod_spec(name: str, spec: AppSpec) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": spec.image}
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    env: list[dict[str, Any]] = [{"name": e.name, "value": e.value} for e in spec.env]
    env += [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name(name), "key": key}}}
        for key in spec.secret_keys
    ]
    if env:
        container["env"] = env
    if spec.ports:
        container["ports"] = [
            {"containerPort": p.port, "protocol": p.protocol, **({"name": p.name} if p.name else {})}
            for p in spec.ports
        ]
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    if spec.readiness is not None:
        container["readinessProbe"] = _probe(spec.readiness)
    if spec.liveness is not None:
        container["livenessProbe"] = _probe(spec.liveness)
    pod: dict[str, Any] = {"containers": [container]}
    if spec.volumes:
        container["volumeMounts"] = [
            {
                "name": f"vol-{i}",
                "mountPath": v.mount_path,
                **({"readOnly": True} if v.read_only else {}),
                **({"subPath": v.sub_path} if v.sub_path else {}),
            }
            for i, v in enumerate(spec.volumes)
        ]
        pod["volumes"] = [
            {"name": f"vol-{i}", "persistentVolumeClaim": {"claimName": v.claim}}
            for i, v in enumerate(spec.volumes)
        ]
    return pod


def _resources(spec: AppSpec) -> dict[str, dict[str, str]]:
    # Only the set ones: an empty limit sent as "" would be refused, and an unset one must stay
    # unset so the namespace's LimitRange defaults still apply.
    r = spec.resources
    out: dict[str, dict[str, str]] = {}
    for group, key, value in (
        ("requests", "cpu", r.cpu_request),
        ("requests", "memory", r.memory_request),
        ("limits", "cpu", r.cpu_limit),
        ("limits", "memory", r.memory_limit),
    ):
        if value:
            out.setdefault(group, {})[key] = value
    return out


def _probe(check: HealthCheck) -> dict[str, Any]:
    probe: dict[str, Any]
    if check.type == "http":
        probe = {"httpGet": {"path": check.path, "port": check.port}}
    elif check.type == "tcp":
        probe = {"tcpSocket": {"port": check.port}}
    elif check.type == "exec":
        probe = {"exec": {"command": list(check.command)}}
    else:
        raise ValueError(f"unknown health check type {check.type!r}")
    probe.update(
        initialDelaySeconds=check.initial_delay,
        periodSeconds=check.period,
        timeoutSeconds=check.timeout,
        failureThreshold=check.failure_threshold,
    )
    return probe


def _owned_metadata(name: str, namespace: str, labels: dict[str, str], app_id: int) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels),
        "annotations": {APP_ID_ANNOTATION: str(app_id)},
    }


def _secret(
    name: str,
    namespace: str,
    labels: dict[str, str],
    app_id: int,
    spec: AppSpec,
    secrets: Mapping[str, str],
) -> dict[str, Any] | None:
    if not spec.secret_keys:
        return None
    missing = [key for key in spec.secret_keys if key not in secrets]
    if missing:
        # A Deployment pointing at an absent key would sit in CreateContainerConfigError.
        raise ValueError(f"no value for secret variable(s) {', '.join(missing)}")
    data = {key: base64.b64encode(secrets[key].encode()).decode("ascii") for key in spec.secret_keys}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _owned_metadata(secret_name(name), namespace, labels, app_id),
        "type": "Opaque",
        "data": data,
    }


def _service(
    name: str,
    namespace: str,
    labels: dict[str, str],
    app_id: int,
    spec: AppSpec,
    selector: Mapping[str, str],
) -> dict[str, Any] | None:
    if not spec.ports:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _owned_metadata(name, namespace, labels, app_id),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [
                {"name": port_name(p), "port": p.port, "targetPort": p.port, "protocol": p.protocol}
                for p in spec.ports
            ],
        },
    }
