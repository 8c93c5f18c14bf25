"""Request headers the clusters API reads, and their OpenAPI declarations."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from orgs.exceptions import ValidationFailed

IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "maxLength": 100},
    location=OpenApiParameter.HEADER,
    required=False,
    description="Any unique string (≤100 chars); retrying with the same key returns the first result.",
)


def idempotency_key(request: Request) -> str:
    """The request's Idempotency-Key ('' without one); 400 when it is too long."""
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > 100:
        raise ValidationFailed.for_field("Idempotency-Key", "At most 100 characters.")
    return key
