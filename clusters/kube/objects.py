"""Objects of any kind: read, create, server-side apply, patch, delete, and list page by page.

Everything is plain JSON (dicts). A kind's path comes from discovery, so custom resources work
like built-in ones. Server-side apply always uses Flotilla's field manager (`flotilla`): what
Flotilla sets is recorded as Flotilla's in `managedFields`, a field another manager owns is a
`Conflict` naming that manager and field (unless `force` takes it over).

Lists are paginated with `limit` and continue tokens and handed out one raw page at a time; the
previous page is dropped before the next is asked for, so memory stays at one page whatever the
size of the cluster. An expired continue token (410 Gone, after etcd compacted the list's
revision) is `ContinueExpired`, or with `on_expired="restart"` the list starts again and
`Pages.restarts` says so (the caller drops what it took from the earlier pass).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from clusters.kube.client import APPLY_PATCH, FIELD_MANAGER, MERGE_PATCH, Client
from clusters.kube.discovery import Resource, resource
from clusters.kube.errors import Gone, Invalid, NotFound, not_kubernetes

DEFAULT_PAGE = 500


class ContinueExpired(Gone):
    """The continue token of a paginated list expired (410): list again from the start."""


def resource_of(client: Client, what: Resource | tuple[str, str]) -> Resource:
    """A `Resource`, or the one of an (apiVersion, kind) pair."""
    if isinstance(what, Resource):
        return what
    return resource(client, *what)


def get(
    client: Client, api_version: str, kind: str, name: str, namespace: str | None = None
) -> dict[str, Any]:
    """One object as JSON (`NotFound` when it is not there)."""
    found: dict[str, Any] = client.request("GET", resource(client, api_version, kind).path(namespace, name))
    return found


def create(client: Client, obj: dict[str, Any]) -> dict[str, Any]:
    """Create an object (POST: never retried; `AlreadyExists` when the name is taken)."""
    res, namespace, _ = _target(client, obj)
    query = {"fieldManager": FIELD_MANAGER}
    made: dict[str, Any] = client.request("POST", res.path(namespace), query=query, body=obj)
    return made


def apply(
    client: Client, obj: dict[str, Any], *, force: bool = False, dry_run: bool = False
) -> dict[str, Any]:
    """Server-side apply with Flotilla's field manager; returns the object the server now holds."""
    res, namespace, name = _target(client, obj)
    query = {
        "fieldManager": FIELD_MANAGER,
        "force": "true" if force else None,
        "dryRun": "All" if dry_run else None,
    }
    applied: dict[str, Any] = client.request(
        "PATCH", res.path(namespace, name), query=query, body=obj, content_type=APPLY_PATCH
    )
    return applied


def patch(
    client: Client,
    api_version: str,
    kind: str,
    name: str,
    changes: dict[str, Any],
    *,
    namespace: str | None = None,
    subresource: str = "",
) -> dict[str, Any]:
    """A JSON merge patch (of the object or a subresource such as `status`)."""
    path = resource(client, api_version, kind).path(namespace, name, subresource)
    patched: dict[str, Any] = client.request(
        "PATCH", path, query={"fieldManager": FIELD_MANAGER}, body=changes, content_type=MERGE_PATCH
    )
    return patched


def delete(
    client: Client,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    propagation: str = "Background",
    missing_ok: bool = False,
) -> None:
    """Delete an object (`NotFound` when it is not there, unless `missing_ok`)."""
    path = resource(client, api_version, kind).path(namespace, name)
    try:
        client.request(
            "DELETE",
            path,
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation},
        )
    except NotFound:
        if not missing_ok:
            raise


def _target(client: Client, obj: dict[str, Any]) -> tuple[Resource, str | None, str]:
    """The resource, namespace and name an object names; `Invalid` for a malformed one."""
    if not isinstance(obj, dict):
        raise Invalid("an object must be a mapping", causes=[("object", "must be a mapping")])
    given = obj.get("metadata")
    meta: dict[str, Any] = given if isinstance(given, dict) else {}
    causes = [
        (key, f"{key} is required")
        for key, value in (
            ("apiVersion", obj.get("apiVersion")),
            ("kind", obj.get("kind")),
            ("metadata.name", meta.get("name")),
        )
        if not isinstance(value, str) or not value
    ]
    if causes:
        raise Invalid("the object is incomplete: " + ", ".join(c[1] for c in causes), causes=causes)
    res = resource(client, obj["apiVersion"], obj["kind"])
    namespace = (meta.get("namespace") or "default") if res.namespaced else None
    return res, namespace, meta["name"]


class Pages:
    """A paginated list, iterated page by page (raw JSON lists, items included)."""

    def __init__(
        self,
        client: Client,
        res: Resource,
        *,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        limit: int,
        on_expired: str,
        continue_token: str = "",
    ) -> None:
        if on_expired not in ("raise", "restart"):
            raise ValueError("on_expired is 'raise' or 'restart'")
        self.client, self.res = client, res
        self.query: dict[str, Any] = {
            "limit": max(1, limit),
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
        }
        self.namespace = namespace
        self.on_expired = on_expired
        self.restarts = 0
        self.resource_version = ""  # of the list, once read: where a watch can start from
        # Where a list left off: a job that checkpoints between pages resumes from here.
        self.start_token = continue_token
        self.next_token = continue_token

    def __iter__(self) -> Iterator[dict[str, Any]]:
        token = self.start_token
        path = self.res.path(self.namespace)
        while True:
            try:
                page = self.client.request("GET", path, query={**self.query, "continue": token or None})
            except Gone as exc:
                if not token:
                    raise
                if self.on_expired == "raise":
                    raise ContinueExpired(
                        f"{self.client.server}: the list of {self.res.plural} took longer than the "
                        "server keeps its revision (continue token expired); list again",
                        continue_token=exc.continue_token,
                        reason=exc.reason,
                        http_status=exc.http_status,
                    ) from exc
                self.restarts += 1
                token = ""
                continue
            if not isinstance(page, dict) or not isinstance(page.get("items", []), list):
                raise not_kubernetes(self.client.server)
            meta = page.get("metadata") or {}
            token = str(meta.get("continue") or "")
            self.next_token = token
            self.resource_version = str(meta.get("resourceVersion") or self.resource_version)
            yield page
            # Dropped before the next page is asked for: one page in memory at a time.
            del page, meta
            if not token:
                return


def list_pages(
    client: Client,
    what: Resource | tuple[str, str],
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    limit: int = DEFAULT_PAGE,
    on_expired: str = "raise",
    continue_token: str = "",
) -> Pages:
    """Page through a resource (a discovery `Resource` or an (apiVersion, kind) pair), from the
    start or from where an earlier list left off (`continue_token`; `Pages.next_token` after
    each page is where to resume)."""
    return Pages(
        client,
        resource_of(client, what),
        namespace=namespace,
        label_selector=label_selector,
        field_selector=field_selector,
        limit=limit,
        on_expired=on_expired,
        continue_token=continue_token,
    )


def list_items(client: Client, what: Resource | tuple[str, str], **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every object of a resource, one at a time (pages fetched as needed)."""
    for page in list_pages(client, what, **kwargs):
        yield from page.get("items") or []
