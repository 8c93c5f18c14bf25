"""The portal's sections and the staff admin's links into an org: apps add theirs from ready()."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orgs.actors import Actor
from orgs.permissions import Action, can


@dataclass(frozen=True)
class Section:
    """One entry of the org navigation."""

    label: str
    url_name: str
    needs: StrEnum


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


@dataclass(frozen=True)
class AdminLink:
    """A staff admin page of an app's objects inside one org (opened with ?schema=<org schema>)."""

    label: str
    url_name: str  # an admin URL name, e.g. "admin:clusters_cluster_changelist"


_admin_links: list[AdminLink] = []


def register_admin_link(link: AdminLink) -> None:
    """Called by domain apps in ready(): the org admin's list links each org to these pages."""
    if link not in _admin_links:
        _admin_links.append(link)


def admin_links() -> list[AdminLink]:
    """The registered admin links, in registration order."""
    return list(_admin_links)
