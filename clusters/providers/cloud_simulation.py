"""The simulation mode of cloud clusters (`"bootstrap": "local"`): for demos and emulated clouds.

The VMs are real at the provider (or its emulator), but k3s on them is never talked to: a local
control plane on the worker's host stands in, with one simulated node per running VM. Never the
default, never for real workloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from clusters.choices import ResourceState
from clusters.exceptions import ProviderError
from clusters.providers.base import Outcome, ReconcileContext
from clusters.providers.clouds import CloudApi
from clusters.providers.records import VmRecord

if TYPE_CHECKING:
    from clusters.models import CloudResource

LOCAL_CONTROL_PLANE = "local-control-plane"


def simulate(ctx: ReconcileContext, api: CloudApi, vms: Sequence[CloudResource]) -> Outcome:
    """A local control plane with one simulated node per running VM (demos, emulated clouds)."""
    from clusters.local.errors import BinariesMissing, HostLimitReached, LocalClusterError
    from clusters.local.runtime import LocalRuntime, NodePoolSpec, Taint

    name = ctx.cluster.external_name
    runtime = LocalRuntime()
    try:
        plane = ctx.plan_resource(LOCAL_CONTROL_PLANE, name)
        on_host = name in runtime.list_clusters()
        if plane.state != ResourceState.CREATED or not on_host:
            if on_host:
                runtime.delete(name)  # half-made by an interrupted worker
            runtime.start_control_plane(name, ctx.cluster.version, wait=False)
            ctx.resource_created(plane, name)
            ctx.event("Simulation: local control plane started in place of k3s on the VMs")
            return Outcome.wait("Local control plane starting (simulation)", 1.0, progress=45)
        problems, _ = runtime.settle_components(name)
        if problems:
            return Outcome.wait(f"Waiting for the local control plane: {problems[0][:150]}", 1.0, progress=45)
        sizes = {s.id: s for s in api.sizes()}
        for pool in ctx.pools():
            size = sizes.get(pool.size)
            runtime.set_pool_nodes(
                name,
                NodePoolSpec(
                    name=pool.name,
                    count=sum(1 for r in vms if r.pool_name == pool.name),
                    cpu=str(max(1, int(size.cpus))) if size else "2",
                    memory=f"{size.memory_mb}Mi" if size and size.memory_mb else "4096Mi",
                    labels=dict(pool.labels or {}),
                    taints=tuple(
                        Taint(key=t["key"], value=t.get("value", ""), effect=t.get("effect", "NoSchedule"))
                        for t in pool.taints or []
                    ),
                ),
            )
        ctx.store_kubeconfig(runtime.kubeconfig(name))
    except LocalClusterError as exc:
        raise ProviderError(
            str(exc), retryable=not isinstance(exc, BinariesMissing | HostLimitReached)
        ) from exc
    return Outcome.finished(f"{len(vms)} VMs running; simulated nodes registered (simulation)")


def simulate_upgrade(ctx: ReconcileContext, stale: Sequence[CloudResource], target: str) -> Outcome:
    """The simulation's stand-in for k3s upgrading on the VMs: the local control plane moves."""
    from clusters.local.errors import BinariesMissing, LocalClusterError
    from clusters.local.runtime import LocalRuntime

    runtime = LocalRuntime()
    name = ctx.cluster.external_name
    try:
        if runtime.switch_version(name, target):
            return Outcome.wait(f"Local control plane restarting on {target} (simulation)", 1.0, progress=55)
        problems, _ = runtime.settle_components(name)
        if problems:
            return Outcome.wait(f"Waiting for the local control plane: {problems[0][:150]}", 1.0, progress=55)
        runtime.sync_node_versions(name, target)
    except LocalClusterError as exc:
        raise ProviderError(str(exc), retryable=not isinstance(exc, BinariesMissing)) from exc
    for record in stale:
        ctx.resource_created(
            record, record.provider_id, VmRecord.from_data(record).upgraded(target).to_data()
        )
    ctx.event(f"Simulation: local control plane and {len(stale)} simulated nodes moved to {target}")
    return Outcome.step(f"Upgraded to {target} (simulation)", progress=60)
