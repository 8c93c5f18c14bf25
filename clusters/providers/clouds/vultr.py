"""Vultr: cloud compute instances (bare metal is left out) in a firewall group.

The group matches addresses only: it admits the cluster's members by address, rules the
reconcile loop keeps equal to the running VMs. Each rule Flotilla adds says whose it is in its
notes (`flotilla:<owner> ...`); a pass adds the reconciled owner's missing rules and deletes only
that owner's stale ones, never a rule with other notes (another owner's, or one added by hand).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from libcloud.common.vultr import VultrException
from libcloud.compute.base import NodeImage

from clusters.exceptions import ProviderError
from clusters.providers.base import CredentialField, Region, Size
from clusters.providers.clouds.base import (
    CLUSTER_OWNER,
    CloudApi,
    Firewall,
    FirewallRule,
    Vm,
    VmRequest,
    cpus_of,
    owner_note,
    owner_of_note,
    send_json,
    vm_of,
)

VULTR_FIREWALLS = "/v2/firewalls"
# Words of Vultr's refusal to delete a group that instances still use.
_VULTR_IN_USE_MARKERS = ("in use", "instance", "attached", "linked")


def _vultr_rule(rule: FirewallRule, cidr: str, notes: str) -> dict[str, Any]:
    """One Vultr rule: one network, one port or a `low:high` range."""
    network = ipaddress.IPv4Network(cidr, strict=False)
    return {
        "ip_type": "v4",
        "protocol": rule.protocol,
        "subnet": str(network.network_address),
        "subnet_size": network.prefixlen,
        "port": rule.port_range.replace("-", ":"),  # Vultr writes a range low:high
        "notes": notes,
    }


def _vultr_rules(owner: str, rules: list[FirewallRule], addresses: list[str]) -> list[dict[str, Any]]:
    """An owner's rules: each of its networks, and k3s's ports from each member's /32."""
    api = "API" if owner == CLUSTER_OWNER else ""
    wanted = []
    for rule in rules:
        wanted += [_vultr_rule(rule, cidr, owner_note(owner, api)) for cidr in rule.cidrs]
        if rule.members:
            wanted += [_vultr_rule(rule, f"{a}/32", owner_note(owner, f"member {a}")) for a in addresses]
    return wanted


def _vultr_key(rule: dict[str, Any]) -> tuple[str, ...]:
    """What a rule admits (its notes aside)."""
    return (
        str(rule.get("ip_type") or rule.get("type") or ""),
        str(rule.get("protocol") or "").lower(),
        str(rule.get("port") or ""),
        str(rule.get("subnet") or ""),
        str(rule.get("subnet_size")),
    )


class VultrApi(CloudApi):
    """Vultr instances; they join the cluster's firewall group when created."""

    credential_fields = (CredentialField("token", "API key"),)

    def build(self) -> Any:
        from libcloud.compute.drivers.vultr import VultrNodeDriver

        return VultrNodeDriver(self.credential("token"), api_version="2")  # type: ignore[no-untyped-call]

    def probe(self) -> None:
        # Regions and plans are public at Vultr: ask for something only the key may see.
        self.compute.list_nodes(ex_list_bare_metals=False)

    def sizes(self) -> list[Size]:
        found = self.compute.list_sizes(ex_list_bare_metals=False)
        here = [s for s in found if not self.region or self.region in (s.extra or {}).get("locations", [])]
        # libcloud reports Vultr's monthly price: Flotilla shows hourly ones.
        return [
            Size(
                id=str(s.id),
                name=str(s.id),
                cpus=cpus_of(s),
                memory_mb=int(s.ram or 0),
                price_hourly=round(float(s.price) / 730, 4) if s.price else None,
            )
            for s in here
        ]

    def regions(self) -> list[Region]:
        return [
            Region(id=str(loc.id), name=f"{loc.name} ({loc.country})")
            for loc in self.compute.list_locations()
        ]

    def image_id(self, size: str) -> str:
        if self.settings.get("image"):
            return str(self.settings["image"])
        for image in self.compute.list_images():
            if str(image.name).startswith("Ubuntu 24.04") and (image.extra or {}).get("arch") == "x64":
                return str(image.id)
        raise ProviderError("No Ubuntu 24.04 x64 image at Vultr: set the account's image.", retryable=False)

    def list_vms(self, names: set[str]) -> list[Vm]:
        nodes = self.compute.list_nodes(ex_list_bare_metals=False)
        return [vm for vm in map(vm_of, nodes) if vm.name in names]

    def create_vm(self, request: VmRequest) -> Vm:
        node = self.compute.create_node(
            name=request.name,
            size=self.node_size(request.size),
            location=self.location(),
            image=NodeImage(id=self.image_id(request.size), name="", driver=self.compute),
            ex_userdata=request.user_data,
            ex_hostname=request.name,
            ex_tag=request.cluster_tag,
            ex_enable_private_network=True,
            ex_firewall_group_id=request.firewall_ids[0] if request.firewall_ids else None,
        )
        return vm_of(node)


class VultrFirewall(Firewall):
    """A firewall group: it drops whatever no rule accepts (inbound only)."""

    admits_members_by = "address"

    def _find(self, name: str, provider_id: str = "") -> dict[str, Any] | None:
        return next(
            (
                g
                for g in self.driver._paginated_request(VULTR_FIREWALLS, "firewall_groups")
                if str(g.get("id")) == provider_id or (not provider_id and g.get("description") == name)
            ),
            None,
        )

    def _rules(self, group_id: str) -> list[dict[str, Any]]:
        return list(self.driver._paginated_request(f"{VULTR_FIREWALLS}/{group_id}/rules", "firewall_rules"))

    def _add_missing(
        self, group_id: str, wanted: list[dict[str, Any]], existing: list[dict[str, Any]]
    ) -> int:
        """Add the wanted rules nothing admits yet. Vultr refuses two rules admitting the same, so
        a rule someone else already has serves (it is theirs: Flotilla never deletes it)."""
        have = {_vultr_key(rule) for rule in existing}
        added = 0
        for rule in wanted:
            if _vultr_key(rule) not in have:
                send_json(self.driver, f"{VULTR_FIREWALLS}/{group_id}/rules", "POST", rule)
                have.add(_vultr_key(rule))
                added += 1
        return added

    def ensure(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """Find the group by description (a worker may have died after creating it) or create it.

        Its API rules are added where missing; the member rules come once the members run.
        """
        found = self._find(name)
        if found is None:
            created = send_json(self.driver, VULTR_FIREWALLS, "POST", {"description": name})
            group_id, existing = str(created["firewall_group"]["id"]), []
        else:
            group_id = str(found["id"])
            existing = self._rules(group_id)
        self._add_missing(group_id, _vultr_rules(CLUSTER_OWNER, rules, []), existing)
        return group_id

    def join(self, vms: list[Vm], firewall_ids: tuple[str, ...]) -> list[str]:
        """Instances made before the group existed join it (an instance has one group at most)."""
        if not firewall_ids:
            return []
        joined = []
        for vm in vms:
            if str((vm.node.extra or {}).get("firewall_group_id") or "") != firewall_ids[0]:
                send_json(
                    self.driver, f"/v2/instances/{vm.id}", "PATCH", {"firewall_group_id": firewall_ids[0]}
                )
                joined.append(vm.name)
        return joined

    def apply(
        self,
        provider_id: str,
        name: str,
        tag: str,
        owner: str,
        rules: list[FirewallRule],
        addresses: list[str],
    ) -> bool:
        """Add the owner's missing rules, then delete the owner's others (members gone, duplicates)."""
        existing = self._rules(provider_id)
        wanted = _vultr_rules(owner, rules, addresses)
        changed = self._add_missing(provider_id, wanted, existing) > 0
        keep = {_vultr_key(rule) for rule in wanted}
        for rule in existing:
            if owner_of_note(str(rule.get("notes") or "")) != owner:
                continue  # another owner's, or not Flotilla's at all
            key = _vultr_key(rule)
            if key in keep:
                keep.discard(key)  # the first of duplicates stays
                continue
            send_json(self.driver, f"{VULTR_FIREWALLS}/{provider_id}/rules/{rule['id']}", "DELETE")
            changed = True
        return changed

    def delete(self, name: str, provider_id: str) -> bool:
        found = self._find(name, provider_id)
        if found is None:
            return True
        if int(found.get("instance_count") or 0) > 0:
            return False  # instances being destroyed still count
        try:
            send_json(self.driver, f"{VULTR_FIREWALLS}/{found['id']}", "DELETE")
        except VultrException as exc:
            if exc.code == 404:
                return True
            if exc.code in (400, 409, 412) and any(
                m in str(exc.message).lower() for m in _VULTR_IN_USE_MARKERS
            ):
                return False
            raise
        return True
