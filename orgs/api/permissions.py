"""DRF permission: the request carries a usable org token. Role checks live in services."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from orgs.services.tokens import TokenIdentity


class IsOrgMember(BasePermission):
    """Authenticated by an org-scoped API token."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, TokenIdentity)
