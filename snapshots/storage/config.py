"""What one storage location is made of (`StoreConfig`), checked before any connection is made."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from config.install_secrets import default_data_dir
from snapshots.storage.errors import StorageRefused

KINDS = ("local", "s3", "libcloud")
LOCAL_CONTAINER = "snapshots"
DEFAULT_TIMEOUT = 30.0
# libcloud drivers a tenant may not name: `local` takes a server path as its key (a tenant never
# chooses a path), `dummy` keeps nothing.
REFUSED_DRIVERS = frozenset({"local", "dummy"})
# The extra constructor arguments a tenant may give each driver; anything else could change where
# or how the driver connects behind the outbound policy's back.
DRIVER_OPTIONS: Mapping[str, frozenset[str]] = {
    "google_storage": frozenset({"project"}),
}
# An org's schema name as orgs creates them: it becomes a directory and a key segment.
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# S3's bucket rules are the strictest of the common services; others are checked by the service.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,220}[A-Za-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class StoreConfig:
    """One org's view of one storage location: where, with which credentials, under which prefix."""

    kind: str
    schema_name: str
    bucket: str = ""
    endpoint: str = ""
    region: str = ""
    prefix: str = ""
    driver: str = ""
    key: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    options: Mapping[str, str] = field(default_factory=dict)


def storage_timeout() -> float:
    """How long one storage call may wait for the location (seconds; FLOTILLA_STORAGE_TIMEOUT)."""
    return float(getattr(settings, "FLOTILLA_STORAGE_TIMEOUT", None) or DEFAULT_TIMEOUT)


def snapshot_dir() -> Path:
    """Where local locations keep every org's snapshots (FLOTILLA_SNAPSHOT_DIR)."""
    configured = getattr(settings, "FLOTILLA_SNAPSHOT_DIR", None)
    if configured:
        return Path(configured).expanduser()
    return default_data_dir() / "snapshots"


def local_root(schema_name: str) -> Path:
    """The org's own directory for local snapshots (created, mode 0700, on first use)."""
    check_schema(schema_name)
    base = snapshot_dir()
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = base / schema_name
    root.mkdir(exist_ok=True, mode=0o700)
    # mkdir's mode is masked by the umask: the directory holds another tenant's data's neighbours.
    os.chmod(root, 0o700)
    return root


def check_schema(schema_name: str) -> None:
    """Refuse a schema name that could escape its directory or key segment (a bug, not input)."""
    if not _SCHEMA.match(schema_name or ""):
        raise ValueError(f"not an org schema name: {schema_name!r}")


def check_key(key: str, *, prefix: bool = False) -> str:
    """`key` if it is a safe relative key (a prefix may end with "/"); ValueError otherwise.

    Keys come from Flotilla's own code, never from a tenant: a bad one is a bug, and refusing it
    keeps one org's keys inside its own area whatever the caller got wrong.
    """
    text = key[:-1] if prefix and key.endswith("/") else key
    if prefix and text == "":
        return key
    if (
        not text
        or text.startswith("/")
        or "\\" in text
        or "//" in text
        or _CONTROL.search(text)
        or any(part in ("", ".", "..") for part in text.split("/"))
    ):
        raise ValueError(f"not a safe storage key: {key!r}")
    return key


def validate_config(config: StoreConfig) -> None:
    """Refuse settings that are wrong on their face (StorageRefused naming the fields)."""
    check_schema(config.schema_name)
    errors: dict[str, list[str]] = {}
    if config.kind not in KINDS:
        errors["kind"] = [f"Choose one of {', '.join(KINDS)}."]
    elif config.kind != "local":
        if not config.bucket:
            errors["bucket"] = ["This field is required."]
        elif not _BUCKET.match(config.bucket):
            errors["bucket"] = ["A bucket name is 3 to 222 letters, digits, dots, dashes or underscores."]
    if config.kind == "s3" and not (config.key and config.secret):
        errors["credentials"] = ["An S3 location needs an access key and its secret."]
    if config.kind == "libcloud":
        driver_errors = _driver_problems(config)
        if driver_errors:
            errors["driver"] = driver_errors
        allowed = DRIVER_OPTIONS.get(config.driver, frozenset())
        unknown = sorted(set(config.options) - allowed)
        if unknown:
            errors["options"] = [
                f"Unknown option(s) for {config.driver or 'this driver'}: {', '.join(unknown)}"
                + (f" (allowed: {', '.join(sorted(allowed))})." if allowed else " (it takes none).")
            ]
    elif config.options:
        errors["options"] = ["Options are only for kind libcloud."]
    prefix_error = _prefix_problem(config.prefix)
    if prefix_error:
        errors["prefix"] = [prefix_error]
    if config.kind == "local" and (config.endpoint or config.bucket or config.prefix):
        errors.setdefault("kind", []).append(
            "A local location is the org's own directory: it takes no bucket, endpoint or prefix."
        )
    if errors:
        summary = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
        raise StorageRefused(f"The storage location was refused: {summary}", fields=errors)


def known_drivers() -> list[str]:
    """The libcloud storage providers a tenant may name (kind `libcloud`)."""
    from libcloud.storage.providers import DRIVERS

    return sorted(str(name) for name in DRIVERS if str(name) not in REFUSED_DRIVERS)


def _driver_problems(config: StoreConfig) -> list[str]:
    if not config.driver:
        return [f"Name a libcloud storage provider: {', '.join(known_drivers())}."]
    if config.driver not in known_drivers():
        return [f"Unknown storage driver {config.driver!r}; known: {', '.join(known_drivers())}."]
    return []


def _prefix_problem(prefix: str) -> str:
    if not prefix:
        return ""
    try:
        check_key(prefix.rstrip("/") if prefix.endswith("/") and not prefix.endswith("//") else prefix)
    except ValueError:
        return (
            'A prefix is a relative path: no leading "/", no "..", "//", backslashes or control characters.'
        )
    return ""
