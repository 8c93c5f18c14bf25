"""Bearer-token authentication: the token selects the org, whose schema the request enters."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from orgs.actors import Actor
from orgs.exceptions import OrgSuspended
from orgs.middleware import client_ip
from orgs.services.tokens import TokenIdentity, authenticate_api_token, source_for_client
from orgs.tenancy import use_org_schema


class ApiTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer flt_<prefix>_<secret>`."""

    def authenticate(self, request: Request) -> tuple[Any, TokenIdentity] | None:
        header = get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        ip = client_ip(request._request)
        identity = authenticate_api_token(raw.strip(), ip=ip)
        if identity is None:
            raise AuthenticationFailed("The API token is invalid, expired or revoked.")
        token = identity.token
        if not token.org.is_active:
            raise OrgSuspended("This organisation is suspended; contact the Flotilla operator.")
        use_org_schema(token.org)
        django_request = request._request
        django_request.tenant = token.org  # type: ignore[attr-defined]
        django_request.org = token.org  # type: ignore[attr-defined]
        django_request.actor = Actor(  # type: ignore[attr-defined]
            org=token.org,
            user=token.user,
            role=identity.role,
            source=source_for_client(request.headers.get("User-Agent")),
            ip=ip,
            token=token,
        )
        return token.user, identity

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="flotilla"'
