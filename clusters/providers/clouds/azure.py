"""Azure (Resource Manager): VMs in the account's resource group, behind a network security group.

Each cluster gets an application security group (`<tag>-members`, its machines) and a network
security group (`<tag>`) admitting the API port from `api_cidrs` and k3s's ports from the members
only. libcloud's driver has no calls for either, nor for a Standard public IP, so the adapters
send those ARM requests through the compute driver's own authenticated connection.

An NSG is written whole (PUT), so the firewall adapter reads it first and writes back every rule
that is not the reconciled owner's as it found it. The cluster's own rules are named
`addresses-*`, `members-*` and `deny-virtual-network`; another owner's `flotilla-<owner>-<n>`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError
from libcloud.compute.base import NodeAuthSSHKey, NodeLocation

from clusters.exceptions import ProviderError
from clusters.providers.base import CredentialField, Size
from clusters.providers.clouds.base import (
    CLUSTER_OWNER,
    CLUSTER_TAG,
    CloudApi,
    Firewall,
    FirewallRule,
    Vm,
    VmRequest,
    throwaway_ssh_key,
    vm_of,
)

NETWORK_API = {"api-version": "2024-05-01"}
FIRST_PRIORITY = 100
# Where the rules of owners other than the cluster start.
CONTRIBUTED_PRIORITY = 1000
# Below it, Azure's defaults admit the whole virtual network (65000) and its load balancer (65001).
DENY_VNET_PRIORITY = 4000
# Azure may refuse a reference to a resource it is still provisioning: wait this long for it, at most.
PROVISIONING_POLLS = 10
PROVISIONING_POLL_SECONDS = 1.0
# Azure's refusals to delete something another resource still holds (a NIC of a VM being deleted,
# an NSG on a NIC being deleted) or that another operation is changing: wait, and delete later.
_IN_USE_MARKERS = ("inuse", "cannotbedeleted", "referencedby", "reservedforanother", "anotheroperation")


def _azure_driver_class() -> Any:
    from libcloud.common.azure_arm import AzureResourceManagementConnection
    from libcloud.compute.drivers.azure_arm import AzureNodeDriver

    class Connection(AzureResourceManagementConnection):
        # libcloud 3.9 base64-encodes custom data to bytes, which JSON cannot carry.
        def encode_data(self, data: Any) -> str:
            return json.dumps(data, default=lambda o: o.decode() if isinstance(o, bytes) else str(o))

    class Driver(AzureNodeDriver):
        connectionCls = Connection

    return Driver


def _security_rules(rules: list[FirewallRule], members_id: str, used: set[int]) -> list[dict[str, Any]]:
    """The cluster's inbound rules: addresses to any machine, members to members, the rest of the
    VNet denied; at priorities no other rule of the NSG holds (`used`).

    Azure does not mix address prefixes and application security groups in one rule: a rule
    admitting both becomes two.
    """
    members = [{"id": members_id}]
    allowed: list[tuple[str, dict[str, Any]]] = []
    sources: dict[str, Any]
    for rule in rules:
        if rule.cidrs:
            sources = {"sourceAddressPrefixes": list(rule.cidrs), "destinationAddressPrefix": "*"}
            allowed.append((f"addresses-{rule.protocol}-{rule.port_range}", _allow(rule) | sources))
        if rule.members:
            sources = {
                "sourceApplicationSecurityGroups": members,
                "destinationApplicationSecurityGroups": members,
            }
            allowed.append((f"members-{rule.protocol}-{rule.port_range}", _allow(rule) | sources))
    deny_vnet = {
        "priority": DENY_VNET_PRIORITY,
        "direction": "Inbound",
        "access": "Deny",
        "protocol": "*",
        "sourceAddressPrefix": "VirtualNetwork",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "*",
        "destinationPortRange": "*",
    }
    priorities = _free_priorities(FIRST_PRIORITY, 10, used)
    return [
        {"name": name, "properties": {"priority": next(priorities), **properties}}
        for name, properties in allowed
    ] + [{"name": "deny-virtual-network", "properties": deny_vnet}]


def _allow(rule: FirewallRule) -> dict[str, Any]:
    return {
        "direction": "Inbound",
        "access": "Allow",
        "protocol": rule.protocol.capitalize(),
        "sourcePortRange": "*",
        "destinationPortRange": rule.port_range,
    }


def _contributed_rules(owner: str, rules: list[FirewallRule], used: set[int]) -> list[dict[str, Any]]:
    """Another owner's rules: networks to any machine of the cluster."""
    priorities = _free_priorities(CONTRIBUTED_PRIORITY, 1, used)
    return [
        {
            "name": f"{_prefix(owner)}{index}",
            "properties": {
                "priority": next(priorities),
                **_allow(rule),
                "sourceAddressPrefixes": list(rule.cidrs),
                "destinationAddressPrefix": "*",
            },
        }
        for index, rule in enumerate(rules)
    ]


def _free_priorities(start: int, step: int, used: set[int]) -> Iterator[int]:
    priority = start
    while True:
        if priority not in used:
            yield priority
        priority += step


def _prefix(owner: str) -> str:
    return "flotilla-" + re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-") + "-"


def _owns(owner: str, rule: dict[str, Any]) -> bool:
    name = str(rule.get("name") or "")
    if owner == CLUSTER_OWNER:
        return name == "deny-virtual-network" or name.startswith(("addresses-", "members-"))
    return name.startswith(_prefix(owner))


def _shape(rule: dict[str, Any]) -> tuple[Any, ...]:
    """What a rule admits, and where (priorities aside: they only order disjoint rules)."""
    p = rule.get("properties") or {}
    groups = sorted(str(g.get("id", "")).lower() for g in p.get("sourceApplicationSecurityGroups") or [])
    return (
        str(rule.get("name")),
        str(p.get("access")),
        str(p.get("direction")),
        str(p.get("protocol")).lower(),
        str(p.get("destinationPortRange")),
        tuple(sorted(p.get("sourceAddressPrefixes") or [])),
        str(p.get("sourceAddressPrefix") or ""),
        tuple(groups),
    )


def _in_use(exc: BaseHTTPError) -> bool:
    words = str(exc).lower().replace(" ", "")
    return exc.code in (400, 409) and any(marker in words for marker in _IN_USE_MARKERS)


class AzureApi(CloudApi):
    """Azure virtual machines in an existing resource group and virtual network."""

    credential_fields = (
        CredentialField("tenant_id", "Directory (tenant) ID", secret=False),
        CredentialField("subscription_id", "Subscription ID", secret=False),
        CredentialField("client_id", "Application (client) ID", secret=False),
        CredentialField("client_secret", "Client secret"),
        CredentialField("resource_group", "Resource group", secret=False),
        CredentialField("network", "Virtual network", secret=False),
        CredentialField("subnet", "Subnet", secret=False, required=False, help="Default: default"),
        CredentialField("image", "Image", secret=False, required=False, help="publisher:offer:sku:version"),
    )
    default_image = "Canonical:ubuntu-24_04-lts:server:latest"

    def build(self) -> Any:
        return _azure_driver_class()(
            self.credential("tenant_id"),
            self.credential("subscription_id"),
            self.credential("client_id"),
            self.credential("client_secret"),
            region=self.region or None,
        )

    def probe(self) -> None:
        try:
            self.compute.connection.get_token_from_credentials()
        except BaseHTTPError as exc:
            raise InvalidCredsError(str(exc)) from exc
        self.compute.list_locations()

    def sizes(self) -> list[Size]:
        return [self.size_of(s) for s in self.compute.list_sizes(location=self.location())]

    def location(self) -> Any:
        return NodeLocation(
            id=self.region.lower().replace(" ", ""), name=self.region, country="", driver=self.compute
        )

    def list_vms(self, names: set[str]) -> list[Vm]:
        nodes = self.compute.list_nodes(ex_resource_group=self.credential("resource_group"))
        return [vm for vm in map(vm_of, nodes) if vm.name in names]

    # --- raw ARM requests (Microsoft.Network) -----------------------------------------------

    def _network_id(self, kind: str, name: str) -> str:
        return (
            f"/subscriptions/{self.credential('subscription_id')}/resourceGroups"
            f"/{self.credential('resource_group')}/providers/Microsoft.Network/{kind}/{name}"
        )

    def _get(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(self.compute.connection.request(path, params=NETWORK_API).object)
        except BaseHTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def _put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or update (a repeated PUT with the same body changes nothing)."""
        response = self.compute.connection.request(path, params=NETWORK_API, data=body, method="PUT")
        return dict(response.object)

    def _delete(self, path: str) -> bool:
        """True once it is gone; False while Azure is deleting it or something still holds it."""
        try:
            response = self.compute.connection.request(path, params=NETWORK_API, method="DELETE")
        except BaseHTTPError as exc:
            if exc.code in (204, 404):  # Azure answers 204 when there was nothing to delete
                return True
            if _in_use(exc):
                return False
            raise
        return bool(response.status != 202)  # 200: deleted; 202: accepted, still deleting

    def _provisioned(self, path: str, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource once Azure has provisioned it (before anything refers to it)."""
        for _ in range(PROVISIONING_POLLS):
            state = str((resource.get("properties") or {}).get("provisioningState") or "Succeeded")
            if state == "Succeeded":
                return resource
            time.sleep(PROVISIONING_POLL_SECONDS)
            resource = self._get(path) or {"properties": {"provisioningState": "gone"}}
        raise ProviderError(
            f"Azure: {path.rsplit('/', 1)[-1]} is not provisioned yet ({state}); trying later."
        )

    # --- firewall ---------------------------------------------------------------------------

    def _members_id(self, firewall_name: str) -> str:
        return self._network_id("applicationSecurityGroups", f"{firewall_name}-members")

    # --- VMs --------------------------------------------------------------------------------

    def _network_interface(self, request: VmRequest) -> Any:
        """The VM's Standard public IP and its NIC (in the cluster's groups), found by name or created."""
        from libcloud.compute.drivers.azure_arm import AzureNic

        location, tags = self.location().id, {CLUSTER_TAG: request.cluster_tag}
        ip_path = self._network_id("publicIPAddresses", f"{request.name}-ip")
        ip = self._get(ip_path) or self._put(
            ip_path,
            {
                "location": location,
                "tags": tags,
                "sku": {"name": "Standard", "tier": "Regional"},
                "properties": {"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4"},
            },
        )
        self._provisioned(ip_path, ip)
        nic_path = self._network_id("networkInterfaces", f"{request.name}-nic")
        nic = self._get(nic_path)
        if nic is None:
            subnet = (
                f"/subscriptions/{self.credential('subscription_id')}/resourceGroups"
                f"/{self.credential('resource_group')}/providers/Microsoft.Network/virtualNetworks"
                f"/{self.credential('network')}/subnets/{self.settings.get('subnet') or 'default'}"
            )
            ip_config: dict[str, Any] = {
                "subnet": {"id": subnet},
                "privateIPAllocationMethod": "Dynamic",
                "publicIPAddress": {"id": str(ip.get("id") or ip_path)},
            }
            properties: dict[str, Any] = {
                "ipConfigurations": [{"name": "ipconfig1", "properties": ip_config}]
            }
            if request.firewall_names:
                firewall = request.firewall_names[0]
                nsg_id = next(iter(request.firewall_ids), "") or self._network_id(
                    "networkSecurityGroups", firewall
                )
                ip_config["applicationSecurityGroups"] = [{"id": self._members_id(firewall)}]
                properties["networkSecurityGroup"] = {"id": nsg_id}
            nic = self._put(nic_path, {"location": location, "tags": tags, "properties": properties})
        nic = self._provisioned(nic_path, nic)
        return AzureNic(nic["id"], nic.get("name"), nic.get("location"), nic.get("properties"))  # type: ignore[no-untyped-call]

    def create_vm(self, request: VmRequest) -> Vm:
        from libcloud.compute.drivers.azure_arm import AzureImage

        publisher, offer, sku, version = self.image_id(request.size).split(":")
        nic = self._network_interface(request)
        node = self.compute.create_node(
            request.name,
            self.node_size(request.size),
            AzureImage(version, sku, offer, publisher, self.location().id, self.compute),  # type: ignore[no-untyped-call]
            NodeAuthSSHKey(throwaway_ssh_key()),
            self.credential("resource_group"),
            location=self.location(),
            ex_nic=nic,
            ex_tags={CLUSTER_TAG: request.cluster_tag},
            ex_customdata=request.user_data.encode(),
            ex_use_managed_disks=True,
            ex_os_disk_delete=True,
        )
        return vm_of(node)

    def destroy_vm(self, name: str, vm: Vm | None) -> bool:
        if vm is not None:
            # Deleting takes a while: no polling here, the next step looks again.
            self.compute.destroy_node(
                vm.node, ex_destroy_nic=False, ex_destroy_vhd=False, ex_destroy_os_disk=False
            )
            return False
        # Then its NIC (Azure holds it for a while after the VM is gone), then its public IP.
        return self._delete(self._network_id("networkInterfaces", f"{name}-nic")) and self._delete(
            self._network_id("publicIPAddresses", f"{name}-ip")
        )


class AzureFirewall(Firewall):
    """The cluster's network security group and its members' application security group."""

    vms: AzureApi

    def _nsg(self, name: str) -> str:
        return self.vms._network_id("networkSecurityGroups", name)

    def ensure(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """The members' application security group, then the network security group with its rules.

        Both are PUT whole (create or update), so a call repeated after a worker died leaves one
        of each, with every rule; rules the NSG already has that are not the cluster's stay.
        """
        api = self.vms
        tags = {CLUSTER_TAG: tag}
        members_path = api._members_id(name)
        members = api._put(members_path, {"location": api.location().id, "tags": tags, "properties": {}})
        api._provisioned(members_path, members)
        nsg_path = self._nsg(name)
        others = [r for r in self._rules(api._get(nsg_path)) if not _owns(CLUSTER_OWNER, r)]
        used = {int((r.get("properties") or {}).get("priority") or 0) for r in others}
        body = {
            "location": api.location().id,
            "tags": tags,
            "properties": {"securityRules": others + _security_rules(rules, members_path, used)},
        }
        nsg = api._provisioned(nsg_path, api._put(nsg_path, body))
        return str(nsg.get("id") or nsg_path)

    @staticmethod
    def _rules(nsg: dict[str, Any] | None) -> list[dict[str, Any]]:
        return list(((nsg or {}).get("properties") or {}).get("securityRules") or [])

    def apply(
        self,
        provider_id: str,
        name: str,
        tag: str,
        owner: str,
        rules: list[FirewallRule],
        addresses: list[str],
    ) -> bool:
        """Swap the owner's rules of the NSG for `rules` (one PUT of the NSG) when they differ."""
        api = self.vms
        nsg_path = provider_id or self._nsg(name)
        nsg = api._get(nsg_path)
        if nsg is None:
            return False
        current = self._rules(nsg)
        others = [r for r in current if not _owns(owner, r)]
        used = {int((r.get("properties") or {}).get("priority") or 0) for r in others}
        if owner == CLUSTER_OWNER:
            wanted = _security_rules(rules, api._members_id(name), used)
        else:
            wanted = _contributed_rules(owner, rules, used)
        mine = [r for r in current if _owns(owner, r)]
        if sorted(map(_shape, mine)) == sorted(map(_shape, wanted)):
            return False
        body = {
            "location": nsg.get("location") or api.location().id,
            "tags": nsg.get("tags") or {CLUSTER_TAG: tag},
            "properties": {"securityRules": others + wanted},
        }
        api._provisioned(nsg_path, api._put(nsg_path, body))
        return True

    def delete(self, name: str, provider_id: str) -> bool:
        """The NSG first (the members' group is referenced by its rules), then the group."""
        api = self.vms
        return api._delete(provider_id or self._nsg(name)) and api._delete(api._members_id(name))
