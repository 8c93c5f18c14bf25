"""Storage locations: create (validated against the real storage before anything is saved),
update, check again, delete, and the org's default (its own local directory)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from orgs.actors import Actor
from orgs.exceptions import Conflict, ValidationFailed
from orgs.services.audit import record_action
from snapshots.choices import LIVE_SNAPSHOT_STATUSES, StorageKind
from snapshots.exceptions import StorageInUse
from snapshots.models import Snapshot, StorageLocation
from snapshots.permissions import Action, require
from snapshots.storage import StorageRefused, Store, StoreConfig, check_store, open_store

DEFAULT_NAME = "local"
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# What a request may set; credentials are write-only.
FIELDS = ("name", "kind", "driver", "bucket", "endpoint", "region", "prefix", "options", "is_default")


def _schema(actor: Actor) -> str:
    return actor.org.schema_name if actor.org is not None else ""


def config_of(location: StorageLocation, schema_name: str) -> StoreConfig:
    """The storage adapter's view of a location (credentials decrypted for this use only)."""
    secret = location.secret_parts()
    return StoreConfig(
        kind=location.kind,
        schema_name=schema_name,
        bucket=location.bucket,
        endpoint=location.endpoint,
        region=location.region,
        prefix=location.prefix,
        driver=location.driver,
        key=secret.get("key", ""),
        secret=secret.get("secret", ""),
        options={str(k): str(v) for k, v in (location.options or {}).items()},
    )


def store_of(location: StorageLocation, schema_name: str) -> Store:
    """The org's area of a location, ready for reads and writes."""
    return open_store(config_of(location, schema_name))


def _text(data: Mapping[str, Any], key: str, default: str = "", *, limit: int = 500) -> str:
    value = data.get(key, default)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed.for_field(key, "Must be a string.")
    value = value.strip()
    if len(value) > limit:
        raise ValidationFailed.for_field(key, f"At most {limit} characters.")
    return value


def _cleaned(data: Mapping[str, Any], current: StorageLocation | None) -> dict[str, Any]:
    """The location's fields from a request, every bad one named at once."""
    unknown = sorted(set(data) - set(FIELDS) - {"credentials"})
    fields: dict[str, list[str]] = {name: ["Unknown field."] for name in unknown}
    out: dict[str, Any] = {}
    for key, limit in (
        ("name", 63),
        ("driver", 40),
        ("bucket", 255),
        ("endpoint", 500),
        ("region", 63),
        ("prefix", 200),
    ):
        if key in data or current is None:
            try:
                out[key] = _text(data, key, limit=limit)
            except ValidationFailed as exc:
                fields.update(exc.fields)
    if "name" in out and not NAME.match(out["name"]):
        fields["name"] = ["Lowercase letters, digits and '-', at most 63 (a DNS label)."]
    kind = data.get("kind", current.kind if current else StorageKind.LOCAL)
    if kind not in StorageKind.values:
        fields["kind"] = [f"One of {', '.join(StorageKind.values)}."]
    out["kind"] = kind
    if "options" in data or current is None:
        options = data.get("options") or {}
        if not isinstance(options, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str | int | bool) for k, v in options.items()
        ):
            fields["options"] = ["A mapping of option names to plain values."]
        else:
            out["options"] = {k: str(v) for k, v in options.items()}
    if "is_default" in data:
        if not isinstance(data["is_default"], bool):
            fields["is_default"] = ["Must be true or false."]
        out["is_default"] = bool(data["is_default"])
    if "credentials" in data:
        credentials = data.get("credentials") or {}
        if not isinstance(credentials, Mapping) or not all(
            k in ("key", "secret") and isinstance(v, str) for k, v in credentials.items()
        ):
            fields["credentials"] = ['{"key": "...", "secret": "..."} (strings).']
        else:
            out["credentials"] = (
                json.dumps({k: v.strip() for k, v in credentials.items()}) if credentials else ""
            )
    if kind == StorageKind.LOCAL:
        for key in ("bucket", "endpoint", "driver"):
            if out.get(key):
                fields[key] = ["A local location is the org's own directory: it takes no " + key + "."]
    if fields:
        summary = "; ".join(f"{name}: {reasons[0]}" for name, reasons in fields.items())
        raise ValidationFailed(f"The storage location is not valid: {summary}", fields=fields)
    return out


def _checked(location: StorageLocation, schema_name: str) -> None:
    """Validate against the storage itself (a list and a small write + delete)."""
    try:
        check_store(config_of(location, schema_name))
    except StorageRefused as exc:
        raise ValidationFailed(exc.message, fields=exc.fields or {"credentials": [exc.message]}) from exc


def _make_default(location: StorageLocation) -> None:
    StorageLocation.objects.filter(is_default=True).exclude(pk=location.pk).update(is_default=False)


def create_location(actor: Actor, data: Mapping[str, Any]) -> StorageLocation:
    """Add a storage location; nothing is saved unless the storage accepts a test write."""
    require(actor, Action.STORAGE_MANAGE)
    values = _cleaned(data, None)
    if not values.get("name"):
        raise ValidationFailed.for_field("name", "This field is required.")
    if StorageLocation.objects.filter(name=values["name"]).exists():
        raise Conflict(f"A storage location named {values['name']!r} exists.", fields={"name": ["Taken."]})
    location = StorageLocation(**{k: v for k, v in values.items()}, created_by=actor.label[:254])
    _checked(location, _schema(actor))
    location.checked_at = timezone.now()
    try:
        with transaction.atomic():
            if location.is_default or not StorageLocation.objects.exists():
                location.is_default = True
                StorageLocation.objects.filter(is_default=True).update(is_default=False)
            location.save()
            record_action(actor, "storage.created", obj=location, after=_summary(location))
    except IntegrityError:
        raise Conflict(
            f"A storage location named {values['name']!r} exists.", fields={"name": ["Taken."]}
        ) from None
    return location


def update_location(actor: Actor, location: StorageLocation, data: Mapping[str, Any]) -> StorageLocation:
    """Change a location; a change of where or how it connects is checked before it is saved."""
    require(actor, Action.STORAGE_MANAGE)
    values = _cleaned(data, location)
    if "kind" in data and values["kind"] != location.kind and location.snapshots.exists():
        raise StorageInUse(
            "A location that holds snapshots cannot change its kind.", fields={"kind": ["In use."]}
        )
    before = _summary(location)
    moved = any(values.get(k, getattr(location, k)) != getattr(location, k) for k in ("bucket", "prefix"))
    if moved and Snapshot.objects.filter(location=location, status__in=LIVE_SNAPSHOT_STATUSES).exists():
        raise StorageInUse(
            "The bucket or prefix of a location that holds snapshots cannot change (they would be lost).",
            fields={"bucket": ["In use."]},
        )
    for key, value in values.items():
        setattr(location, key, value)
    if any(
        k in data
        for k in ("kind", "driver", "bucket", "endpoint", "region", "prefix", "options", "credentials")
    ):
        _checked(location, _schema(actor))
        location.checked_at, location.check_error = timezone.now(), ""
    with transaction.atomic():
        if location.is_default:
            _make_default(location)
        location.save()
        record_action(actor, "storage.updated", obj=location, before=before, after=_summary(location))
    return location


def check_location(actor: Actor, location: StorageLocation) -> StorageLocation:
    """Check a saved location again; the result (and the reason it failed) is kept on it."""
    require(actor, Action.STORAGE_VIEW)
    try:
        _checked(location, _schema(actor))
        location.check_error = ""
    except ValidationFailed as exc:
        location.check_error = exc.message
    location.checked_at = timezone.now()
    location.save(update_fields=["checked_at", "check_error"])
    return location


def delete_location(actor: Actor, location: StorageLocation) -> None:
    """Remove a location that holds no snapshot (its files, if any, are left where they are)."""
    require(actor, Action.STORAGE_MANAGE)
    with transaction.atomic():
        if Snapshot.objects.filter(location=location, status__in=LIVE_SNAPSHOT_STATUSES).exists():
            raise StorageInUse(
                f"Storage location {location.name} still holds snapshots: delete them first.",
                fields={"location": ["Holds snapshots."]},
            )
        record_action(actor, "storage.deleted", obj=location, before=_summary(location))
        location.delete()


def default_location(actor: Actor) -> StorageLocation:
    """The org's default location; its own local directory, made on first use."""
    found = StorageLocation.objects.filter(is_default=True).first()
    if found is not None:
        return found
    with transaction.atomic():
        location, _ = StorageLocation.objects.get_or_create(
            name=DEFAULT_NAME,
            defaults={"kind": StorageKind.LOCAL, "is_default": True, "created_by": "flotilla"},
        )
        if not StorageLocation.objects.filter(is_default=True).exists():
            location.is_default = True
            location.save(update_fields=["is_default"])
    return location


def _summary(location: StorageLocation) -> dict[str, Any]:
    """What the audit log keeps of a location: never its credentials."""
    return {
        "name": location.name,
        "kind": location.kind,
        "driver": location.driver,
        "bucket": location.bucket,
        "endpoint": location.endpoint,
        "region": location.region,
        "prefix": location.prefix,
        "is_default": location.is_default,
        "has_credentials": location.has_credentials,
    }
