"""What Flotilla knows about each libcloud compute provider: one small adapter per provider.

An adapter says which credentials the provider takes, how to build its libcloud driver, how to
list regions and sizes, which image a VM boots, how a VM is created, and whether (and how) the
provider gives a firewall that can admit "members of this cluster only". Everything else — the
order of steps, crash safety, the k3s bootstrap — is shared in `clusters.providers.cloud`.

Adapters return Flotilla's own small types (`Vm`, `Region`, `Size`); libcloud's objects stay
inside this module and `cloud.py`. Libcloud's exceptions are translated there, once.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
from abc import ABC, abstractmethod
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings
from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.compute.base import NodeAuthSSHKey, NodeImage, NodeLocation, NodeSize
from libcloud.compute.types import NodeState

from clusters.exceptions import ProviderError
from clusters.providers.base import CredentialField, Region, Size

# Ports k3s needs between the cluster's own machines (never from anywhere else).
K3S_MEMBER_PORTS: tuple[tuple[str, int, int], ...] = (
    ("tcp", 6443, 6443),  # agents to the API server
    ("tcp", 10250, 10250),  # kubelet (logs, exec, metrics)
    ("udp", 8472, 8472),  # flannel VXLAN
    ("udp", 51820, 51821),  # flannel WireGuard (IPv4, IPv6)
)
API_PORT = 6443
DEFAULT_API_CIDRS = ("0.0.0.0/0",)
CLUSTER_TAG = "flotilla-cluster"


@dataclass(frozen=True)
class FirewallRule:
    """Admit `protocol` on ports from..to, from `cidrs` and/or from the cluster's own machines."""

    protocol: str
    from_port: int
    to_port: int
    cidrs: tuple[str, ...] = ()
    members: bool = False


def firewall_rules(api_cidrs: tuple[str, ...]) -> list[FirewallRule]:
    """The API port for `api_cidrs`, and what k3s needs between members."""
    return [FirewallRule("tcp", API_PORT, API_PORT, cidrs=api_cidrs)] + [
        FirewallRule(protocol, low, high, members=True) for protocol, low, high in K3S_MEMBER_PORTS
    ]


@dataclass(frozen=True)
class Vm:
    """A VM as the provider reports it."""

    id: str
    name: str
    running: bool
    public_ips: tuple[str, ...]
    private_ips: tuple[str, ...]
    node: Any = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> str:
        """Where Flotilla reaches it: its public address, else its private one."""
        return (self.public_ips or self.private_ips or ("",))[0]

    @property
    def member_address(self) -> str:
        """Where the other members reach it: its private address, else its public one."""
        return (self.private_ips or self.public_ips or ("",))[0]


@dataclass(frozen=True)
class VmRequest:
    """One VM to create."""

    name: str
    size: str
    user_data: str
    cluster_tag: str
    firewall_names: tuple[str, ...] = ()
    firewall_ids: tuple[str, ...] = ()
    idempotency_key: str = ""


def _ips(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values or () if v and str(v) not in ("0.0.0.0", "::"))  # noqa: S104 (unassigned)


def vm_of(node: Any) -> Vm:
    """Flotilla's view of a libcloud node."""
    return Vm(
        id=str(node.id),
        name=str(node.name),
        running=node.state == NodeState.RUNNING,
        public_ips=_ips(node.public_ips),
        private_ips=_ips(node.private_ips),
        node=node,
    )


def _cpus(size: Any) -> float:
    extra = size.extra or {}
    for key in ("vcpus", "vcpu", "vcpu_count", "guestCpus", "numberOfCores", "cpu_count"):
        value = extra.get(key)
        if value is not None and value not in ("", "NA"):
            return float(value)
    return float(getattr(size, "vcpus", 0) or 0)


def throwaway_ssh_key() -> str:
    """A public key whose private half is never kept: for providers that insist on a login."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raw = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode() + " flotilla-no-login"


def checked_endpoint(url: str, field_name: str) -> Any:
    """A provider endpoint given in an account's settings, refused when it points inside.

    A tenant-supplied URL would otherwise let the Flotilla host make requests to its own
    network (loopback, private, link-local addresses): the operator allows that explicitly
    with `FLOTILLA_CLOUD_PRIVATE_ENDPOINTS` (emulators, on-premises clouds).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderError(
            f"{field_name}: {url!r} is not an http(s) URL.",
            retryable=False,
            fields={field_name: ["Give an http:// or https:// URL."]},
        )
    if getattr(django_settings, "FLOTILLA_CLOUD_PRIVATE_ENDPOINTS", False):
        return parts
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise ProviderError(
            f"{field_name}: cannot resolve {parts.hostname}: {exc}", fields={field_name: [str(exc)]}
        ) from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            reason = f"{parts.hostname} is a non-public address ({address}), not allowed here."
            raise ProviderError(f"{field_name}: {reason}", retryable=False, fields={field_name: [reason]})
    return parts


class CloudApi(ABC):
    """One provider, as Flotilla uses it through libcloud."""

    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    # Whether the provider's firewall can admit "members of this cluster" (a group or a tag).
    member_firewall: ClassVar[bool] = False
    default_image: ClassVar[str] = ""

    def __init__(self, credentials: dict[str, str], settings: dict[str, Any], region: str = "") -> None:
        self.credentials = credentials
        self.settings = settings
        self.region = region or str(settings.get("region") or "")

    def credential(self, name: str) -> str:
        value = str(self.credentials.get(name) or self.settings.get(name) or "").strip()
        if not value:
            raise ProviderError(
                f"{name} is required.", retryable=False, fields={name: ["This field is required."]}
            )
        return value

    @cached_property
    def compute(self) -> Any:
        """The libcloud compute driver (built on first use)."""
        return self.build()

    @abstractmethod
    def build(self) -> Any:
        """Construct the libcloud driver."""

    def probe(self) -> None:
        """One cheap authenticated call."""
        self.compute.list_locations()

    def regions(self) -> list[Region]:
        return [Region(id=str(loc.id), name=str(loc.name or loc.id)) for loc in self.compute.list_locations()]

    def sizes(self) -> list[Size]:
        return [self.size_of(s) for s in self.compute.list_sizes()]

    def size_of(self, size: Any) -> Size:
        price = size.price
        return Size(
            id=str(size.id),
            name=str(size.name or size.id),
            cpus=_cpus(size),
            memory_mb=int(size.ram or 0),
            price_hourly=float(price) if price not in (None, "") else None,
        )

    def location(self) -> Any:
        return NodeLocation(id=self.region, name=self.region, country="", driver=self.compute)

    def node_size(self, size: str) -> Any:
        return NodeSize(id=size, name=size, ram=0, disk=0, bandwidth=0, price=0, driver=self.compute)

    def image_id(self, size: str) -> str:
        return str(self.settings.get("image") or self.default_image)

    def list_vms(self, names: set[str]) -> list[Vm]:
        """The provider's VMs with one of these names."""
        return [vm for vm in map(vm_of, self.compute.list_nodes()) if vm.name in names]

    @abstractmethod
    def create_vm(self, request: VmRequest) -> Vm:
        """Create one VM (its name is unique in the cluster)."""

    def destroy_vm(self, name: str, vm: Vm | None) -> bool:
        """Destroy a VM (None: not found) and what belongs to it; False while that is under way."""
        if vm is not None:
            self.compute.destroy_node(vm.node)
        return True

    def firewall_names(self, base: str) -> list[str]:
        return [base] if self.member_firewall else []

    def ensure_firewall(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """Find or create the firewall and add the rules it lacks; its provider id."""
        raise NotImplementedError

    def delete_firewall(self, name: str, provider_id: str) -> bool:
        """Delete it (gone already counts); False while machines still use it."""
        return True


# --- AWS EC2 -------------------------------------------------------------------------------------

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
    member_firewall = True

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

    def ensure_firewall(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        subnet = self._subnet()
        vpc_id = subnet.extra.get("vpc_id") if subnet is not None else None
        filters: dict[str, Any] = {"group-name": name}
        if vpc_id:
            filters["vpc-id"] = vpc_id
        groups = self.compute.ex_get_security_groups(filters=filters)
        if groups:
            group_id, existing = str(groups[0].id), list(groups[0].ingress_rules)
        else:
            created = self.compute.ex_create_security_group(name, f"Flotilla cluster {tag}", vpc_id=vpc_id)
            group_id, existing = str(created["group_id"]), []
        for rule in rules:
            if not _ec2_has_rule(existing, rule, group_id):
                self.compute.ex_authorize_security_group_ingress(
                    group_id,
                    rule.from_port,
                    rule.to_port,
                    cidr_ips=list(rule.cidrs) or None,
                    group_pairs=[{"group_id": group_id}] if rule.members else None,
                    protocol=rule.protocol,
                )
        return group_id

    def delete_firewall(self, name: str, provider_id: str) -> bool:
        if not provider_id:
            groups = self.compute.ex_get_security_groups(filters={"group-name": name})
            if not groups:
                return True
            provider_id = str(groups[0].id)
        try:
            self.compute.ex_delete_security_group_by_id(provider_id)
        except BaseHTTPError as exc:
            if "InvalidGroup.NotFound" in str(exc):
                return True
            if "DependencyViolation" in str(exc):
                return False  # instances still shutting down
            raise
        return True


def _ec2_has_rule(existing: list[dict[str, Any]], rule: FirewallRule, group_id: str) -> bool:
    for have in existing:
        if (str(have.get("protocol")), str(have.get("from_port")), str(have.get("to_port"))) != (
            rule.protocol,
            str(rule.from_port),
            str(rule.to_port),
        ):
            continue
        groups = {str(pair.get("group_id")) for pair in have.get("group_pairs") or []}
        if set(rule.cidrs) <= set(have.get("cidr_ips") or []) and (not rule.members or group_id in groups):
            return True
    return False


# --- DigitalOcean, Linode, Vultr (token-authenticated, no member firewall in libcloud) ------------


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
                cpus=_cpus(s),
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


# --- Google Compute Engine -----------------------------------------------------------------------


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
    member_firewall = True

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

    def firewall_names(self, base: str) -> list[str]:
        # A GCE rule's sources are OR-ed: the public API port and member traffic need two rules.
        return [f"{base}-api", f"{base}-members"]

    def ensure_firewall(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        from libcloud.common.google import ResourceNotFoundError

        try:
            return str(self.compute.ex_get_firewall(name).name)
        except ResourceNotFoundError:
            pass
        members = name.endswith("-members")
        chosen = [r for r in rules if r.members == members]
        allowed: dict[str, list[str]] = {}
        for rule in chosen:
            ports = (
                str(rule.from_port) if rule.from_port == rule.to_port else f"{rule.from_port}-{rule.to_port}"
            )
            allowed.setdefault(rule.protocol, []).append(ports)
        cidrs = sorted({c for r in chosen for c in r.cidrs})
        firewall = self.compute.ex_create_firewall(
            name,
            allowed=[{"IPProtocol": proto, "ports": ports} for proto, ports in allowed.items()],
            network=str(self.settings.get("network") or "default"),
            source_ranges=None if members else cidrs,
            source_tags=[tag] if members else None,
            target_tags=[tag],
            description="Flotilla cluster",
        )
        return str(firewall.name)

    def delete_firewall(self, name: str, provider_id: str) -> bool:
        from libcloud.common.google import ResourceNotFoundError

        with suppress(ResourceNotFoundError):
            self.compute.ex_destroy_firewall(self.compute.ex_get_firewall(name))
        return True


# --- Azure ---------------------------------------------------------------------------------------


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
        ip = next((i for i in self.compute.ex_list_public_ips(group) if i.name == f"{name}-ip"), None)
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
        for ip in self.compute.ex_list_public_ips(group):
            if ip.name == f"{name}-ip":
                self.compute.ex_delete_public_ip(ip)
                return False
        return True


# --- OpenStack -----------------------------------------------------------------------------------


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
    member_firewall = True

    def build(self) -> Any:
        from libcloud.compute.drivers.openstack import OpenStack_2_NodeDriver

        parts = checked_endpoint(self.credential("auth_url"), "auth_url")
        return OpenStack_2_NodeDriver(  # type: ignore[no-untyped-call]
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

    def ensure_firewall(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        group = next((g for g in self.compute.ex_list_security_groups() if g.name == name), None)
        if group is None:
            group = self.compute.ex_create_security_group(name, f"Flotilla cluster {tag}")
        have = {
            (str(r.ip_protocol), int(r.from_port or 0), int(r.to_port or 0), str(r.ip_range or r.group or ""))
            for r in group.rules or []
        }
        for rule in rules:
            sources = [(c, None) for c in rule.cidrs] + ([("", group)] if rule.members else [])
            for cidr, source in sources:
                key = (rule.protocol, rule.from_port, rule.to_port, cidr or str(group.id))
                if key not in have:
                    self.compute.ex_create_security_group_rule(
                        group,
                        rule.protocol,
                        rule.from_port,
                        rule.to_port,
                        cidr=cidr or None,
                        source_security_group=source,
                    )
        return str(group.id)

    def delete_firewall(self, name: str, provider_id: str) -> bool:
        for group in self.compute.ex_list_security_groups():
            if str(group.id) == provider_id or (not provider_id and group.name == name):
                try:
                    self.compute.ex_delete_security_group(group)
                except BaseHTTPError as exc:
                    if exc.code == 409:
                        return False  # still used by servers being deleted
                    raise
        return True
