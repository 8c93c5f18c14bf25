"""The flags of `flotilla apps deploy` and `update`, read into the API's app body.

The server validates every value by Kubernetes' rules (clusters.workloads.spec); the CLI cannot
import it (it has no Django), so it checks here only the shape of each flag, to refuse a typo
with exit 2 naming the flag before anything is sent:

    --port     [NAME=]PORT[/PROTOCOL]     80, 53/udp, http=8080, metrics=9090/tcp
    --env      KEY=VALUE                  (VALUE may be empty and may hold '=')
    --secret   KEY=VALUE                  --secret-from-file KEY=PATH reads VALUE from a file
    --label    KEY=VALUE
    --health   http:PATH:PORT | tcp:PORT | exec:COMMAND     (also --liveness; `none` clears, in update)
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from pathlib import Path

from cli.client import JsonObject
from cli.durations import parse_duration
from cli.errors import UsageError

PORT_SYNTAX = "--port 80, --port 53/udp or --port http=8080"
HEALTH_SYNTAX = "http:/healthz:8080, tcp:5432 or exec:cat /tmp/ready"
PROTOCOLS = ("TCP", "UDP", "SCTP")
CLEAR = "none"
# Kubernetes' rule for an environment variable's name (C identifiers are only recommended).
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
_DIGITS = re.compile(r"[0-9]+\Z")


def parse_port(text: str) -> JsonObject:
    """`[NAME=]PORT[/PROTOCOL]` as the API's port {"port", "protocol", "name"}."""
    name, sep, rest = text.strip().rpartition("=")
    if sep and not name.strip():
        raise _port_error(text, "the name before '=' is empty")
    number, slash, protocol = rest.strip().partition("/")
    number = number.strip()
    if not _DIGITS.match(number):
        raise _port_error(text, f"{number!r} is not a port number")
    port = int(number)
    if not 1 <= port <= 65535:
        raise _port_error(text, f"{port} is not between 1 and 65535")
    proto = protocol.strip().upper() if slash else "TCP"
    if proto not in PROTOCOLS:
        raise _port_error(text, f"the protocol must be one of {', '.join(p.lower() for p in PROTOCOLS)}")
    return {"port": port, "protocol": proto, "name": name.strip()}


def parse_ports(values: Iterable[str] | None) -> list[JsonObject]:
    """Every `--port`, refusing the same port and protocol twice."""
    ports: list[JsonObject] = []
    for text in values or ():
        port = parse_port(text)
        if any((p["port"], p["protocol"]) == (port["port"], port["protocol"]) for p in ports):
            raise _port_error(text, f"{port['port']}/{port['protocol'].lower()} is given twice")
        ports.append(port)
    return ports


def _port_error(text: str, reason: str) -> UsageError:
    return UsageError(f"--port {text!r}: {reason}", hint=PORT_SYNTAX)


def parse_pairs(values: Iterable[str] | None, *, option: str, names_env: bool = False) -> dict[str, str]:
    """`KEY=VALUE` flags as a mapping; a bad one is never echoed (it may be a secret without its KEY=)."""
    pairs: dict[str, str] = {}
    for index, text in enumerate(values or (), start=1):
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{option}: expected KEY=VALUE (its occurrence number {index} is not)")
        if names_env and not _ENV_NAME.match(key):
            raise UsageError(
                f"{option} {key}: a variable name is letters, digits, '_', '-' and '.', "
                "not starting with a digit"
            )
        if key in pairs:
            raise UsageError(f"{option} {key}: given twice")
        pairs[key] = value
    return pairs


def parse_env_names(values: Iterable[str] | None, *, option: str) -> list[str]:
    """Names given to `--unset-env` / `--unset-secret`."""
    names: list[str] = []
    for text in values or ():
        name = text.strip()
        if not _ENV_NAME.match(name):
            raise UsageError(f"{option} {text!r}: not a variable name")
        if name not in names:
            names.append(name)
    return names


def read_secret_files(values: Iterable[str] | None) -> dict[str, str]:
    """`--secret-from-file KEY=PATH`: each file's text (a one-line file loses its final newline)."""
    secrets: dict[str, str] = {}
    for key, path_text in parse_pairs(values, option="--secret-from-file", names_env=True).items():
        path = Path(path_text).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"--secret-from-file {key}: cannot read {path}: {reason}") from exc
        if text.count("\n") == 1 and text.endswith("\n"):
            text = text[:-1]
        secrets[key] = text
    return secrets


def secrets_from(values: Iterable[str] | None, files: Iterable[str] | None) -> dict[str, str]:
    """`--secret` and `--secret-from-file` together; a key given by both is refused."""
    typed = parse_pairs(values, option="--secret", names_env=True)
    read = read_secret_files(files)
    both = sorted(set(typed) & set(read))
    if both:
        raise UsageError(f"--secret and --secret-from-file both give {', '.join(both)}")
    return {**typed, **read}


def check_health(text: str, *, option: str, clearable: bool = False) -> str | None:
    """A health check's text, checked for shape (the server reads it); None for `none` when allowed."""
    value = text.strip()
    if clearable and value.lower() == CLEAR:
        return None
    kind, sep, rest = value.partition(":")
    kind = kind.lower()
    if not sep or kind not in ("http", "tcp", "exec"):
        raise UsageError(
            f"{option} {text!r}: start with http:, tcp: or exec:", hint=f"{option} {HEALTH_SYNTAX}"
        )
    if kind == "http":
        path, colon, port = rest.rpartition(":")
        if not colon or not path.startswith("/"):
            raise UsageError(
                f"{option} {text!r}: write http:PATH:PORT, the path starting with '/'",
                hint=f"{option} {HEALTH_SYNTAX}",
            )
        _health_port(port, text, option)
    elif kind == "tcp":
        _health_port(rest, text, option)
    elif not rest.strip():
        raise UsageError(f"{option} {text!r}: the exec command is empty", hint=f"{option} {HEALTH_SYNTAX}")
    return f"{kind}:{rest}"


def _health_port(text: str, whole: str, option: str) -> None:
    number = text.strip()
    if not _DIGITS.match(number) or not 1 <= int(number) <= 65535:
        raise UsageError(
            f"{option} {whole!r}: {number!r} is not a port between 1 and 65535",
            hint=f"{option} {HEALTH_SYNTAX}",
        )


def split_words(text: str, *, option: str) -> list[str]:
    """`--command` / `--args`: one string split as a POSIX shell would (quotes group words)."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc} in {text!r}") from exc


def parse_seconds(text: str, *, option: str) -> int:
    """A duration option in whole seconds: `600`, `90s`, `10m`."""
    value = text.strip()
    if _DIGITS.match(value):
        return int(value)
    return int(parse_duration(value, option=option).total_seconds())


RESOURCE_FLAGS = (
    ("--cpu", "cpu_request"),
    ("--memory", "memory_request"),
    ("--cpu-limit", "cpu_limit"),
    ("--memory-limit", "memory_limit"),
)


def resources_from(
    cpu: str | None, memory: str | None, cpu_limit: str | None, memory_limit: str | None
) -> JsonObject:
    """The resource flags given, as the API's resources keys (empty strings refused)."""
    resources: JsonObject = {}
    for (option, key), value in zip(RESOURCE_FLAGS, (cpu, memory, cpu_limit, memory_limit), strict=True):
        if value is None:
            continue
        if not value.strip() or any(ch.isspace() for ch in value.strip()):
            raise UsageError(f"{option} {value!r}: give a quantity such as 250m, 0.5 or 256Mi")
        resources[key] = value.strip()
    return resources
