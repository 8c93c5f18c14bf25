"""The interface every provider driver implements, and what the reconcile loop gives it.

A driver is built from a provider account's decrypted credentials and settings. It answers
catalogue questions (regions, sizes, versions), validates credentials with one cheap call, and
takes *one idempotent step at a time* towards a cluster's desired state (`reconcile`) or towards
its absence (`destroy`). Between steps the loop records progress and a heartbeat; a worker killed
at any point leaves the database saying what exists, so the next worker carries on.

Rules for a step:
- Record a resource with `ctx.plan_resource(...)` (committed at once) *before* asking the provider
  to create it, and look for it by name at the provider before creating it again: a crash between
  the provider's "created" and our `resource_created` must not make a duplicate.
- Never block for long: when something is booting, return `Outcome.wait(...)`.
- Raise `ProviderError` with the provider's message; `retryable=False` for errors no retry fixes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from clusters.engine.outcome import Outcome

__all__ = [
    "CredentialField",
    "Outcome",
    "ProviderDriver",
    "ReconcileContext",
    "Region",
    "Size",
]

if TYPE_CHECKING:
    from clusters.models import CloudResource, Cluster, NodePool


@dataclass(frozen=True)
class Region:
    """A place clusters can run in."""

    id: str
    name: str


@dataclass(frozen=True)
class Size:
    """A machine size of a region (a local size is a simulated node's capacity)."""

    id: str
    name: str
    cpus: float
    memory_mb: int
    price_hourly: float | None = None


@dataclass(frozen=True)
class CredentialField:
    """One field of a provider account form: secret fields are encrypted, others are settings."""

    name: str
    label: str
    secret: bool = True
    required: bool = True
    help: str = ""
    multiline: bool = False


class ReconcileContext(Protocol):
    """What the cluster job (clusters.services.lifecycle) offers a driver while it works on one cluster."""

    cluster: Cluster

    def pools(self) -> Sequence[NodePool]:
        """The cluster's desired pools (including those being removed: `pool.removing`)."""

    def resources(self, kind: str | None = None) -> list[CloudResource]:
        """Recorded resources that are not deleted."""

    def plan_resource(
        self, kind: str, name: str, *, pool_name: str = "", data: dict[str, Any] | None = None
    ) -> CloudResource:
        """Get or record (and commit) a resource before it is created at the provider."""

    def resource_created(
        self, resource: CloudResource, provider_id: str, data: dict[str, Any] | None = None
    ) -> None:
        """The provider made it: store its id (committed at once)."""

    def resource_deleted(self, resource: CloudResource) -> None:
        """The provider no longer has it."""

    def store_kubeconfig(self, kubeconfig: str, *, endpoint: str = "") -> None:
        """Keep the cluster's admin kubeconfig (encrypted)."""

    def secret(self, key: str, make: Callable[[], str]) -> str:
        """The cluster's secret `key` (a join token, a CA key): made once by `make`, kept encrypted."""

    def event(self, message: str, *, level: str = "info") -> None:
        """Add a line to the cluster's timeline."""


class ProviderDriver(ABC):
    """One kind of provider."""

    kind: str
    label: str
    credential_fields: tuple[CredentialField, ...] = ()
    # Whether Flotilla creates and destroys the machines (False for imported clusters).
    provisions: bool = True
    # Whether Flotilla runs the cluster's API itself and writes its kubeconfig (the local provider):
    # only then is the outbound policy (config.outbound) skipped for calls to it.
    trusted_api: bool = False

    def __init__(self, credentials: dict[str, str], settings: dict[str, Any]) -> None:
        self.credentials = credentials
        self.settings = settings

    @abstractmethod
    def validate(self) -> None:
        """One cheap authenticated call; CredentialsRejected/ProviderError with the provider's words."""

    @abstractmethod
    def regions(self) -> list[Region]:
        """Regions, read from the provider."""

    @abstractmethod
    def sizes(self, region: str) -> list[Size]:
        """Machine sizes of a region, read from the provider."""

    @abstractmethod
    def versions(self) -> list[str]:
        """Kubernetes versions this provider can run, newest first."""

    @abstractmethod
    def reconcile(self, ctx: ReconcileContext) -> Outcome:
        """Take the next step towards the cluster's desired version and pools."""

    @abstractmethod
    def destroy(self, ctx: ReconcileContext) -> Outcome:
        """Take the next step towards the cluster and all its resources being gone."""

    def recover(self, cluster: Cluster) -> bool:
        """Bring back a cluster whose API stopped answering, where the provider can (True if it did)."""
        return False

    # The capabilities it declares (`clusters.providers.capabilities.Capability` values).
    capabilities: tuple[str, ...] = ()

    def capability(self, name: str, region: str = "") -> Any | None:
        """The adapter of capability `name`; None when this provider does not offer it."""
        return None
