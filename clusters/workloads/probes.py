"""Health checks (readiness and liveness probes): the dataclass, its text grammar and its rules."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clusters.workloads.rules import Reasons, string_list, unknown_keys, whole_number

HEALTH_CHECK_TEXT_RULE = "must be http:<path>:<port>, tcp:<port> or exec:<command>"
HEALTH_CHECK_TYPES = ("http", "tcp", "exec")
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


def parse_health_check(text: str, field: str) -> HealthCheck:
    """The CLI/portal text form of a health check: "http:/healthz:8080", "tcp:5432", "exec:cat /tmp/ok"."""
    errors = Reasons()
    check = _health_check_from_text(text, field, errors)
    errors.raise_if_any()
    assert check is not None  # no reason was given, so a check was built
    return check


def _health_check_from_text(text: Any, field_name: str, errors: Reasons) -> HealthCheck | None:
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


def _checked_health_check(data: Mapping[str, Any], field_name: str, errors: Reasons) -> HealthCheck | None:
    """A health check from its mapping form, every rule checked; None when one failed."""
    before = len(errors.fields)
    unknown_keys(data, _HEALTH_CHECK_KEYS, field_name, errors)
    kind = data.get("type")
    if kind not in HEALTH_CHECK_TYPES:
        errors.add(f"{field_name}.type", "must be http, tcp or exec")
    path = data.get("path") or ""
    port_value = data.get("port")
    command = string_list(data.get("command"), f"{field_name}.command", errors)
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
        port = whole_number(port_value, f"{field_name}.port", 1, 65535, errors) or 0
    elif port_value:
        errors.add(f"{field_name}.port", "is only for http and tcp checks")
    if kind == "exec" and not command:
        errors.add(f"{field_name}.command", "must not be empty")
    elif kind != "exec" and command:
        errors.add(f"{field_name}.command", "is only for exec checks")
    timings = {
        "initial_delay": whole_number(
            data.get("initial_delay", 0), f"{field_name}.initial_delay", 0, 3600, errors
        ),
        "period": whole_number(data.get("period", 10), f"{field_name}.period", 1, 3600, errors),
        "timeout": whole_number(data.get("timeout", 1), f"{field_name}.timeout", 1, 3600, errors),
        "failure_threshold": whole_number(
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


def health_check_from_input(value: Any, field_name: str, errors: Reasons) -> HealthCheck | None:
    """A health check given as text, as a mapping, or null (none); None when refused or absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _health_check_from_text(value, field_name, errors)
    if isinstance(value, Mapping):
        return _checked_health_check(value, field_name, errors)
    errors.add(field_name, f"{HEALTH_CHECK_TEXT_RULE}, a mapping with a type, or null")
    return None
