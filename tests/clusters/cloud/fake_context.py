"""An in-memory ReconcileContext: what the reconcile loop offers a driver, without a database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from clusters.choices import ResourceState
from clusters.models import CloudResource, Cluster, NodePool
from clusters.providers.base import Outcome, ProviderDriver


class WorkerKilled(Exception):
    """Raised by the context to simulate a worker dying at that point."""


class FakeContext:
    """Keeps resources, secrets, the kubeconfig and events in memory (a test double, no patching)."""

    def __init__(self, cluster: Cluster, pools: Sequence[NodePool]) -> None:
        self.cluster = cluster
        self.pool_list = list(pools)
        self.records: list[CloudResource] = []
        self.secrets: dict[str, str] = {}
        self.kubeconfig = ""
        self.endpoint = ""
        self.events: list[tuple[str, str]] = []
        # Set to a resource kind: the next `resource_created` of that kind dies instead.
        self.die_before_recording: str | None = None

    def pools(self) -> Sequence[NodePool]:
        return list(self.pool_list)

    def resources(self, kind: str | None = None) -> list[CloudResource]:
        return [
            r for r in self.records if r.state != ResourceState.DELETED and (kind is None or r.kind == kind)
        ]

    def plan_resource(
        self, kind: str, name: str, *, pool_name: str = "", data: dict[str, Any] | None = None
    ) -> CloudResource:
        for record in self.resources(kind):
            if record.name == name:
                return record
        record = CloudResource(kind=kind, name=name, pool_name=pool_name, data=dict(data or {}))
        self.records.append(record)
        return record

    def resource_created(
        self, resource: CloudResource, provider_id: str, data: dict[str, Any] | None = None
    ) -> None:
        if self.die_before_recording == resource.kind:
            self.die_before_recording = None
            raise WorkerKilled(f"worker killed before recording {resource.kind} {resource.name}")
        resource.provider_id = provider_id
        resource.state = ResourceState.CREATED
        resource.data = {**(resource.data or {}), **(data or {})}

    def resource_deleted(self, resource: CloudResource) -> None:
        resource.state = ResourceState.DELETED

    def store_kubeconfig(self, kubeconfig: str, *, endpoint: str = "") -> None:
        self.kubeconfig = kubeconfig
        self.endpoint = endpoint
        self.cluster.kubeconfig = kubeconfig  # as the loop saves it (drivers read it back from the cluster)

    def secret(self, key: str, make: Callable[[], str]) -> str:
        if key not in self.secrets:
            self.secrets[key] = make()
        return self.secrets[key]

    def event(self, message: str, *, level: str = "info") -> None:
        self.events.append((level, message))

    # --- helpers for tests ------------------------------------------------------------------

    def live(self, kind: str) -> dict[str, CloudResource]:
        return {r.name: r for r in self.resources(kind)}


def drive(
    driver: ProviderDriver, ctx: FakeContext, *, destroy: bool = False, limit: int = 60
) -> list[Outcome]:
    """Call reconcile (or destroy) until it finishes, as the loop would (without its waits)."""
    outcomes: list[Outcome] = []
    step = driver.destroy if destroy else driver.reconcile
    for _ in range(limit):
        outcome = step(ctx)
        outcomes.append(outcome)
        if outcome.done:
            return outcomes
    raise AssertionError(f"not finished after {limit} steps: {[o.message for o in outcomes[-5:]]}")


def make_cluster(name: str = "web", *, region: str = "us-east-1", version: str = "1.36.1") -> Cluster:
    """An unsaved cluster (the driver reads its fields only)."""
    return Cluster(name=name, external_name=f"{name}-0a1b2c3d", region=region, version=version)


def make_pool(
    name: str,
    size: str,
    count: int,
    *,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
) -> NodePool:
    """An unsaved node pool."""
    return NodePool(name=name, size=size, count=count, labels=labels or {}, taints=taints or [])
