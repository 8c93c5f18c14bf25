"""The human lines of a revision's history ("image: a → b", "env FOO added"), never a secret value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clusters.workloads.spec import Port, VolumeMount


def shown(text: str) -> str:
    """A value as a change line shows it: "(none)" when empty."""
    return text if text else "(none)"


def mapping_changes(what: str, old: Mapping[str, str], new: Mapping[str, str], *, values: bool) -> list[str]:
    """Keys added, removed or changed; with `values`, the old and new values too."""
    lines = []
    for key in sorted(old.keys() | new.keys()):
        if key not in old:
            lines.append(f"{what} {key}={new[key]} added" if values else f"{what} {key} added")
        elif key not in new:
            lines.append(f"{what} {key} removed")
        elif old[key] != new[key]:
            lines.append(
                f"{what} {key}: {shown(old[key])} → {shown(new[key])}" if values else f"{what} {key} changed"
            )
    return lines


def set_changes(what: str, old: Iterable[str], new: Iterable[str]) -> list[str]:
    """Names added and removed."""
    old_set, new_set = set(old), set(new)
    return [f"{what} {key} added" for key in sorted(new_set - old_set)] + [
        f"{what} {key} removed" for key in sorted(old_set - new_set)
    ]


def port_changes(old: Iterable[Port], new: Iterable[Port]) -> list[str]:
    """Ports, by number and protocol, added, removed or renamed."""
    old_ports = {(p.port, p.protocol): p for p in old}
    new_ports = {(p.port, p.protocol): p for p in new}
    lines = []
    for key in sorted(old_ports.keys() | new_ports.keys()):
        label = f"port {key[0]}/{key[1]}"
        if key not in old_ports:
            name = new_ports[key].name
            lines.append(f"{label} ({name}) added" if name else f"{label} added")
        elif key not in new_ports:
            lines.append(f"{label} removed")
        elif old_ports[key].name != new_ports[key].name:
            lines.append(f"{label} name: {shown(old_ports[key].name)} → {shown(new_ports[key].name)}")
    return lines


def volume_changes(old: Iterable[VolumeMount], new: Iterable[VolumeMount]) -> list[str]:
    """Mounts, by mount path, added, removed or changed."""
    old_mounts = {v.mount_path: v for v in old}
    new_mounts = {v.mount_path: v for v in new}
    lines = []
    for path in sorted(old_mounts.keys() | new_mounts.keys()):
        if path not in old_mounts:
            lines.append(f"volume {new_mounts[path].claim} at {path} added")
        elif path not in new_mounts:
            lines.append(f"volume {old_mounts[path].claim} at {path} removed")
        elif old_mounts[path] != new_mounts[path]:
            lines.append(f"volume at {path} changed")
    return lines
