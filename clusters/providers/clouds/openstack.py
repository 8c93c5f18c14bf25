"""OpenStack: Keystone v3 password auth (compute), security groups admitting their own members
(firewall).

libcloud reads no rule description back, so the firewall adapter only adds the rules an owner
lacks and never deletes one: whatever else the group admits stays.
"""

from __future__ import annotations

import functools
from typing import Any

from libcloud.common.exceptions import BaseHTTPError

from clusters.exceptions import ProviderError
from clusters.providers.base import CredentialField, Region
from clusters.providers.clouds.base import (
    CLUSTER_TAG,
    CloudApi,
    Firewall,
    FirewallRule,
    Vm,
    VmRequest,
    checked_endpoint,
    vm_of,
)


class _CheckedEndpoints:
    """A libcloud OpenStack connection that checks every endpoint it is about to use.

    The service catalogue comes from the tenant's Keystone: its URLs are the tenant's too, so
    each one goes through the outbound policy before libcloud connects to it.
    """

    def _set_up_connection_info(self, url: str) -> None:
        checked_endpoint(url, "auth_url", purpose="an endpoint of the OpenStack service catalogue")
        super()._set_up_connection_info(url)  # type: ignore[misc]


@functools.cache
def _checked_driver() -> Any:
    """OpenStack_2_NodeDriver whose compute, image, network, volume... connections are checked."""
    from libcloud.compute.drivers.openstack import OpenStack_2_NodeDriver

    attrs = {
        name: type(f"Checked{cls.__name__}", (_CheckedEndpoints, cls), {})
        for name in dir(OpenStack_2_NodeDriver)
        if name.endswith("connectionCls") and isinstance(cls := getattr(OpenStack_2_NodeDriver, name), type)
    }
    return type("CheckedOpenStackNodeDriver", (OpenStack_2_NodeDriver,), attrs)


class OpenStackApi(CloudApi):
    """OpenStack (Keystone v3 password authentication); security groups admit members."""

    credential_fields = (
        CredentialField("auth_url", "Identity (Keystone) URL", secret=False),
        CredentialField("username", "User name", secret=False),
        CredentialField("password", "Password"),
        CredentialField("project", "Project", secret=False),
        CredentialField("domain", "Domain", secret=False, required=False, help="Default: Default"),
        CredentialField("network", "Network", secret=False, required=False, help="Name or ID"),
        CredentialField("image", "Image", secret=False, help="Name or ID of an Ubuntu image"),
    )

    def build(self) -> Any:
        parts = checked_endpoint(self.credential("auth_url"), "auth_url")
        return _checked_driver()(
            self.credential("username"),
            self.credential("password"),
            # libcloud appends /v3/auth/tokens itself; keep a path prefix (e.g. /identity).
            ex_force_auth_url=f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/').removesuffix('/v3')}",
            ex_force_auth_version="3.x_password",
            ex_tenant_name=self.credential("project"),
            ex_domain_name=str(self.settings.get("domain") or "Default"),
            ex_force_service_region=self.region or None,
        )

    def probe(self) -> None:
        self.compute.list_sizes()

    def regions(self) -> list[Region]:
        found = self.compute.connection.get_service_catalog().get_regions(service_type="compute")
        return [Region(id=str(r), name=str(r)) for r in sorted(found)] or [Region(id="", name="(default)")]

    def _find(self, items: list[Any], wanted: str, what: str) -> Any:
        found = next((i for i in items if wanted in (str(i.id), str(i.name))), None)
        if found is None:
            raise ProviderError(f"{what} {wanted!r} not found.", retryable=False)
        return found

    def create_vm(self, request: VmRequest) -> Vm:
        options: dict[str, Any] = {
            "ex_userdata": request.user_data,
            "ex_metadata": {CLUSTER_TAG: request.cluster_tag},
        }
        if self.settings.get("network"):
            options["networks"] = [
                self._find(self.compute.ex_list_networks(), str(self.settings["network"]), "Network")
            ]
        if request.firewall_ids:
            groups = self.compute.ex_list_security_groups()
            options["ex_security_groups"] = [
                self._find(groups, i, "Security group") for i in request.firewall_ids
            ]
        image = self._find(self.compute.list_images(), self.credential("image"), "Image")
        node = self.compute.create_node(
            name=request.name, size=self.node_size(request.size), image=image, **options
        )
        return vm_of(node)


class OpenStackFirewall(Firewall):
    """A security group whose member rules admit the group itself (its servers)."""

    def ensure(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        group = next((g for g in self.driver.ex_list_security_groups() if g.name == name), None)
        if group is None:
            group = self.driver.ex_create_security_group(name, f"Flotilla cluster {tag}")
        self._add_missing(group, rules)
        return str(group.id)

    def apply(
        self,
        provider_id: str,
        name: str,
        tag: str,
        owner: str,
        rules: list[FirewallRule],
        addresses: list[str],
    ) -> bool:
        """Add the owner's rules the group lacks; delete nothing."""
        if not rules:
            return False
        group = next((g for g in self.driver.ex_list_security_groups() if str(g.id) == provider_id), None)
        return group is not None and self._add_missing(group, rules)

    def _add_missing(self, group: Any, rules: list[FirewallRule]) -> bool:
        changed = False
        have = {
            (str(r.ip_protocol), int(r.from_port or 0), int(r.to_port or 0), str(r.ip_range or r.group or ""))
            for r in group.rules or []
        }
        for rule in rules:
            sources = [(c, None) for c in rule.cidrs] + ([("", group)] if rule.members else [])
            for cidr, source in sources:
                key = (rule.protocol, rule.from_port, rule.to_port, cidr or str(group.id))
                if key not in have:
                    changed = True
                    self.driver.ex_create_security_group_rule(
                        group,
                        rule.protocol,
                        rule.from_port,
                        rule.to_port,
                        cidr=cidr or None,
                        source_security_group=source,
                    )
        return changed

    def delete(self, name: str, provider_id: str) -> bool:
        for group in self.driver.ex_list_security_groups():
            if str(group.id) == provider_id or (not provider_id and group.name == name):
                try:
                    self.driver.ex_delete_security_group(group)
                except BaseHTTPError as exc:
                    if exc.code == 409:
                        return False  # still used by servers being deleted
                    raise
        return True
