"""The HTTP client of the Flotilla REST API: auth, timeouts, the error body, pagination.

Every failure leaves this module as a `CliError` carrying its exit code, never as an httpx
exception. The transport is injectable (`transport=`) so that tests can put an
`httpx.MockTransport` where the network would be.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from cli import __version__
from cli.config import LOGIN_HINT
from cli.errors import ApiError, CliError, ExitCode, ServerUnreachable, UsageError

API_PREFIX = "/api/v1/"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MAX_PAGE_SIZE = 200
USER_AGENT = f"flotilla-cli/{__version__}"

JsonObject = dict[str, Any]
QueryParams = Mapping[str, str | int]


@dataclass(frozen=True)
class Listing:
    """Items gathered from a paginated list, and the server's total count."""

    items: list[JsonObject]
    count: int

    @property
    def truncated(self) -> bool:
        """True when a limit stopped the listing before the last item."""
        return len(self.items) < self.count


class ApiClient:
    """One server, one token: JSON in, JSON out, errors as `CliError`."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        parts = urlsplit(self.server)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout or httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as `orgs/current/`."""
        return f"{self.server}{API_PREFIX}{path.lstrip('/')}"

    def get(self, path: str, params: QueryParams | None = None) -> JsonObject:
        """GET an object."""
        return _expect_object(self._request("GET", self.url(path), params=params), path)

    def post(self, path: str, body: JsonObject) -> JsonObject:
        """POST a JSON body; the created object."""
        return _expect_object(self._request("POST", self.url(path), json=body), path)

    def patch(self, path: str, body: JsonObject) -> JsonObject:
        """PATCH a JSON body; the updated object."""
        return _expect_object(self._request("PATCH", self.url(path), json=body), path)

    def delete(self, path: str) -> None:
        """DELETE (the API answers 204 No Content)."""
        self._request("DELETE", self.url(path))

    def list_all(self, path: str, params: QueryParams | None = None, *, limit: int | None = None) -> Listing:
        """The items of a paginated list across all its pages (at most `limit` of them)."""
        page_size = MAX_PAGE_SIZE if limit is None else max(1, min(limit, MAX_PAGE_SIZE))
        query: dict[str, str | int] | None = {**(params or {}), "page_size": page_size}
        items: list[JsonObject] = []
        count: int | None = None
        url: str | None = self.url(path)
        seen: set[str] = set()
        while url is not None and url not in seen and (limit is None or len(items) < limit):
            seen.add(url)
            results, page_count, next_url = _page_parts(self._request("GET", url, params=query), path)
            count = page_count if count is None else count
            items.extend(results)
            # `next` carries its own query string. Only its path and query are used, on our own
            # origin, so that a proxy's idea of scheme or host can never send the token elsewhere.
            url = self._same_origin(next_url) if next_url else None
            query = None  # an empty mapping would make httpx drop the link's own query string
        if limit is not None:
            items = items[:limit]
        return Listing(items=items, count=max(count or 0, len(items)))

    def _same_origin(self, link: str) -> str:
        target = httpx.URL(link)
        return self._origin + target.raw_path.decode("ascii")

    def get_list(self, path: str, params: QueryParams | None = None) -> list[JsonObject]:
        """GET an endpoint that answers a JSON array (not a page)."""
        data = self._request("GET", self.url(path), params=params)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise CliError(f"unexpected answer to {path}: expected a JSON array", ExitCode.SERVER)
        return data

    def get_text(self, path: str) -> str:
        """GET an endpoint that answers text (a kubeconfig's YAML); errors still come as JSON."""
        return self._send("GET", self.url(path)).text

    def request_delete(self, path: str) -> JsonObject:
        """DELETE something whose removal is an operation (the API answers 202 with it)."""
        data = self._request("DELETE", self.url(path))
        if not isinstance(data, dict):
            raise CliError(f"unexpected answer to DELETE {path}: expected an operation", ExitCode.SERVER)
        return data

    @contextmanager
    def header(self, name: str, value: str | None) -> Iterator[None]:
        """Send one more header with the requests made inside the block (none when `value` is None)."""
        if value is None:
            yield
            return
        self._http.headers[name] = value
        try:
            yield
        finally:
            del self._http.headers[name]

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: QueryParams | None = None,
        json: JsonObject | None = None,
    ) -> httpx.Response:
        try:
            response = self._http.request(method, url, params=params, json=json)
        except httpx.TimeoutException as exc:
            raise _timeout_error(exc, method, self.server) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise UsageError(f"invalid server URL {self.server!r}: {exc}") from exc
        except httpx.TransportError as exc:
            raise ServerUnreachable(f"cannot reach the server at {self.server}: {_reason(exc)}") from exc
        if response.is_redirect:
            location = response.headers.get("Location", "")
            raise CliError(
                f"the server redirected {method} {_path_of(url)} to {location or '(nowhere)'}",
                ExitCode.UNEXPECTED,
                hint="log in again with the server's final URL (for example its https:// address)",
            )
        if response.is_error:
            raise api_error(response)
        return response

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: QueryParams | None = None,
        json: JsonObject | None = None,
    ) -> Any:
        response = self._send(method, url, params=params, json=json)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise CliError(
                f"the answer to {method} {_path_of(url)} is not JSON; is {self.server} a Flotilla server?",
                ExitCode.SERVER,
            ) from exc


def api_error(response: httpx.Response) -> ApiError:
    """Turn an error response (with or without the API's error body) into an `ApiError`."""
    status = response.status_code
    code: str | None = None
    message = ""
    fields: dict[str, list[str]] = {}
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        code = str(envelope["code"]) if envelope.get("code") else None
        message = str(envelope.get("message") or "")
        raw_fields = envelope.get("fields")
        if isinstance(raw_fields, dict):
            for name, reasons in raw_fields.items():
                listed = reasons if isinstance(reasons, list) else [reasons]
                fields[str(name)] = [str(reason) for reason in listed]
    if not message:
        reason = response.reason_phrase or "error"
        message = f"HTTP {status} {reason} from {response.request.method} {_path_of(str(response.url))}"
    error = ApiError(status, message, code=code, fields=fields)
    if error.exit_code is ExitCode.NOT_AUTHENTICATED:
        error.hint = LOGIN_HINT
    elif error.exit_code is ExitCode.RATE_LIMITED:
        retry_after = response.headers.get("Retry-After")
        error.hint = f"retry in {retry_after} s" if retry_after else "retry later"
    return error


def _expect_object(data: Any, path: str) -> JsonObject:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CliError(f"unexpected answer to {path}: expected a JSON object", ExitCode.SERVER)
    return data


def _page_parts(page: Any, path: str) -> tuple[list[JsonObject], int, str | None]:
    if not isinstance(page, dict):
        raise CliError(f"unexpected answer to {path}: expected a page of results", ExitCode.SERVER)
    results = page.get("results")
    if not isinstance(results, list) or not all(isinstance(item, dict) for item in results):
        raise CliError(f"unexpected answer to {path}: expected a page of results", ExitCode.SERVER)
    count = page.get("count")
    next_url = page.get("next")
    return (
        results,
        count if isinstance(count, int) else len(results),
        next_url if isinstance(next_url, str) and next_url else None,
    )


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _timeout_error(exc: httpx.TimeoutException, method: str, server: str) -> ServerUnreachable:
    if isinstance(exc, httpx.ConnectTimeout):
        return ServerUnreachable(
            f"cannot reach the server at {server}: no connection within {CONNECT_TIMEOUT:g} s"
        )
    error = ServerUnreachable(f"the server at {server} did not answer within {READ_TIMEOUT:g} s")
    if method not in ("GET", "HEAD"):
        error.hint = "the change may still have been made; check before retrying"
    return error
