"""Google Compute Engine: a service account (compute), firewall rules matching the cluster's
network tag (firewall).

A GCE firewall is one rule. The cluster's own are `<tag>-api` and `<tag>-members`; every other
owner gets rules of its own, named `<tag>-<owner>-<n>`, so reconciling an owner creates, updates
or deletes only the rules named for it, and no other firewall of the network is touched.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import suppress
from dataclasses import replace
from typing import Any

from libcloud.common.types import InvalidCredsError, LibcloudError

from clusters.exceptions import ProviderError
from clusters.providers.base import CredentialField, Region, Size
from clusters.providers.clouds.base import (
    CLUSTER_OWNER,
    CloudApi,
    Firewall,
    FirewallRule,
    Vm,
    VmRequest,
    vm_of,
)


class GceApi(CloudApi):
    """Google Compute Engine: regions are zones; firewalls match the cluster's network tag."""

    credential_fields = (
        CredentialField("service_account_json", "Service account key (JSON)", multiline=True),
        CredentialField(
            "project", "Project", secret=False, required=False, help="Default: the key's project"
        ),
        CredentialField("network", "VPC network", secret=False, required=False, help="Default: default"),
        CredentialField("image", "Image", secret=False, required=False, help="Default: Ubuntu 24.04 LTS"),
    )

    def _account(self) -> dict[str, Any]:
        try:
            account = json.loads(self.credential("service_account_json"))
        except ValueError as exc:
            raise InvalidCredsError(f"the service account key is not JSON: {exc}") from exc
        if not isinstance(account, dict) or not account.get("client_email") or not account.get("private_key"):
            raise InvalidCredsError("the service account key needs client_email and private_key")
        return account

    def build(self) -> Any:
        from libcloud.common.google import GoogleBaseError
        from libcloud.compute.drivers.gce import GCENodeDriver

        account = self._account()
        project = str(self.settings.get("project") or account.get("project_id") or "")
        if not project:
            raise ProviderError("project is required.", retryable=False, fields={"project": ["Required."]})
        try:
            # The key goes in as a dict (never a path libcloud would read from this host), and
            # no token is cached on disk where another account with the same e-mail could find it.
            return GCENodeDriver(  # type: ignore[no-untyped-call]
                account["client_email"],
                key=account,
                project=project,
                datacenter=self.region or None,
                auth_type="SA",
                credential_file=os.devnull,
            )
        except (GoogleBaseError, LibcloudError) as exc:
            if isinstance(exc, InvalidCredsError) or getattr(exc, "http_code", 0) in (400, 401, 403):
                raise InvalidCredsError(str(getattr(exc, "value", exc))) from exc
            raise

    def regions(self) -> list[Region]:
        return [Region(id=str(loc.name), name=str(loc.name)) for loc in self.compute.list_locations()]

    def sizes(self) -> list[Size]:
        return [self.size_of(s) for s in self.compute.list_sizes(location=self.region or None)]

    def size_of(self, size: Any) -> Size:
        # A machine type is named by its name (its numeric id is of no use to create a VM).
        return replace(super().size_of(size), id=str(size.name))

    def list_vms(self, names: set[str]) -> list[Vm]:
        nodes = self.compute.list_nodes(ex_zone=self.region or None)
        return [vm for vm in map(vm_of, nodes) if vm.name in names]

    def _image(self, size: str) -> Any:
        if self.settings.get("image"):
            return str(self.settings["image"])
        arch = "arm64" if size.split("-")[0] in ("t2a", "c4a") else "amd64"
        return self.compute.ex_get_image_from_family(
            f"ubuntu-2404-lts-{arch}", ex_project_list=["ubuntu-os-cloud"], ex_standard_projects=False
        )

    def create_vm(self, request: VmRequest) -> Vm:
        node = self.compute.create_node(
            request.name,
            request.size,
            self._image(request.size),
            location=self.region,
            ex_network=str(self.settings.get("network") or "default"),
            ex_tags=[request.cluster_tag],
            ex_metadata={"user-data": request.user_data},
            ex_disk_auto_delete=True,
        )
        return vm_of(node)

    def destroy_vm(self, name: str, vm: Vm | None) -> bool:
        if vm is not None:
            self.compute.destroy_node(vm.node, ex_sync=False)
        return True


def _allowed(rules: list[FirewallRule]) -> list[dict[str, Any]]:
    """GCE's `allowed` list: the ports of each protocol."""
    allowed: dict[str, list[str]] = {}
    for rule in rules:
        allowed.setdefault(rule.protocol, []).append(rule.port_range)
    return [{"IPProtocol": proto, "ports": ports} for proto, ports in allowed.items()]


def _slug(owner: str) -> str:
    """An owner as part of a GCE resource name (lower-case letters, digits and dashes)."""
    return re.sub(r"[^a-z0-9]+", "-", owner.lower()).strip("-")[:30]


class GceFirewall(Firewall):
    """VPC firewall rules whose target is the cluster's network tag."""

    def names(self, base: str) -> list[str]:
        # A GCE rule's sources are OR-ed: the public API port and member traffic need two rules.
        return [f"{base}-api", f"{base}-members"]

    def ensure(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        from libcloud.common.google import ResourceNotFoundError

        try:
            return str(self.driver.ex_get_firewall(name).name)
        except ResourceNotFoundError:
            pass
        members = name.endswith("-members")
        return self._create(name, [r for r in rules if r.members == members], tag, members=members)

    def _create(self, name: str, rules: list[FirewallRule], tag: str, *, members: bool = False) -> str:
        firewall = self.driver.ex_create_firewall(
            name,
            allowed=_allowed(rules),
            network=str(self.settings.get("network") or "default"),
            source_ranges=None if members else sorted({c for r in rules for c in r.cidrs}),
            source_tags=[tag] if members else None,
            target_tags=[tag],
            description="Flotilla cluster",
        )
        return str(firewall.name)

    def apply(
        self,
        provider_id: str,
        name: str,
        tag: str,
        owner: str,
        rules: list[FirewallRule],
        addresses: list[str],
    ) -> bool:
        """Another owner's rules: one GCE rule per rule, named for the owner; made, updated or
        deleted to match. The cluster's own two are made with the cluster (`ensure`)."""
        from libcloud.common.google import ResourceNotFoundError

        if owner == CLUSTER_OWNER or not name.endswith("-api"):
            return False  # contributed rules hang off the cluster's API firewall record
        base = name.removesuffix("-api")
        prefix = f"{base}-{_slug(owner)}-"
        theirs = {str(f.name): f for f in self.driver.ex_list_firewalls() if str(f.name).startswith(prefix)}
        changed = False
        for index, rule in enumerate(rules):
            rule_name = f"{prefix}{index}"
            found = theirs.pop(rule_name, None)
            if found is None:
                self._create(rule_name, [rule], tag)
                changed = True
            elif (_allowed([rule]), sorted(rule.cidrs)) != (found.allowed, sorted(found.source_ranges or [])):
                found.allowed, found.source_ranges = _allowed([rule]), sorted(rule.cidrs)
                self.driver.ex_update_firewall(found)
                changed = True
        for stale in theirs.values():
            with suppress(ResourceNotFoundError):
                self.driver.ex_destroy_firewall(stale)
            changed = True
        return changed

    def delete(self, name: str, provider_id: str) -> bool:
        from libcloud.common.google import ResourceNotFoundError

        if name.endswith("-api"):
            # Rules other owners contributed go with the cluster's API firewall.
            base = name.removesuffix("-api")
            for found in self.driver.ex_list_firewalls():
                if str(found.name).startswith(f"{base}-") and str(found.name) not in self.names(base):
                    with suppress(ResourceNotFoundError):
                        self.driver.ex_destroy_firewall(found)
        with suppress(ResourceNotFoundError):
            self.driver.ex_destroy_firewall(self.driver.ex_get_firewall(name))
        return True
