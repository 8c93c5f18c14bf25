"""Clusters on cloud VMs through libcloud: k3s on plain VMs, one idempotent step at a time.

`LibcloudDriver` is the same for every provider; `clouds` holds the per-provider
adapters and `k3s` the bootstrap (cloud-init, PKI, kubeconfig).

A reconcile step does at most one thing at the provider, in this order:
1. the cluster's firewall (where the provider can admit "members only": EC2, GCE, OpenStack,
   DigitalOcean, Azure; Linode and Vultr, whose firewalls admit members by address);
2. surplus VMs destroyed, highest index first (scale down, removed pools);
3. VMs on another Kubernetes version upgraded in place, the server first, one at a time (a Job
   per node through the cluster's API; see `k3s_upgrade`);
4. missing VMs created — the server first, agents once the server has an address. Each VM is
   recorded (`plan_resource`) before it is created and looked up by name before creating it, so
   a worker killed in between adopts the VM instead of making a second one;
5. when every VM runs, for address firewalls (Linode, Vultr): any VM not behind the firewall is
   put behind it, then its rules are made exactly the API port from `api_cidrs` and k3s's ports
   from the running VMs' addresses (a pass with nothing changed only reads);
6. when every VM runs: the kubeconfig (built from Flotilla's own PKI and the server's address).
Kubernetes readiness (nodes Ready) is then checked by the reconcile loop through the kubeconfig.

Simulation (`"bootstrap": "local"` in the account's settings, never the default): the VMs are
real at the provider (or its emulator), but instead of talking to k3s on them, Flotilla starts
a local control plane on the worker's host and registers one simulated node per running VM
(`cloud_simulation`).
It exists for demos and tests against emulated clouds whose VMs never boot.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from clusters.choices import ProviderKind, ResourceState
from clusters.exceptions import ProviderError
from clusters.kube import KubeError
from clusters.providers import cloud_simulation as simulation
from clusters.providers import k3s, k3s_upgrade
from clusters.providers.base import Outcome, ProviderDriver, ReconcileContext, Region, Size
from clusters.providers.cloud_errors import LIBCLOUD_ERRORS, provider_error
from clusters.providers.clouds import (
    DEFAULT_API_CIDRS,
    AzureApi,
    CloudApi,
    DigitalOceanApi,
    Ec2Api,
    GceApi,
    LinodeApi,
    OpenStackApi,
    Vm,
    VmRequest,
    VultrApi,
    firewall_rules,
)
from clusters.versions import KubeVersion

if TYPE_CHECKING:
    from clusters.models import CloudResource, NodePool

VM = "vm"
FIREWALL = "firewall"
LOCAL_CONTROL_PLANE = simulation.LOCAL_CONTROL_PLANE
NAME_MAX = 63  # a host name label: the VM's name is also its node name
# A created VM the provider does not list is only taken as gone after this long (listings of
# some providers lag behind creation).
LISTING_GRACE_SECONDS = 180.0


@dataclass(frozen=True)
class WantedVm:
    """A VM the desired spec asks for."""

    name: str
    pool: NodePool
    index: int
    server: bool


@dataclass(frozen=True)
class Observed:
    """The provider's VMs of interest, listed once per step."""

    by_name: dict[str, Vm]
    by_id: dict[str, Vm]

    @classmethod
    def of(cls, api: CloudApi, names: set[str]) -> Observed:
        vms = api.list_vms(names) if names else []
        return cls({vm.name: vm for vm in vms}, {vm.id: vm for vm in vms})

    def find(self, record: CloudResource) -> Vm | None:
        """The VM of a record: by id once known, else by name (a VM created but never recorded)."""
        if record.provider_id:
            return self.by_id.get(record.provider_id)
        return self.by_name.get(record.name)


@dataclass(frozen=True)
class _Step:
    """What one reconcile step works from: the records, the desired VMs, the provider's VMs."""

    ctx: ReconcileContext
    api: CloudApi
    release: str
    records: dict[str, CloudResource]
    wanted: list[WantedVm]
    seen: Observed


def vm_name(external_name: str, pool: str, index: int) -> str:
    """`<cluster>-<pool>-<index>`, kept within a host name's 63 characters."""
    name = f"{external_name}-{pool}-{index}"
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(pool.encode()).hexdigest()[:6]
    keep = max(1, NAME_MAX - len(external_name) - len(str(index)) - 9)
    return f"{external_name}-{pool[:keep].rstrip('-')}-{digest}-{index}"


def cluster_tag(external_name: str) -> str:
    """The tag (label, network tag, security group name) that marks a cluster's resources."""
    return f"flotilla-{external_name}"


class LibcloudDriver(ProviderDriver):
    """Clusters of VMs at a libcloud compute provider, with k3s bootstrapped by cloud-init."""

    api_class: ClassVar[type[CloudApi]]

    def _api(self, region: str = "") -> CloudApi:
        return self.api_class(self.credentials, self.settings, region)

    @contextmanager
    def _calls(self) -> Iterator[None]:
        """Every libcloud failure leaves as a ProviderError carrying the provider's message."""
        try:
            yield
        except ProviderError:
            raise
        except LIBCLOUD_ERRORS as exc:
            raise provider_error(exc, self.label) from exc
        except Exception as exc:
            if type(exc) is not Exception:  # libcloud raises bare Exceptions with the provider's words
                raise
            raise provider_error(exc, self.label) from exc

    # --- catalogue --------------------------------------------------------------------------

    def validate(self) -> None:
        with self._calls():
            self._api().probe()

    def regions(self) -> list[Region]:
        with self._calls():
            return self._api().regions()

    def sizes(self, region: str) -> list[Size]:
        with self._calls():
            return self._api(region).sizes()

    def versions(self) -> list[str]:
        return list(k3s.K3S_RELEASES)

    @property
    def simulated(self) -> bool:
        return self.settings.get("bootstrap") == "local"

    @property
    def trusted_api(self) -> bool:  # type: ignore[override]
        """Simulated clusters' API is a local control plane Flotilla runs; real ones are checked."""
        return self.simulated

    def _api_cidrs(self) -> tuple[str, ...]:
        raw = self.settings.get("api_cidrs") or DEFAULT_API_CIDRS
        values = [v.strip() for v in raw.split(",")] if isinstance(raw, str) else [str(v) for v in raw]
        try:
            return tuple(str(ipaddress.IPv4Network(v, strict=False)) for v in values if v)
        except ValueError as exc:
            raise ProviderError(
                f"api_cidrs: {exc}", retryable=False, fields={"api_cidrs": [f"Not an IPv4 network: {exc}"]}
            ) from exc

    # --- reconcile --------------------------------------------------------------------------

    def reconcile(self, ctx: ReconcileContext) -> Outcome:
        cluster = ctx.cluster
        release = k3s.release(cluster.version)
        with self._calls():
            api = self._api(cluster.region)
            outcome = self._ensure_firewalls(ctx, api)
            if outcome is not None:
                return outcome
            records = {r.name: r for r in ctx.resources(VM)}
            wanted = self._wanted(ctx, records)
            seen = Observed.of(api, set(records) | {w.name for w in wanted})
            step = _Step(ctx, api, release, records, wanted, seen)
            # Upgrades come before new VMs, which boot on the new version (a kubelet must never be
            # newer than its API server).
            for action in (self._forget_lost, self._remove_surplus, self._upgrade, self._create_missing):
                outcome = action(step)
                if outcome is not None:
                    return outcome
            live = ctx.resources(VM)
            observed = [(record, seen.find(record)) for record in live]
            booting = sorted(r.name for r, vm in observed if vm is None or not vm.running or not vm.address)
            if booting:
                return Outcome.wait(
                    f"Waiting for {len(booting)} of {len(live)} VMs to run: {', '.join(booting[:5])}",
                    seconds=5,
                    progress=45,
                )
            if api.address_firewall:
                outcome = self._admit_members(ctx, api, [vm for _, vm in observed if vm is not None])
                if outcome is not None:
                    return outcome
            if self.simulated:
                return simulation.simulate(ctx, api, live)
            server = next(vm for r, vm in observed if vm is not None and r.data.get("role") == "server")
            pki = k3s.ClusterPki.of(ctx.secret)
            kubeconfig = k3s.kubeconfig(
                pki, name=cluster.external_name, address=server.address, tls_name=cluster.external_name
            )
            ctx.store_kubeconfig(kubeconfig, endpoint=k3s.endpoint(server.address))
        return Outcome.finished(f"{len(live)} VMs running; k3s starts on them through cloud-init")

    def _ensure_firewalls(self, ctx: ReconcileContext, api: CloudApi) -> Outcome | None:
        tag = cluster_tag(ctx.cluster.external_name)
        for name in api.firewall_names(tag):
            record = ctx.plan_resource(FIREWALL, name)
            if record.state != ResourceState.CREATED:
                provider_id = api.ensure_firewall(name, firewall_rules(self._api_cidrs()), tag)
                ctx.resource_created(record, provider_id)
                ctx.event(f"Firewall {name} ready (API port and member traffic only)")
                return Outcome.step(f"Firewall {name} ready", progress=5)
        return None

    def _admit_members(self, ctx: ReconcileContext, api: CloudApi, vms: list[Vm]) -> Outcome | None:
        """Address firewalls: every running VM behind them, member ports from exactly their addresses.

        Runs on every pass once all VMs run, so a scale up or down reaches the rules on the next one;
        with nothing changed it only reads.
        """
        firewalls = ctx.resources(FIREWALL)
        joined = api.join_firewalls(vms, tuple(r.provider_id for r in firewalls))
        if joined:
            names = ", ".join(sorted(joined))
            ctx.event(f"Put VMs behind the cluster's firewall: {names}")
            return Outcome.step(f"VMs put behind the firewall: {names}", progress=48)
        addresses = sorted({vm.member_address for vm in vms})
        rules = firewall_rules(self._api_cidrs())
        for record in firewalls:
            if api.admit_members(record.provider_id, rules, addresses):
                ctx.event(f"Firewall {record.name} admits k3s's ports from {', '.join(addresses)} only")
                return Outcome.step(f"Firewall admits the cluster's {len(addresses)} machines", progress=50)
        return None

    def _upgrade(self, step: _Step) -> Outcome | None:
        """Move the VMs that run another version to the cluster's: the server first, one at a time."""
        ctx, target = step.ctx, str(KubeVersion.from_any(step.ctx.cluster.version))
        stale = sorted(
            (
                r
                for r in step.records.values()
                if r.state == ResourceState.CREATED and r.data.get("version") not in (None, target)
            ),
            key=lambda r: (r.data.get("role") != "server", r.name),
        )
        if not stale:
            return None
        k3s_upgrade.check_upgrade_path({str(r.data["version"]) for r in stale}, target)
        if self.simulated:
            return simulation.simulate_upgrade(ctx, stale, target)
        record = stale[0]
        total = sum(1 for r in step.records.values() if r.state == ResourceState.CREATED)
        progress = 20 + int(60 * (total - len(stale)) / max(total, 1))
        install_url = str(self.settings.get("k3s_install_url") or k3s.INSTALL_URL)
        try:
            found = k3s_upgrade.advance(
                ctx.cluster.kubeconfig_text(),
                record.name,
                mode="server" if record.data.get("role") == "server" else "agent",
                release=step.release,
                install_url=install_url,
                image=str(self.settings.get("k3s_upgrade_image") or k3s_upgrade.DEFAULT_IMAGE),
            )
        except KubeError:
            # The API server restarts while the server node upgrades: wait (the step timeout bounds it).
            return Outcome.wait(
                k3s_upgrade.upgrading(record.name, step.release), seconds=5, progress=progress
            )
        except k3s_upgrade.UpgradeFailed as exc:
            raise ProviderError(str(exc), retryable=False) from exc
        if not found.done:
            return Outcome.wait(found.message, seconds=5, progress=progress)
        ctx.resource_created(record, record.provider_id, {"version": target})
        ctx.event(f"{found.message} ({total - len(stale) + 1}/{total} nodes)")
        return Outcome.step(found.message, progress=progress)

    @staticmethod
    def _wanted(ctx: ReconcileContext, records: dict[str, CloudResource]) -> list[WantedVm]:
        """The VMs of the desired pools; the server is pinned once recorded."""
        ext = ctx.cluster.external_name
        pools = [p for p in ctx.pools() if not p.removing]
        server_record = next((r for r in records.values() if r.data.get("role") == "server"), None)
        if server_record is not None:
            server_name, server_pool = server_record.name, server_record.pool_name
        else:
            first = next((p for p in pools if p.count > 0), None)
            if first is None:
                raise ProviderError("A cluster on cloud VMs needs at least one node.", retryable=False)
            server_name, server_pool = vm_name(ext, first.name, 0), first.name
        wanted = [
            WantedVm(vm_name(ext, pool.name, i), pool, i, server=vm_name(ext, pool.name, i) == server_name)
            for pool in pools
            for i in range(pool.count)
        ]
        if not any(w.server for w in wanted):
            raise ProviderError(
                f"Pool {server_pool!r} runs the cluster's k3s server: keep at least one node in it.",
                retryable=False,
            )
        return sorted(wanted, key=lambda w: not w.server)

    def _forget_lost(self, step: _Step) -> Outcome | None:
        """A created VM the provider no longer has (deleted by hand): forget it, so it is remade."""
        ctx = step.ctx
        for record in step.records.values():
            if record.state != ResourceState.CREATED or step.seen.find(record) is not None:
                continue
            if time.time() - float(record.data.get("created_at") or 0) < LISTING_GRACE_SECONDS:
                return Outcome.wait(f"Waiting for the provider to list VM {record.name}", seconds=5)
            if record.data.get("role") == "server":
                raise ProviderError(
                    f"The k3s server VM {record.name} was deleted outside Flotilla; the cluster cannot "
                    "be repaired: delete it and create it again.",
                    retryable=False,
                )
            ctx.resource_deleted(record)
            ctx.event(f"VM {record.name} was deleted outside Flotilla; it will be recreated", level="warning")
            return Outcome.step(f"VM {record.name} disappeared", progress=20)
        return None

    def _remove_surplus(self, step: _Step) -> Outcome | None:
        names = {w.name for w in step.wanted}
        surplus = [r for r in step.records.values() if r.name not in names]
        if not surplus:
            return None
        record = max(surplus, key=lambda r: (int(r.data.get("index") or 0), r.name))
        if not step.api.destroy_vm(record.name, step.seen.find(record)):
            return Outcome.wait(f"Waiting for VM {record.name} to be deleted", seconds=5)
        step.ctx.resource_deleted(record)
        step.ctx.event(f"Destroyed VM {record.name} (pool {record.pool_name})")
        return Outcome.step(f"VM {record.name} destroyed", progress=25)

    def _create_missing(self, step: _Step) -> Outcome | None:
        ctx, wanted = step.ctx, step.wanted
        server = next(w for w in wanted if w.server)
        for position, want in enumerate(wanted):
            record = step.records.get(want.name)
            if record is not None and record.state == ResourceState.CREATED:
                continue
            server_vm = None
            if not want.server:
                server_record = step.records.get(server.name)
                server_vm = step.seen.find(server_record) if server_record else None
                if server_vm is None or not server_vm.running or not server_vm.member_address:
                    return Outcome.wait(
                        "Waiting for the server VM to get its address", seconds=5, progress=15
                    )
            if record is None:
                record = ctx.plan_resource(
                    VM,
                    want.name,
                    pool_name=want.pool.name,
                    data={
                        "role": "server" if want.server else "agent",
                        "index": want.index,
                        "version": str(KubeVersion.from_any(ctx.cluster.version)),
                        "nonce": secrets.token_hex(8),
                    },
                )
            progress = 10 + int(30 * position / max(len(wanted), 1))
            existing = step.seen.by_name.get(want.name)
            if existing is not None:
                ctx.resource_created(record, existing.id, {"created_at": time.time()})
                ctx.event(f"Adopted VM {want.name}, created before an interrupted worker could record it")
                return Outcome.step(f"VM {want.name} adopted", progress=progress)
            request = VmRequest(
                name=want.name,
                size=want.pool.size,
                user_data=self._user_data(ctx, step.api, want, server_vm, step.release),
                cluster_tag=cluster_tag(ctx.cluster.external_name),
                firewall_names=tuple(r.name for r in ctx.resources(FIREWALL)),
                firewall_ids=tuple(r.provider_id for r in ctx.resources(FIREWALL)),
                idempotency_key=f"{want.name}-{record.data.get('nonce', '')}",
            )
            vm = step.api.create_vm(request)
            ctx.resource_created(record, vm.id, {"created_at": time.time()})
            role = "k3s server" if want.server else "agent"
            ctx.event(f"Created VM {want.name} ({want.pool.size}, {role} of pool {want.pool.name})")
            return Outcome.step(f"VM {want.name} created", progress=progress)
        return None

    def _user_data(
        self, ctx: ReconcileContext, api: CloudApi, want: WantedVm, server_vm: Vm | None, release: str
    ) -> str:
        pki = k3s.ClusterPki.of(ctx.secret)
        role = k3s.NodeRole(
            node_name=want.name,
            pool=want.pool.name,
            labels=dict(want.pool.labels or {}),
            taints=list(want.pool.taints or []),
        )
        install_url = str(self.settings.get("k3s_install_url") or k3s.INSTALL_URL)
        if want.server:
            # Without a firewall that admits members only, pod traffic goes over WireGuard.
            backend = "vxlan" if api.member_firewall else "wireguard-native"
            return k3s.server_user_data(
                pki,
                role,
                k3s_release=release,
                tls_name=ctx.cluster.external_name,
                flannel_backend=backend,
                install_url=install_url,
            )
        assert server_vm is not None
        return k3s.agent_user_data(
            pki, role, server_address=server_vm.member_address, k3s_release=release, install_url=install_url
        )

    # --- destroy ----------------------------------------------------------------------------

    def destroy(self, ctx: ReconcileContext) -> Outcome:
        for plane in ctx.resources(LOCAL_CONTROL_PLANE):
            from clusters.local.errors import LocalClusterError
            from clusters.local.runtime import LocalRuntime

            try:
                LocalRuntime().delete(plane.name)
            except LocalClusterError as exc:
                raise ProviderError(str(exc)) from exc
            ctx.resource_deleted(plane)
            return Outcome.step("Local control plane deleted (simulation)", progress=10)
        with self._calls():
            api = self._api(ctx.cluster.region)
            vms = ctx.resources(VM)
            if vms:
                seen = Observed.of(api, {r.name for r in vms})
                # Agents first, highest index first; the server last.
                record = max(
                    vms, key=lambda r: (r.data.get("role") != "server", int(r.data.get("index") or 0))
                )
                if not api.destroy_vm(record.name, seen.find(record)):
                    return Outcome.wait(f"Waiting for VM {record.name} to be deleted", seconds=5, progress=30)
                ctx.resource_deleted(record)
                ctx.event(f"Destroyed VM {record.name}")
                return Outcome.step(f"VM {record.name} destroyed ({len(vms) - 1} left)", progress=30)
            for record in ctx.resources(FIREWALL):
                if not api.delete_firewall(record.name, record.provider_id):
                    return Outcome.wait(f"Waiting for the VMs to release firewall {record.name}", seconds=5)
                ctx.resource_deleted(record)
                ctx.event(f"Deleted firewall {record.name}")
                return Outcome.step(f"Firewall {record.name} deleted", progress=90)
        return Outcome.finished("Every VM and firewall of the cluster is gone")


class Ec2Driver(LibcloudDriver):
    """AWS EC2."""

    kind = ProviderKind.EC2
    label = "AWS EC2"
    api_class = Ec2Api
    credential_fields = Ec2Api.credential_fields


class DigitalOceanDriver(LibcloudDriver):
    """DigitalOcean droplets."""

    kind = ProviderKind.DIGITALOCEAN
    label = "DigitalOcean"
    api_class = DigitalOceanApi
    credential_fields = DigitalOceanApi.credential_fields


class GceDriver(LibcloudDriver):
    """Google Compute Engine."""

    kind = ProviderKind.GCE
    label = "Google Compute Engine"
    api_class = GceApi
    credential_fields = GceApi.credential_fields


class LinodeDriver(LibcloudDriver):
    """Linode."""

    kind = ProviderKind.LINODE
    label = "Linode"
    api_class = LinodeApi
    credential_fields = LinodeApi.credential_fields


class VultrDriver(LibcloudDriver):
    """Vultr."""

    kind = ProviderKind.VULTR
    label = "Vultr"
    api_class = VultrApi
    credential_fields = VultrApi.credential_fields


class AzureDriver(LibcloudDriver):
    """Azure."""

    kind = ProviderKind.AZURE
    label = "Azure"
    api_class = AzureApi
    credential_fields = AzureApi.credential_fields


class OpenStackDriver(LibcloudDriver):
    """OpenStack."""

    kind = ProviderKind.OPENSTACK
    label = "OpenStack"
    api_class = OpenStackApi
    credential_fields = OpenStackApi.credential_fields


CLOUD_DRIVERS: dict[str, type[ProviderDriver]] = {
    driver.kind: driver
    for driver in (
        Ec2Driver,
        DigitalOceanDriver,
        GceDriver,
        LinodeDriver,
        VultrDriver,
        AzureDriver,
        OpenStackDriver,
    )
}

__all__ = ["CLOUD_DRIVERS", "LibcloudDriver", "vm_name"]
