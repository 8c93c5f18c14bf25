"""API tokens: created shown once, stored as a SHA-256 of the secret, revocable, expiring."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from orgs.actors import Actor
from orgs.choices import ActorSource, Role
from orgs.exceptions import PermissionDenied, ValidationFailed
from orgs.models import ApiToken, Membership
from orgs.permissions import Action, require
from orgs.services.audit import record_action

TOKEN_PREFIX = "flt_"
# last_used_at is written at most this often per token, not on every request.
LAST_USED_GRANULARITY = timedelta(seconds=60)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _within_parent(parent: ApiToken, expires_at: datetime | None) -> datetime | None:
    """The expiry of a token that `parent` creates: never later than the parent's own.

    Call inside the creating transaction: the parent's row is locked, so a revocation running
    at the same time either sees the new child (and revokes it) or is seen here (and refuses).
    """
    locked = ApiToken.objects.select_for_update().filter(pk=parent.pk).first()
    if locked is None or not locked.is_usable():
        raise PermissionDenied("The token making this request has been revoked or has expired.")
    if locked.expires_at is None:
        return expires_at
    if expires_at is None:
        return locked.expires_at
    if expires_at > locked.expires_at:
        raise ValidationFailed.for_field(
            "expires_at",
            "A token cannot outlive the token that creates it; give a time no later than "
            f"{locked.expires_at.isoformat()} (or none, to expire with it).",
        )
    return expires_at


def create_api_token(
    actor: Actor, *, name: str, role: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for the acting member; returns it with the clear value (shown once).

    A token created by a token (through the API) is its child: its role is at most the
    parent's, it expires no later than the parent (with it, when no expiry is asked for) and it
    is revoked with it.
    """
    require(actor, Action.TOKEN_CREATE)
    if actor.user is None or actor.org is None:
        raise PermissionDenied("Tokens belong to a member of an organisation.")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed.for_field("name", "Give a name of 1 to 100 characters.")
    try:
        wanted = Role(role)
    except ValueError as exc:
        raise ValidationFailed.for_field(
            "role", "Choose one of: " + ", ".join(r.value for r in Role) + "."
        ) from exc
    if not Role(actor.role or Role.VIEWER).at_least(wanted):
        raise ValidationFailed.for_field("role", "A token's role cannot be higher than your own.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed.for_field("expires_at", "The expiry must be in the future.")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    parent = actor.token
    with transaction.atomic():
        if parent is not None:
            expires_at = _within_parent(parent, expires_at)
        token = ApiToken.objects.create(
            org=actor.org,
            user=actor.user,
            name=name,
            role=wanted,
            prefix=prefix,
            secret_hash=_hash(secret),
            expires_at=expires_at,
            parent=parent,
        )
        record_action(
            actor,
            "token.created",
            obj=token,
            after={
                "name": name,
                "role": wanted.value,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "parent": parent.prefix if parent is not None else None,
            },
        )
    return token, f"{TOKEN_PREFIX}{prefix}_{secret}"


def _revoke_descendants(token: ApiToken, now: datetime) -> list[str]:
    """Revoke every live token descended from `token`; returns their prefixes."""
    revoked: list[str] = []
    frontier = [token.pk]
    while frontier:
        children = list(
            ApiToken.objects.select_for_update()
            .filter(parent_id__in=frontier)
            .values_list("pk", "prefix", "revoked_at")
        )
        live = [(pk, prefix) for pk, prefix, revoked_at in children if revoked_at is None]
        ApiToken.objects.filter(pk__in=[pk for pk, _ in live]).update(revoked_at=now)
        revoked += [prefix for _, prefix in live]
        frontier = [pk for pk, _, _ in children]
    return revoked


def revoke_api_token(actor: Actor, token: ApiToken) -> ApiToken:
    """Revoke a token and the tokens it created: your own, or anyone's with token.revoke_any.

    Revoking twice is a no-op.
    """
    own = actor.user is not None and token.user_id == actor.user.pk
    if not own:
        require(actor, Action.TOKEN_REVOKE_ANY)
    with transaction.atomic():
        now = timezone.now()
        # The update takes the row lock a concurrent create_api_token waits on (_within_parent).
        first = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now) == 1
        if first:
            token.revoked_at = now
        descendants = _revoke_descendants(token, now)
        if first or descendants:
            record_action(
                actor,
                "token.revoked",
                obj=token,
                org=token.org,
                after={"descendants_revoked": descendants} if descendants else None,
            )
    return token


@dataclass(frozen=True)
class TokenIdentity:
    """An authenticated token with the role it may use now."""

    token: ApiToken
    role: Role


def authenticate_api_token(raw: str, *, ip: str | None) -> TokenIdentity | None:
    """Resolve a bearer value to a usable token of an active org, or None."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    prefix, _, secret = raw[len(TOKEN_PREFIX) :].partition("_")
    if not prefix or not secret:
        return None
    # One query per request: the token, its org, its user and the creator's current role.
    member_role = Membership.objects.filter(org_id=OuterRef("org_id"), user_id=OuterRef("user_id")).values(
        "role"
    )
    token = (
        ApiToken.objects.select_related("org", "user")
        .annotate(member_role=Subquery(member_role[:1]))
        .filter(prefix=prefix)
        .first()
    )
    if token is None or not hmac.compare_digest(token.secret_hash, _hash(secret)):
        return None
    now = timezone.now()
    if not token.is_usable(now) or not token.user.is_active:
        return None
    if token.member_role is None:  # the creator has left the org
        return None
    # A token acts with its own role, never above its creator's current one.
    role = min(Role(token.role), Role(token.member_role), key=lambda r: r.rank)
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
        token.last_used_at, token.last_used_ip = now, ip
    return TokenIdentity(token=token, role=role)


def source_for_client(header: str | None) -> ActorSource:
    """Requests from the flotilla CLI say so; everything else on the API is 'api'."""
    return ActorSource.CLI if (header or "").lower().startswith("flotilla-cli") else ActorSource.API
