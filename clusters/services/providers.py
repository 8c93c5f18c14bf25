"""Provider accounts: connected with credentials that are validated before anything is saved."""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters.choices import ProviderKind
from clusters.exceptions import ProviderError
from clusters.models import ProviderAccount
from clusters.permissions import Action, require
from clusters.providers import catalogue
from clusters.providers.base import ProviderDriver
from clusters.providers.catalogue import Catalogue
from clusters.providers.registry import driver_class
from orgs.actors import Actor
from orgs.exceptions import Conflict, ValidationFailed
from orgs.services.audit import record_action

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,58}[a-z0-9]$|^[a-z0-9]$")


def _split_fields(kind: str, values: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """Separate secret fields from settings, checking every required field is there."""
    cls = driver_class(kind)
    known = {f.name: f for f in cls.credential_fields}
    unknown = sorted(set(values) - set(known) - {"endpoint", "bootstrap", "image"})
    if unknown:
        raise ValidationFailed(
            f"Unknown fields for {ProviderKind(kind).label}: {', '.join(unknown)}.",
            fields={name: ["Not a field of this provider."] for name in unknown},
        )
    missing = [
        f.name for f in cls.credential_fields if f.required and not str(values.get(f.name, "")).strip()
    ]
    if missing:
        raise ValidationFailed(
            "Missing: " + ", ".join(missing) + ".",
            fields={name: ["This field is required."] for name in missing},
        )
    secrets = {k: str(v) for k, v in values.items() if k in known and known[k].secret and v not in (None, "")}
    settings = {
        k: v for k, v in values.items() if not (k in known and known[k].secret) and v not in (None, "")
    }
    return secrets, settings


def _validate(driver: ProviderDriver) -> None:
    try:
        driver.validate()
    except ProviderError as exc:
        # The provider's own words, on the credentials field, and nothing saved.
        raise ValidationFailed(
            f"The provider refused these credentials: {exc.message}",
            fields={"credentials": [exc.message]},
        ) from exc


def create_provider_account(actor: Actor, *, name: str, kind: str, fields: dict[str, Any]) -> ProviderAccount:
    """Connect a provider: validate the credentials with one call, then store them encrypted."""
    require(actor, Action.PROVIDER_MANAGE)
    name = (name or "").strip().lower()
    if not _NAME_RE.match(name):
        raise ValidationFailed.for_field(
            "name",
            "Use 1-60 lowercase letters, digits and hyphens, starting and ending with a letter or digit.",
        )
    if kind not in ProviderKind.values:
        raise ValidationFailed.for_field("kind", "Choose one of: " + ", ".join(ProviderKind.values) + ".")
    if ProviderAccount.objects.filter(name=name).exists():
        raise Conflict(f"A provider account named {name!r} already exists.", fields={"name": ["Taken."]})
    secrets, settings = _split_fields(kind, fields or {})
    _validate(driver_class(kind)(secrets, settings))
    try:
        with transaction.atomic():
            account = ProviderAccount.objects.create(
                name=name,
                kind=kind,
                credentials=json.dumps(secrets) if secrets else "",
                settings=settings,
                validated_at=timezone.now(),
            )
            record_action(
                actor,
                "provider.created",
                obj=account,
                # Which secrets were given, never their values.
                after={"name": name, "kind": kind, "settings": settings, "secrets": sorted(secrets)},
            )
    except IntegrityError as exc:
        raise Conflict(
            f"A provider account named {name!r} already exists.", fields={"name": ["Taken."]}
        ) from exc
    return account


def update_provider_credentials(
    actor: Actor, account: ProviderAccount, *, fields: dict[str, Any]
) -> ProviderAccount:
    """Replace an account's credentials and settings (e.g. a rotated key), validated first."""
    require(actor, Action.PROVIDER_MANAGE)
    secrets, settings = _split_fields(account.kind, fields or {})
    _validate(driver_class(account.kind)(secrets, settings))
    with transaction.atomic():
        account.credentials = json.dumps(secrets) if secrets else ""
        account.settings = settings
        account.validated_at = timezone.now()
        account.save(update_fields=["credentials", "settings", "validated_at"])
        record_action(
            actor,
            "provider.credentials_updated",
            obj=account,
            after={"settings": settings, "secrets": sorted(secrets)},
        )
    return account


def delete_provider_account(actor: Actor, account: ProviderAccount) -> None:
    """Remove an account that no live cluster uses."""
    require(actor, Action.PROVIDER_MANAGE)
    with transaction.atomic():
        if account.clusters.filter(deleted_at__isnull=True).exists():
            raise Conflict(f"Clusters still use {account.name}; delete them first.")
        record_action(
            actor, "provider.deleted", obj=account, before={"name": account.name, "kind": account.kind}
        )
        # Deleted clusters keep their history; the account row goes with its last reference.
        account.clusters.all().delete()
        account.delete()


def refresh_provider_catalogue(actor: Actor, account: ProviderAccount, *, region: str = "") -> Catalogue:
    """Read an account's regions, sizes and versions from the provider again, past the cache.

    Anyone who may see the account may ask (a new region or version should not wait for the
    cache to expire); the request is audited, as it spends calls against the org's cloud quota.
    A provider that cannot be read raises its ProviderError, and the old entries stay forgotten.
    """
    require(actor, Action.PROVIDER_VIEW)
    catalogue.forget(account)
    offered = catalogue.regions(account)
    ids = [r.id for r in offered]
    chosen = region if region in ids else (ids[0] if ids else "")
    fresh = Catalogue(
        regions=offered,
        region=chosen,
        sizes=catalogue.sizes(account, chosen) if chosen else [],
        versions=catalogue.versions(account),
    )
    record_action(
        actor,
        "provider.catalogue_refreshed",
        obj=account,
        after={"regions": len(fresh.regions), "versions": len(fresh.versions)},
    )
    return fresh


def ensure_local_provider(actor: Actor) -> ProviderAccount:
    """The org's local provider account, made on first use by anyone who may view providers.

    It holds no credentials and reaches no bill, so it needs no admin to connect it.
    """
    require(actor, Action.PROVIDER_VIEW)
    account = ProviderAccount.objects.filter(kind=ProviderKind.LOCAL).order_by("pk").first()
    if account is not None:
        return account
    with transaction.atomic():
        account, created = ProviderAccount.objects.get_or_create(
            name="local", defaults={"kind": ProviderKind.LOCAL, "validated_at": timezone.now()}
        )
        if created:
            record_action(actor, "provider.created", obj=account, after={"name": "local", "kind": "local"})
    if account.kind != ProviderKind.LOCAL:
        raise Conflict("An account named 'local' exists and is not the local provider; rename it.")
    return account
