"""Provider capabilities: what each kind of provider offers, built from one credentials object.

A cloud offers up to six capabilities — compute, firewall, load balancer, DNS, volumes (volume
snapshots) and object storage — each an optional adapter. A provider *declares* the ones it
has (`CloudKit`); one `Capabilities` object is built from the account's single `CloudAccount`
and hands out an adapter per capability, or None where the provider does not offer it. A
capability Flotilla has not implemented for a provider is not declared: there are no stubs.

The cluster firewall's desired rules are an input: the cluster's own k3s rules plus rules that
other apps contribute for it (`register_firewall_contributor`), each keyed by its owner
(`"networking:<id>"`). Adapters reconcile each owner's rules on their own and never touch a
rule they did not make.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from clusters.exceptions import ProviderError
from clusters.providers.clouds.base import CLUSTER_OWNER, CloudAccount, CloudApi, Firewall, FirewallRule
from clusters.providers.records import OWNER

if TYPE_CHECKING:
    from clusters.models import Cluster


class Capability(StrEnum):
    """One thing a provider can do for Flotilla."""

    COMPUTE = "compute"
    FIREWALL = "firewall"
    LOAD_BALANCER = "load_balancer"
    DNS = "dns"
    VOLUMES = "volumes"
    OBJECT_STORAGE = "object_storage"


@dataclass(frozen=True)
class CloudKit:
    """What one cloud declares: its compute adapter and the optional capabilities it offers."""

    compute: type[CloudApi]
    firewall: type[Firewall] | None = None

    def offered(self) -> tuple[Capability, ...]:
        """The declared capabilities, in `Capability` order."""
        adapters = {Capability.COMPUTE: self.compute, Capability.FIREWALL: self.firewall}
        return tuple(c for c in Capability if adapters.get(c) is not None)

    def build(self, account: CloudAccount) -> Capabilities:
        """Every declared capability, built from the one account."""
        return Capabilities(self, account)


class Capabilities:
    """The adapters of one provider account (in one region), all from the same credentials."""

    def __init__(self, kit: CloudKit, account: CloudAccount) -> None:
        self.account = account
        self.offered = kit.offered()
        self.compute: CloudApi = kit.compute(account)
        self.firewall: Firewall | None = kit.firewall(self.compute) if kit.firewall else None

    def capability(self, name: str) -> Any | None:
        """The adapter of capability `name`, None when the provider does not offer it."""
        if Capability(name) not in self.offered:
            return None
        return getattr(self, str(name), None)


# --- the firewall's desired rules, as an input other apps add to -------------------------------

FirewallContributor = Callable[["Cluster"], Iterable[FirewallRule]]
_CONTRIBUTORS: dict[str, FirewallContributor] = {}


def register_firewall_contributor(app: str, contributor: FirewallContributor) -> None:
    """Let `app` add rules to every cluster firewall: `contributor(cluster)` gives its rules.

    Called from the app's `ready()`. Its rules' owners must be `"<app>:<id>"`; the cluster's
    reconcile loop asks on every pass, so a change reaches the provider on the next one. An owner
    that stops contributing has its rules removed on the next pass.
    """
    if not OWNER.match(app) or ":" in app or app == CLUSTER_OWNER:
        raise ValueError(f"not an app label: {app!r}")
    _CONTRIBUTORS[app] = contributor


def unregister_firewall_contributor(app: str) -> None:
    """Stop asking `app` for rules (its rules go on the next pass)."""
    _CONTRIBUTORS.pop(app, None)


def contributed_rules(cluster: Cluster) -> list[FirewallRule]:
    """Every rule the registered apps contribute for `cluster`, checked."""
    rules: list[FirewallRule] = []
    for app, contributor in sorted(_CONTRIBUTORS.items()):
        for rule in contributor(cluster):
            rules.append(_checked(app, rule))
    return rules


def _checked(app: str, rule: FirewallRule) -> FirewallRule:
    """A contributed rule: its owner is the app's, it names networks, and its ports are ports."""
    problem = ""
    if not rule.owner.startswith(f"{app}:") or not OWNER.match(rule.owner):
        problem = f"owner {rule.owner!r} is not {app}:<id>"
    elif rule.members or not rule.cidrs:
        problem = "a contributed rule admits networks (cidrs), not the cluster's members"
    elif rule.protocol not in ("tcp", "udp") or not 1 <= rule.from_port <= rule.to_port <= 65535:
        problem = f"{rule.protocol} {rule.from_port}-{rule.to_port} is not a tcp/udp port range"
    else:
        try:
            cidrs = tuple(str(ipaddress.IPv4Network(c, strict=False)) for c in rule.cidrs)
        except ValueError as exc:
            problem = str(exc)
        else:
            return FirewallRule(rule.protocol, rule.from_port, rule.to_port, cidrs=cidrs, owner=rule.owner)
    raise ProviderError(f"Firewall rule from {app}: {problem}.", retryable=False)


def by_owner(rules: Iterable[FirewallRule]) -> dict[str, list[FirewallRule]]:
    """Rules grouped by owner, in the order given."""
    grouped: dict[str, list[FirewallRule]] = {}
    for rule in rules:
        grouped.setdefault(rule.owner, []).append(rule)
    return grouped


__all__ = [
    "Capabilities",
    "Capability",
    "CloudKit",
    "FirewallContributor",
    "by_owner",
    "contributed_rules",
    "register_firewall_contributor",
    "unregister_firewall_contributor",
]
