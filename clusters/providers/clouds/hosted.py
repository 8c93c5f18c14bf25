"""DigitalOcean, Linode and Vultr: token-authenticated.

DigitalOcean's cloud firewall admits "members of this cluster" by droplet tag; libcloud's driver
has no calls for it, so the adapter sends them through the driver's own authenticated connection.
Linode and Vultr get no firewall from Flotilla (their firewalls match addresses, not members).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from libcloud.common.exceptions import BaseHTTPError
from libcloud.compute.base import NodeImage

from clusters.exceptions import ProviderError
from clusters.providers.base import CredentialField, Region, Size
from clusters.providers.clouds.base import (
    CloudApi,
    FirewallRule,
    Vm,
    VmRequest,
    cpus_of,
    throwaway_ssh_key,
    vm_of,
)

# A DigitalOcean firewall denies whatever its outbound rules do not allow: the VMs download k3s.
DO_ALL_OUT = [
    {"protocol": protocol, "destinations": {"addresses": ["0.0.0.0/0", "::/0"]}}
    | ({"ports": "0"} if protocol != "icmp" else {})
    for protocol in ("tcp", "udp", "icmp")
]


def _do_inbound(rules: list[FirewallRule], tag: str) -> list[dict[str, Any]]:
    """One inbound rule per port range; sources are addresses and/or the cluster's tag."""
    inbound = []
    for rule in rules:
        sources: dict[str, list[str]] = {}
        if rule.cidrs:
            sources["addresses"] = list(rule.cidrs)
        if rule.members:
            sources["tags"] = [tag]
        inbound.append({"protocol": rule.protocol, "ports": rule.port_range, "sources": sources})
    return inbound


def _do_missing(wanted: list[dict[str, Any]], existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parts of `wanted` that the firewall's rules do not admit yet."""
    have: set[tuple[str, str, str, str]] = set()
    for rule in existing:
        ports = "0" if str(rule.get("ports")) in ("all", "") else str(rule.get("ports"))
        for kind, values in (rule.get("sources") or {}).items():
            have.update((str(rule.get("protocol")), ports, kind, str(v)) for v in values or [])
    missing = []
    for rule in wanted:
        sources = {
            kind: [v for v in values if (rule["protocol"], rule["ports"], kind, v) not in have]
            for kind, values in rule["sources"].items()
        }
        sources = {kind: values for kind, values in sources.items() if values}
        if sources:
            missing.append({**rule, "sources": sources})
    return missing


class DigitalOceanApi(CloudApi):
    """DigitalOcean droplets, behind a cloud firewall that follows the cluster's tag."""

    credential_fields = (CredentialField("token", "API token"),)
    default_image = "ubuntu-24-04-x64"
    member_firewall = True

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

    def _firewalls(self) -> list[dict[str, Any]]:
        return list(self.compute._paginated_request("/v2/firewalls", "firewalls"))

    def ensure_firewall(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """Find the firewall by name (a worker may have died after creating it) or create it.

        It applies to every droplet tagged `tag`, so new VMs are covered from their first boot.
        """
        wanted = _do_inbound(rules, tag)
        found = next((f for f in self._firewalls() if f.get("name") == name), None)
        if found is None:
            body = {"name": name, "tags": [tag], "inbound_rules": wanted, "outbound_rules": DO_ALL_OUT}
            created = self.compute.connection.request("/v2/firewalls", data=json.dumps(body), method="POST")
            return str(created.object["firewall"]["id"])
        missing = _do_missing(wanted, list(found.get("inbound_rules") or []))
        if tag not in (found.get("tags") or []):
            self.compute.connection.request(
                f"/v2/firewalls/{found['id']}/tags", data=json.dumps({"tags": [tag]}), method="POST"
            )
        if missing:
            self.compute.connection.request(
                f"/v2/firewalls/{found['id']}/rules",
                data=json.dumps({"inbound_rules": missing, "outbound_rules": DO_ALL_OUT}),
                method="POST",
            )
        return str(found["id"])

    def delete_firewall(self, name: str, provider_id: str) -> bool:
        if not provider_id:
            found = next((f for f in self._firewalls() if f.get("name") == name), None)
            if found is None:
                return True
            provider_id = str(found["id"])
        try:
            self.compute.connection.request(f"/v2/firewalls/{provider_id}", method="DELETE")
        except BaseHTTPError as exc:
            if exc.code != 404:
                raise
        return True


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
