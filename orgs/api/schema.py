"""OpenAPI description of the API token scheme (drf-spectacular extension)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[misc,no-untyped-call]
    """`Authorization: Bearer flt_<prefix>_<secret>`."""

    target_class = "orgs.api.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "flt_<prefix>_<secret>",
            "description": "An org-scoped API token; the token selects the organisation.",
        }
