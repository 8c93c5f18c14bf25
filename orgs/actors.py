"""Who is acting: the identity every service function takes, checks and audits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orgs.choices import ActorSource, Role

if TYPE_CHECKING:
    from orgs.models import ApiToken, Organization, User


@dataclass(frozen=True)
class Actor:
    """A member (through the portal, an API token or the CLI), staff in the admin, or the system."""

    org: Organization | None
    user: User | None
    role: Role | None
    source: ActorSource
    ip: str | None = None
    token: ApiToken | None = None
    is_staff: bool = False

    @property
    def label(self) -> str:
        """How the actor appears in the audit log."""
        if self.user is not None:
            return self.user.email
        return self.source.label.lower() if self.source else "system"

    @classmethod
    def system(cls, org: Organization | None, source: ActorSource = ActorSource.TASK) -> Actor:
        """Flotilla itself (tasks, sweepers); it holds every permission."""
        return cls(org=org, user=None, role=Role.OWNER, source=source)

    @classmethod
    def staff(cls, user: User, org: Organization | None, ip: str | None = None) -> Actor:
        """A staff user working in the Django admin."""
        return cls(org=org, user=user, role=None, source=ActorSource.ADMIN, ip=ip, is_staff=True)
