"""Turning a workload someone else created into an app Flotilla can manage, or saying why not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clusters.workloads.manifests import MANAGED_BY_LABEL, NAME_LABEL
from clusters.workloads.spec import AppSpec, parse_app_spec
from orgs.exceptions import ValidationFailed

FIELD = "workload"
RESERVED_PREFIX = "flotilla.dev/"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
# Labels Flotilla writes itself on every render: keeping the old values would only mislead.
DROPPED_LABELS = frozenset({MANAGED_BY_LABEL, NAME_LABEL})

# Settings the API server fills in by default. With these values they are what a render gives
# back (the server defaults them again); any other value would be lost by the first render.
POD_DEFAULTS: dict[str, Any] = {
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 30,
    "dnsPolicy": "ClusterFirst",
    "securityContext": {},
    "schedulerName": "default-scheduler",
}
CONTAINER_DEFAULTS: dict[str, Any] = {
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}
POD_MANAGED = frozenset({"containers", "volumes"})
CONTAINER_MANAGED = frozenset(
    {"name", "image", "imagePullPolicy", "command", "args", "env", "ports", "resources"}
    | {"readinessProbe", "livenessProbe", "volumeMounts"}
)
PROBE_DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}


@dataclass(frozen=True)
class Adoptable:
    """An existing workload read as an app: its spec, the selector it keeps, and the names of the
    Secrets it reads that Flotilla leaves to their owner (none while secret references are refused)."""

    spec: AppSpec
    selector: dict[str, str]
    secret_refs: tuple[str, ...]


def _default_pull_policy(image: str) -> str:
    # The API server's own rule: an untagged or :latest image is pulled every time.
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


class _Reader:
    """Collects every reason a workload cannot be adopted while reading what it can."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def refuse(self, reason: str) -> None:
        self.reasons.append(reason)

    def unmanaged(
        self, where: str, obj: Mapping[str, Any], managed: frozenset[str], defaults: Mapping[str, Any]
    ) -> None:
        for key in sorted(obj):
            if key in managed or (key in defaults and obj[key] == defaults[key]):
                continue
            self.refuse(f"{where} sets {key}, which Flotilla does not manage")

    def probe(
        self, which: str, probe: Mapping[str, Any] | None, ports: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        if not probe:
            return None
        where = f"the {which} probe"
        check: dict[str, Any]
        if "httpGet" in probe:
            get = probe["httpGet"]
            check = {
                "type": "http",
                "path": get.get("path", "/"),
                "port": self.port(where, get.get("port"), ports),
            }
            if get.get("scheme", "HTTP") != "HTTP":
                self.refuse(f"{where} uses {get['scheme']}; only plain HTTP checks are supported")
            for key in ("host", "httpHeaders"):
                if get.get(key):
                    self.refuse(f"{where} sets httpGet.{key}, which Flotilla does not manage")
        elif "tcpSocket" in probe:
            sock = probe["tcpSocket"]
            check = {"type": "tcp", "port": self.port(where, sock.get("port"), ports)}
            if sock.get("host"):
                self.refuse(f"{where} sets tcpSocket.host, which Flotilla does not manage")
        elif "exec" in probe:
            check = {"type": "exec", "command": list(probe["exec"].get("command") or [])}
        else:
            kinds = ", ".join(sorted(k for k in probe if k not in PROBE_DEFAULTS and k != "successThreshold"))
            self.refuse(
                f"{where} is a {kinds or 'unknown'} check; only http, tcp and exec checks are supported"
            )
            return None
        for key, name in (
            ("initialDelaySeconds", "initial_delay"),
            ("periodSeconds", "period"),
            ("timeoutSeconds", "timeout"),
            ("failureThreshold", "failure_threshold"),
        ):
            check[name] = probe.get(key, PROBE_DEFAULTS[key])
        if probe.get("successThreshold", 1) != 1:
            self.refuse(f"{where} sets successThreshold {probe['successThreshold']}; Flotilla uses 1")
        if probe.get("terminationGracePeriodSeconds") is not None:
            self.refuse(f"{where} sets terminationGracePeriodSeconds, which Flotilla does not manage")
        return check

    def port(self, where: str, port: Any, ports: list[dict[str, Any]]) -> int:
        if isinstance(port, str) and not port.isdigit():
            for p in ports:
                if p.get("name") == port:
                    return int(p["port"])
            self.refuse(f"{where} uses the port named {port!r}, which the container does not declare")
            return 0
        return int(port or 0)


def spec_from_workload(obj: Mapping[str, Any]) -> Adoptable:
    """Read an existing Deployment (JSON from the API server) as an app; ValidationFailed says every
    reason it cannot be managed (field "workload")."""
    kind = str(obj.get("kind", ""))
    if kind != "Deployment":
        if kind in ("StatefulSet", "DaemonSet"):
            reason = f"a {kind} cannot be adopted yet: only Deployments can"
        else:
            reason = f"a {kind or 'object without a kind'} is not a workload Flotilla can adopt"
        raise ValidationFailed(reason, fields={FIELD: [reason]})
    reader = _Reader()
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    selector = spec.get("selector") or {}
    if selector.get("matchExpressions"):
        reader.refuse("its selector uses matchExpressions; only matchLabels selectors can be managed")
    if spec.get("paused"):
        reader.refuse("it is paused; resume it before adopting it")
    strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
    if strategy != "RollingUpdate":
        reader.refuse(f"it uses the {strategy} strategy; Flotilla rolls pods with RollingUpdate")
    containers = pod.get("containers") or []
    if len(containers) != 1:
        reader.refuse(f"it has {len(containers)} containers; an app has exactly one")
    if pod.get("initContainers"):
        reader.refuse(f"it has {len(pod['initContainers'])} init container(s); an app has none")
    reader.unmanaged(
        "its pod", {k: v for k, v in pod.items() if k != "initContainers"}, POD_MANAGED, POD_DEFAULTS
    )

    claims: dict[str, tuple[str, bool]] = {}
    for volume in pod.get("volumes") or []:
        pvc = volume.get("persistentVolumeClaim")
        source = [k for k in volume if k != "name"]
        if pvc is None:
            reader.refuse(
                f"volume {volume.get('name')!r} is a {', '.join(source) or 'bare'} volume; "
                "only persistent volume claims can be mounted"
            )
        else:
            claims[str(volume.get("name"))] = (str(pvc.get("claimName", "")), bool(pvc.get("readOnly")))

    data: dict[str, Any] = {"image": ""}
    if containers:
        data = _container(reader, containers[0], claims)
    data["replicas"] = spec.get("replicas", 1)
    labels = {**((template.get("metadata") or {}).get("labels") or {}), **(meta.get("labels") or {})}
    data["labels"] = {
        k: v for k, v in labels.items() if not k.startswith(RESERVED_PREFIX) and k not in DROPPED_LABELS
    }
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    data["annotations"] = {
        k: v for k, v in annotations.items() if not k.startswith(RESERVED_PREFIX) and k != RESTARTED_AT
    }
    data["progress_deadline"] = spec.get("progressDeadlineSeconds", 600)
    if reader.reasons:
        raise ValidationFailed(
            "this workload cannot be adopted: " + "; ".join(reader.reasons), fields={FIELD: reader.reasons}
        )
    try:
        app_spec = parse_app_spec(data)
    except ValidationFailed as error:
        reasons = [f"{field}: {reason}" for field, why in error.fields.items() for reason in why]
        raise ValidationFailed(
            "this workload cannot be adopted: " + "; ".join(reasons), fields={FIELD: reasons}
        ) from error
    match = {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}
    return Adoptable(spec=app_spec, selector=match, secret_refs=())


def _container(
    reader: _Reader, c: Mapping[str, Any], claims: Mapping[str, tuple[str, bool]]
) -> dict[str, Any]:
    image = str(c.get("image", ""))
    where = f"container {c.get('name')!r}"
    defaults = {**CONTAINER_DEFAULTS, "imagePullPolicy": _default_pull_policy(image)}
    reader.unmanaged(where, c, CONTAINER_MANAGED - {"imagePullPolicy"}, defaults)
    env = []
    for var in c.get("env") or []:
        source = var.get("valueFrom")
        if source is None:
            env.append({"name": var.get("name"), "value": var.get("value", "")})
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            reader.refuse(
                f"env {var.get('name')} reads key {ref.get('key')!r} of Secret {ref.get('name')!r}; "
                "references to Secrets cannot be managed (Flotilla keeps an app's secrets itself: "
                "set the value as an app secret instead)"
            )
        else:
            kinds = ", ".join(sorted(source))
            reader.refuse(
                f"env {var.get('name')} takes its value from {kinds}; only plain values can be managed"
            )
    ports = []
    for p in c.get("ports") or []:
        ports.append(
            {"port": p.get("containerPort"), "protocol": p.get("protocol", "TCP"), "name": p.get("name", "")}
        )
        for key in ("hostPort", "hostIP"):
            if p.get(key):
                reader.refuse(f"port {p.get('containerPort')} sets {key}, which Flotilla does not manage")
    resources: dict[str, str] = {}
    for group, values in (c.get("resources") or {}).items():
        if group not in ("requests", "limits"):
            reader.refuse(f"{where} sets resources.{group}, which Flotilla does not manage")
            continue
        for name, quantity in (values or {}).items():
            if name in ("cpu", "memory"):
                resources[f"{name}_{group[:-1]}"] = str(quantity)
            else:
                reader.refuse(f"{where} {group} {name}; only cpu and memory are managed")
    volumes = []
    for mount in c.get("volumeMounts") or []:
        name = str(mount.get("name"))
        if name not in claims:
            continue  # the volume itself was refused above
        claim, claim_read_only = claims[name]
        for key in ("mountPropagation", "subPathExpr"):
            if mount.get(key):
                reader.refuse(
                    f"the mount at {mount.get('mountPath')} sets {key}, which Flotilla does not manage"
                )
        volumes.append(
            {
                "claim": claim,
                "mount_path": mount.get("mountPath", ""),
                "read_only": bool(mount.get("readOnly")) or claim_read_only,
                "sub_path": mount.get("subPath", ""),
            }
        )
    return {
        "image": image,
        "command": list(c.get("command") or []),
        "args": list(c.get("args") or []),
        "env": env,
        "ports": ports,
        "resources": resources,
        "readiness": reader.probe("readiness", c.get("readinessProbe"), ports),
        "liveness": reader.probe("liveness", c.get("livenessProbe"), ports),
        "volumes": volumes,
    }


def takeover_patch(rendered: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch to send once, before the first apply of an adopted Deployment.

    Server-side apply merges the container and volume lists by name and cannot remove entries
    another manager owns: the first apply would add the app's container beside the old one
    (`kubectl create deployment web --image=nginx` names it "nginx"). A merge patch replaces both
    lists whole, so the apply that follows (with force, to take over the other fields) leaves
    exactly the rendered pod."""
    pod = rendered["spec"]["template"]["spec"]
    return {"spec": {"template": {"spec": {"containers": pod["containers"], "volumes": pod.get("volumes")}}}}
