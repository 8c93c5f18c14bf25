"""Reads that cross a trust boundary: each returns only what the actor may see.

Missing and forbidden are the same NotFound, so nothing leaks across organisations.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django_tenants.utils import schema_context

from orgs.actors import Actor
from orgs.audit.models import AuditEntry
from orgs.exceptions import NotFound, OrgSuspended
from orgs.models import ApiToken, Invitation, Membership, Organization, User
from orgs.permissions import Action, can, require


def get_membership_for_user(user: User, org_slug: str) -> Membership:
    """The user's membership in the org with this slug; NotFound if none (or no such org)."""
    membership = (
        Membership.objects.select_related("org", "user").filter(user=user, org__slug=org_slug).first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise NotFound("No such organisation.")
    if not membership.org.is_active:
        raise OrgSuspended("This organisation is suspended; contact the Flotilla operator.")
    return membership


def memberships_of(user: User) -> QuerySet[Membership]:
    """Every org the user belongs to, for the org switcher."""
    return Membership.objects.select_related("org").filter(user=user).order_by("org__name")


def list_members(actor: Actor) -> QuerySet[Membership]:
    """Members of the actor's org."""
    require(actor, Action.MEMBER_VIEW)
    return Membership.objects.select_related("user").filter(org=actor.org).order_by("user__email")


def get_member(actor: Actor, membership_id: int) -> Membership:
    """One member of the actor's org."""
    membership = list_members(actor).select_related("org").filter(pk=membership_id).first()
    if membership is None:
        raise NotFound("No such member.")
    return membership


def list_invitations(actor: Actor) -> QuerySet[Invitation]:
    """Pending invitations of the actor's org."""
    require(actor, Action.MEMBER_INVITE)
    return (
        Invitation.objects.select_related("invited_by")
        .filter(org=actor.org, accepted_at__isnull=True, revoked_at__isnull=True)
        .order_by("-created_at")
    )


def list_tokens(actor: Actor) -> QuerySet[ApiToken]:
    """Tokens the actor may see: their own, or every token of the org for admins."""
    qs = ApiToken.objects.select_related("user").filter(org=actor.org).order_by("-created_at")
    if not can(actor, Action.TOKEN_VIEW_ALL):
        qs = qs.filter(user=actor.user)
    return qs


def get_token(actor: Actor, token_id: int) -> ApiToken:
    """One token the actor may see."""
    token = list_tokens(actor).select_related("org").filter(pk=token_id).first()
    if token is None:
        raise NotFound("No such token.")
    return token


def audit_entries(actor: Actor) -> QuerySet[AuditEntry]:
    """The org's audit log, newest first. Evaluate it while the org's schema is active."""
    require(actor, Action.AUDIT_VIEW)
    return AuditEntry.objects.all().order_by("-created_at", "-id")


def org_summary(actor: Actor) -> dict[str, int]:
    """Counts shown on the org overview."""
    require(actor, Action.ORG_VIEW)
    org: Organization | None = actor.org
    assert org is not None
    with schema_context(org.schema_name):
        audit_count = AuditEntry.objects.count()
    return {
        "members": Membership.objects.filter(org=org).count(),
        "tokens": ApiToken.objects.filter(org=org, revoked_at__isnull=True).count(),
        "audit_entries": audit_count,
    }
