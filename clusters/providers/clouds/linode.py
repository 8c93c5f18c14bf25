"""Linode (Akamai): instances with a private address each, behind a Cloud Firewall.

Linode's firewall matches addresses only: it admits the cluster's members by address, rules the
reconcile loop keeps equal to the running VMs. Each rule Flotilla writes says whose it is in its
description (`flotilla:<owner>`); Linode replaces a rule set as a whole, so a pass reads the
rules, swaps the reconciled owner's for what that owner wants, and writes back everything else
exactly as it found it (another owner's rules, rules someone added by hand, the policies).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from libcloud.common.types import LibcloudError
from libcloud.compute.base import NodeImage

from clusters.providers.base import CredentialField
from clusters.providers.clouds.base import (
    CLUSTER_OWNER,
    CloudApi,
    Firewall,
    FirewallRule,
    Vm,
    VmRequest,
    owner_note,
    owner_of_note,
    send_json,
    throwaway_ssh_key,
    vm_of,
)

# Linode firewall and rule labels: 3 to 32 characters, a letter first, letters, digits, single `-_.`.
LINODE_LABEL_MAX = 32
LINODE_FIREWALLS = "/v4/networking/firewalls"
# Labels of the cluster's rules from before rules carried their owner in the description.
_LEGACY_LABELS = re.compile(r"^(api|members)-(tcp|udp)-\d+(-\d+)?$")


def linode_label(name: str) -> str:
    """A valid Linode label for `name`, shortened with a hash of it when too long."""
    label = re.sub(r"[-_.]{2,}", "-", re.sub(r"[^a-zA-Z0-9_.-]", "-", name)).strip("-_.")
    if 3 <= len(label) <= LINODE_LABEL_MAX and label[0].isalpha():
        return label
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = label[: LINODE_LABEL_MAX - len(digest) - 1].rstrip("-_.")
    return f"{head}-{digest}" if head[:1].isalpha() else f"flotilla-{digest}"


def _linode_rule(label: str, owner: str, rule: FirewallRule, ipv4: list[str]) -> dict[str, Any]:
    return {
        "label": linode_label(label),
        "description": owner_note(owner),
        "action": "ACCEPT",
        "protocol": rule.protocol.upper(),
        "ports": rule.port_range,
        "addresses": {"ipv4": ipv4},
    }


def _linode_inbound(owner: str, rules: list[FirewallRule], addresses: list[str]) -> list[dict[str, Any]]:
    """An owner's inbound rules: networks as given, the members as their /32s.

    A rule needs addresses, so member rules come once there are members.
    """
    prefix = "" if owner == CLUSTER_OWNER else f"{owner}-"
    inbound = []
    for rule in rules:
        if rule.cidrs:
            label = f"{prefix or 'api-'}{rule.protocol}-{rule.port_range}"
            inbound.append(_linode_rule(label, owner, rule, list(rule.cidrs)))
        if rule.members and addresses:
            members = [f"{address}/32" for address in addresses]
            label = f"{prefix}members-{rule.protocol}-{rule.port_range}"
            inbound.append(_linode_rule(label, owner, rule, members))
    return inbound


def _owner_of(rule: dict[str, Any]) -> str | None:
    owner = owner_of_note(str(rule.get("description") or ""))
    if owner is None and not rule.get("description") and _LEGACY_LABELS.match(str(rule.get("label") or "")):
        return CLUSTER_OWNER
    return owner


def _admits(rule: dict[str, Any]) -> tuple[str, ...]:
    """What a rule admits, whatever its label and spacing."""
    addresses = rule.get("addresses") or {}
    return (
        str(rule.get("action", "")).upper(),
        str(rule.get("protocol", "")).upper(),
        str(rule.get("ports") or "").replace(" ", ""),
        ",".join(sorted(str(a) for a in addresses.get("ipv4") or [])),
        ",".join(sorted(str(a) for a in addresses.get("ipv6") or [])),
    )


def _join(driver: Any, vms: list[Vm], firewall_ids: tuple[str, ...]) -> list[str]:
    """Assign the Linodes the firewalls do not hold yet (a device each); their names."""
    joined = []
    for firewall_id in firewall_ids:
        path = f"{LINODE_FIREWALLS}/{firewall_id}/devices"
        held = {
            str(entity.get("id"))
            for entity in (d.get("entity") or {} for d in driver._paginated_request(path, "data"))
            if entity.get("type") == "linode"
        }
        for vm in vms:
            if vm.id not in held:
                send_json(driver, path, "POST", {"type": "linode", "id": int(vm.id)})
                joined.append(vm.name)
    return joined


class LinodeApi(CloudApi):
    """Linode instances; each new one is assigned to the cluster's firewall right after it is made
    (libcloud's create_node sends no firewall)."""

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
        vm = vm_of(node)
        _join(self.compute, [vm], request.firewall_ids)
        return vm


class LinodeFirewall(Firewall):
    """A Cloud Firewall: inbound dropped but for what its rules accept, outbound open."""

    admits_members_by = "address"

    def _find(self, name: str, provider_id: str = "") -> dict[str, Any] | None:
        label = linode_label(name)
        return next(
            (
                f
                for f in self.driver._paginated_request(LINODE_FIREWALLS, "data")
                if str(f.get("id")) == provider_id or (not provider_id and f.get("label") == label)
            ),
            None,
        )

    def ensure(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """Find the firewall by label (a worker may have died after creating it) or create it."""
        found = self._find(name)
        if found is not None:
            return str(found["id"])
        policy = {"inbound_policy": "DROP", "outbound": [], "outbound_policy": "ACCEPT"}
        body = {
            "label": linode_label(name),
            "rules": {"inbound": _linode_inbound(CLUSTER_OWNER, rules, [])} | policy,
            "tags": [tag],
        }
        return str(send_json(self.driver, LINODE_FIREWALLS, "POST", body)["id"])

    def join(self, vms: list[Vm], firewall_ids: tuple[str, ...]) -> list[str]:
        return _join(self.driver, vms, firewall_ids)

    def apply(
        self,
        provider_id: str,
        name: str,
        tag: str,
        owner: str,
        rules: list[FirewallRule],
        addresses: list[str],
    ) -> bool:
        """Swap the owner's rules for `rules` (one PUT of the whole set) when they differ."""
        path = f"{LINODE_FIREWALLS}/{provider_id}/rules"
        current = send_json(self.driver, path)
        inbound = list(current.get("inbound") or [])
        mine = [r for r in inbound if _owner_of(r) == owner]
        wanted = _linode_inbound(owner, rules, addresses)
        if sorted(map(_admits, mine)) == sorted(map(_admits, wanted)):
            return False
        body = {
            "inbound": [r for r in inbound if _owner_of(r) != owner] + wanted,
            "inbound_policy": current.get("inbound_policy") or "DROP",
            "outbound": list(current.get("outbound") or []),
            "outbound_policy": current.get("outbound_policy") or "ACCEPT",
        }
        send_json(self.driver, path, "PUT", body)
        return True

    def delete(self, name: str, provider_id: str) -> bool:
        if not provider_id:
            found = self._find(name)
            if found is None:
                return True
            provider_id = str(found["id"])
        try:
            send_json(self.driver, f"{LINODE_FIREWALLS}/{provider_id}", "DELETE")
        except LibcloudError as exc:
            # libcloud's Linode v4 errors carry the status in their text only.
            if "Status code: 404" not in str(exc.value):
                raise
        return True
