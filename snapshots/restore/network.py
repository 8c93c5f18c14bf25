"""Services' clusterIPs and nodePorts: kept where free in the target, reassigned where they clash.

Clients, DNS caches and firewall rules outside the cluster often hold a Service's clusterIP or
nodePort, so a restore keeps them. Where the target already uses one, it is removed from the
object so that the API server assigns a new one, and a note says which. An address outside the
target's service range is only known to the API server: it refuses the write as Invalid, and the
caller retries once with `without_ips`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from snapshots.restore.clean import json_copy
from snapshots.restore.order import describe

HEADLESS = "None"


@dataclass
class Taken:
    """What the target already uses; `service_ips` adds what it keeps, so a batch cannot clash."""

    cluster_ips: set[str] = field(default_factory=set)
    node_ports: set[int] = field(default_factory=set)

    @classmethod
    def from_services(cls, services: Iterable[Mapping[str, Any]]) -> Taken:
        """What the target's live Services use (a list of Services as the API server returns)."""
        taken = cls()
        for service in services:
            spec = service.get("spec") or {}
            for ip in _cluster_ips(spec):
                if ip != HEADLESS:
                    taken.cluster_ips.add(ip)
            taken.node_ports.update(_node_ports(spec))
        return taken


def _cluster_ips(spec: Mapping[str, Any]) -> list[str]:
    ips = [str(ip) for ip in spec.get("clusterIPs") or [] if ip]
    primary = spec.get("clusterIP")
    if primary and str(primary) not in ips:
        ips.insert(0, str(primary))
    return ips


def _node_ports(spec: Mapping[str, Any]) -> list[int]:
    ports = [
        int(port["nodePort"])
        for port in spec.get("ports") or []
        if isinstance(port, Mapping) and port.get("nodePort")
    ]
    if spec.get("healthCheckNodePort"):
        ports.append(int(spec["healthCheckNodePort"]))
    return ports


def _is_service(obj: Mapping[str, Any]) -> bool:
    return obj.get("apiVersion") == "v1" and obj.get("kind") == "Service"


def service_ips(
    obj: Mapping[str, Any], taken: Taken, *, keep: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """A copy of a Service with its clusterIP(s) and nodePorts kept where free, plus notes.

    Headless Services ("None") keep it always; ExternalName Services have no IP (any is removed).
    With keep=False every IP and port is left to the API server (no note: it was asked for).
    Anything of another kind is returned unchanged.
    """
    result: dict[str, Any] = json_copy(obj)
    if not _is_service(result) or not isinstance(result.get("spec"), dict):
        return result, []
    if not keep:
        return without_ips(result), []
    spec: dict[str, Any] = result["spec"]
    name = describe(result)
    notes: list[str] = []
    if spec.get("type") == "ExternalName":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    else:
        ips = _cluster_ips(spec)
        if ips and ips[0] != HEADLESS:
            clashing = [ip for ip in ips if ip in taken.cluster_ips]
            if ips[0] in taken.cluster_ips:
                spec.pop("clusterIP", None)
                spec.pop("clusterIPs", None)
                notes.append(f"clusterIP {ips[0]} of {name} is taken in the target: a new one was assigned")
            elif clashing:
                # The primary is free: keep it; the API server allocates the other family again.
                spec["clusterIPs"] = [ip for ip in ips if ip not in taken.cluster_ips]
                taken_text = ", ".join(clashing)
                notes.append(
                    f"clusterIP {taken_text} of {name} is taken in the target: a new one was assigned"
                )
            for ip in _cluster_ips(spec):
                taken.cluster_ips.add(ip)
    for port in spec.get("ports") or []:
        if isinstance(port, dict) and port.get("nodePort"):
            number = int(port["nodePort"])
            if number in taken.node_ports:
                del port["nodePort"]
                notes.append(f"nodePort {number} of {name} is taken in the target: a new one was assigned")
            else:
                taken.node_ports.add(number)
    health = spec.get("healthCheckNodePort")
    if health:
        if int(health) in taken.node_ports:
            del spec["healthCheckNodePort"]
            notes.append(
                f"healthCheckNodePort {health} of {name} is taken in the target: a new one was assigned"
            )
        else:
            taken.node_ports.add(int(health))
    return result, notes


def without_ips(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a Service with every clusterIP and nodePort left to the API server (headless stays)."""
    result: dict[str, Any] = json_copy(obj)
    spec = result.get("spec")
    if not _is_service(result) or not isinstance(spec, dict):
        return result
    if spec.get("clusterIP") != HEADLESS:
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.pop("nodePort", None)
    spec.pop("healthCheckNodePort", None)
    return result
