"""Typed records of the cloud resources Flotilla makes: what `CloudResource.data` holds, per kind.

`CloudResource.data` is a JSON column (storage only). Drivers never read or write its keys by
name: they write `record.to_data()` and read `VmRecord.from_data(resource)`, which checks every
field and refuses a stored record it does not understand with one clear error (a corrupt or
hand-edited row stops the operation, it is never half-read as defaults).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from clusters.exceptions import ProviderError

if TYPE_CHECKING:
    from clusters.models import CloudResource

R = TypeVar("R", bound="Record")
OWNER = re.compile(r"^[a-z][a-z0-9_]*(:[A-Za-z0-9_.-]+)?$")


class BadRecord(ProviderError):
    """A stored cloud-resource record that does not parse: no retry repairs it."""

    code = "bad_resource_record"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True)
class Record:
    """The common part of every record: JSON out, checked JSON in."""

    kind: ClassVar[str] = ""

    def to_data(self) -> dict[str, Any]:
        """The JSON the `data` column stores (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_data(cls: type[R], source: CloudResource | dict[str, Any] | None, name: str = "") -> R:
        """The record of a resource (or of its raw `data`), refused with a clear error when invalid."""
        if source is None or isinstance(source, dict):
            data, label = dict(source or {}), name or "?"
        else:
            data, label = dict(source.data or {}), source.name
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise BadRecord(f"Stored {cls.kind} record {label!r} has unknown fields: {', '.join(unknown)}.")
        values: dict[str, Any] = {}
        for key, value in data.items():
            try:
                values[key] = cls._check(key, value)
            except (TypeError, ValueError) as exc:
                raise BadRecord(f"Stored {cls.kind} record {label!r}: {key} {exc}.") from exc
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise BadRecord(f"Stored {cls.kind} record {label!r} is invalid: {exc}.") from exc

    @classmethod
    def _check(cls, key: str, value: Any) -> Any:
        """One field's stored value, as the record holds it (raises ValueError/TypeError)."""
        return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"must be a whole number >= 0, not {value!r}")
    return int(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be text, not {value!r}")
    return value


@dataclass(frozen=True)
class VmRecord(Record):
    """A VM of a cloud cluster: its role, its place in its pool, the k3s version it runs."""

    kind: ClassVar[str] = "vm"

    role: Literal["server", "agent"]
    index: int
    version: str
    # Part of the provider's idempotency key: a retried create returns the same VM.
    nonce: str = ""
    # When the provider reported it created (epoch seconds); None while only planned.
    created_at: float | None = None

    def __post_init__(self) -> None:
        if self.role not in ("server", "agent"):
            raise ValueError(f"role must be 'server' or 'agent', not {self.role!r}")

    @property
    def server(self) -> bool:
        return self.role == "server"

    def created(self, at: float) -> VmRecord:
        return replace(self, created_at=at)

    def upgraded(self, version: str) -> VmRecord:
        return replace(self, version=version)

    @classmethod
    def _check(cls, key: str, value: Any) -> Any:
        if key == "index":
            return _integer(value)
        if key == "created_at":
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"must be a time in seconds, not {value!r}")
            return float(value)
        return _text(value)


@dataclass(frozen=True)
class FirewallRecord(Record):
    """A cluster firewall: which owners' rules Flotilla last put into it.

    An owner that stops contributing rules (its object deleted, its app gone) is still listed
    here, so the next pass removes its rules instead of leaving them behind.
    """

    kind: ClassVar[str] = "firewall"

    owners: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bad = [o for o in self.owners if not OWNER.match(o)]
        if bad:
            raise ValueError(f"owners must look like 'cluster' or 'app:id', not {bad!r}")

    @classmethod
    def _check(cls, key: str, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError(f"must be a list, not {value!r}")
        return tuple(_text(v) for v in value)


__all__ = ["OWNER", "BadRecord", "FirewallRecord", "Record", "VmRecord"]
