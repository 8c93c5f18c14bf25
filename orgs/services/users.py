"""Accounts: the rules a new account's password meets, and staff changes to people's accounts."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from orgs.actors import Actor
from orgs.exceptions import PermissionDenied, ValidationFailed
from orgs.models import Membership, User
from orgs.services.audit import record_action
from orgs.services.sockets import close_user_sockets


def check_new_password(password: str, *, email: str, full_name: str = "") -> None:
    """The password rules of every new account (sign-up, accepting an invitation): ValidationFailed."""
    candidate = User(email=email, full_name=full_name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "password: " + " ".join(exc.messages), fields={"password": exc.messages}
        ) from exc


def set_user_active(actor: Actor, user: User, *, active: bool) -> User:
    """Staff deactivate an account (no sign-in, its tokens stop, its open sockets close) or reactivate it."""
    if not actor.is_staff:
        raise PermissionDenied("Only Flotilla staff can do this.")
    with transaction.atomic():
        current = User.objects.select_for_update().get(pk=user.pk)
        user.is_active = active
        if current.is_active == active:
            return user
        User.objects.filter(pk=user.pk).update(is_active=active)
        record_action(
            actor,
            "user.reactivated" if active else "user.deactivated",
            obj=user,
            before={"is_active": current.is_active},
            after={"is_active": active},
        )
        if not active:
            memberships = Membership.objects.select_related("org").filter(user_id=user.pk)
            close_user_sockets([m.org for m in memberships], user.pk, reason="deactivated")
    return user
