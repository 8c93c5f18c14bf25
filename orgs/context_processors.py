"""Template context for the portal shell: current org, the user's orgs, navigation."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from orgs.navigation import nav_for
from orgs.selectors import memberships_of


def portal(request: HttpRequest) -> dict[str, Any]:
    """Org switcher entries and the sections of the current org."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    org = getattr(request, "org", None)
    actor = getattr(request, "actor", None)
    return {
        "current_org": org,
        "current_membership": getattr(request, "membership", None),
        "my_memberships": memberships_of(user),
        "nav_sections": nav_for(actor) if actor is not None else [],
    }
