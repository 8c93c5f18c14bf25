"""The portal's sections. An app adds its entry from ready() once its pages exist."""

from __future__ import annotations

from dataclasses import dataclass

from orgs.actors import Actor
from orgs.permissions import Action, can


@dataclass(frozen=True)
class Section:
    """One entry of the org navigation."""

    label: str
    url_name: str
    needs: Action


_sections: list[Section] = [
    Section("Overview", "org:overview", Action.ORG_VIEW),
]
_trailing: list[Section] = [
    Section("Members", "org:members", Action.MEMBER_VIEW),
    Section("API tokens", "org:tokens", Action.TOKEN_CREATE),
    Section("Audit log", "org:audit", Action.AUDIT_VIEW),
    Section("Settings", "org:settings", Action.ORG_VIEW),
]


def register_section(section: Section) -> None:
    """Called by domain apps (clusters, networking, snapshots, observability) in ready()."""
    if section not in _sections:
        _sections.append(section)


def nav_for(actor: Actor) -> list[Section]:
    """The sections this actor may open, in display order."""
    return [s for s in [*_sections, *_trailing] if can(actor, s.needs)]
