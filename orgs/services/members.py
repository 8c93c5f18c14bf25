"""Inviting people, accepting invitations, changing roles and removing members."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.events import publish
from orgs.actors import Actor
from orgs.choices import Role
from orgs.exceptions import Conflict, NotFound, PermissionDenied, ValidationFailed
from orgs.models import ApiToken, Invitation, Membership, Organization, User
from orgs.permissions import Action, require
from orgs.services.audit import record_action
from orgs.services.organizations import clean_email
from orgs.services.sockets import close_member_sockets
from orgs.services.users import check_new_password


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse_role(value: str, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        choices = ", ".join(r.value for r in Role)
        raise ValidationFailed.for_field(field, f"Choose one of: {choices}.") from exc


def _actor_role(actor: Actor) -> Role:
    return Role.OWNER if actor.is_staff else Role(actor.role or Role.VIEWER)


def _org_of(actor: Actor) -> Organization:
    if actor.org is None:
        raise PermissionDenied("This action needs an organisation.")
    return actor.org


def invitation_path(token: str) -> str:
    """The portal path that accepts an invitation."""
    return f"/invite/{token}/"


def invite_member(actor: Actor, *, email: str, role: str, base_url: str) -> tuple[Invitation, str]:
    """Invite someone by email; returns the invitation and its link (shown once, mailed if configured)."""
    require(actor, Action.MEMBER_INVITE)
    org = _org_of(actor)
    email = clean_email(email)
    wanted = _parse_role(role)
    if not _actor_role(actor).at_least(wanted):
        raise PermissionDenied("You cannot invite someone with a role above your own.")
    if Membership.objects.filter(org=org, user__email__iexact=email).exists():
        raise Conflict("email: already a member.", fields={"email": ["This person is already a member."]})
    token = secrets.token_urlsafe(32)
    link = base_url.rstrip("/") + invitation_path(token)
    with transaction.atomic():
        invitation = Invitation.objects.create(
            org=org,
            email=email,
            role=wanted,
            token_hash=_hash(token),
            invited_by=actor.user,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        record_action(actor, "member.invited", obj=invitation, after={"email": email, "role": wanted.value})
        transaction.on_commit(
            lambda: send_mail(
                f"You are invited to {org.name} on Flotilla",
                f"{actor.label} invited you to join {org.name} as {wanted.label}.\n\n{link}\n",
                None,
                [email],
                fail_silently=True,
            )
        )
    return invitation, link


def get_invitation_by_token(token: str) -> Invitation:
    """The usable invitation behind a link, or NotFound."""
    invitation = Invitation.objects.select_related("org").filter(token_hash=_hash(token or "")).first()
    if invitation is None or not invitation.is_usable() or not invitation.org.is_active:
        raise NotFound("This invitation link is invalid, used or expired.")
    return invitation


def _join(invitation: Invitation, user: User, *, source: Actor) -> Membership:
    """Inside the caller's transaction, with the invitation row locked: the member joins."""
    org = invitation.org
    membership, created = Membership.objects.get_or_create(
        user=user, org=org, defaults={"role": invitation.role}
    )
    Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now(), accepted_by=user)
    actor = Actor(org=org, user=user, role=Role(membership.role), source=source.source, ip=source.ip)
    if created:
        record_action(actor, "member.joined", obj=membership, after={"role": membership.role})
        publish(org.schema_name, "org", {"kind": "members.changed"})
    return membership


def _lock_usable(invitation: Invitation) -> Invitation:
    """The invitation row, locked until commit; NotFound if it was revoked, used or expired meanwhile."""
    locked = Invitation.objects.select_for_update().select_related("org").get(pk=invitation.pk)
    if not locked.is_usable() or not locked.org.is_active:
        raise NotFound("This invitation link is invalid, used or expired.")
    return locked


def accept_invitation(user: User, token: str, *, actor_source: Actor) -> Membership:
    """The invited person (signed in with the invited email) joins the org."""
    invitation = get_invitation_by_token(token)
    if user.email.lower() != invitation.email.lower():
        raise PermissionDenied(
            f"This invitation is for {invitation.email}; sign in with that address to accept it."
        )
    with transaction.atomic():
        return _join(_lock_usable(invitation), user, source=actor_source)


def accept_invitation_as_new_user(
    token: str, *, password: str, full_name: str, actor_source: Actor
) -> tuple[User, Membership]:
    """Someone without an account accepts: the account, its membership and the acceptance, all or nothing.

    The password meets sign-up's rules. The account is made only once the invitation row is
    locked and still usable, so an invitation revoked (or used) meanwhile leaves no account behind.
    """
    invitation = get_invitation_by_token(token)
    full_name = (full_name or "").strip()[:150]
    check_new_password(password, email=invitation.email, full_name=full_name)
    taken = Conflict(
        "An account with this email exists: sign in to accept the invitation.",
        fields={"non_field_errors": ["An account with this email exists: sign in to accept."]},
    )
    try:
        with transaction.atomic():
            locked = _lock_usable(invitation)
            if User.objects.filter(email__iexact=locked.email).exists():
                raise taken
            user = User.objects.create_user(email=locked.email, password=password, full_name=full_name)
            membership = _join(locked, user, source=actor_source)
    except IntegrityError as exc:
        # The same person accepting another org's invitation at the same moment made the account.
        raise taken from exc
    return user, membership


def revoke_invitation(actor: Actor, invitation_id: int) -> Invitation:
    """Withdraw a pending invitation."""
    require(actor, Action.MEMBER_INVITE)
    org = _org_of(actor)
    invitation = Invitation.objects.filter(org=org, pk=invitation_id).first()
    if invitation is None:
        raise NotFound("No such invitation.")
    if invitation.revoked_at is None and invitation.accepted_at is None:
        with transaction.atomic():
            invitation.revoked_at = timezone.now()
            Invitation.objects.filter(pk=invitation.pk).update(revoked_at=invitation.revoked_at)
            record_action(actor, "member.invitation_revoked", obj=invitation)
    return invitation


def _owner_count(org: Organization) -> int:
    return Membership.objects.filter(org=org, role=Role.OWNER).count()


def change_member_role(actor: Actor, membership: Membership, *, role: str) -> Membership:
    """Change a member's role; nobody acts above their own role and an org keeps an owner."""
    require(actor, Action.MEMBER_CHANGE_ROLE)
    new_role = _parse_role(role)
    mine = _actor_role(actor)
    current = Role(membership.role)
    if not mine.at_least(current) or not mine.at_least(new_role):
        raise PermissionDenied("You cannot change a role above your own, or grant one.")
    if current == new_role:
        return membership
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=membership.org_id)
        if current == Role.OWNER and _owner_count(org) <= 1:
            raise Conflict(
                "role: an organisation needs at least one owner.",
                fields={"role": ["The last owner cannot be demoted."]},
            )
        membership.role = new_role
        Membership.objects.filter(pk=membership.pk).update(role=new_role)
        # A token never carries more than its creator's role.
        capped = [r.value for r in Role if r.rank > new_role.rank]
        ApiToken.objects.filter(org=org, user_id=membership.user_id, role__in=capped).update(role=new_role)
        record_action(
            actor,
            "member.role_changed",
            obj=membership,
            before={"role": current.value},
            after={"role": new_role.value},
        )
        publish(org.schema_name, "org", {"kind": "members.changed"})
    return membership


def remove_member(actor: Actor, membership: Membership) -> None:
    """Remove a member (or leave): their tokens for the org are revoked with them."""
    leaving = actor.user is not None and membership.user_id == actor.user.pk
    if not leaving:
        require(actor, Action.MEMBER_REMOVE)
        if not _actor_role(actor).at_least(Role(membership.role)):
            raise PermissionDenied("You cannot remove a member whose role is above your own.")
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=membership.org_id)
        if membership.role == Role.OWNER and _owner_count(org) <= 1:
            raise Conflict("The last owner cannot be removed; make someone else owner first.")
        ApiToken.objects.filter(org=org, user_id=membership.user_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        record_action(
            actor,
            "member.removed",
            obj=membership,
            before={"email": membership.user.email, "role": membership.role},
        )
        Membership.objects.filter(pk=membership.pk).delete()
        # Registered first, so the close reaches their sockets before the members.changed event.
        close_member_sockets(org, membership.user_id, reason="removed")
        publish(org.schema_name, "org", {"kind": "members.changed"})
