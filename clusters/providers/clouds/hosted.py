"""DigitalOcean, Linode and Vultr: token-authenticated, no member firewall in libcloud."""

from __future__ import annotations

import secrets
from typing import Any

from libcloud.compute.base import NodeImage

from clusters.exceptions import ProviderError
from clusters.providers.base import CredentialField, Region, Size
from clusters.providers.clouds.base import (
    CloudApi,
    Vm,
    VmRequest,
    cpus_of,
    throwaway_ssh_key,
    vm_of,
)


class DigitalOceanApi(CloudApi):
    """DigitalOcean droplets."""

    credential_fields = (CredentialField("token", "API token"),)
    default_image = "ubuntu-24-04-x64"

    def build(self) -> Any:
        from libcloud.compute.drivers.digitalocean import DigitalOceanNodeDriver

        return DigitalOceanNodeDriver(self.credential("token"), api_version="v2")  # type: ignore[no-untyped-call]

    def sizes(self) -> list[Size]:
        location = self.location() if self.region else None
        return [self.size_of(s) for s in self.compute.list_sizes(location=location)]

    def create_vm(self, request: VmRequest) -> Vm:
        node = self.compute.create_node(
            name=request.name,
            size=self.node_size(request.size),
            image=NodeImage(id=self.image_id(request.size), name="", driver=self.compute),
            location=self.location(),
            ex_create_attr={"tags": [request.cluster_tag], "ipv6": False},
            ex_user_data=request.user_data,
        )
        return vm_of(node)


class LinodeApi(CloudApi):
    """Linode (Akamai) instances, with a private address each."""

    credential_fields = (CredentialField("token", "Personal access token"),)
    default_image = "linode/ubuntu24.04"

    def build(self) -> Any:
        from libcloud.compute.drivers.linode import LinodeNodeDriver

        return LinodeNodeDriver(self.credential("token"), api_version="4.0")  # type: ignore[no-untyped-call]

    def create_vm(self, request: VmRequest) -> Vm:
        node = self.compute.create_node(
            location=self.location(),
            name=request.name,
            size=self.node_size(request.size),
            image=NodeImage(id=self.image_id(request.size), name="", driver=self.compute),
            # Linode insists on a root password: a random one nobody keeps (no SSH by design).
            root_pass=secrets.token_urlsafe(32) + "aA1!",
            ex_authorized_keys=[throwaway_ssh_key()],
            ex_private_ip=True,
            ex_tags=[request.cluster_tag],
            ex_userdata=request.user_data,
        )
        return vm_of(node)


class VultrApi(CloudApi):
    """Vultr cloud compute instances (bare metal is left out)."""

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
        )
        return vm_of(node)
