"""DigitalOcean: droplets (compute) behind a cloud firewall that follows the cluster's tag.

libcloud's driver has no firewall calls, so the firewall adapter sends them through the compute
driver's own authenticated connection. DigitalOcean's rules carry no name or note, so nothing
tells Flotilla's rules from anyone else's: the adapter only adds the rules an owner lacks and
never removes one (a stale rule goes with the firewall when the cluster is deleted).
"""

from __future__ import annotations

from typing import Any

from libcloud.common.exceptions import BaseHTTPError
from libcloud.compute.base import NodeImage

from clusters.providers.base import CredentialField, Size
from clusters.providers.clouds.base import (
    CloudApi,
    Firewall,
    FirewallRule,
    Vm,
    VmRequest,
    send_json,
    vm_of,
)

FIREWALLS = "/v2/firewalls"
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
    """DigitalOcean droplets, tagged with the cluster's tag."""

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


class DigitalOceanFirewall(Firewall):
    """A cloud firewall applied to every droplet with the cluster's tag (from its first boot)."""

    def _firewalls(self) -> list[dict[str, Any]]:
        return list(self.driver._paginated_request(FIREWALLS, "firewalls"))

    def ensure(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """Find the firewall by name (a worker may have died after creating it) or create it."""
        found = next((f for f in self._firewalls() if f.get("name") == name), None)
        if found is None:
            body = {
                "name": name,
                "tags": [tag],
                "inbound_rules": _do_inbound(rules, tag),
                "outbound_rules": DO_ALL_OUT,
            }
            return str(send_json(self.driver, FIREWALLS, "POST", body)["firewall"]["id"])
        self._complete(found, rules, tag)
        return str(found["id"])

    def _complete(self, found: dict[str, Any], rules: list[FirewallRule], tag: str) -> bool:
        """Add what the firewall lacks of `rules` (and the cluster's tag); True when it lacked some."""
        changed = False
        if tag not in (found.get("tags") or []):
            send_json(self.driver, f"{FIREWALLS}/{found['id']}/tags", "POST", {"tags": [tag]})
            changed = True
        missing = _do_missing(_do_inbound(rules, tag), list(found.get("inbound_rules") or []))
        if missing:
            body = {"inbound_rules": missing, "outbound_rules": DO_ALL_OUT}
            send_json(self.driver, f"{FIREWALLS}/{found['id']}/rules", "POST", body)
            changed = True
        return changed

    def apply(
        self,
        provider_id: str,
        name: str,
        tag: str,
        owner: str,
        rules: list[FirewallRule],
        addresses: list[str],
    ) -> bool:
        """Add the owner's rules the firewall lacks; remove nothing (no rule says whose it is)."""
        if not rules:
            return False
        found = next((f for f in self._firewalls() if str(f.get("id")) == provider_id), None)
        if found is None:
            return False  # deleted by hand: the cluster's firewall record is the place to notice
        return self._complete(found, rules, tag)

    def delete(self, name: str, provider_id: str) -> bool:
        if not provider_id:
            found = next((f for f in self._firewalls() if f.get("name") == name), None)
            if found is None:
                return True
            provider_id = str(found["id"])
        try:
            self.driver.connection.request(f"{FIREWALLS}/{provider_id}", method="DELETE")
        except BaseHTTPError as exc:
            if exc.code != 404:
                raise
        return True
