"""The shared part of the cloud adapters: Flotilla's own small types, the credentials object and
the interfaces of the compute and firewall capabilities."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import urlsplit

import libcloud.http as libcloud_http
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings
from libcloud.compute.base import NodeLocation, NodeSize
from libcloud.compute.types import NodeState

from clusters.exceptions import ProviderError
from clusters.providers.base import CredentialField, Region, Size
from config.outbound import OutboundRefused, check_url

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
# The owner of the rules a cluster needs for itself (others are `<app>:<id>`, e.g. `networking:7`).
CLUSTER_OWNER = "cluster"
# How a rule that can carry a note (a description) says it is Flotilla's, and whose.
NOTE_PREFIX = "flotilla:"


@dataclass(frozen=True)
class FirewallRule:
    """Admit `protocol` on ports from..to, from `cidrs` and/or from the cluster's own machines.

    `owner` says who wants it: the cluster itself, or what another app contributed; a firewall
    adapter reconciles each owner's rules on their own and never touches anyone else's.
    """

    protocol: str
    from_port: int
    to_port: int
    cidrs: tuple[str, ...] = ()
    members: bool = False
    owner: str = CLUSTER_OWNER

    @property
    def port_range(self) -> str:
        """`"6443"` or `"51820-51821"`, as most providers' APIs write ports."""
        return str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"


def firewall_rules(api_cidrs: tuple[str, ...]) -> list[FirewallRule]:
    """The API port for `api_cidrs`, and what k3s needs between members."""
    return [FirewallRule("tcp", API_PORT, API_PORT, cidrs=api_cidrs)] + [
        FirewallRule(protocol, low, high, members=True) for protocol, low, high in K3S_MEMBER_PORTS
    ]


@dataclass(frozen=True)
class CloudAccount:
    """One provider account's decrypted credentials and settings, and the region in use.

    Every capability of a provider (compute, firewall, ...) is built from this one object, so
    each reads credentials the same way and a missing one is the same field error everywhere.
    """

    credentials: Mapping[str, str]
    settings: Mapping[str, Any]
    region: str = ""

    def __post_init__(self) -> None:
        if not self.region:
            object.__setattr__(self, "region", str(self.settings.get("region") or ""))

    def credential(self, name: str) -> str:
        """A required credential (or setting) by name; a field error when it is missing."""
        value = str(self.credentials.get(name) or self.settings.get(name) or "").strip()
        if not value:
            raise ProviderError(
                f"{name} is required.", retryable=False, fields={name: ["This field is required."]}
            )
        return value

    def in_region(self, region: str) -> CloudAccount:
        """The same account, working in `region` (the account's default when empty)."""
        return replace(self, region=region or str(self.settings.get("region") or ""))


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


def ips_of(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values or () if v and str(v) not in ("0.0.0.0", "::"))  # noqa: S104 (unassigned)


def vm_of(node: Any) -> Vm:
    """Flotilla's view of a libcloud node."""
    return Vm(
        id=str(node.id),
        name=str(node.name),
        running=node.state == NodeState.RUNNING,
        public_ips=ips_of(node.public_ips),
        private_ips=ips_of(node.private_ips),
        node=node,
    )


def cpus_of(size: Any) -> float:
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


def checked_endpoint(url: str, field_name: str, *, purpose: str = "") -> Any:
    """A provider endpoint (given in an account's settings, or handed back by the provider),
    refused when the outbound policy (`config.outbound`) refuses it; its parts when not.

    A tenant-supplied URL would otherwise let the Flotilla host make requests to its own
    network (loopback, private, link-local addresses, the metadata service). The operator
    allows exceptions with `FLOTILLA_OUTBOUND_ALLOW`, or every endpoint of this kind with
    `FLOTILLA_CLOUD_PRIVATE_ENDPOINTS` (emulators, on-premises clouds).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProviderError(
            f"{field_name}: {url!r} is not an http(s) URL.",
            retryable=False,
            fields={field_name: ["Give an https:// URL."]},
        )
    if getattr(django_settings, "FLOTILLA_CLOUD_PRIVATE_ENDPOINTS", False):
        return parts
    # A path is part of an endpoint (/identity, /v2.1); only the address, scheme and the
    # query/fragment/user parts are the policy's business.
    try:
        check_url(
            f"{parts.scheme}://{parts.netloc}",
            purpose=purpose or f"the {field_name} URL",
            field=field_name,
        )
        if parts.query or parts.fragment:
            raise OutboundRefused(field_name, "an endpoint URL must not have a query or a fragment.")
    except OutboundRefused as exc:
        raise ProviderError(exc.message, retryable=False, fields=exc.fields) from exc
    return parts


def refuse_redirects() -> None:
    """libcloud follows HTTP redirects by default (one module switch for every driver): a
    provider endpoint, or anyone answering for it, could send Flotilla to an address the
    outbound policy never saw. Called once when the adapters are imported."""
    libcloud_http.ALLOW_REDIRECTS = False


refuse_redirects()


class CloudApi(ABC):
    """The compute capability of one provider (its VMs), through libcloud's compute driver.

    It owns the provider's libcloud compute driver, built once from the account; the other
    capabilities of providers whose firewall calls go over the same API reuse its connection.
    """

    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    default_image: ClassVar[str] = ""

    def __init__(self, account: CloudAccount) -> None:
        self.account = account
        self.credentials = account.credentials
        self.settings = account.settings
        self.region = account.region

    def credential(self, name: str) -> str:
        return self.account.credential(name)

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
            cpus=cpus_of(size),
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


class Firewall(ABC):
    """The firewall capability of one provider: a firewall in front of a cluster's machines.

    Built on the provider's compute adapter (the same account and connection). The cluster's
    machines are admitted either as a group that follows them (a security group, a tag, an
    application security group: `admits_members_by = "group"`) or by their addresses, which
    the reconcile loop keeps equal to the running VMs (`"address"`: Linode, Vultr).

    Rules are reconciled per owner (`apply`): an adapter changes only the rules it made for that
    owner and leaves every other rule of the firewall alone, whoever added it.
    """

    admits_members_by: ClassVar[str] = "group"

    def __init__(self, compute: CloudApi) -> None:
        self.vms = compute

    @property
    def driver(self) -> Any:
        """The provider's libcloud driver (the compute adapter's)."""
        return self.vms.compute

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.vms.settings

    def names(self, base: str) -> list[str]:
        """The firewalls a cluster tagged `base` has at this provider (one, for most)."""
        return [base]

    @abstractmethod
    def ensure(self, name: str, rules: list[FirewallRule], tag: str) -> str:
        """Find or create the firewall with the cluster's own rules; its provider id."""

    @abstractmethod
    def apply(
        self,
        provider_id: str,
        name: str,
        tag: str,
        owner: str,
        rules: list[FirewallRule],
        addresses: list[str],
    ) -> bool:
        """Make what Flotilla admits for `owner` `rules` (members' from `addresses` where the
        firewall admits members by address), touching no rule of any other owner or anyone else.

        True when something changed; a pass with nothing to change only reads.
        """

    def join(self, vms: list[Vm], firewall_ids: tuple[str, ...]) -> list[str]:
        """Put running VMs that are not behind the cluster's firewalls yet behind them; their names.

        For providers where that is a call of its own (a VM found before it was recorded, one from
        before the firewall existed); VMs already behind them are left as they are.
        """
        return []

    @abstractmethod
    def delete(self, name: str, provider_id: str) -> bool:
        """Delete it (gone already counts); False while machines still use it."""


def send_json(driver: Any, path: str, method: str = "GET", body: Any = None) -> Any:
    """A JSON request through a libcloud driver's own authenticated connection; the answer's body.

    For the providers whose firewall calls libcloud has no methods for (same API, same token).
    """
    data = json.dumps(body) if body is not None else None
    return driver.connection.request(path, data=data, method=method).object


def owner_of_note(note: str) -> str | None:
    """The owner a `flotilla:<owner> ...` note names; None for a note Flotilla did not write.

    Notes written before rules had owners (`flotilla: API`, `flotilla: member ...`) are the
    cluster's own.
    """
    if not note.startswith(NOTE_PREFIX):
        return None
    rest = note[len(NOTE_PREFIX) :]
    if not rest or rest[0].isspace():
        return CLUSTER_OWNER
    return rest.split()[0]


def owner_note(owner: str, what: str = "") -> str:
    """The note that marks a rule as Flotilla's, made for `owner`."""
    return f"{NOTE_PREFIX}{owner} {what}".strip()
