"""What makes the OpenAPI schema true, checked one rule at a time (the contract test,
tests/test_openapi_contract.py, checks them all together against the live server)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from rest_framework.test import APIClient

from orgs.api.schema import NOT_BLANK_PATTERN
from tests.api_checks import assert_error


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(APIClient().get("/api/schema/?format=json").content)  # type: ignore[no-any-return]


def _operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return schema["paths"][path][method]  # type: ignore[no-any-return]


def test_every_operation_declares_its_errors_with_the_one_error_body(schema: dict[str, Any]) -> None:
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"]["required"] == ["code", "message"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403"} <= set(responses), (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(responses), (method, path)
            if "{id}" in path:
                assert "404" in responses, (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    ref = response["$ref"].rsplit("/", 1)[1]
                    content = schema["components"]["responses"][ref]["content"]
                    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "429" in _operation(schema, "post", "/api/v1/orgs/tokens/")["responses"]
    assert "429" not in _operation(schema, "get", "/api/v1/orgs/tokens/")["responses"]
    assert "502" in _operation(schema, "get", "/api/v1/clusters/providers/{id}/catalogue/")["responses"]


def test_request_bodies_are_closed(schema: dict[str, Any]) -> None:
    requests = {name: s for name, s in schema["components"]["schemas"].items() if name.endswith("Request")}
    assert {"ClusterCreateRequest", "PoolInputRequest", "TokenCreateRequest", "ScaleRequest"} <= set(requests)
    for name, body in requests.items():
        assert body["additionalProperties"] is False, name


def test_lists_that_are_not_paged_are_arrays_and_pages_are_pages(schema: dict[str, Any]) -> None:
    for action in ("nodes", "events", "pools"):
        operation = _operation(schema, "get", f"/api/v1/clusters/{{id}}/{action}/")
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
        assert "page" not in [p["name"] for p in operation.get("parameters", [])]
    kinds = _operation(schema, "get", "/api/v1/clusters/providers/kinds/")["responses"]["200"]
    items = kinds["content"]["application/json"]["schema"]["items"]
    assert items == {"$ref": "#/components/schemas/ProviderKind"}
    page = schema["components"]["schemas"]["PaginatedClusterList"]
    assert page["required"] == ["count", "next", "previous", "results"]


def test_filters_and_headers_are_declared(schema: dict[str, Any]) -> None:
    def params(method: str, path: str) -> dict[str, Any]:
        return {p["name"]: p for p in _operation(schema, method, path).get("parameters", [])}

    operations = params("get", "/api/v1/clusters/operations/")
    assert operations["active"]["schema"] == {"type": "boolean"}
    assert operations["cluster"]["schema"] == {"type": "integer", "minimum": 1}
    assert "ready" in params("get", "/api/v1/clusters/")["status"]["schema"]["enum"]
    assert set(params("get", "/api/v1/orgs/audit/")) >= {"action", "actor", "page", "page_size"}
    key = params("post", "/api/v1/clusters/")["Idempotency-Key"]
    assert (key["in"], key["schema"]["maxLength"]) == ("header", 100)
    yaml = _operation(schema, "get", "/api/v1/clusters/{id}/kubeconfig/")["responses"]["200"]["content"]
    assert set(yaml) == {"application/yaml"}


def test_the_not_blank_pattern_is_pythons_whitespace() -> None:
    pattern = re.compile(NOT_BLANK_PATTERN)
    for code in range(0x3001):
        char = chr(code)
        assert (pattern.search(char) is None) == char.isspace(), hex(code)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page_size=0", "page_size"),
        ("page_size=abc", "page_size"),
        ("page=1.0", "page"),
        ("active=yes", "active"),
    ],
)
def test_paging_and_filters_are_checked(client_a: APIClient, query: str, field: str) -> None:
    assert_error(client_a.get(f"/api/v1/orgs/tokens/?{query}"), 400, "invalid", field)


def test_filters_of_the_clusters_api_are_checked(client_a: APIClient) -> None:
    assert_error(client_a.get("/api/v1/clusters/operations/?cluster=5.0"), 400, "invalid", "cluster")
    assert_error(client_a.get("/api/v1/clusters/?status=nope"), 400, "invalid", "status")
    assert client_a.get("/api/v1/clusters/?status=ready&page_size=500").status_code == 200
    assert client_a.get("/api/v1/orgs/tokens/?active=true").json()["count"] == 1


def test_values_of_another_json_type_are_refused(client_a: APIClient) -> None:
    assert_error(client_a.patch("/api/v1/orgs/current/", {"name": 5}, format="json"), 400, "invalid", "name")
    body = {"name": "c", "pools": [{"name": "p", "size": "small", "count": "2"}]}
    assert_error(client_a.post("/api/v1/clusters/", body, format="json"), 400, "invalid", "pools[0].count")
    account = {"name": "x", "kind": "local", "fields": {"a": 1}}
    response = client_a.post("/api/v1/clusters/providers/", account, format="json")
    assert_error(response, 400, "invalid", "fields.a")


def test_no_route_under_the_api_answers_the_error_body(client_a: APIClient) -> None:
    response = client_a.get("/api/v1/clusters/abc/")
    assert response["Content-Type"] == "application/json"
    assert_error(response, 404, "not_found")
    assert "text/html" in client_a.get("/no/such/page/")["Content-Type"]


def test_the_schema_is_valid_openapi_and_generates_without_warnings(tmp_path: Any) -> None:
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
