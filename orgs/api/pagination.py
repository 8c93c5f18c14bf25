"""Page-number pagination: ?page=N&page_size=M (max 200), with count/next/previous/results.

Both parameters are checked: a value that is not a whole number from 1 is refused (400 naming
the parameter) rather than silently replaced by the default; a page past the last is 404.
A `page_size` over 200 is capped, as the schema says.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from orgs.exceptions import ValidationFailed


def _whole_number(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ValidationFailed.for_field(name, "Give a whole number from 1.")
    return int(raw)


class StandardPagination(PageNumberPagination):
    """The one pagination of the API."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        size = _whole_number(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request: Request, paginator: Paginator) -> Any:  # type: ignore[type-arg]
        number = _whole_number(request, self.page_query_param)
        return 1 if number is None else number

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for param in params:
            param["schema"] = {"type": "integer", "minimum": 1}
            if param["name"] == self.page_size_query_param:
                param["description"] = f"Results per page (default {self.page_size}, capped at 200)."
        return params

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        page: dict[str, Any] = super().get_paginated_response_schema(schema)
        # DRF marks only count and results as required; next and previous are always present.
        page["required"] = ["count", "next", "previous", "results"]
        page["additionalProperties"] = False
        return page
