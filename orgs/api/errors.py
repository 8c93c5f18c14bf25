"""One error body for the whole API: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from orgs.exceptions import FlotillaError


def _join(key: Any, sub: str) -> str:
    # DRF keys a list's item errors by index: pools[0].count, as the services name them.
    return f"{key}{sub}" if sub.startswith("[") else f"{key}.{sub}"


def _flatten(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                items = {f"[{k}]" if isinstance(k, int) else k: v for k, v in value.items()}
                for sub, msgs in _flatten(items).items():
                    out[_join(key, sub)] = msgs
            elif isinstance(value, list):
                out[str(key)] = [str(v) for v in value]
            else:
                out[str(key)] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(v) for v in detail]}
    return {"non_field_errors": [str(detail)]}


def error_response(
    code: str, message: str, status_code: int, fields: dict[str, list[str]] | None = None
) -> Response:
    """Build the standard error body."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return Response({"error": body}, status=status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Translate domain and DRF errors into the standard body."""
    if isinstance(exc, FlotillaError):
        return error_response(exc.code, exc.message, exc.status, exc.fields)
    if isinstance(exc, RequestDataTooBig):
        return error_response("payload_too_large", "The request body is too large.", 413)
    if isinstance(exc, Http404):
        return error_response("not_found", "Not found.", 404)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()), ("", [""]))
        message = f"{first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else first[1][0]
        return error_response("invalid", message, status.HTTP_400_BAD_REQUEST, fields)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = getattr(exc, "detail", "")
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.ParseError):
        code = "malformed"
    response.data = {"error": {"code": code, "message": str(detail)}}
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 handler: the API's error body under /api/ (a URL no route matches, such as
    /api/v1/clusters/abc/), Django's page everywhere else."""
    if request.path.startswith("/api/"):
        body = {"error": {"code": "not_found", "message": "Not found."}}
        return JsonResponse(body, status=404)
    return page_not_found(request, exception or Http404())
