"""Reusable API checks: the standard error body, and the cross-org check for any endpoint."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient


def assert_error(
    response: Any, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """The response is the standard error body with this status (and code / field)."""
    assert response.status_code == status, (response.status_code, getattr(response, "data", response.content))
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["message"], body
    if code is not None:
        assert error["code"] == code, body
    if field is not None:
        assert field in error.get("fields", {}), body
    return error


def assert_cross_org_isolated(
    outsider: APIClient,
    list_url: str,
    detail_url: str,
    *,
    owner_id: Any,
    methods: tuple[str, ...] = ("get", "patch", "delete"),
) -> None:
    """Another org's client gets 404 on the object for every method and never sees it listed."""
    for method in methods:
        response = getattr(outsider, method)(detail_url, {}, format="json")
        assert_error(response, 404, "not_found")
    listing = outsider.get(list_url, {"page_size": 200})
    assert listing.status_code == 200
    assert owner_id not in [row.get("id") for row in listing.json()["results"]]
