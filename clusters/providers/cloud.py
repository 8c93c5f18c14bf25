"""Clusters on cloud VMs through libcloud: k3s on plain VMs, one idempotent step at a time.

`LibcloudDriver` is the same for every provider; `clouds` holds the per-provider
adapters and `k3s` the bootstrap (cloud-init, PKI, kubeconfig).

A reconcile step does at most one thing at the provider, in this order:
1. the cluster's firewall, where the provider declares the firewall capability (all seven: EC2,
   GCE, OpenStack, DigitalOcean and Azure admit "members only" as a group; Linode and Vultr by
   address);
2. surplus VMs destroyed, highest index first (scale down, removed pools);
3. VMs on another Kubernetes version upgraded in place, the server first, one at a time (a Job
   per node through the cluster's API; see `k3s_upgrade`);
4. missing VMs created — the server first, agents once the server has an address. Each VM is
   recorded (`plan_resource`) before it is created and looked up by name before creating it, so
   a worker killed in between adopts the VM instead of making a second one;
5. when every VM runs, the firewall's rules, owner by owner: the cluster's own (the API port from
   `api_cidrs`, k3s's ports between members — for address firewalls, from the running VMs'
   addresses, after any VM not behind the firewall is put behind it) and those other apps
   contribute (`capabilities.register_firewall_contributor`). Each adapter changes only the
   rules it made for that owner; a pass with nothing changed only reads;
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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from clusters.choices import ProviderKind, ResourceState
from clusters.exceptions import ProviderError
from clusters.kube import KubeError
from clusters.providers import cloud_simulation as simulation
from clusters.providers import k3s, k3s_upgrade
from clusters.providers.base import Outcome, ProviderDriver, ReconcileContext, Region, Size
from clusters.providers.capabilities import Capabilities, CloudKit, by_owner, contributed_rules
from clusters.providers.cloud_errors import LIBCLOUD_ERRORS, provider_error
from clusters.providers.clouds import (
    DEFAULT_API_CIDRS,
    AzureApi,
    AzureFirewall,
    CloudAccount,
    CloudApi,
    DigitalOceanApi,
    DigitalOceanFirewall,
    Ec2Api,
    Ec2Firewall,
    Firewall,
    GceApi,
    GceFirewall,
    LinodeApi,
    LinodeFirewall,
    OpenStackApi,
    OpenStackFirewall,
    Vm,
    VmRequest,
    VultrApi,
    VultrFirewall,
    firewall_rules,
)
from clusters.providers.records import FirewallRecord, VmRecord
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
    firewall: Firewall | None
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

    kit: ClassVar[CloudKit]

    def _capabilities(self, region: str = "") -> Capabilities:
        """Every capability of the account, built from its one credentials object."""
        return self.kit.build(CloudAccount(self.credentials, self.settings).in_region(region))

    def _api(self, region: str = "") -> CloudApi:
        return self._capabilities(region).compute

    def capability(self, name: str, region: str = "") -> Any | None:
        """The adapter of capability `name` in `region`; None when the provider does not offer it."""
        return self._capabilities(region).capability(name)

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
            caps = self._capabilities(cluster.region)
            api, firewall = caps.compute, caps.firewall
            outcome = self._ensure_firewalls(ctx, firewall)
            if outcome is not None:
                return outcome
            records = {r.name: r for r in ctx.resources(VM)}
            wanted = self._wanted(ctx, records)
            seen = Observed.of(api, set(records) | {w.name for w in wanted})
            step = _Step(ctx, api, firewall, release, records, wanted, seen)
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
            if firewall is not None:
                outcome = self._firewall_rules(ctx, firewall, [vm for _, vm in observed if vm is not None])
                if outcome is not None:
                    return outcome
            if self.simulated:
                return simulation.simulate(ctx, api, live)
            server = next(vm for r, vm in observed if vm is not None and VmRecord.from_data(r).server)
            pki = k3s.ClusterPki.of(ctx.secret)
            kubeconfig = k3s.kubeconfig(
                pki, name=cluster.external_name, address=server.address, tls_name=cluster.external_name
            )
            ctx.store_kubeconfig(kubeconfig, endpoint=k3s.endpoint(server.address))
        return Outcome.finished(f"{len(live)} VMs running; k3s starts on them through cloud-init")

    def _ensure_firewalls(self, ctx: ReconcileContext, firewall: Firewall | None) -> Outcome | None:
        if firewall is None:
            return None
        tag = cluster_tag(ctx.cluster.external_name)
        for name in firewall.names(tag):
            record = ctx.plan_resource(FIREWALL, name, data=FirewallRecord().to_data())
            if record.state != ResourceState.CREATED:
                provider_id = firewall.ensure(name, firewall_rules(self._api_cidrs()), tag)
                ctx.resource_created(record, provider_id)
                ctx.event(f"Firewall {name} ready (API port and member traffic only)")
                return Outcome.step(f"Firewall {name} ready", progress=5)
        return None

    def _firewall_rules(self, ctx: ReconcileContext, firewall: Firewall, vms: list[Vm]) -> Outcome | None:
        """Every running VM behind the firewall, then each owner's rules as that owner wants them.

        Runs on every pass once all VMs run, so a scale up or down, a new `api_cidrs` or a rule
        another app contributes reaches the provider on the next one; with nothing changed it
        only reads. One firewall changes per step.
        """
        firewalls = ctx.resources(FIREWALL)
        by_address = firewall.admits_members_by == "address"
        joined = firewall.join(vms, tuple(r.provider_id for r in firewalls))
        if joined:
            names = ", ".join(sorted(joined))
            ctx.event(f"Put VMs behind the cluster's firewall: {names}")
            return Outcome.step(f"VMs put behind the firewall: {names}", progress=48)
        addresses = sorted({vm.member_address for vm in vms}) if by_address else []
        wanted = by_owner(firewall_rules(self._api_cidrs()) + contributed_rules(ctx.cluster))
        tag = cluster_tag(ctx.cluster.external_name)
        for record in firewalls:
            stored = FirewallRecord.from_data(record)
            changed = [
                owner
                for owner in sorted(set(wanted) | set(stored.owners), key=lambda o: (o != "cluster", o))
                if firewall.apply(
                    record.provider_id, record.name, tag, owner, wanted.get(owner, []), addresses
                )
            ]
            owners = tuple(sorted(wanted))
            if owners != stored.owners:
                ctx.resource_created(record, record.provider_id, replace(stored, owners=owners).to_data())
            if not changed:
                continue
            if by_address and changed == ["cluster"]:
                ctx.event(f"Firewall {record.name} admits k3s's ports from {', '.join(addresses)} only")
                return Outcome.step(f"Firewall admits the cluster's {len(addresses)} machines", progress=50)
            ctx.event(f"Firewall {record.name}: rules of {', '.join(changed)} brought up to date")
            return Outcome.step(f"Firewall {record.name} rules updated", progress=50)
        return None

    def _upgrade(self, step: _Step) -> Outcome | None:
        """Move the VMs that run another version to the cluster's: the server first, one at a time."""
        ctx, target = step.ctx, str(KubeVersion.from_any(step.ctx.cluster.version))
        typed = {r.name: VmRecord.from_data(r) for r in step.records.values()}
        stale = sorted(
            (
                r
                for r in step.records.values()
                if r.state == ResourceState.CREATED and typed[r.name].version not in ("", target)
            ),
            key=lambda r: (not typed[r.name].server, r.name),
        )
        if not stale:
            return None
        k3s_upgrade.check_upgrade_path({typed[r.name].version for r in stale}, target)
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
                mode=typed[record.name].role,
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
        ctx.resource_created(record, record.provider_id, typed[record.name].upgraded(target).to_data())
        ctx.event(f"{found.message} ({total - len(stale) + 1}/{total} nodes)")
        return Outcome.step(found.message, progress=progress)

    @staticmethod
    def _wanted(ctx: ReconcileContext, records: dict[str, CloudResource]) -> list[WantedVm]:
        """The VMs of the desired pools; the server is pinned once recorded."""
        ext = ctx.cluster.external_name
        pools = [p for p in ctx.pools() if not p.removing]
        server_record = next((r for r in records.values() if VmRecord.from_data(r).server), None)
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
            vm = VmRecord.from_data(record)
            if time.time() - (vm.created_at or 0) < LISTING_GRACE_SECONDS:
                return Outcome.wait(f"Waiting for the provider to list VM {record.name}", seconds=5)
            if vm.server:
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
        record = max(surplus, key=lambda r: (VmRecord.from_data(r).index, r.name))
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
                    data=VmRecord(
                        role="server" if want.server else "agent",
                        index=want.index,
                        version=str(KubeVersion.from_any(ctx.cluster.version)),
                        nonce=secrets.token_hex(8),
                    ).to_data(),
                )
            planned = VmRecord.from_data(record)
            progress = 10 + int(30 * position / max(len(wanted), 1))
            existing = step.seen.by_name.get(want.name)
            if existing is not None:
                ctx.resource_created(record, existing.id, planned.created(time.time()).to_data())
                ctx.event(f"Adopted VM {want.name}, created before an interrupted worker could record it")
                return Outcome.step(f"VM {want.name} adopted", progress=progress)
            request = VmRequest(
                name=want.name,
                size=want.pool.size,
                user_data=self._user_data(ctx, step.firewall, want, server_vm, step.release),
                cluster_tag=cluster_tag(ctx.cluster.external_name),
                firewall_names=tuple(r.name for r in ctx.resources(FIREWALL)),
                firewall_ids=tuple(r.provider_id for r in ctx.resources(FIREWALL)),
                idempotency_key=f"{want.name}-{planned.nonce}",
            )
            vm = step.api.create_vm(request)
            ctx.resource_created(record, vm.id, planned.created(time.time()).to_data())
            role = "k3s server" if want.server else "agent"
            ctx.event(f"Created VM {want.name} ({want.pool.size}, {role} of pool {want.pool.name})")
            return Outcome.step(f"VM {want.name} created", progress=progress)
        return None

    def _user_data(
        self,
        ctx: ReconcileContext,
        firewall: Firewall | None,
        want: WantedVm,
        server_vm: Vm | None,
        release: str,
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
            members_only = firewall is not None and firewall.admits_members_by == "group"
            backend = "vxlan" if members_only else "wireguard-native"
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
            caps = self._capabilities(ctx.cluster.region)
            api = caps.compute
            vms = ctx.resources(VM)
            if vms:
                seen = Observed.of(api, {r.name for r in vms})
                # Agents first, highest index first; the server last.
                record = max(
                    vms, key=lambda r: (VmRecord.from_data(r).server is False, VmRecord.from_data(r).index)
                )
                if not api.destroy_vm(record.name, seen.find(record)):
                    return Outcome.wait(f"Waiting for VM {record.name} to be deleted", seconds=5, progress=30)
                ctx.resource_deleted(record)
                ctx.event(f"Destroyed VM {record.name}")
                return Outcome.step(f"VM {record.name} destroyed ({len(vms) - 1} left)", progress=30)
            for record in ctx.resources(FIREWALL):
                if caps.firewall is not None and not caps.firewall.delete(record.name, record.provider_id):
                    return Outcome.wait(f"Waiting for the VMs to release firewall {record.name}", seconds=5)
                ctx.resource_deleted(record)
                ctx.event(f"Deleted firewall {record.name}")
                return Outcome.step(f"Firewall {record.name} deleted", progress=90)
        return Outcome.finished("Every VM and firewall of the cluster is gone")


class Ec2Driver(LibcloudDriver):
    """AWS EC2."""

    kind = ProviderKind.EC2
    label = "AWS EC2"
    kit = CloudKit(compute=Ec2Api, firewall=Ec2Firewall)
    capabilities = kit.offered()
    credential_fields = Ec2Api.credential_fields


class DigitalOceanDriver(LibcloudDriver):
    """DigitalOcean droplets."""

    kind = ProviderKind.DIGITALOCEAN
    label = "DigitalOcean"
    kit = CloudKit(compute=DigitalOceanApi, firewall=DigitalOceanFirewall)
    capabilities = kit.offered()
    credential_fields = DigitalOceanApi.credential_fields


class GceDriver(LibcloudDriver):
    """Google Compute Engine."""

    kind = ProviderKind.GCE
    label = "Google Compute Engine"
    kit = CloudKit(compute=GceApi, firewall=GceFirewall)
    capabilities = kit.offered()
    credential_fields = GceApi.credential_fields


class LinodeDriver(LibcloudDriver):
    """Linode."""

    kind = ProviderKind.LINODE
    label = "Linode"
    kit = CloudKit(compute=LinodeApi, firewall=LinodeFirewall)
    capabilities = kit.offered()
    credential_fields = LinodeApi.credential_fields


class VultrDriver(LibcloudDriver):
    """Vultr."""

    kind = ProviderKind.VULTR
    label = "Vultr"
    kit = CloudKit(compute=VultrApi, firewall=VultrFirewall)
    capabilities = kit.offered()
    credential_fields = VultrApi.credential_fields


class AzureDriver(LibcloudDriver):
    """Azure."""

    kind = ProviderKind.AZURE
    label = "Azure"
    kit = CloudKit(compute=AzureApi, firewall=AzureFirewall)
    capabilities = kit.offered()
    credential_fields = AzureApi.credential_fields


class OpenStackDriver(LibcloudDriver):
    """OpenStack."""

    kind = ProviderKind.OPENSTACK
    label = "OpenStack"
    kit = CloudKit(compute=OpenStackApi, firewall=OpenStackFirewall)
    capabilities = kit.offered()
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
