"""An app's desired state, checked by Kubernetes' own rules before anything is sent to a cluster.

The rules are the ones the API server and the kubelet apply, restated here so that a bad value is
refused with a clear reason naming the field, instead of a half-applied rollout or a pod that never
starts: apimachinery's validation package (DNS-1123 labels and subdomains, DNS-1035 labels for
Service names, qualified names for label and annotation keys, IANA service names for ports,
environment variable names), the resource.Quantity grammar (cpu and memory), and the image
reference grammar that container runtimes parse (registry host and port, lowercase repository
path, tag, digest).

The single-value rules live in `rules.py`, health checks in `probes.py` and the history's change
lines in `changes.py`; the names of the apps contract are all importable from here. Every check
collects its reasons field by field and raises one `ValidationFailed` naming every bad field,
spelled as the API spells it (`env[2].name`, `resources.cpu_request`, `secrets.TOKEN`). Secret
variables appear here by name only: their values are checked by `validate_secrets` and never kept
in an `AppSpec`, a reason or a change line.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from clusters.workloads.changes import (
    mapping_changes,
    port_changes,
    set_changes,
    shown,
    volume_changes,
)
from clusters.workloads.probes import HealthCheck, health_check_from_input, parse_health_check
from clusters.workloads.rules import (
    DNS1123_SUBDOMAIN_RULE,
    IANA_SVC_NAME_RULE,
    LABEL_VALUE_RULE,
    MAX_STRING_BYTES,
    QUANTITY_RULE,
    Reasons,
    byte_length,
    env_name_problems,
    image_problems,
    is_dns1123_subdomain,
    is_label_value,
    is_reserved_key,
    parse_quantity,
    port_name_problems,
    qualified_key_problems,
    string_list,
    unknown_keys,
    validate_app_name,
    validate_namespace,
    whole_number,
)

# The contract's names, importable from here with the rest of the spec.
__all__ = [
    "MAX_REPLICAS",
    "REQUEST_KEYS",
    "AppSpec",
    "EnvVar",
    "FrozenMap",
    "HealthCheck",
    "Port",
    "Resources",
    "VolumeMount",
    "image_problems",
    "is_reserved_key",
    "parse_app_spec",
    "parse_health_check",
    "parse_quantity",
    "validate_app_name",
    "validate_namespace",
    "validate_secrets",
]

MAX_REPLICAS = 1000
MAX_ANNOTATIONS_BYTES = 256 * 1024  # apimachinery's TotalAnnotationSizeLimitB
MAX_SECRETS_BYTES = 512 * 1024  # half of a Secret's 1 MiB, leaving room for the object around it
MAX_SECRET_NAME_LENGTH = 253  # a Secret's data keys are at most 253 characters
PROGRESS_DEADLINE_RANGE = (10, 3600)
PROTOCOLS = ("TCP", "UDP", "SCTP")

# Keys of an API request that travel with a spec but are the caller's to handle, not the spec's.
REQUEST_KEYS = frozenset({"cluster", "name", "namespace", "kind", "secrets", "remove_secrets"})


# --- The spec ------------------------------------------------------------------------------------


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable mapping of strings, keys in sorted order (labels and annotations)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: dict[str, str] = dict(sorted(pairs))

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


@dataclass(frozen=True)
class EnvVar:
    """A plain environment variable (secret ones are kept apart, by name only)."""

    name: str
    value: str


@dataclass(frozen=True)
class Port:
    """A container port."""

    port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass(frozen=True)
class Resources:
    """CPU and memory requests and limits as Kubernetes quantities; "" leaves one unset."""

    cpu_request: str = ""
    cpu_limit: str = ""
    memory_request: str = ""
    memory_limit: str = ""

    def to_dict(self) -> dict[str, str]:
        """The four quantities by name."""
        return {
            "cpu_request": self.cpu_request,
            "cpu_limit": self.cpu_limit,
            "memory_request": self.memory_request,
            "memory_limit": self.memory_limit,
        }


@dataclass(frozen=True)
class VolumeMount:
    """A mount of an existing PersistentVolumeClaim, by claim name."""

    claim: str
    mount_path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass(frozen=True)
class AppSpec:
    """What an app should be: one container, its pods' shape, and how it rolls out."""

    image: str
    replicas: int = 1
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    secret_keys: tuple[str, ...] = ()  # names of the secret variables; their values never come here
    ports: tuple[Port, ...] = ()
    resources: Resources = Resources()
    readiness: HealthCheck | None = None
    liveness: HealthCheck | None = None
    labels: Mapping[str, str] = field(default=FrozenMap())
    annotations: Mapping[str, str] = field(default=FrozenMap())  # of the pod template
    volumes: tuple[VolumeMount, ...] = ()
    progress_deadline: int = 600  # Deployment.spec.progressDeadlineSeconds
    restarted_at: str = ""  # ISO 8601, set by a restart; not user input

    def __post_init__(self) -> None:
        # A plain dict would make the spec unhashable and mutable behind the frozen dataclass.
        if not isinstance(self.labels, FrozenMap):
            object.__setattr__(self, "labels", FrozenMap(self.labels))
        if not isinstance(self.annotations, FrozenMap):
            object.__setattr__(self, "annotations", FrozenMap(self.annotations))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe and stable: what the database stores and the API shows."""
        return {
            "image": self.image,
            "replicas": self.replicas,
            "command": list(self.command),
            "args": list(self.args),
            "env": [{"name": var.name, "value": var.value} for var in self.env],
            "secret_keys": list(self.secret_keys),
            "ports": [{"port": p.port, "protocol": p.protocol, "name": p.name} for p in self.ports],
            "resources": self.resources.to_dict(),
            "readiness": self.readiness.to_dict() if self.readiness else None,
            "liveness": self.liveness.to_dict() if self.liveness else None,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "volumes": [
                {
                    "claim": v.claim,
                    "mount_path": v.mount_path,
                    "read_only": v.read_only,
                    "sub_path": v.sub_path,
                }
                for v in self.volumes
            ],
            "progress_deadline": self.progress_deadline,
            "restarted_at": self.restarted_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AppSpec:
        """Inverse of to_dict, for trusted stored data (no validation; missing keys take defaults)."""
        readiness = data.get("readiness")
        liveness = data.get("liveness")
        resources = data.get("resources") or {}
        return cls(
            image=data["image"],
            replicas=data.get("replicas", 1),
            command=tuple(data.get("command", ())),
            args=tuple(data.get("args", ())),
            env=tuple(EnvVar(var["name"], var["value"]) for var in data.get("env", ())),
            secret_keys=tuple(data.get("secret_keys", ())),
            ports=tuple(
                Port(p["port"], p.get("protocol", "TCP"), p.get("name", "")) for p in data.get("ports", ())
            ),
            resources=Resources(**{key: resources.get(key, "") for key in _RESOURCE_KEYS}),
            readiness=HealthCheck.from_dict(readiness) if readiness else None,
            liveness=HealthCheck.from_dict(liveness) if liveness else None,
            labels=FrozenMap(data.get("labels") or {}),
            annotations=FrozenMap(data.get("annotations") or {}),
            volumes=tuple(
                VolumeMount(v["claim"], v["mount_path"], v.get("read_only", False), v.get("sub_path", ""))
                for v in data.get("volumes", ())
            ),
            progress_deadline=data.get("progress_deadline", 600),
            restarted_at=data.get("restarted_at", ""),
        )

    def changes_from(self, older: AppSpec) -> list[str]:
        """Human lines for a revision's history ("image: nginx:1.25 → nginx:1.27", "env FOO added").

        Plain env and annotation values are not repeated (they can be long, and people do put
        sensitive things in plain variables); secret variables are names only.
        """
        lines: list[str] = []
        if self.image != older.image:
            lines.append(f"image: {older.image} → {self.image}")
        if self.replicas != older.replicas:
            lines.append(f"replicas: {older.replicas} → {self.replicas}")
        for name in ("command", "args"):
            old_words, new_words = getattr(older, name), getattr(self, name)
            if old_words != new_words:
                lines.append(f"{name}: {shown(shlex.join(old_words))} → {shown(shlex.join(new_words))}")
        lines += mapping_changes(
            "env", {v.name: v.value for v in older.env}, {v.name: v.value for v in self.env}, values=False
        )
        old_names, new_names = [v.name for v in older.env], [v.name for v in self.env]
        kept = set(old_names) & set(new_names)
        # Order matters: a value may refer to an earlier variable as $(NAME).
        if [n for n in old_names if n in kept] != [n for n in new_names if n in kept]:
            lines.append("env reordered")
        lines += set_changes("secret", older.secret_keys, self.secret_keys)
        lines += port_changes(older.ports, self.ports)
        for key in _RESOURCE_KEYS:
            old_value, new_value = getattr(older.resources, key), getattr(self.resources, key)
            if old_value != new_value:
                lines.append(f"{key.replace('_', ' ')}: {shown(old_value)} → {shown(new_value)}")
        for name in ("readiness", "liveness"):
            old_check, new_check = getattr(older, name), getattr(self, name)
            if old_check != new_check:
                old_text = old_check.describe() if old_check else "(none)"
                new_text = new_check.describe() if new_check else "(none)"
                lines.append(f"{name}: {old_text} → {new_text}")
        lines += mapping_changes("label", dict(older.labels), dict(self.labels), values=True)
        lines += mapping_changes("annotation", dict(older.annotations), dict(self.annotations), values=False)
        lines += volume_changes(older.volumes, self.volumes)
        if self.progress_deadline != older.progress_deadline:
            lines.append(f"progress deadline: {older.progress_deadline}s → {self.progress_deadline}s")
        if self.restarted_at != older.restarted_at:
            lines.append(
                f"restarted at {self.restarted_at}" if self.restarted_at else "restart marker cleared"
            )
        return lines


_RESOURCE_KEYS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")
SPEC_KEYS = frozenset(
    {
        "image",
        "replicas",
        "command",
        "args",
        "env",
        "secret_keys",
        "ports",
        "resources",
        "readiness",
        "liveness",
        "labels",
        "annotations",
        "volumes",
        "progress_deadline",
        "restarted_at",
    }
)
_VOLUME_KEYS = ("claim", "mount_path", "read_only", "sub_path")


def validate_secrets(values: Mapping[str, Any], *, env_names: Iterable[str] = ()) -> dict[str, str]:
    """Secret variables by name: names as env names, values strings, at most 512 KiB in all.

    A reason never repeats a value.
    """
    errors = Reasons()
    if not isinstance(values, Mapping):
        errors.add("secrets", "must be a mapping of name to value")
        errors.raise_if_any()
    plain = set(env_names)
    checked: dict[str, str] = {}
    total = 0
    for key, value in values.items():
        field_name = f"secrets.{key}"
        problems = env_name_problems(key)
        if isinstance(key, str) and len(key) > MAX_SECRET_NAME_LENGTH:
            problems.append(f"must be at most {MAX_SECRET_NAME_LENGTH} characters")
        for problem in problems:
            errors.add(field_name, problem)
        if not isinstance(value, str):
            errors.add(field_name, "the value must be a string")
            continue
        if key in plain:
            errors.add(field_name, "is also the name of a plain variable")
        total += byte_length(str(key)) + byte_length(value)
        if not problems:
            checked[key] = value
    if total > MAX_SECRETS_BYTES:
        errors.add("secrets", "must be at most 512 KiB in all")
    errors.raise_if_any()
    return dict(sorted(checked.items()))


# --- Parts of a spec -------------------------------------------------------------------------------


def _image(value: Any, errors: Reasons) -> str:
    for problem in image_problems(value):
        errors.add("image", problem)
    return value if isinstance(value, str) else ""


def _env(value: Any, errors: Reasons) -> tuple[EnvVar, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items: list[Any] = [{"name": name, "value": text} for name, text in value.items()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        errors.add("env", "must be a list of {name, value} or a mapping of name to value")
        return ()
    env: list[EnvVar] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        prefix = f"env[{index}]"
        if not isinstance(item, Mapping):
            errors.add(prefix, "must be a mapping with a name and a value")
            continue
        unknown_keys(item, ("name", "value"), prefix, errors)
        name, text = item.get("name"), item.get("value", "")
        problems = env_name_problems(name)
        for problem in problems:
            errors.add(f"{prefix}.name", problem)
        if not problems and name in seen:
            errors.add(f"{prefix}.name", f"{name} is already env[{seen[name]}]")
            problems.append("duplicate")
        if not isinstance(text, str):
            errors.add(f"{prefix}.value", "must be a string")
        elif byte_length(text) > MAX_STRING_BYTES:
            errors.add(f"{prefix}.value", "must be at most 32 KiB")
        elif not problems:
            seen[str(name)] = index
            env.append(EnvVar(str(name), text))
    return tuple(env)


def _secret_keys(value: Any, errors: Reasons) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors.add("secret_keys", "must be a list of names")
        return ()
    keys = set()
    for key in value:
        problems = env_name_problems(key)
        for problem in problems:
            errors.add(f"secrets.{key}", problem)
        if not problems:
            keys.add(key)
    return tuple(sorted(keys))


def _ports(value: Any, errors: Reasons) -> tuple[Port, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors.add("ports", "must be a list of port numbers or {port, protocol, name}")
        return ()
    ports: list[Port] = []
    seen_ports: dict[tuple[int, str], int] = {}
    seen_names: dict[str, int] = {}
    for index, item in enumerate(value):
        prefix = f"ports[{index}]"
        before = len(errors.fields)
        if isinstance(item, Mapping):
            unknown_keys(item, ("port", "protocol", "name"), prefix, errors)
            number, protocol, name = item.get("port"), item.get("protocol") or "TCP", item.get("name") or ""
        else:
            number, protocol, name = item, "TCP", ""
        port = whole_number(number, f"{prefix}.port", 1, 65535, errors)
        if not isinstance(protocol, str) or protocol.upper() not in PROTOCOLS:
            errors.add(f"{prefix}.protocol", "must be TCP, UDP or SCTP")
            protocol = ""
        protocol = protocol.upper()
        if not isinstance(name, str):
            errors.add(f"{prefix}.name", "must be a string")
        elif name and port_name_problems(name):
            errors.add(f"{prefix}.name", IANA_SVC_NAME_RULE)
        elif name in seen_names:
            errors.add(f"{prefix}.name", f"{name} is already the name of ports[{seen_names[name]}]")
        if port is not None and protocol and (port, protocol) in seen_ports:
            errors.add(f"{prefix}.port", f"{port}/{protocol} is already ports[{seen_ports[port, protocol]}]")
        if len(errors.fields) > before or port is None:
            continue
        seen_ports[port, protocol] = index
        if name:
            seen_names[name] = index
        ports.append(Port(port, protocol, name))
    return tuple(ports)


def _resources(value: Any, base: Resources, errors: Reasons) -> Resources:
    """Requests and limits; with a base, only the quantities given change ("" or null unsets one)."""
    if value is None:
        return Resources()
    if not isinstance(value, Mapping):
        errors.add("resources", "must be a mapping of cpu_request, cpu_limit, memory_request, memory_limit")
        return base
    unknown_keys(value, _RESOURCE_KEYS, "resources", errors)
    texts = base.to_dict()
    for key in _RESOURCE_KEYS:
        if key not in value:
            continue
        given = value[key]
        if given is None:
            given = ""
        if isinstance(given, int | float) and not isinstance(given, bool):
            given = str(given)  # a JSON number is a quantity too: 2 cores, 0.5 cores
        if not isinstance(given, str):
            errors.add(f"resources.{key}", QUANTITY_RULE)
            continue
        texts[key] = given
    amounts: dict[str, Decimal] = {}
    for key in _RESOURCE_KEYS:
        if not texts[key]:
            continue
        try:
            amount = parse_quantity(texts[key])
        except ValueError as exc:
            errors.add(f"resources.{key}", str(exc))
            continue
        if amount <= 0:
            errors.add(f"resources.{key}", "must be more than 0")
        elif key.startswith("cpu") and amount < Decimal("0.001"):
            errors.add(f"resources.{key}", "must be at least 1m (cpu is counted in thousandths of a core)")
        else:
            amounts[key] = amount
    for what in ("cpu", "memory"):
        request, limit = amounts.get(f"{what}_request"), amounts.get(f"{what}_limit")
        if request is not None and limit is not None and request > limit:
            errors.add(
                f"resources.{what}_request", f"must not be more than {what}_limit ({texts[f'{what}_limit']})"
            )
    return Resources(**texts)


def _labels(value: Any, field_name: str, errors: Reasons) -> FrozenMap:
    if value is None:
        return FrozenMap()
    if not isinstance(value, Mapping):
        errors.add(field_name, "must be a mapping of key to value")
        return FrozenMap()
    labels = {}
    for key, text in value.items():
        problems = qualified_key_problems(key)
        if not isinstance(text, str):
            problems.append(f"the value of {key!r} must be a string")
        elif not is_label_value(text):
            problems.append(f"the value of {key!r} {LABEL_VALUE_RULE}")
        for problem in problems:
            errors.add(field_name, problem)
        if not problems:
            labels[key] = text
    return FrozenMap(labels)


def _annotations(value: Any, errors: Reasons) -> FrozenMap:
    if value is None:
        return FrozenMap()
    if not isinstance(value, Mapping):
        errors.add("annotations", "must be a mapping of key to value")
        return FrozenMap()
    annotations = {}
    total = 0
    for key, text in value.items():
        problems = qualified_key_problems(key)
        if not isinstance(text, str):
            problems.append(f"the value of {key!r} must be a string")
        for problem in problems:
            errors.add("annotations", problem)
        if not problems:
            annotations[key] = text
            total += byte_length(key) + byte_length(text)
    if total > MAX_ANNOTATIONS_BYTES:
        errors.add("annotations", "must be at most 256 KiB in all (keys and values)")
    return FrozenMap(annotations)


def _volumes(value: Any, errors: Reasons) -> tuple[VolumeMount, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors.add("volumes", "must be a list of {claim, mount_path, read_only, sub_path}")
        return ()
    mounts: list[VolumeMount] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(value):
        prefix = f"volumes[{index}]"
        if not isinstance(item, Mapping):
            errors.add(prefix, "must be a mapping with a claim and a mount_path")
            continue
        before = len(errors.fields)
        unknown_keys(item, _VOLUME_KEYS, prefix, errors)
        claim, mount_path = item.get("claim"), item.get("mount_path")
        read_only, sub_path = item.get("read_only", False), item.get("sub_path") or ""
        if not isinstance(claim, str) or not claim:
            errors.add(f"{prefix}.claim", "is required")
        elif not is_dns1123_subdomain(claim):
            errors.add(f"{prefix}.claim", DNS1123_SUBDOMAIN_RULE)
        normal = ""
        if not isinstance(mount_path, str) or not mount_path:
            errors.add(f"{prefix}.mount_path", "is required")
        elif not mount_path.startswith("/"):
            errors.add(f"{prefix}.mount_path", "must be an absolute path (starting with '/')")
        elif ":" in mount_path:
            errors.add(f"{prefix}.mount_path", "must not contain ':'")
        else:
            normal = posixpath.normpath(mount_path)
            if normal in seen:
                errors.add(f"{prefix}.mount_path", f"is already the mount path of volumes[{seen[normal]}]")
        if not isinstance(read_only, bool):
            errors.add(f"{prefix}.read_only", "must be true or false")
        if not isinstance(sub_path, str):
            errors.add(f"{prefix}.sub_path", "must be a string")
        elif sub_path.startswith("/"):
            errors.add(f"{prefix}.sub_path", "must be a relative path")
        elif ".." in sub_path.split("/"):
            errors.add(f"{prefix}.sub_path", "must not contain '..'")
        if len(errors.fields) > before:
            continue
        seen[normal] = index
        mounts.append(VolumeMount(str(claim), str(mount_path), bool(read_only), str(sub_path)))
    return tuple(mounts)


def _restarted_at(value: Any, errors: Reasons) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    errors.add("restarted_at", "must be an ISO 8601 date and time")
    return ""


# --- The whole spec ---------------------------------------------------------------------------------


def parse_app_spec(
    data: Mapping[str, Any], *, base: AppSpec | None = None, secret_keys: Iterable[str] | None = None
) -> AppSpec:
    """A checked AppSpec from API, form or CLI input shaped like `AppSpec.to_dict()`.

    With `base`, `data` is a partial update: only the keys given change, and null clears an
    optional one (a health check, a list, the labels); `resources` changes only the quantities it
    names. `secret_keys`, when given, are the app's secret variable names and win over any in
    `data` (input cannot invent them); a plain variable with one of those names is refused.
    Keys of the request that are not the spec's (`REQUEST_KEYS`) are left to the caller.
    Raises ValidationFailed naming every bad field at once.
    """
    errors = Reasons()
    if not isinstance(data, Mapping):
        errors.add("spec", "must be a mapping")
        errors.raise_if_any()
    current = base if base is not None else AppSpec(image="")
    given = data.keys()

    image = current.image
    if "image" in given:
        image = _image(data["image"], errors)
    elif base is None:
        errors.add("image", "is required")
    replicas = current.replicas
    if "replicas" in given:
        replicas = whole_number(data["replicas"], "replicas", 0, MAX_REPLICAS, errors) or 0
    progress_deadline = current.progress_deadline
    if "progress_deadline" in given:
        low, high = PROGRESS_DEADLINE_RANGE
        progress_deadline = (
            whole_number(data["progress_deadline"], "progress_deadline", low, high, errors) or low
        )
    command = string_list(data["command"], "command", errors) if "command" in given else current.command
    args = string_list(data["args"], "args", errors) if "args" in given else current.args
    env = _env(data["env"], errors) if "env" in given else current.env
    if secret_keys is not None:
        secrets = _secret_keys(list(secret_keys), errors)
    elif "secret_keys" in given:
        secrets = _secret_keys(data["secret_keys"], errors)
    else:
        secrets = current.secret_keys
    ports = _ports(data["ports"], errors) if "ports" in given else current.ports
    resources = current.resources
    if "resources" in given:
        resources = _resources(data["resources"], current.resources, errors)
    readiness = (
        health_check_from_input(data["readiness"], "readiness", errors)
        if "readiness" in given
        else current.readiness
    )
    liveness = (
        health_check_from_input(data["liveness"], "liveness", errors)
        if "liveness" in given
        else current.liveness
    )
    labels = _labels(data["labels"], "labels", errors) if "labels" in given else current.labels
    annotations = _annotations(data["annotations"], errors) if "annotations" in given else current.annotations
    volumes = _volumes(data["volumes"], errors) if "volumes" in given else current.volumes
    restarted_at = (
        _restarted_at(data["restarted_at"], errors) if "restarted_at" in given else current.restarted_at
    )

    unknown_keys(data, SPEC_KEYS | REQUEST_KEYS, "", errors)
    # A plain variable and a secret one of the same name: Kubernetes keeps whichever comes last.
    secret_names = set(secrets)
    for index, var in enumerate(env):
        if var.name in secret_names:
            errors.add(f"env[{index}].name", f"{var.name} is also the name of a secret variable")
    errors.raise_if_any()
    return AppSpec(
        image=image,
        replicas=replicas,
        command=command,
        args=args,
        env=env,
        secret_keys=secrets,
        ports=ports,
        resources=resources,
        readiness=readiness,
        liveness=liveness,
        labels=labels,
        annotations=annotations,
        volumes=volumes,
        progress_deadline=progress_deadline,
        restarted_at=restarted_at,
    )
