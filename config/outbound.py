"""Where Flotilla may connect on a tenant's behalf: the one outbound-connection policy.

A URL a tenant gives (a kubeconfig's `server`, a cloud's endpoint, a URL a provider hands back)
would otherwise let the Flotilla host call its own network: its database, its metrics, another
org's control plane on loopback, the cloud metadata service. `check_url` resolves the host once,
refuses every address that is not public (or is one of this host's own), and returns the address
that was checked, so the caller connects to exactly that address (no DNS rebinding between the
check and the connection).

The operator opens exceptions with `FLOTILLA_OUTBOUND_ALLOW`: CIDRs (`10.20.0.0/16`, `fd00::/8`)
and/or `host:port` pairs (`kube.internal:6443`, `127.0.0.1:8443`, `[::1]:6443`). An allow-listed
target may also use plain http. Clusters Flotilla runs itself (the local provider) are not checked
here at all: their callers say so (`trusted`), so loopback stays closed to tenants.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from orgs.exceptions import ValidationFailed

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
DEFAULT_PORTS = {"https": 443, "http": 80}


class OutboundRefused(ValidationFailed):
    """A URL Flotilla will not connect to; `fields` names the setting or upload that held it."""

    code = "outbound_refused"
    # Retrying does not change a policy decision: the reconcile loop fails at once.
    retryable = False

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", fields={field: [reason]})
        self.reason = reason


@dataclass(frozen=True)
class CheckedTarget:
    """A URL that passed the policy, and the address it resolved to (connect to that one)."""

    url: str
    scheme: str
    host: str  # as written (lower case, no brackets): for TLS verification and the Host header
    port: int
    path: str
    address: str  # the checked IP

    @property
    def host_is_address(self) -> bool:
        """Whether the URL named an IP address rather than a host name."""
        try:
            return str(ipaddress.ip_address(self.host)) == self.address
        except ValueError:
            return False

    @property
    def pinned_url(self) -> str:
        """The URL with the host replaced by the checked address (path kept)."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def netloc(self) -> str:
        """`host:port` as the Host header carries it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS.get(self.scheme) else f"{host}:{self.port}"


@dataclass(frozen=True)
class Allowance:
    """The operator's exceptions, parsed from `FLOTILLA_OUTBOUND_ALLOW`."""

    networks: tuple[IpNetwork, ...] = ()
    targets: frozenset[tuple[str, int]] = frozenset()

    def admits(self, host: str, address: IpAddress, port: int) -> bool:
        """Whether the operator allowed this address (any port) or this host/address and port."""
        if any(address.version == n.version and address in n for n in self.networks):
            return True
        return (host, port) in self.targets or (str(address), port) in self.targets


def parse_allowance(entries: Iterable[str]) -> Allowance:
    """`["10.0.0.0/8", "kube.internal:6443", "[::1]:6443"]` as an `Allowance` (bad entries raise)."""
    networks: list[IpNetwork] = []
    targets: set[tuple[str, int]] = set()
    for raw in entries:
        entry = raw.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        host, sep, port = entry.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"FLOTILLA_OUTBOUND_ALLOW: {raw!r} is neither a CIDR nor host:port")
        targets.add((_normal_host(host), int(port)))
    return Allowance(tuple(networks), frozenset(targets))


def allowance() -> Allowance:
    """The allow-list in force (read at each check, so a test or a reload sees the current value)."""
    return parse_allowance(getattr(settings, "FLOTILLA_OUTBOUND_ALLOW", []) or [])


def _normal_host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.rstrip(".").lower()


def embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, 6to4, Teredo, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _NAT64_LOCAL or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_class(address: IpAddress) -> str | None:
    """Why an address is not a public one (None when it is), in words a user can act on."""
    inner = embedded_ipv4(address)
    if inner is not None:
        reason = address_class(inner)
        if reason is not None:
            return f"{reason} (in IPv6 form)"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a carrier-grade NAT (shared) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def is_own_address(address: IpAddress) -> bool:
    """Whether the address belongs to one of this host's interfaces.

    Binding to an address succeeds only when it is local, so this needs no interface listing and
    sees every interface, including a public address assigned to this machine.
    """
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True


def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address `host` resolves to (a literal resolves to itself), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: list[IpAddress] = []
    for info in infos:
        # A scoped IPv6 address (fe80::1%eth0) keeps its scope after "%": the address is before it.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen


def check_url(url: str, *, purpose: str, field: str) -> CheckedTarget:
    """Check `url` against the policy and return where to connect; `OutboundRefused` otherwise.

    `purpose` names the URL in messages ("the kubeconfig's server"); `field` is the input field
    the error points at (`kubeconfig`, `auth_url`...). Every resolved address must pass, so a
    name with one public and one private address is refused whatever order the resolver uses.
    """
    text = str(url).strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(field, f"{purpose} is not a valid URL ({exc}).") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise OutboundRefused(field, f"{purpose} must be an https:// URL with a host name.")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused(field, f"{purpose} must not carry a user name or password in the URL.")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise OutboundRefused(field, f"{purpose} must not have a query (?…) or a fragment (#…).")
    host = _normal_host(parts.hostname)
    port = port or DEFAULT_PORTS[scheme]
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise OutboundRefused(field, f"{purpose}: the host name {host} does not resolve.") from exc
    if not addresses:
        raise OutboundRefused(field, f"{purpose}: the host name {host} does not resolve.")
    allowed = allowance()
    for address in addresses:
        if allowed.admits(host, address, port):
            continue
        reason = address_class(address) or (
            "an address of the Flotilla host" if is_own_address(address) else None
        )
        if reason is not None:
            named = host if host == str(address) else f"{host} ({address})"
            raise OutboundRefused(
                field,
                f"{purpose} points at {named}, {reason}; Flotilla does not connect there unless "
                "the operator allows it (FLOTILLA_OUTBOUND_ALLOW).",
            )
    if scheme != "https" and not all(allowed.admits(host, a, port) for a in addresses):
        raise OutboundRefused(field, f"{purpose} must use https:// (plain http is not allowed).")
    return CheckedTarget(
        url=text,
        scheme=scheme,
        host=host,
        port=port,
        path=parts.path.rstrip("/"),
        address=str(addresses[0]),
    )
