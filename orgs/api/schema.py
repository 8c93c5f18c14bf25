"""The OpenAPI description of the API (drf-spectacular): token scheme, errors, closed bodies.

The schema is a contract that `tests/test_openapi_contract.py` holds the live server to, so the
rules that make it true live here, in one place, rather than on each view:

- every operation lists the error statuses it can answer, each with the one error body of
  `orgs.api.errors` (component `Error`), derived from what the operation has: a request body
  (400, 413, 415), authentication (401, 403), path parameters or paging (404), a write (409),
  throttles (429); `EXTRA_ERRORS` adds what cannot be derived (502 from providers and clusters);
- request bodies of `StrictSerializer`s are closed (`additionalProperties: false`), since the
  server refuses unknown fields, and text fields that may not be blank say so with a pattern;
- the list filters a viewset checks (`OrgViewSet.filterset`) are its query parameters.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers

from orgs.api.serializers import StrictSerializer

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The one error body of the API.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {
                    "type": "string",
                    "description": "Stable, machine-readable: invalid, malformed, not_authenticated, "
                    "authentication_failed, permission_denied, org_suspended, not_found, "
                    "method_not_allowed, conflict, quota_exceeded, operation_in_progress, "
                    "invalid_transition, payload_too_large, unsupported_media_type, throttled, "
                    "provider_error, credentials_rejected, cluster_unreachable.",
                },
                "message": {"type": "string", "description": "For people; names the field when one is bad."},
                "fields": {
                    "type": "object",
                    "description": "Each bad field (or parameter, or header) and its reasons.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["code", "message"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}

# status: (component name, description, response headers)
ERROR_RESPONSES: dict[int, tuple[str, str, dict[str, Any]]] = {
    400: ("BadRequest", "A field, parameter or header is invalid (`invalid`), or the JSON is malformed.", {}),
    401: (
        "Unauthorized",
        "No token, or a token that is invalid, expired or revoked.",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="flotilla"'}},
    ),
    403: ("Forbidden", "The token's role does not allow this, or the organisation is suspended.", {}),
    404: ("NotFound", "No such object in this organisation (or no such page).", {}),
    409: (
        "Conflict",
        "The request clashes with the current state: a taken name, a quota, an operation in progress, "
        "a transition the lifecycle forbids.",
        {},
    ),
    413: ("PayloadTooLarge", "The request body is over FLOTILLA_MAX_REQUEST_BYTES.", {}),
    415: ("UnsupportedMediaType", "The request body is not application/json.", {}),
    429: (
        "TooManyRequests",
        "Rate limited; retry after the number of seconds in Retry-After.",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
    ),
    502: ("BadGateway", "The provider or the cluster's API refused or did not answer.", {}),
}

# Statuses an operation can answer that its shape does not tell (operationId → statuses).
EXTRA_ERRORS: dict[str, frozenset[int]] = {
    # A provider named by the request may not exist; the provider's catalogue is read.
    "v1_clusters_create": frozenset({404, 502}),
    # The kubeconfig's API server is asked before anything is saved.
    "v1_clusters_import_create": frozenset({502}),
    "v1_clusters_upgrade_create": frozenset({502}),
    "v1_clusters_pools_create": frozenset({502}),
    # A cluster's last pool cannot be removed (400, as the portal's form says it).
    "v1_clusters_pools_destroy": frozenset({400}),
    # The cluster may have no kubeconfig yet.
    "v1_clusters_kubeconfig_retrieve": frozenset({409}),
    # Credentials are checked with one call to the provider.
    "v1_clusters_providers_create": frozenset({502}),
    "v1_clusters_providers_partial_update": frozenset({502}),
    "v1_clusters_providers_catalogue_retrieve": frozenset({502}),
    "v1_clusters_providers_refresh_catalogue_create": frozenset({502}),
    # The cluster named in the body may not exist.
    "v1_clusters_apps_create": frozenset({404}),
    # Pods and workloads are read from the cluster, which must be running and answer.
    "v1_clusters_workloads_list": frozenset({409, 502}),
    "v1_clusters_apps_pods_list": frozenset({409, 502}),
    "v1_clusters_apps_pods_delete_create": frozenset({409, 502}),
    "v1_clusters_workloads_adopt_create": frozenset({502}),
    "v1_clusters_pods_delete_create": frozenset({502}),
    # The cluster (and the location) named in the body may not exist.
    "v1_snapshots_create": frozenset({404}),
    # The snapshot and the target named in the body may not exist.
    "v1_snapshots_restores_create": frozenset({404}),
    # Only a preview can be confirmed.
    "v1_snapshots_restores_confirm_create": frozenset({400}),
}
# Writes that cannot conflict with anything.
NO_CONFLICT: frozenset[str] = frozenset(
    {
        "v1_orgs_current_partial_update",
        "v1_orgs_tokens_create",
        "v1_orgs_tokens_destroy",
        "v1_orgs_invitations_destroy",
        "v1_clusters_providers_partial_update",
        "v1_clusters_providers_refresh_catalogue_create",
    }
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# What Python's str.strip() removes: a CharField that trims and may not be blank needs one
# character outside this set (spelled out, since regex engines disagree on what \s is).
# (a test checks this against every code point's str.isspace()).
NOT_BLANK_PATTERN = (
    r"[^\u0009\u000a\u000b\u000c\u000d\u001c\u001d\u001e\u001f\u0020\u0085\u00a0\u1680\u2000"
    r"\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000]"
)


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
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


class FlotillaAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error responses, closed bodies and list filters."""

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
    ) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(
            path, path_regex, path_prefix, method, registry
        )
        if operation is None:
            return None
        responses = operation["responses"]
        for status in sorted(self.error_statuses(operation)):
            responses.setdefault(str(status), {"$ref": self._error_response(status)})
        return operation

    def error_statuses(self, operation: dict[str, Any]) -> set[int]:
        """The error statuses this operation can answer."""
        op_id = operation["operationId"]
        params = operation.get("parameters", [])
        statuses = set(EXTRA_ERRORS.get(op_id, frozenset()))
        if "requestBody" in operation:
            statuses |= {400, 413, 415}
        # Paging, list filters and headers (Idempotency-Key) are checked.
        filtered = getattr(self.view, "filterset", None) is not None and self._action() == "list"
        if self._is_paginated() or filtered or any(p.get("in") == "header" for p in params):
            statuses.add(400)
        if operation.get("security") and {} not in operation["security"]:
            statuses |= {401, 403}
        if any(p.get("in") == "path" for p in params) or self._is_paginated():
            statuses.add(404)
        if self.method in WRITE_METHODS and op_id not in NO_CONFLICT:
            statuses.add(409)
        if self._is_throttled():
            statuses.add(429)
        return statuses

    def _action(self) -> str | None:
        return getattr(self.view, "action", None)

    def _is_paginated(self) -> bool:
        paginator = self._get_paginator()  # type: ignore[no-untyped-call]
        return bool(self.method == "GET" and self._is_list_view() and paginator is not None)

    def _is_throttled(self) -> bool:
        try:
            return bool(self.view.get_throttles())
        except AttributeError:
            return False

    def _error_response(self, status: int) -> str:
        name, description, headers = ERROR_RESPONSES[status]
        error = ResolvedComponent(  # type: ignore[no-untyped-call]
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(error)
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": error.ref}},
        }
        if headers:
            response["headers"] = headers
        component = ResolvedComponent(  # type: ignore[no-untyped-call]
            name=name, type=ResolvedComponent.RESPONSE, object=name, schema=response
        )
        self.registry.register_on_missing(component)
        return f"#/components/responses/{name}"

    def get_override_parameters(self) -> list[Any]:
        params: list[Any] = list(super().get_override_parameters())
        filterset = getattr(self.view, "filterset", None)
        if filterset is not None and self._action() == "list":
            params.append(filterset)
        return params

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(  # type: ignore[no-untyped-call]
            serializer, direction
        )
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
        return schema

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> Any:
        schema = super()._map_serializer_field(  # type: ignore[no-untyped-call]
            field, direction, bypass_extensions
        )
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not isinstance(field, serializers.ChoiceField)
            and not field.allow_blank
            and field.trim_whitespace
            and not any(isinstance(v, RegexValidator) for v in field.validators)
            and isinstance(schema, dict)
            and schema.get("type") == "string"
            and "pattern" not in schema
            and "format" not in schema
        ):
            schema["pattern"] = NOT_BLANK_PATTERN
        return schema
