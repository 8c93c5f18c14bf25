"""Request routing to an org's schema.

Every request starts and ends in the public schema. Portal URLs under /o/<org_slug>/ are
switched into that org's schema once the signed-in user is known to be a member; the API
does the same from the token (orgs.api.authentication). Anything else stays public.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from orgs.actors import Actor
from orgs.choices import ActorSource, Role
from orgs.exceptions import NotFound, OrgSuspended
from orgs.selectors import get_membership_for_user
from orgs.tenancy import use_org_schema, use_public_schema


def client_ip(request: HttpRequest) -> str | None:
    """The peer address (a trusted proxy's X-Forwarded-For is not honoured by default)."""
    return request.META.get("REMOTE_ADDR") or None


class PublicSchemaMiddleware:
    """Pins the connection to the public schema before and after every request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        use_public_schema()
        try:
            return self.get_response(request)
        finally:
            use_public_schema()


class OrgRoutingMiddleware:
    """Resolves /o/<org_slug>/ to a membership, enters the org's schema, sets request.actor."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        slug = kwargs.pop("org_slug", None)
        if slug is None:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            membership = get_membership_for_user(request.user, slug)
        except NotFound:
            return render(request, "orgs/not_found.html", status=404)
        except OrgSuspended as exc:
            return render(request, "orgs/suspended.html", {"message": exc.message}, status=403)
        org = membership.org
        use_org_schema(org)
        request.tenant = org  # type: ignore[attr-defined]
        request.org = org  # type: ignore[attr-defined]
        request.membership = membership  # type: ignore[attr-defined]
        request.actor = Actor(  # type: ignore[attr-defined]
            org=org,
            user=membership.user,
            role=Role(membership.role),
            source=ActorSource.PORTAL,
            ip=client_ip(request),
        )
        return None
