"""Azure (Resource Manager): VMs in the account's resource group, with a public address and a NIC each."""

from __future__ import annotations

import json
from typing import Any

from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError
from libcloud.compute.base import NodeAuthSSHKey, NodeLocation

from clusters.providers.base import CredentialField, Size
from clusters.providers.clouds.base import (
    CLUSTER_TAG,
    CloudApi,
    Vm,
    VmRequest,
    throwaway_ssh_key,
    vm_of,
)


def _azure_driver_class() -> Any:
    from libcloud.common.azure_arm import AzureResourceManagementConnection
    from libcloud.compute.drivers.azure_arm import AzureNodeDriver

    class Connection(AzureResourceManagementConnection):  # type: ignore[misc]
        # libcloud 3.9 base64-encodes custom data to bytes, which JSON cannot carry.
        def encode_data(self, data: Any) -> str:
            return json.dumps(data, default=lambda o: o.decode() if isinstance(o, bytes) else str(o))

    class Driver(AzureNodeDriver):  # type: ignore[misc]
        connectionCls = Connection

    return Driver


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

    def _network_parts(self, name: str) -> tuple[Any, Any]:
        """The VM's public address and interface, found by name or created."""
        from libcloud.compute.drivers.azure_arm import AzureSubnet

        group = self.credential("resource_group")
        ip = next((i for i in self.compute.ex_list_publicips_of(group) if i.name == f"{name}-ip"), None)
        if ip is None:
            ip = self.compute.ex_create_public_ip(f"{name}-ip", group, self.location(), "Static")
        nic = next((n for n in self.compute.ex_list_nics(group) if n.name == f"{name}-nic"), None)
        if nic is None:
            subnet_name = str(self.settings.get("subnet") or "default")
            subnet = AzureSubnet(  # type: ignore[no-untyped-call]
                f"/subscriptions/{self.credential('subscription_id')}/resourceGroups/{group}/providers"
                f"/Microsoft.Network/virtualnetworks/{self.credential('network')}/subnets/{subnet_name}",
                subnet_name,
                {},
            )
            nic = self.compute.ex_create_network_interface(
                f"{name}-nic", subnet, group, self.location(), public_ip=ip
            )
        return ip, nic

    def create_vm(self, request: VmRequest) -> Vm:
        from libcloud.compute.drivers.azure_arm import AzureImage

        publisher, offer, sku, version = self.image_id(request.size).split(":")
        _, nic = self._network_parts(request.name)
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
        group = self.credential("resource_group")
        for nic in self.compute.ex_list_nics(group):
            if nic.name == f"{name}-nic":
                self.compute.ex_destroy_nic(nic)
                return False
        for ip in self.compute.ex_list_publicips_of(group):
            if ip.name == f"{name}-ip":
                self.compute.ex_delete_public_ip(ip)
                return False
        return True
