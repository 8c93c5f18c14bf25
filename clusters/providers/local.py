"""The local provider: clusters whose control plane runs on the worker's host (kwok).

Simulated nodes get the capacity of the pool's size. A local cluster lives on the host of the
worker that created it; Flotilla's health refresh brings it back after that host restarts.
"""

from __future__ import annotations

from dataclasses import dataclass

from clusters import versions
from clusters.choices import EventLevel
from clusters.exceptions import ProviderError
from clusters.local import binaries
from clusters.local.errors import BinariesMissing, HostLimitReached, LocalClusterError
from clusters.local.runtime import LocalRuntime, NodePoolSpec, Taint
from clusters.models import Cluster, NodePool
from clusters.providers.base import Outcome, ProviderDriver, ReconcileContext, Region, Size

CONTROL_PLANE = "local-control-plane"
REGION = Region(id="local", name="This Flotilla host")
# Simulated machine sizes: the capacity kwok reports for each node.
SIZES = (
    Size(id="small", name="Small (2 CPU, 4 GiB)", cpus=2, memory_mb=4096),
    Size(id="medium", name="Medium (4 CPU, 8 GiB)", cpus=4, memory_mb=8192),
    Size(id="large", name="Large (8 CPU, 16 GiB)", cpus=8, memory_mb=16384),
    Size(id="xlarge", name="X-Large (16 CPU, 64 GiB)", cpus=16, memory_mb=65536),
)


def pool_spec(pool: NodePool, *, count: int | None = None) -> NodePoolSpec:
    """The runtime's view of a pool: its size's capacity, labels and taints."""
    size = next((s for s in SIZES if s.id == pool.size), SIZES[1])
    return NodePoolSpec(
        name=pool.name,
        count=pool.count if count is None else count,
        cpu=str(int(size.cpus)),
        memory=f"{size.memory_mb}Mi",
        labels=dict(pool.labels or {}),
        taints=tuple(
            Taint(key=t["key"], value=t.get("value", ""), effect=t.get("effect", "NoSchedule"))
            for t in pool.taints or []
        ),
    )


@dataclass(frozen=True)
class ComponentsReport:
    """What a check of a local control plane's components found, and what it restarted."""

    problems: list[str]
    actions: list[str]

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)


def _provider_error(exc: LocalClusterError) -> ProviderError:
    # A missing version or a full host is not fixed by retrying.
    retryable = not isinstance(exc, BinariesMissing | HostLimitReached)
    return ProviderError(str(exc), retryable=retryable)


class LocalDriver(ProviderDriver):
    """Simulated clusters on this host: real control planes, kwok nodes."""

    kind = "local"
    label = "Local"
    trusted_api = True  # the kubeconfig is the local runtime's own, on this host's loopback
    credential_fields = ()

    def __init__(self, credentials: dict[str, str], settings: dict[str, object]) -> None:
        super().__init__(credentials, dict(settings))
        self.runtime = LocalRuntime()

    def validate(self) -> None:
        if not self.versions():
            raise ProviderError(
                "No Kubernetes binaries are built on this host: run `manage.py local_binaries`.",
                retryable=False,
            )

    def regions(self) -> list[Region]:
        return [REGION]

    def sizes(self, region: str) -> list[Size]:
        return list(SIZES)

    def versions(self) -> list[str]:
        found = binaries.available_k8s_versions()
        return versions.newest_first(found)

    def reconcile(self, ctx: ReconcileContext) -> Outcome:
        # Never blocks through a start: kwokctl starts the processes (seconds), then each pass
        # looks at the components once and, until they are all healthy, asks to be called again.
        cluster = ctx.cluster
        name = cluster.external_name
        try:
            plane = ctx.plan_resource(CONTROL_PLANE, name)
            on_host = name in self.runtime.list_clusters()
            if plane.state != "created" or not on_host:
                if on_host:
                    # Left half-made by a worker that died during creation: start again.
                    ctx.event("Removing a half-created control plane left by an interrupted worker")
                    self.runtime.delete(name)
                self.runtime.start_control_plane(name, cluster.version, wait=False)
                ctx.resource_created(plane, name)
                ctx.store_kubeconfig(self.runtime.kubeconfig(name))
                return Outcome.wait(
                    f"Control plane of Kubernetes {cluster.version} is starting", 1.0, progress=30
                )
            problems, actions = self.runtime.settle_components(name)
            for action in actions:
                ctx.event(f"Control plane: {action}", level=EventLevel.WARNING)
            if problems:
                # A whole plane that stopped (host or worker restart) or one dead component: started
                # again above; the step timeout bounds how long this may take.
                return Outcome.wait(f"Waiting for the control plane: {problems[0][:150]}", 1.0, progress=35)
            ctx.store_kubeconfig(self.runtime.kubeconfig(name))
            running = self.runtime.running_version(name)
            if versions.KubeVersion.from_any(running) != versions.KubeVersion.from_any(cluster.version):
                self.runtime.switch_version(name, cluster.version)
                return Outcome.wait(
                    f"Control plane restarting on {cluster.version} (was {running})", 1.0, progress=50
                )
            self.runtime.sync_node_versions(name, cluster.version)
            for pool in ctx.pools():
                self.runtime.set_pool_nodes(name, pool_spec(pool, count=0 if pool.removing else None))
        except LocalClusterError as exc:
            raise _provider_error(exc) from exc
        return Outcome.finished("Nodes requested")

    def recover(self, cluster: Cluster) -> bool:
        """Start a local control plane that is down (the host or the worker restarted); the next
        health refresh sees it answer (no worker waits through the start)."""
        if cluster.external_name not in self.runtime.list_clusters():
            return False
        try:
            return self.runtime.ensure_running(cluster.external_name, wait=False)
        except LocalClusterError as exc:
            raise _provider_error(exc) from exc

    def check_components(self, cluster: Cluster, *, repair: bool) -> ComponentsReport:
        """Each control-plane component alive and healthy? With `repair`, restart those that are down.

        The problems are those found before any restart: the cluster is Ready again only when a
        later check finds every component healthy.
        """
        name = cluster.external_name
        try:
            states = self.runtime.component_health(name)
        except (LocalClusterError, OSError, ValueError) as exc:
            problem = f"the control plane of {name} cannot be checked: {exc}"
            return ComponentsReport(problems=[problem], actions=[])
        problems = [s.problem for s in states if s.problem]
        actions: list[str] = []
        if repair and problems:
            try:
                actions = self.runtime.restart_components(name)
            except (LocalClusterError, OSError, ValueError) as exc:
                actions = [f"restart failed: {str(exc)[:500]}"]
        return ComponentsReport(problems=problems, actions=actions)

    def destroy(self, ctx: ReconcileContext) -> Outcome:
        name = ctx.cluster.external_name
        try:
            self.runtime.delete(name)
        except LocalClusterError as exc:
            raise _provider_error(exc) from exc
        for resource in ctx.resources():
            ctx.resource_deleted(resource)
        return Outcome.finished("Control plane stopped and its files removed")
