"""DigitalOcean, Linode and Vultr: token-authenticated.

DigitalOcean's cloud firewall admits "members of this cluster" by droplet tag. Linode's and
Vultr's match addresses only: they admit the members by address, rules the reconcile loop keeps
equal to the cluster's running VMs (`admit_members`). libcloud's drivers have no calls for any of
these firewalls, so the adapters send them through the driver's own authenticated connection.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
from typing import Any

from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import LibcloudError
from libcloud.common.vultr import VultrException
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


def _send(compute: Any, path: str, method: str = "GET", body: Any = None) -> Any:
    """A JSON request through the libcloud driver's own authenticated connection; the answer's body."""
    data = json.dumps(body) if body is not None else None
    return compute.connection.request(path, data=data, method=method).object


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


# Linode firewall labels: 3 to 32 characters, a letter first, letters, digits and single `-_.`.
LINODE_LABEL_MAX = 32
LINODE_FIREWALLS = "/v4/networking/firewalls"


def linode_label(name: str) -> str:
    """A valid Linode firewall label for `name`, shortened with a hash of it when too long."""
    label = re.sub(r"[-_.]{2,}", "-", re.sub(r"[^a-zA-Z0-9_.-]", "-", name)).strip("-_.")
    if 3 <= len(label) <= LINODE_LABEL_MAX and label[0].isalpha():
        return label
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = label[: LINODE_LABEL_MAX - len(digest) - 1].rstrip("-_.")
    return f"{head}-{digest}" if head[:1].isalpha() else f"flotilla-{digest}"


def _linode_rule(label: str, rule: FirewallRule, ipv4: list[str]) -> dict[str, Any]:
    return {
        "label": label,
        "action": "ACCEPT",
        "protocol": rule.protocol.upper(),
        "ports": rule.port_range,
        "addresses": {"ipv4": ipv4},
    }


def _linode_rules(rules: list[FirewallRule], addresses: list[str]) -> dict[str, Any]:
    """The whole rule set: the API port from its networks, k3s's ports from the members' /32s.

    A rule needs addresses, so the member rules come once there are members; everything else
    inbound is dropped, outbound is open (the VMs download k3s).
    """
    inbound = []
    for rule in rules:
        if rule.cidrs:
            inbound.append(_linode_rule(f"api-{rule.protocol}-{rule.port_range}", rule, list(rule.cidrs)))
        if rule.members and addresses:
            members = [f"{address}/32" for address in addresses]
            inbound.append(_linode_rule(f"members-{rule.protocol}-{rule.port_range}", rule, members))
    return {"inbound": inbound, "inbound_policy": "DROP", "outbound": [], "outbound_policy": "ACCEPT"}


def _linode_shape(rules: dict[str, Any]) -> tuple[Any, ...]:
    """What a rule set admits, whatever the rules' order, labels and spacing."""

    def admits(rule: dict[str, Any]) -> tuple[str, ...]:
        addresses = rule.get("addresses") or {}
        return (
            str(rule.get("action", "")).upper(),
            str(rule.get("protocol", "")).upper(),
            str(rule.get("ports") or "").replace(" ", ""),
            ",".join(sorted(str(a) for a in addresses.get("ipv4") or [])),
            ",".join(sorted(str(a) for a in addresses.get("ipv6") or [])),
        )

    return (
        str(rules.get("inbound_policy")),
        str(rules.get("outbound_policy")),
        sorted(map(admits, rules.get("inbound") or [])),
        sorted(map(admits, rules.get("outbound") or [])),
    )


class LinodeApi(CloudApi):
    """Linode (Akamai) instances, with a private address each, behind a cloud firewall.

    The firewall admits the members by address (`admit_members`); each new Linode is assigned to
    it right after it is created (libcloud's create_node sends no firewall).
    """

    credential_fields = (CredentialField("token", "Personal access token"),)
    default_image = "linode/ubuntu24.04"
    address_firewall = True

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
        vm = vm_of(node)
        self.join_firewalls([vm], request.firewall_ids)
        return vm

    def _find_firewall(self, name: str, provider_id: str = "") -> dict[str, Any] | None:
        label = linode_label(name)
        return next(
            (
                f
                for f in self.compute._paginated_request(LINODE_FIREWALLS, "data")
                if str(f.get("id")) == provider_id or (not provider_id and f.get("label") == label)
            ),
            None,
        )

    def ensure_firewall(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """Find the firewall by label (a worker may have died after creating it) or create it."""
        found = self._find_firewall(name)
        if found is not None:
            return str(found["id"])
        body = {"label": linode_label(name), "rules": _linode_rules(rules, []), "tags": [tag]}
        return str(_send(self.compute, LINODE_FIREWALLS, "POST", body)["id"])

    def join_firewalls(self, vms: list[Vm], firewall_ids: tuple[str, ...]) -> list[str]:
        """Assign the Linodes the firewalls do not hold yet (a device each)."""
        joined = []
        for firewall_id in firewall_ids:
            path = f"{LINODE_FIREWALLS}/{firewall_id}/devices"
            held = {
                str(entity.get("id"))
                for entity in (d.get("entity") or {} for d in self.compute._paginated_request(path, "data"))
                if entity.get("type") == "linode"
            }
            for vm in vms:
                if vm.id not in held:
                    _send(self.compute, path, "POST", {"type": "linode", "id": int(vm.id)})
                    joined.append(vm.name)
        return joined

    def admit_members(self, provider_id: str, rules: list[FirewallRule], addresses: list[str]) -> bool:
        """Replace the rule set (one PUT) when it admits anything else than it should."""
        path = f"{LINODE_FIREWALLS}/{provider_id}/rules"
        wanted = _linode_rules(rules, addresses)
        if _linode_shape(_send(self.compute, path)) == _linode_shape(wanted):
            return False
        _send(self.compute, path, "PUT", wanted)
        return True

    def delete_firewall(self, name: str, provider_id: str) -> bool:
        if not provider_id:
            found = self._find_firewall(name)
            if found is None:
                return True
            provider_id = str(found["id"])
        try:
            _send(self.compute, f"{LINODE_FIREWALLS}/{provider_id}", "DELETE")
        except LibcloudError as exc:
            # libcloud's Linode v4 errors carry the status in their text only.
            if "Status code: 404" not in str(exc.value):
                raise
        return True


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


def _vultr_rules(rules: list[FirewallRule], addresses: list[str]) -> list[dict[str, Any]]:
    """The API port from each of its networks, k3s's ports from each member's /32."""
    wanted = []
    for rule in rules:
        wanted += [_vultr_rule(rule, cidr, "flotilla: API") for cidr in rule.cidrs]
        if rule.members:
            wanted += [_vultr_rule(rule, f"{a}/32", f"flotilla: member {a}") for a in addresses]
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
    """Vultr cloud compute instances (bare metal is left out), in a firewall group.

    The group admits the members by address (`admit_members`); instances join it when created.
    """

    credential_fields = (CredentialField("token", "API key"),)
    address_firewall = True

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

    def _find_group(self, name: str, provider_id: str = "") -> dict[str, Any] | None:
        return next(
            (
                g
                for g in self.compute._paginated_request(VULTR_FIREWALLS, "firewall_groups")
                if str(g.get("id")) == provider_id or (not provider_id and g.get("description") == name)
            ),
            None,
        )

    def _group_rules(self, group_id: str) -> list[dict[str, Any]]:
        return list(self.compute._paginated_request(f"{VULTR_FIREWALLS}/{group_id}/rules", "firewall_rules"))

    def _add_missing(
        self, group_id: str, wanted: list[dict[str, Any]], existing: list[dict[str, Any]]
    ) -> int:
        have = {_vultr_key(rule) for rule in existing}
        missing = [rule for rule in wanted if _vultr_key(rule) not in have]
        for rule in missing:
            _send(self.compute, f"{VULTR_FIREWALLS}/{group_id}/rules", "POST", rule)
        return len(missing)

    def ensure_firewall(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """Find the group by description (a worker may have died after creating it) or create it.

        Its API rules are added where missing; the member rules come with `admit_members`.
        """
        found = self._find_group(name)
        if found is None:
            group_id = str(
                _send(self.compute, VULTR_FIREWALLS, "POST", {"description": name})["firewall_group"]["id"]
            )
            existing: list[dict[str, Any]] = []
        else:
            group_id = str(found["id"])
            existing = self._group_rules(group_id)
        self._add_missing(group_id, _vultr_rules(rules, []), existing)
        return group_id

    def join_firewalls(self, vms: list[Vm], firewall_ids: tuple[str, ...]) -> list[str]:
        """Instances made before the group existed join it (an instance has one group at most)."""
        if not firewall_ids:
            return []
        joined = []
        for vm in vms:
            if str((vm.node.extra or {}).get("firewall_group_id") or "") != firewall_ids[0]:
                _send(self.compute, f"/v2/instances/{vm.id}", "PATCH", {"firewall_group_id": firewall_ids[0]})
                joined.append(vm.name)
        return joined

    def admit_members(self, provider_id: str, rules: list[FirewallRule], addresses: list[str]) -> bool:
        """Add the rules the group lacks, then delete the others (members gone, duplicates)."""
        existing = self._group_rules(provider_id)
        wanted = _vultr_rules(rules, addresses)
        changed = self._add_missing(provider_id, wanted, existing) > 0
        keep = {_vultr_key(rule) for rule in wanted}
        for rule in existing:
            key = _vultr_key(rule)
            if key in keep:
                keep.discard(key)  # the first of duplicates stays
                continue
            _send(self.compute, f"{VULTR_FIREWALLS}/{provider_id}/rules/{rule['id']}", "DELETE")
            changed = True
        return changed

    def delete_firewall(self, name: str, provider_id: str) -> bool:
        found = self._find_group(name, provider_id)
        if found is None:
            return True
        if int(found.get("instance_count") or 0) > 0:
            return False  # instances being destroyed still count
        try:
            _send(self.compute, f"{VULTR_FIREWALLS}/{found['id']}", "DELETE")
        except VultrException as exc:
            if exc.code == 404:
                return True
            if exc.code in (400, 409, 412) and any(
                m in str(exc.message).lower() for m in _VULTR_IN_USE_MARKERS
            ):
                return False
            raise
        return True
