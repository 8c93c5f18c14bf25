"""What a provider account offers (regions, sizes per region, Kubernetes versions), read once.

Every page and API answer that shows a catalogue reads it here, through the Django cache, so a
cloud is asked at most once per FLOTILLA_CATALOGUE_TTL seconds per account, whatever the number
of page loads. The key carries the account's id and when its credentials were last set (new
credentials may see other regions), and the cache's key function prefixes the org's schema, so
one org never reads another's entry. `forget` (behind the refresh service) starts a new
generation of keys, so the next read asks the provider again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from django.conf import settings
from django.core.cache import cache

from clusters.providers.base import Region, Size
from clusters.providers.registry import driver_for
from orgs.exceptions import FlotillaError

if TYPE_CHECKING:
    from clusters.models import ProviderAccount

T = TypeVar("T")


@dataclass
class Catalogue:
    """What a provider offers, as one page shows it: regions, the sizes of one region, versions."""

    regions: list[Region] = field(default_factory=list)
    region: str = ""
    sizes: list[Size] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    error: str = ""


def _account_key(account: ProviderAccount) -> str:
    # An account not saved yet (the local one the create form offers) has no id but one kind.
    ident = str(account.pk) if account.pk is not None else f"unsaved-{account.kind}"
    stamp = int(account.validated_at.timestamp() * 1000) if account.validated_at else 0
    return f"clusters.catalogue:{ident}:{stamp}"


def _generation_key(account: ProviderAccount) -> str:
    return _account_key(account) + ":generation"


def _cached(account: ProviderAccount, part: str, read: Callable[[], T]) -> T:
    generation = cache.get(_generation_key(account), 0)
    key = f"{_account_key(account)}:{generation}:{part}"
    found: T | None = cache.get(key)
    if found is None:
        found = read()
        cache.set(key, found, settings.FLOTILLA_CATALOGUE_TTL)
    return found


def regions(account: ProviderAccount) -> list[Region]:
    """The account's regions (ProviderError if the provider cannot be read)."""
    return _cached(account, "regions", lambda: list(driver_for(account).regions()))


def sizes(account: ProviderAccount, region: str) -> list[Size]:
    """The machine sizes of one region of the account."""
    return _cached(account, f"sizes:{region}", lambda: list(driver_for(account).sizes(region)))


def versions(account: ProviderAccount) -> list[str]:
    """The Kubernetes versions the account's provider can run, newest first."""
    return _cached(account, "versions", lambda: list(driver_for(account).versions()))


def read_catalogue(account: ProviderAccount | None, region: str = "") -> Catalogue:
    """The catalogue a page shows: `region` if the provider has it, else its first; never raises."""
    if account is None:
        return Catalogue()
    try:
        offered = regions(account)
        ids = [r.id for r in offered]
        chosen = region if region in ids else (ids[0] if ids else "")
        return Catalogue(
            regions=offered,
            region=chosen,
            sizes=sizes(account, chosen),
            versions=versions(account),
        )
    except FlotillaError as error:
        return Catalogue(
            region=region, error=f"Could not read the catalogue of {account.name}: {error.message}"
        )


def forget(account: ProviderAccount) -> None:
    """Drop what is cached for the account: the next read asks the provider."""
    # A new generation rather than deleting keys: the sizes are cached per region, and the
    # regions read so far are not listed anywhere.
    cache.set(_generation_key(account), time.time_ns(), None)
