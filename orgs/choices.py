"""Roles and their ranks; the permission matrix built on them lives in orgs.permissions."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    """A member's role in an organisation, highest first."""

    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"

    @property
    def rank(self) -> int:
        """Higher is more powerful; used to compare roles."""
        return _RANKS[self]

    def at_least(self, other: Role) -> bool:
        """True when this role is as powerful as `other` or more."""
        return self.rank >= other.rank


_RANKS = {Role.OWNER: 40, Role.ADMIN: 30, Role.MEMBER: 20, Role.VIEWER: 10}


class ActorSource(models.TextChoices):
    """Where a mutating action came from, as written in the audit log."""

    PORTAL = "portal", "Portal"
    API = "api", "API"
    CLI = "cli", "CLI"
    ADMIN = "admin", "Admin"
    TASK = "task", "Task"
    SYSTEM = "system", "System"
