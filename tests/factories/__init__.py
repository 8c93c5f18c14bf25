"""Test data builders. They call the real services, so what tests arrange is what users get."""

from __future__ import annotations

import itertools
from datetime import datetime

from orgs.actors import Actor
from orgs.choices import ActorSource, Role
from orgs.models import ApiToken, Membership, Organization, User
from orgs.services.organizations import create_organization
from orgs.services.tokens import create_api_token

PASSWORD = "a-long-test-password-42"
_seq = itertools.count(1)


def make_user(email: str | None = None, *, password: str = PASSWORD, **extra: object) -> User:
    """A user who can sign in with PASSWORD."""
    email = email or f"user{next(_seq)}@example.test"
    return User.objects.create_user(email=email, password=password, **extra)


def make_org(slug: str | None = None, *, owner: User | None = None, name: str | None = None) -> Organization:
    """An org (with its schema) owned by `owner` (a new user if none)."""
    slug = slug or f"org-{next(_seq)}"
    owner = owner or make_user(f"owner@{slug}.test")
    return create_organization(
        user=owner, name=name or slug.title(), slug=slug, ip="127.0.0.1", source=ActorSource.PORTAL
    )


def add_member(org: Organization, role: Role | str, user: User | None = None) -> Membership:
    """Put a (new) user into the org with the role, as an accepted invitation would."""
    user = user or make_user()
    return Membership.objects.create(user=user, org=org, role=Role(role))


def actor_for(membership: Membership, source: ActorSource = ActorSource.PORTAL) -> Actor:
    """The actor a member is when using the portal."""
    return Actor(
        org=membership.org, user=membership.user, role=Role(membership.role), source=source, ip="127.0.0.1"
    )


def owner_of(org: Organization) -> Membership:
    """The first owner membership of an org."""
    return (
        Membership.objects.select_related("user", "org")
        .filter(org=org, role=Role.OWNER)
        .earliest("created_at")
    )


def make_token(
    membership: Membership,
    *,
    role: Role | str | None = None,
    name: str = "test",
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """A token created by the member (role defaults to theirs); returns it and its clear value."""
    return create_api_token(
        actor_for(membership), name=name, role=str(role or membership.role), expires_at=expires_at
    )
