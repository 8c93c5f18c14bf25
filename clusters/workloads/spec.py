"""An app's desired state, checked by Kubernetes' own rules before anything is sent to a cluster.

The rules are the ones the API server and the kubelet apply, restated here so that a bad value is
refused with a clear reason naming the field, instead of a half-applied rollout or a pod that never
starts: apimachinery's validation package (DNS-1123 labels and subdomains, DNS-1035 labels for
Service names, qualified names for label and annotation keys, IANA service names for ports,
environment variable names), the resource.Quantity grammar (cpu and memory), and the image
reference grammar that container runtimes parse (registry host and port, lowercase repository
path, tag, digest).

Every check collects its reasons field by field and raises one `ValidationFailed` naming every bad
field, spelled as the API spells it (`env[2].name`, `resources.cpu_request`, `secrets.TOKEN`).
Secret variables appear here by name only: their values are checked by `validate_secrets` and
never kept in an `AppSpec`, a reason or a change line.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from orgs.exceptions import ValidationFailed

# --- The rules, as reasons say them -------------------------------------------------------------

DNS1123_LABEL_RULE = (
    "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter "
    "or digit, at most 63 characters"
)
DNS1035_LABEL_RULE = (
    "must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter and ending "
    "with a letter or digit, at most 63 characters (it names the app's Service too)"
)
DNS1123_SUBDOMAIN_RULE = (
    "must be a DNS-1123 subdomain: '.'-separated parts of lowercase letters, digits and '-', each "
    "starting and ending with a letter or digit, at most 253 characters"
)
ENV_NAME_RULE = (
    "must be an environment variable name: letters, digits, '_', '-' or '.', not starting with a digit"
)
IANA_SVC_NAME_RULE = (
    "must be an IANA service name: at most 15 lowercase letters, digits and '-', with at least one "
    "letter, starting and ending with a letter or digit, without '--'"
)
QUALIFIED_NAME_RULE = (
    "must be a qualified name: an optional DNS-1123 subdomain prefix and '/', then at most 63 "
    "letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
)
LABEL_VALUE_RULE = (
    "must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, "
    "or empty"
)
QUANTITY_RULE = (
    "must be a Kubernetes quantity: a number with an optional suffix (m for thousandths; Ki, Mi, Gi, "
    "Ti, Pi, Ei; k, M, G, T, P, E; or an exponent such as 1e3)"
)
IMAGE_PATH_RULE = (
    "the repository path must be lowercase letters and digits in '/'-separated parts, joined inside "
    "a part by '.', '_', '__' or dashes"
)
IMAGE_TAG_RULE = "the tag must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
IMAGE_DIGEST_RULE = "the digest must be sha256: and 64 lowercase hexadecimal digits (or sha512: and 128)"
HEALTH_CHECK_TEXT_RULE = "must be http:<path>:<port>, tcp:<port> or exec:<command>"

# --- Limits (Kubernetes' where it has one) ---------------------------------------------------------

MAX_REPLICAS = 1000
MAX_IMAGE_LENGTH = 2048
MAX_IMAGE_NAME_LENGTH = 255  # the reference grammar's limit on registry + repository
MAX_STRING_BYTES = 32 * 1024  # one env value, command or argument
MAX_ANNOTATIONS_BYTES = 256 * 1024  # apimachinery's TotalAnnotationSizeLimitB
MAX_SECRETS_BYTES = 512 * 1024  # half of a Secret's 1 MiB, leaving room for the object around it
MAX_SECRET_NAME_LENGTH = 253  # a Secret's data keys are at most 253 characters
PROGRESS_DEADLINE_RANGE = (10, 3600)
PROTOCOLS = ("TCP", "UDP", "SCTP")
HEALTH_CHECK_TYPES = ("http", "tcp", "exec")

# Keys Flotilla writes itself: a user label or annotation under them would hijack its bookkeeping.
RESERVED_KEY_PREFIXES = ("flotilla.dev/",)
RESERVED_KEYS = ("app.kubernetes.io/managed-by",)

# Keys of an API request that travel with a spec but are the caller's to handle, not the spec's.
REQUEST_KEYS = frozenset({"cluster", "name", "namespace", "kind", "secrets", "remove_secrets"})

# \Z, not $: "$" also matches before a trailing newline.
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_RE = re.compile(rf"{_DNS1123_LABEL}\Z")
_DNS1035_LABEL_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z")
_DNS1123_SUBDOMAIN_RE = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*\Z")
_QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
_ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
_IANA_SVC_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])*\Z")
_WHOLE_RE = re.compile(r"[+-]?[0-9]+\Z")
_QUANTITY_RE = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE])?\Z"
)
_DECIMAL_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_MAX_QUANTITY = Decimal(2**63 - 1)  # Kubernetes keeps quantities in 64-bit integers
_MAX_EXPONENT = 30
_DOMAIN_COMPONENT = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY_RE = re.compile(
    rf"(?P<host>{_DOMAIN_COMPONENT}(\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])(:(?P<port>[0-9]+))?\Z"
)
_PATH_COMPONENT = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
_IMAGE_PATH_RE = re.compile(rf"{_PATH_COMPONENT}(/{_PATH_COMPONENT})*\Z")
_IMAGE_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_IMAGE_DIGEST_RE = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")


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
class HealthCheck:
    """A readiness or liveness probe: an HTTP GET, a TCP connect or a command."""

    type: str
    path: str = ""
    port: int = 0
    command: tuple[str, ...] = ()
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    failure_threshold: int = 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "type": self.type,
            "path": self.path,
            "port": self.port,
            "command": list(self.command),
            "initial_delay": self.initial_delay,
            "period": self.period,
            "timeout": self.timeout,
            "failure_threshold": self.failure_threshold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthCheck:
        """Inverse of to_dict (trusted stored data)."""
        return cls(
            type=data["type"],
            path=data.get("path", ""),
            port=data.get("port", 0),
            command=tuple(data.get("command", ())),
            initial_delay=data.get("initial_delay", 0),
            period=data.get("period", 10),
            timeout=data.get("timeout", 1),
            failure_threshold=data.get("failure_threshold", 3),
        )

    def to_text(self) -> str:
        """The CLI/portal text form ("http:/healthz:8080", "tcp:5432", "exec:cat /tmp/ok")."""
        if self.type == "http":
            return f"http:{self.path}:{self.port}"
        if self.type == "tcp":
            return f"tcp:{self.port}"
        return f"exec:{shlex.join(self.command)}"

    def describe(self) -> str:
        """The text form, with its timings when they are not the defaults."""
        timings = (self.initial_delay, self.period, self.timeout, self.failure_threshold)
        if timings == (0, 10, 1, 3):
            return self.to_text()
        return (
            f"{self.to_text()} (after {self.initial_delay}s, every {self.period}s, "
            f"timeout {self.timeout}s, {self.failure_threshold} failures)"
        )


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
                lines.append(f"{name}: {_shown(shlex.join(old_words))} → {_shown(shlex.join(new_words))}")
        lines += _mapping_changes(
            "env", {v.name: v.value for v in older.env}, {v.name: v.value for v in self.env}, values=False
        )
        old_names, new_names = [v.name for v in older.env], [v.name for v in self.env]
        kept = set(old_names) & set(new_names)
        # Order matters: a value may refer to an earlier variable as $(NAME).
        if [n for n in old_names if n in kept] != [n for n in new_names if n in kept]:
            lines.append("env reordered")
        lines += _set_changes("secret", older.secret_keys, self.secret_keys)
        lines += _port_changes(older.ports, self.ports)
        for key in _RESOURCE_KEYS:
            old_value, new_value = getattr(older.resources, key), getattr(self.resources, key)
            if old_value != new_value:
                lines.append(f"{key.replace('_', ' ')}: {_shown(old_value)} → {_shown(new_value)}")
        for name in ("readiness", "liveness"):
            old_check, new_check = getattr(older, name), getattr(self, name)
            if old_check != new_check:
                old_text = old_check.describe() if old_check else "(none)"
                new_text = new_check.describe() if new_check else "(none)"
                lines.append(f"{name}: {old_text} → {new_text}")
        lines += _mapping_changes("label", dict(older.labels), dict(self.labels), values=True)
        lines += _mapping_changes("annotation", dict(older.annotations), dict(self.annotations), values=False)
        lines += _volume_changes(older.volumes, self.volumes)
        if self.progress_deadline != older.progress_deadline:
            lines.append(f"progress deadline: {older.progress_deadline}s → {self.progress_deadline}s")
        if self.restarted_at != older.restarted_at:
            lines.append(
                f"restarted at {self.restarted_at}" if self.restarted_at else "restart marker cleared"
            )
        return lines


_RESOURCE_KEYS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit")
_SPEC_KEYS = frozenset(
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
_HEALTH_CHECK_KEYS = (
    "type",
    "path",
    "port",
    "command",
    "initial_delay",
    "period",
    "timeout",
    "failure_threshold",
)
_VOLUME_KEYS = ("claim", "mount_path", "read_only", "sub_path")


def _shown(text: str) -> str:
    return text if text else "(none)"


def _mapping_changes(what: str, old: Mapping[str, str], new: Mapping[str, str], *, values: bool) -> list[str]:
    lines = []
    for key in sorted(old.keys() | new.keys()):
        if key not in old:
            lines.append(f"{what} {key}={new[key]} added" if values else f"{what} {key} added")
        elif key not in new:
            lines.append(f"{what} {key} removed")
        elif old[key] != new[key]:
            lines.append(
                f"{what} {key}: {_shown(old[key])} → {_shown(new[key])}"
                if values
                else f"{what} {key} changed"
            )
    return lines


def _set_changes(what: str, old: Iterable[str], new: Iterable[str]) -> list[str]:
    old_set, new_set = set(old), set(new)
    return [f"{what} {key} added" for key in sorted(new_set - old_set)] + [
        f"{what} {key} removed" for key in sorted(old_set - new_set)
    ]


def _port_changes(old: Iterable[Port], new: Iterable[Port]) -> list[str]:
    old_ports = {(p.port, p.protocol): p for p in old}
    new_ports = {(p.port, p.protocol): p for p in new}
    lines = []
    for key in sorted(old_ports.keys() | new_ports.keys()):
        label = f"port {key[0]}/{key[1]}"
        if key not in old_ports:
            name = new_ports[key].name
            lines.append(f"{label} ({name}) added" if name else f"{label} added")
        elif key not in new_ports:
            lines.append(f"{label} removed")
        elif old_ports[key].name != new_ports[key].name:
            lines.append(f"{label} name: {_shown(old_ports[key].name)} → {_shown(new_ports[key].name)}")
    return lines


def _volume_changes(old: Iterable[VolumeMount], new: Iterable[VolumeMount]) -> list[str]:
    old_mounts = {v.mount_path: v for v in old}
    new_mounts = {v.mount_path: v for v in new}
    lines = []
    for path in sorted(old_mounts.keys() | new_mounts.keys()):
        if path not in old_mounts:
            lines.append(f"volume {new_mounts[path].claim} at {path} added")
        elif path not in new_mounts:
            lines.append(f"volume {old_mounts[path].claim} at {path} removed")
        elif old_mounts[path] != new_mounts[path]:
            lines.append(f"volume at {path} changed")
    return lines


# --- Collecting reasons ----------------------------------------------------------------------------


class _Errors:
    """Reasons gathered field by field, raised together so a form shows every mistake at once."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field_name: str, reason: str) -> None:
        reasons = self.fields.setdefault(field_name, [])
        if reason not in reasons:
            reasons.append(reason)

    def absorb(self, refused: ValidationFailed) -> None:
        for field_name, reasons in refused.fields.items():
            for reason in reasons:
                self.add(field_name, reason)

    def raise_if_any(self) -> None:
        if not self.fields:
            return
        parts = [f"{name}: {reasons[0]}" for name, reasons in self.fields.items()]
        if len(parts) == 1:
            message = parts[0]
        else:
            shown = "; ".join(parts[:5]) + ("; …" if len(parts) > 5 else "")
            message = f"{len(parts)} fields are not valid: {shown}"
        raise ValidationFailed(message, fields=self.fields)


def is_reserved_key(key: str) -> bool:
    """Whether a label or annotation key is Flotilla's own (refused as input, dropped on adoption)."""
    return key in RESERVED_KEYS or key.startswith(RESERVED_KEY_PREFIXES)


def _byte_length(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _whole(value: Any, field_name: str, low: int, high: int, errors: _Errors) -> int | None:
    """A whole number within bounds; a digit string is taken too (forms and the CLI send text)."""
    if isinstance(value, str) and _WHOLE_RE.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(field_name, "must be a whole number")
        return None
    if not low <= value <= high:
        errors.add(field_name, f"must be from {low} to {high}")
        return None
    return int(value)


def _env_name_problems(name: Any) -> list[str]:
    if not isinstance(name, str) or not name:
        return ["is required" if name in (None, "") else "must be a string"]
    problems = [] if _ENV_NAME_RE.match(name) else [ENV_NAME_RULE]
    # The kubelet refuses names that would read as a path to a parent directory.
    if name in (".", ".."):
        problems.append(f"must not be '{name}'")
    elif name.startswith(".."):
        problems.append("must not start with '..'")
    return problems


def _qualified_key_problems(key: Any) -> list[str]:
    if not isinstance(key, str) or not key:
        return ["keys must be non-empty strings"]
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN_RE.match(prefix)):
        return [f"{key!r} {QUALIFIED_NAME_RULE}"]
    if len(name) > 63 or not _QUALIFIED_NAME_RE.match(name):
        return [f"{key!r} {QUALIFIED_NAME_RULE}"]
    if is_reserved_key(key):
        return [f"{key!r} is reserved for Flotilla"]
    return []


def _strings(value: Any, field_name: str, errors: _Errors) -> tuple[str, ...]:
    """A list of strings (command, args), each at most 32 KiB."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors.add(field_name, "must be a list of strings")
        return ()
    words = []
    for index, word in enumerate(value):
        if not isinstance(word, str):
            errors.add(f"{field_name}[{index}]", "must be a string")
        elif _byte_length(word) > MAX_STRING_BYTES:
            errors.add(f"{field_name}[{index}]", "must be at most 32 KiB")
        else:
            words.append(word)
    return tuple(words)


def _unknown_keys(data: Mapping[str, Any], known: Iterable[str], prefix: str, errors: _Errors) -> None:
    known_keys = set(known)
    for key in data:
        if key not in known_keys:
            errors.add(f"{prefix}.{key}" if prefix else str(key), "unknown field")


# --- Single values ----------------------------------------------------------------------------------


def validate_app_name(name: Any, field: str = "name") -> str:
    """An app's name: it names the Deployment, its container and its Service, so a DNS-1035 label."""
    if not isinstance(name, str) or not name:
        raise ValidationFailed.for_field(field, "is required" if name in (None, "") else "must be a string")
    if len(name) > 63 or not _DNS1035_LABEL_RE.match(name):
        raise ValidationFailed.for_field(field, DNS1035_LABEL_RULE)
    return name


def validate_namespace(name: Any, field: str = "namespace") -> str:
    """A namespace's name: a DNS-1123 label."""
    if not isinstance(name, str) or not name:
        raise ValidationFailed.for_field(field, "is required" if name in (None, "") else "must be a string")
    if len(name) > 63 or not _DNS1123_LABEL_RE.match(name):
        raise ValidationFailed.for_field(field, DNS1123_LABEL_RULE)
    return name


def image_problems(image: Any) -> list[str]:
    """What is wrong with an image reference by the runtimes' grammar (empty when it is valid)."""
    if not isinstance(image, str):
        return ["must be a string"]
    if not image:
        return ["is required"]
    if any(char.isspace() for char in image):
        return ["must not contain spaces or other whitespace"]
    if len(image) > MAX_IMAGE_LENGTH:
        return [f"must be at most {MAX_IMAGE_LENGTH} characters"]
    problems = []
    rest, at, digest = image.partition("@")
    if at and not _IMAGE_DIGEST_RE.match(digest):
        problems.append(IMAGE_DIGEST_RULE)
    name = rest
    colon = rest.rfind(":")
    # A ':' followed by a '/' belongs to the registry's port, not to a tag.
    if colon != -1 and "/" not in rest[colon + 1 :]:
        name, tag = rest[:colon], rest[colon + 1 :]
        if not _IMAGE_TAG_RE.match(tag):
            problems.append(IMAGE_TAG_RULE)
    registry, slash, path = name.partition("/")
    # The runtimes' rule: the first part names a registry only if it looks like a host.
    if not slash or not (
        any(char in registry for char in ".:") or registry == "localhost" or registry.lower() != registry
    ):
        registry, path = "", name
    if registry:
        found = _REGISTRY_RE.match(registry)
        if not found or (found.group("port") is not None and not 1 <= int(found.group("port")) <= 65535):
            problems.append(
                "the registry must be a host name or IP address, with an optional :port from 1 to 65535"
            )
    if not path:
        problems.append("the repository path is required")
    elif not _IMAGE_PATH_RE.match(path):
        lowered = _IMAGE_PATH_RE.match(path.lower())
        problems.append("the repository path must be lowercase" if lowered else IMAGE_PATH_RULE)
    if len(name) > MAX_IMAGE_NAME_LENGTH:
        problems.append(f"the registry and repository must be at most {MAX_IMAGE_NAME_LENGTH} characters")
    return problems


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes resource.Quantity ("250m", "1.5", "1e3", "128Mi") as a number of base units.

    Raises ValueError with the rule when the text is not a quantity or is out of Kubernetes' range.
    """
    if not isinstance(text, str):
        raise ValueError(QUANTITY_RULE)
    found = _QUANTITY_RE.match(text)
    if not found:
        raise ValueError(QUANTITY_RULE)
    suffix = found.group("suffix") or ""
    with localcontext() as context:
        context.prec = 60
        try:
            number = Decimal(found.group("number"))
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
            raise ValueError(QUANTITY_RULE) from exc
        if suffix in _BINARY_SUFFIXES:
            value = number * Decimal(1024) ** _BINARY_SUFFIXES[suffix]
        elif suffix in _DECIMAL_SUFFIXES:
            value = number * _DECIMAL_SUFFIXES[suffix]
        else:
            exponent = int(suffix[1:])
            if abs(exponent) > _MAX_EXPONENT:
                raise ValueError(f"the exponent must be from -{_MAX_EXPONENT} to {_MAX_EXPONENT}")
            value = number.scaleb(exponent)
    if abs(value) > _MAX_QUANTITY:
        raise ValueError("is too large for Kubernetes")
    return value


def parse_health_check(text: str, field: str) -> HealthCheck:
    """The CLI/portal text form of a health check: "http:/healthz:8080", "tcp:5432", "exec:cat /tmp/ok"."""
    errors = _Errors()
    check = _health_check_from_text(text, field, errors)
    errors.raise_if_any()
    assert check is not None  # no reason was given, so a check was built
    return check


def _health_check_from_text(text: Any, field_name: str, errors: _Errors) -> HealthCheck | None:
    if not isinstance(text, str) or ":" not in text:
        errors.add(field_name, HEALTH_CHECK_TEXT_RULE)
        return None
    kind, _, rest = text.strip().partition(":")
    kind = kind.lower()
    if kind == "http":
        path, colon, port = rest.rpartition(":")
        if not colon:
            errors.add(f"{field_name}.port", "is required: http:<path>:<port>")
            return None
        return _checked_health_check({"type": "http", "path": path, "port": port}, field_name, errors)
    if kind == "tcp":
        return _checked_health_check({"type": "tcp", "port": rest}, field_name, errors)
    if kind == "exec":
        try:
            command = shlex.split(rest)
        except ValueError as exc:
            errors.add(f"{field_name}.command", f"cannot be split into words: {exc}")
            return None
        return _checked_health_check({"type": "exec", "command": command}, field_name, errors)
    errors.add(f"{field_name}.type", "must be http, tcp or exec")
    return None


def _checked_health_check(data: Mapping[str, Any], field_name: str, errors: _Errors) -> HealthCheck | None:
    """A health check from its mapping form, every rule checked; None when one failed."""
    before = len(errors.fields)
    _unknown_keys(data, _HEALTH_CHECK_KEYS, field_name, errors)
    kind = data.get("type")
    if kind not in HEALTH_CHECK_TYPES:
        errors.add(f"{field_name}.type", "must be http, tcp or exec")
    path = data.get("path") or ""
    port_value = data.get("port")
    command = _strings(data.get("command"), f"{field_name}.command", errors)
    if kind == "http":
        if not isinstance(path, str) or not path.startswith("/"):
            errors.add(f"{field_name}.path", "must start with '/'")
        elif any(char.isspace() for char in path) or len(path) > 2048:
            errors.add(f"{field_name}.path", "must have no spaces and at most 2048 characters")
    elif path:
        errors.add(f"{field_name}.path", "is only for http checks")
    port = 0
    if kind in ("http", "tcp") and port_value in (None, ""):
        errors.add(f"{field_name}.port", "is required")
    elif kind in ("http", "tcp"):
        port = _whole(port_value, f"{field_name}.port", 1, 65535, errors) or 0
    elif port_value:
        errors.add(f"{field_name}.port", "is only for http and tcp checks")
    if kind == "exec" and not command:
        errors.add(f"{field_name}.command", "must not be empty")
    elif kind != "exec" and command:
        errors.add(f"{field_name}.command", "is only for exec checks")
    timings = {
        "initial_delay": _whole(data.get("initial_delay", 0), f"{field_name}.initial_delay", 0, 3600, errors),
        "period": _whole(data.get("period", 10), f"{field_name}.period", 1, 3600, errors),
        "timeout": _whole(data.get("timeout", 1), f"{field_name}.timeout", 1, 3600, errors),
        "failure_threshold": _whole(
            data.get("failure_threshold", 3), f"{field_name}.failure_threshold", 1, 100, errors
        ),
    }
    if len(errors.fields) > before:
        return None
    return HealthCheck(
        type=str(kind),
        path=str(path),
        port=port,
        command=command,
        initial_delay=timings["initial_delay"] or 0,
        period=timings["period"] or 0,
        timeout=timings["timeout"] or 0,
        failure_threshold=timings["failure_threshold"] or 0,
    )


def _health_check(value: Any, field_name: str, errors: _Errors) -> HealthCheck | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _health_check_from_text(value, field_name, errors)
    if isinstance(value, Mapping):
        return _checked_health_check(value, field_name, errors)
    errors.add(field_name, f"{HEALTH_CHECK_TEXT_RULE}, a mapping with a type, or null")
    return None


def validate_secrets(values: Mapping[str, Any], *, env_names: Iterable[str] = ()) -> dict[str, str]:
    """Secret variables by name: names as env names, values strings, at most 512 KiB in all.

    A reason never repeats a value.
    """
    errors = _Errors()
    if not isinstance(values, Mapping):
        errors.add("secrets", "must be a mapping of name to value")
        errors.raise_if_any()
    plain = set(env_names)
    checked: dict[str, str] = {}
    total = 0
    for key, value in values.items():
        field_name = f"secrets.{key}"
        problems = _env_name_problems(key)
        if isinstance(key, str) and len(key) > MAX_SECRET_NAME_LENGTH:
            problems.append(f"must be at most {MAX_SECRET_NAME_LENGTH} characters")
        for problem in problems:
            errors.add(field_name, problem)
        if not isinstance(value, str):
            errors.add(field_name, "the value must be a string")
            continue
        if key in plain:
            errors.add(field_name, "is also the name of a plain variable")
        total += _byte_length(str(key)) + _byte_length(value)
        if not problems:
            checked[key] = value
    if total > MAX_SECRETS_BYTES:
        errors.add("secrets", "must be at most 512 KiB in all")
    errors.raise_if_any()
    return dict(sorted(checked.items()))


# --- Parts of a spec -------------------------------------------------------------------------------


def _image(value: Any, errors: _Errors) -> str:
    for problem in image_problems(value):
        errors.add("image", problem)
    return value if isinstance(value, str) else ""


def _env(value: Any, errors: _Errors) -> tuple[EnvVar, ...]:
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
        _unknown_keys(item, ("name", "value"), prefix, errors)
        name, text = item.get("name"), item.get("value", "")
        problems = _env_name_problems(name)
        for problem in problems:
            errors.add(f"{prefix}.name", problem)
        if not problems and name in seen:
            errors.add(f"{prefix}.name", f"{name} is already env[{seen[name]}]")
            problems.append("duplicate")
        if not isinstance(text, str):
            errors.add(f"{prefix}.value", "must be a string")
        elif _byte_length(text) > MAX_STRING_BYTES:
            errors.add(f"{prefix}.value", "must be at most 32 KiB")
        elif not problems:
            seen[str(name)] = index
            env.append(EnvVar(str(name), text))
    return tuple(env)


def _secret_keys(value: Any, errors: _Errors) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors.add("secret_keys", "must be a list of names")
        return ()
    keys = set()
    for key in value:
        problems = _env_name_problems(key)
        for problem in problems:
            errors.add(f"secrets.{key}", problem)
        if not problems:
            keys.add(key)
    return tuple(sorted(keys))


def _ports(value: Any, errors: _Errors) -> tuple[Port, ...]:
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
            _unknown_keys(item, ("port", "protocol", "name"), prefix, errors)
            number, protocol, name = item.get("port"), item.get("protocol") or "TCP", item.get("name") or ""
        else:
            number, protocol, name = item, "TCP", ""
        port = _whole(number, f"{prefix}.port", 1, 65535, errors)
        if not isinstance(protocol, str) or protocol.upper() not in PROTOCOLS:
            errors.add(f"{prefix}.protocol", "must be TCP, UDP or SCTP")
            protocol = ""
        protocol = protocol.upper()
        if not isinstance(name, str):
            errors.add(f"{prefix}.name", "must be a string")
        elif name and (
            len(name) > 15
            or not _IANA_SVC_NAME_RE.match(name)
            or "--" in name
            or not any("a" <= char <= "z" for char in name)
        ):
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


def _resources(value: Any, base: Resources, errors: _Errors) -> Resources:
    """Requests and limits; with a base, only the quantities given change ("" or null unsets one)."""
    if value is None:
        return Resources()
    if not isinstance(value, Mapping):
        errors.add("resources", "must be a mapping of cpu_request, cpu_limit, memory_request, memory_limit")
        return base
    _unknown_keys(value, _RESOURCE_KEYS, "resources", errors)
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


def _labels(value: Any, field_name: str, errors: _Errors) -> FrozenMap:
    if value is None:
        return FrozenMap()
    if not isinstance(value, Mapping):
        errors.add(field_name, "must be a mapping of key to value")
        return FrozenMap()
    labels = {}
    for key, text in value.items():
        problems = _qualified_key_problems(key)
        if not isinstance(text, str):
            problems.append(f"the value of {key!r} must be a string")
        elif len(text) > 63 or (text and not _QUALIFIED_NAME_RE.match(text)):
            problems.append(f"the value of {key!r} {LABEL_VALUE_RULE}")
        for problem in problems:
            errors.add(field_name, problem)
        if not problems:
            labels[key] = text
    return FrozenMap(labels)


def _annotations(value: Any, errors: _Errors) -> FrozenMap:
    if value is None:
        return FrozenMap()
    if not isinstance(value, Mapping):
        errors.add("annotations", "must be a mapping of key to value")
        return FrozenMap()
    annotations = {}
    total = 0
    for key, text in value.items():
        problems = _qualified_key_problems(key)
        if not isinstance(text, str):
            problems.append(f"the value of {key!r} must be a string")
        for problem in problems:
            errors.add("annotations", problem)
        if not problems:
            annotations[key] = text
            total += _byte_length(key) + _byte_length(text)
    if total > MAX_ANNOTATIONS_BYTES:
        errors.add("annotations", "must be at most 256 KiB in all (keys and values)")
    return FrozenMap(annotations)


def _volumes(value: Any, errors: _Errors) -> tuple[VolumeMount, ...]:
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
        _unknown_keys(item, _VOLUME_KEYS, prefix, errors)
        claim, mount_path = item.get("claim"), item.get("mount_path")
        read_only, sub_path = item.get("read_only", False), item.get("sub_path") or ""
        if not isinstance(claim, str) or not claim:
            errors.add(f"{prefix}.claim", "is required")
        elif len(claim) > 253 or not _DNS1123_SUBDOMAIN_RE.match(claim):
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


def _restarted_at(value: Any, errors: _Errors) -> str:
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
    errors = _Errors()
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
        replicas = _whole(data["replicas"], "replicas", 0, MAX_REPLICAS, errors) or 0
    progress_deadline = current.progress_deadline
    if "progress_deadline" in given:
        low, high = PROGRESS_DEADLINE_RANGE
        progress_deadline = _whole(data["progress_deadline"], "progress_deadline", low, high, errors) or low
    command = _strings(data["command"], "command", errors) if "command" in given else current.command
    args = _strings(data["args"], "args", errors) if "args" in given else current.args
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
        _health_check(data["readiness"], "readiness", errors) if "readiness" in given else current.readiness
    )
    liveness = (
        _health_check(data["liveness"], "liveness", errors) if "liveness" in given else current.liveness
    )
    labels = _labels(data["labels"], "labels", errors) if "labels" in given else current.labels
    annotations = _annotations(data["annotations"], errors) if "annotations" in given else current.annotations
    volumes = _volumes(data["volumes"], errors) if "volumes" in given else current.volumes
    restarted_at = (
        _restarted_at(data["restarted_at"], errors) if "restarted_at" in given else current.restarted_at
    )

    _unknown_keys(data, _SPEC_KEYS | REQUEST_KEYS, "", errors)
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
