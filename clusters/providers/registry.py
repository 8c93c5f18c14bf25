"""Which driver serves which kind of provider account."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clusters.choices import ProviderKind
from clusters.providers.base import ProviderDriver

if TYPE_CHECKING:
    from clusters.models import ProviderAccount


def driver_classes() -> dict[str, type[ProviderDriver]]:
    """Every driver, by provider kind."""
    from clusters.providers.cloud import CLOUD_DRIVERS
    from clusters.providers.existing import ExistingClusterDriver
    from clusters.providers.local import LocalDriver

    return {ProviderKind.LOCAL: LocalDriver, ProviderKind.EXISTING: ExistingClusterDriver, **CLOUD_DRIVERS}


def driver_class(kind: str) -> type[ProviderDriver]:
    """The driver class of one kind."""
    return driver_classes()[kind]


def driver_for(account: ProviderAccount) -> ProviderDriver:
    """A driver for an account, built from its decrypted credentials."""
    return driver_class(account.kind)(account.secret_values(), dict(account.settings or {}))


def capabilities_by_kind() -> list[tuple[str, str, tuple[str, ...]]]:
    """Each kind of provider, its label and the capabilities it declares (API and provider page)."""
    return [(kind, cls.label, tuple(cls.capabilities)) for kind, cls in driver_classes().items()]
