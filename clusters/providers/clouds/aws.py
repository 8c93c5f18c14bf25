"""AWS EC2: an Ubuntu image found by owner and name (compute), a security group admitting its own
members (firewall).

A security group's rules carry no owner Flotilla could read back through libcloud, so the
firewall adapter only adds the rules an owner lacks and never revokes one: whatever else the
group admits (a rule added by hand, by another tool) stays.
"""

from __future__ import annotations

from typing import Any

from libcloud.common.exceptions import BaseHTTPError
from libcloud.compute.base import NodeImage

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

CANONICAL_OWNER = "099720109477"
UBUNTU_EC2_NAMES = "ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-{arch}-server-*"
LIVE_EC2_STATES = ["pending", "running", "stopping", "stopped"]


class Ec2Api(CloudApi):
    """AWS EC2 (or an EC2-compatible endpoint): VMs in the default VPC or a given subnet."""

    credential_fields = (
        CredentialField("access_key_id", "Access key ID"),
        CredentialField("secret_access_key", "Secret access key"),
        CredentialField("region", "Default region", secret=False, required=False, help="e.g. eu-west-1"),
        CredentialField("subnet_id", "Subnet", secret=False, required=False, help="Default: the default VPC"),
        CredentialField(
            "image", "AMI", secret=False, required=False, help="Default: the newest Ubuntu 24.04 AMI"
        ),
        CredentialField(
            "endpoint", "Endpoint URL", secret=False, required=False, help="EC2-compatible APIs only"
        ),
    )

    def build(self) -> Any:
        from libcloud.compute.drivers.ec2 import EC2NodeDriver

        region = self.region or "us-east-1"
        if region not in EC2NodeDriver.list_regions():  # type: ignore[no-untyped-call]
            raise ProviderError(
                f"Unknown EC2 region {region!r}.", retryable=False, fields={"region": ["Unknown region."]}
            )
        options: dict[str, Any] = {"region": region, "signature_version": "4"}
        if self.settings.get("endpoint"):
            parts = checked_endpoint(str(self.settings["endpoint"]), "endpoint")
            secure = parts.scheme == "https"
            options.update(host=parts.hostname, port=parts.port or (443 if secure else 80), secure=secure)
        return EC2NodeDriver(  # type: ignore[no-untyped-call]
            self.credential("access_key_id"), self.credential("secret_access_key"), **options
        )

    def regions(self) -> list[Region]:
        from libcloud.compute.constants.ec2_region_details_partial import REGION_DETAILS

        # China and GovCloud are separate partitions with their own accounts.
        return [
            Region(id=key, name=f"{key} ({details.get('country', '')})")
            for key, details in sorted(REGION_DETAILS.items())
            if not key.startswith(("cn-", "us-gov-"))
        ]

    def _subnet(self) -> Any:
        subnet_id = str(self.settings.get("subnet_id") or "")
        if not subnet_id:
            return None
        found = self.compute.ex_list_subnets(subnet_ids=[subnet_id])
        if not found:
            raise ProviderError(
                f"Subnet {subnet_id} not found.", retryable=False, fields={"subnet_id": ["Not found."]}
            )
        return found[0]

    def image_id(self, size: str) -> str:
        if self.settings.get("image"):
            return str(self.settings["image"])
        found = next((s for s in self.compute.list_sizes() if s.id == size), None)
        graviton = found is not None and "Graviton" in str((found.extra or {}).get("physicalProcessor", ""))
        arch = "arm64" if graviton else "amd64"
        images = self.compute.list_images(
            ex_owner=CANONICAL_OWNER,
            ex_filters={"name": UBUNTU_EC2_NAMES.format(arch=arch), "state": "available"},
        )
        if not images:
            raise ProviderError(
                f"No Ubuntu 24.04 {arch} AMI found in {self.region}: set the account's image.",
                retryable=False,
                fields={"image": ["No default image here."]},
            )
        return str(max(images, key=lambda image: str(image.name)).id)

    def list_vms(self, names: set[str]) -> list[Vm]:
        if not names:
            return []
        nodes = self.compute.list_nodes(
            ex_filters={"tag:Name": sorted(names), "instance-state-name": LIVE_EC2_STATES}
        )
        return [vm for vm in map(vm_of, nodes) if vm.name in names]

    def create_vm(self, request: VmRequest) -> Vm:
        options: dict[str, Any] = {
            "name": request.name,
            "size": self.node_size(request.size),
            "image": NodeImage(id=self.image_id(request.size), name="", driver=self.compute),
            "ex_userdata": request.user_data,
            "ex_metadata": {CLUSTER_TAG: request.cluster_tag},
        }
        if request.idempotency_key:
            # EC2 returns the same instance when a create is repeated with the same token.
            options["ex_clienttoken"] = request.idempotency_key[:64]
        subnet = self._subnet()
        if subnet is not None:
            options.update(
                ex_subnet=subnet, ex_security_group_ids=list(request.firewall_ids), ex_assign_public_ip=True
            )
        elif request.firewall_names:
            options["ex_security_groups"] = list(request.firewall_names)
        return vm_of(self.compute.create_node(**options))


def _ec2_has_rule(existing: list[dict[str, Any]], rule: FirewallRule, group_id: str) -> bool:
    """Whether the group's listed permissions admit the rule (over every entry for its ports)."""
    cidrs: set[str] = set()
    groups: set[str] = set()
    for have in existing:
        ports = (str(have.get("protocol")), str(have.get("from_port")), str(have.get("to_port")))
        if ports == (rule.protocol, str(rule.from_port), str(rule.to_port)):
            cidrs.update(have.get("cidr_ips") or [])
            groups.update(str(pair.get("group_id")) for pair in have.get("group_pairs") or [])
    return set(rule.cidrs) <= cidrs and (not rule.members or group_id in groups)


class Ec2Firewall(Firewall):
    """A security group whose member rules admit the group itself (its machines)."""

    vms: Ec2Api

    def ensure(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """Find the group by name (in the subnet's VPC) or create it, with the rules it lacks."""
        subnet = self.vms._subnet()
        vpc_id = subnet.extra.get("vpc_id") if subnet is not None else None
        filters: dict[str, Any] = {"group-name": name}
        if vpc_id:
            filters["vpc-id"] = vpc_id
        groups = self.driver.ex_get_security_groups(filters=filters)
        if groups:
            group_id, existing = str(groups[0].id), list(groups[0].ingress_rules)
        else:
            created = self.driver.ex_create_security_group(name, f"Flotilla cluster {tag}", vpc_id=vpc_id)
            group_id, existing = str(created["group_id"]), []
        self._add_missing(group_id, existing, rules)
        return group_id

    def _add_missing(self, group_id: str, existing: list[dict[str, Any]], rules: list[FirewallRule]) -> bool:
        changed = False
        for rule in rules:
            if _ec2_has_rule(existing, rule, group_id):
                continue
            try:
                self.driver.ex_authorize_security_group_ingress(
                    group_id,
                    rule.from_port,
                    rule.to_port,
                    cidr_ips=list(rule.cidrs) or None,
                    group_pairs=[{"group_id": group_id}] if rule.members else None,
                    protocol=rule.protocol,
                )
            except BaseHTTPError as exc:
                # A listing that folds permissions together can hide one the group has: AWS
                # refuses it as a duplicate, which means it is there.
                if "InvalidPermission.Duplicate" not in str(exc):
                    raise
            else:
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
        """Authorize the owner's rules the group lacks; revoke nothing."""
        if not rules:
            return False
        groups = self.driver.ex_get_security_groups(group_ids=[provider_id])
        if not groups:
            return False
        return self._add_missing(provider_id, list(groups[0].ingress_rules), rules)

    def delete(self, name: str, provider_id: str) -> bool:
        if not provider_id:
            groups = self.driver.ex_get_security_groups(filters={"group-name": name})
            if not groups:
                return True
            provider_id = str(groups[0].id)
        try:
            self.driver.ex_delete_security_group_by_id(provider_id)
        except BaseHTTPError as exc:
            if "InvalidGroup.NotFound" in str(exc):
                return True
            if "DependencyViolation" in str(exc):
                return False  # instances still shutting down
            raise
        return True
