"""Azure (Resource Manager): VMs in the account's resource group, behind a network security group.

Each cluster gets an application security group (`<tag>-members`, its machines) and a network
security group (`<tag>`) admitting the API port from `api_cidrs` and k3s's ports from the members
only. libcloud's driver has no calls for either, nor for a Standard public IP, so the adapter sends
those ARM requests through the driver's own authenticated connection.
"""

from __future__ import annotations

import json
import time
from typing import Any

from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError
from libcloud.compute.base import NodeAuthSSHKey, NodeLocation

from clusters.exceptions import ProviderError
from clusters.providers.base import CredentialField, Size
from clusters.providers.clouds.base import (
    CLUSTER_TAG,
    CloudApi,
    FirewallRule,
    Vm,
    VmRequest,
    throwaway_ssh_key,
    vm_of,
)

NETWORK_API = {"api-version": "2024-05-01"}
FIRST_PRIORITY = 100
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


def _security_rules(rules: list[FirewallRule], members_id: str) -> list[dict[str, Any]]:
    """Inbound rules of the NSG: addresses to any machine, members to members, the rest of the VNet denied.

    Azure does not mix address prefixes and application security groups in one rule: a rule
    admitting both becomes two.
    """
    members = [{"id": members_id}]
    allowed: list[tuple[str, dict[str, Any]]] = []
    for rule in rules:
        ports = rule.port_range
        common: dict[str, Any] = {
            "direction": "Inbound",
            "access": "Allow",
            "protocol": rule.protocol.capitalize(),
            "sourcePortRange": "*",
            "destinationPortRange": ports,
        }
        sources: dict[str, Any]
        if rule.cidrs:
            sources = {"sourceAddressPrefixes": list(rule.cidrs), "destinationAddressPrefix": "*"}
            allowed.append((f"addresses-{rule.protocol}-{ports}", common | sources))
        if rule.members:
            sources = {
                "sourceApplicationSecurityGroups": members,
                "destinationApplicationSecurityGroups": members,
            }
            allowed.append((f"members-{rule.protocol}-{ports}", common | sources))
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
    return [
        {"name": name, "properties": {"priority": FIRST_PRIORITY + 10 * position, **properties}}
        for position, (name, properties) in enumerate(allowed)
    ] + [{"name": "deny-virtual-network", "properties": deny_vnet}]


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
    member_firewall = True

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

    def ensure_firewall(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """The members' application security group, then the network security group with its rules.

        Both are PUT whole (create or update), so a call repeated after a worker died leaves one
        of each, with every rule.
        """
        tags = {CLUSTER_TAG: tag}
        members_path = self._members_id(name)
        members = self._put(members_path, {"location": self.location().id, "tags": tags, "properties": {}})
        self._provisioned(members_path, members)
        nsg_path = self._network_id("networkSecurityGroups", name)
        body = {
            "location": self.location().id,
            "tags": tags,
            "properties": {"securityRules": _security_rules(rules, members_path)},
        }
        nsg = self._provisioned(nsg_path, self._put(nsg_path, body))
        return str(nsg.get("id") or nsg_path)

    def delete_firewall(self, name: str, provider_id: str) -> bool:
        """The NSG first (the members' group is referenced by its rules), then the group."""
        nsg_path = provider_id or self._network_id("networkSecurityGroups", name)
        return self._delete(nsg_path) and self._delete(self._members_id(name))

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
