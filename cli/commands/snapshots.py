"""`flotilla snapshots ...`: take snapshots of whole clusters into storage, list, show and delete them.

A snapshot is named by its name or its id (a name shared with deleted snapshots means the live
one). Taking and deleting one are operations, followed with `--wait` as for clusters: the bar shows
the objects and bytes written so far; exit 9 when the snapshot failed, 10 after `--timeout`.
The selection flags (`--namespace`, `--kind`, ...) are shared with `flotilla restore`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

import typer

from cli.client import ApiClient, JsonObject
from cli.commands.clusters import CLUSTERS_PATH, YesOption, clusters_client, find_cluster
from cli.errors import ApiError, CliError, ExitCode, UsageError
from cli.output import Output, OutputOption, print_error, text_of
from cli.progress import (
    TimeoutOption,
    WaitExit,
    WaitOption,
    conclude,
    is_finished,
    parse_timeout,
    wait_for_operation,
)
from cli.runtime import CommandGroup, confirm, output_for, stdin_is_terminal
from cli.snapshot_tables import (
    CONDITION_COLUMNS,
    KIND_COUNT_COLUMNS,
    SNAPSHOT_COLUMNS,
    conditions,
    count_cell,
    human_bytes,
    kind_counts,
    snapshot_rows,
)

app = CommandGroup(help="Snapshots of whole clusters in encrypted storage: take, list, show, delete.")

SNAPSHOTS_PATH = "snapshots/"
LOCATIONS_PATH = "snapshots/locations/"
LIVE_GONE = "deleted"

# The shapes snapshots/selection.py accepts; the server checks them again and has the last word.
_NAMESPACE_PATTERN = re.compile(r"[a-z0-9*?\[\]]([-a-z0-9*?\[\]]{0,61}[a-z0-9*?\[\]])?\Z")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")
_GROUP_OR_VERSION = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?\Z")
KIND_SYNTAX = "Kind, group/Kind or group/version/Kind, e.g. ConfigMap, apps/Deployment, v1/Secret"


# --- the selection flags (also those of `flotilla restore`) --------------------------------------

NamespaceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--namespace",
        "-n",
        metavar="NS",
        help="Only these namespaces (repeatable or comma-separated; globs such as team-*).",
    ),
]
ExcludeNamespaceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude-namespace", metavar="NS", help="Leave out these namespaces (repeatable; globs; wins)."
    ),
]
KindOption = Annotated[
    list[str] | None,
    typer.Option("--kind", metavar="KIND", help=f"Only these kinds (repeatable): {KIND_SYNTAX}."),
]
ExcludeKindOption = Annotated[
    list[str] | None,
    typer.Option("--exclude-kind", metavar="KIND", help="Leave out these kinds (repeatable), e.g. Event."),
]
SelectorOption = Annotated[
    str | None,
    typer.Option(
        "--selector", "-l", metavar="SELECTOR", help="A label selector, as kubectl's: app=web,tier!=db."
    ),
]
NoClusterScopedOption = Annotated[
    bool,
    typer.Option(
        "--no-cluster-scoped",
        help="Leave out cluster-scoped objects (CRDs, ClusterRoles, ...); namespaces are kept.",
    ),
]
IdempotencyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        metavar="KEY",
        help="Any unique string (at most 100 characters): retrying with the same key gives the same result.",
    ),
]


def _split(values: Iterable[str] | None) -> list[str]:
    words: list[str] = []
    for value in values or ():
        for word in value.split(","):
            if word.strip() and word.strip() not in words:
                words.append(word.strip())
    return words


def parse_namespaces(values: Iterable[str] | None, *, option: str) -> list[str]:
    """Namespace patterns: DNS labels where `*?[]` are allowed."""
    patterns = _split(values)
    for pattern in patterns:
        if not _NAMESPACE_PATTERN.match(pattern):
            raise UsageError(
                f"{option} {pattern!r}: not a namespace name or pattern "
                "(lowercase letters, digits and '-', with the globs * ? [...])"
            )
    return patterns


def parse_kinds(values: Iterable[str] | None, *, option: str) -> list[str]:
    """Kind patterns: `Kind`, `group/Kind` (core: `/Kind` or `v1/Kind`) or `group/version/Kind`."""
    kinds = _split(values)
    for kind in kinds:
        parts = kind.split("/")
        prefix_ok = all(not part or _GROUP_OR_VERSION.match(part) for part in parts[:-1]) and all(parts[1:-1])
        if len(parts) > 3 or not _KIND.match(parts[-1]) or not prefix_ok:
            raise UsageError(f"{option} {kind!r}: not a kind", hint=f"{option} {KIND_SYNTAX}")
    return kinds


def selection_from(
    *,
    namespace: list[str] | None,
    exclude_namespace: list[str] | None,
    kind: list[str] | None,
    exclude_kind: list[str] | None,
    selector: str | None,
    no_cluster_scoped: bool,
) -> JsonObject:
    """The API's selection from the flags (every key sent, so that the request says it all)."""
    return {
        "include_namespaces": parse_namespaces(namespace, option="--namespace"),
        "exclude_namespaces": parse_namespaces(exclude_namespace, option="--exclude-namespace"),
        "include_kinds": parse_kinds(kind, option="--kind"),
        "exclude_kinds": parse_kinds(exclude_kind, option="--exclude-kind"),
        "label_selector": (selector or "").strip(),
        "cluster_scoped": not no_cluster_scoped,
    }


# --- naming -------------------------------------------------------------------------------------


def _id_of(item: JsonObject) -> int:
    ident = item.get("id")
    return ident if isinstance(ident, int) else 0


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit()


def resolve_cluster(api: ApiClient, text: str) -> JsonObject:
    """A cluster by name, else by id; exit 5 when neither names one."""
    wanted = text.strip()
    try:
        return find_cluster(api, wanted)
    except CliError as exc:
        if exc.exit_code is not ExitCode.NOT_FOUND or not _is_id(wanted):
            raise
        try:
            return api.get(f"{CLUSTERS_PATH}{wanted}/")
        except ApiError as missing:
            if missing.status == 404:
                raise exc from None
            raise


def snapshot_path(snapshot: JsonObject) -> str:
    """The API path of a snapshot."""
    return f"{SNAPSHOTS_PATH}{snapshot['id']}/"


def find_snapshot(api: ApiClient, text: str) -> JsonObject:
    """A snapshot by name (the live one; else the newest deleted one), else by id; exit 5 for none."""
    wanted = text.strip()
    if not wanted:
        raise UsageError("SNAPSHOT: the snapshot's name is empty")
    # Filter again here: a server that ignored `name` must not make the CLI pick a wrong snapshot.
    named = [s for s in api.list_all(SNAPSHOTS_PATH, {"name": wanted}).items if s.get("name") == wanted]
    live = [s for s in named if s.get("status") != LIVE_GONE]
    if live or named:
        return max(live or named, key=_id_of)
    if _is_id(wanted):
        try:
            return api.get(f"{SNAPSHOTS_PATH}{wanted}/")
        except ApiError as exc:
            if exc.status != 404:
                raise
    raise CliError(
        f"no snapshot named {wanted!r}", ExitCode.NOT_FOUND, hint="`flotilla snapshots list` shows them"
    )


def find_location(api: ApiClient, text: str) -> JsonObject:
    """A storage location by name, else by id; exit 5 when neither names one."""
    wanted = text.strip()
    if not wanted:
        raise UsageError("the storage location's name is empty")
    items = api.list_all(LOCATIONS_PATH).items
    for item in items:
        if item.get("name") == wanted:
            return item
    if _is_id(wanted):
        for item in items:
            if str(item.get("id")) == wanted:
                return item
    raise CliError(
        f"no storage location named {wanted!r}",
        ExitCode.NOT_FOUND,
        hint="`flotilla storage list` shows them",
    )


# --- following an operation that carries a snapshot or a restore ---------------------------------


@dataclass(frozen=True)
class Followed:
    """A followed resource as it is now (None: the API no longer has it), and its operation as last seen."""

    resource: JsonObject | None
    operation: JsonObject | None


def follow_resource(
    api: ApiClient, out: Output, resource: JsonObject, path: str, timeout: float | None
) -> Followed:
    """Wait for the resource's operation to end, then read the resource again.

    A wait that timed out or was interrupted ends here with exit 10 or 130 (the resource is
    printed first in JSON mode); whether the resource came out well is for the caller to judge.
    """
    operation = resource.get("operation")
    if not isinstance(operation, dict):
        # An answer made before the operation was attached to it: the resource itself knows it now.
        operation = (fresh(api, path) or {}).get("operation")
    last = operation if isinstance(operation, dict) else None
    if last is not None and "id" in last and not is_finished(last):
        result = wait_for_operation(api, last, timeout=timeout)
        last = result.operation
        if result.timed_out or result.interrupted:
            if out.is_json:
                out.json(fresh(api, path) or {**resource, "operation": last})
            conclude(result)
    now = fresh(api, path)
    # The API may drop a finished operation from the resource: its error is still worth telling.
    current = now.get("operation") if now is not None else None
    return Followed(now, current if isinstance(current, dict) else last)


def fresh(api: ApiClient, path: str) -> JsonObject | None:
    """The resource at `path` now, or None when the API no longer has it."""
    try:
        return api.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def fail(message: str, operation: object, hint: str | None = None) -> None:
    """Say why a followed operation did not end well (with the operation's error), then exit 9."""
    if isinstance(operation, dict) and operation.get("error") and str(operation["error"]) not in message:
        message += f": {operation['error']}"
    print_error(CliError(message, hint=hint))
    raise typer.Exit(int(WaitExit.OPERATION_FAILED))


def operation_note(out: Output, resource: JsonObject, then: str = "") -> None:
    """How to follow the resource's operation later (stderr)."""
    operation = resource.get("operation")
    if isinstance(operation, dict) and "id" in operation and not is_finished(operation):
        out.note(f"Follow it with `flotilla clusters wait {operation['id']}` (or use --wait){then}.")


def _operation_text(resource: JsonObject) -> str:
    operation = resource.get("operation")
    if isinstance(operation, dict) and "id" in operation:
        return f"operation {operation['id']} is {text_of(operation.get('status'))}"
    return f"it is {text_of(resource.get('status'))}"


# --- commands -----------------------------------------------------------------------------------

SnapshotArg = Annotated[str, typer.Argument(metavar="SNAPSHOT", help="The snapshot's name or id.")]


def _done_text(snapshot: JsonObject) -> str:
    return (
        f"Snapshot {text_of(snapshot.get('name'))} is {text_of(snapshot.get('status'))}: "
        f"{count_cell(snapshot.get('object_count'))} objects, {human_bytes(snapshot.get('stored_bytes'))} "
        f"stored ({human_bytes(snapshot.get('raw_bytes'))} raw) in {text_of(snapshot.get('location_name'))}."
    )


@app.command("create")
def create(
    ctx: typer.Context,
    cluster: Annotated[str, typer.Argument(metavar="CLUSTER", help="The cluster's name or id.")],
    name: Annotated[
        str | None,
        typer.Option("--name", help="The snapshot's name (default: made from the cluster and time)."),
    ] = None,
    location: Annotated[
        str | None,
        typer.Option(
            "--location", metavar="NAME|ID", help="The storage location (default: the org's default)."
        ),
    ] = None,
    namespace: NamespaceOption = None,
    exclude_namespace: ExcludeNamespaceOption = None,
    kind: KindOption = None,
    exclude_kind: ExcludeKindOption = None,
    selector: SelectorOption = None,
    no_cluster_scoped: NoClusterScopedOption = False,
    idempotency_key: IdempotencyOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Take a snapshot of a cluster (every object it serves, or a selection) into a storage location."""
    out = output_for(ctx, output)
    selection = selection_from(
        namespace=namespace,
        exclude_namespace=exclude_namespace,
        kind=kind,
        exclude_kind=exclude_kind,
        selector=selector,
        no_cluster_scoped=no_cluster_scoped,
    )
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        source = resolve_cluster(api, cluster)
        body: JsonObject = {"cluster": source["id"], "selection": selection}
        if name is not None and name.strip():
            body["name"] = name.strip()
        if location is not None:
            body["location"] = find_location(api, location)["id"]
        with api.header("Idempotency-Key", idempotency_key.strip() if idempotency_key else None):
            snapshot = api.post(SNAPSHOTS_PATH, body)
        if "id" not in snapshot:
            raise CliError("unexpected answer from the server: no snapshot", ExitCode.SERVER)
        label = f"snapshot {text_of(snapshot.get('name'))} of {text_of(source.get('name'))}"
        if not wait:
            if out.is_json:
                out.json(snapshot)
                return
            out.result(f"Taking {label}: {_operation_text(snapshot)}.")
            operation_note(out, snapshot)
            return
        followed = follow_resource(api, out, snapshot, snapshot_path(snapshot), seconds)
    final = followed.resource or snapshot
    if out.is_json:
        out.json(final)
    if final.get("status") != "completed":
        reason = f" ({final['reason']})" if final.get("reason") else ""
        fail(
            f"{label} {text_of(final.get('status'))}{reason}",
            followed.operation,
            hint=f"`flotilla snapshots get {final.get('id')}` shows its conditions",
        )
    if not out.is_json:
        out.result(_done_text(final))
    # A snapshot that completed with a caveat (a list that could not be read consistently) says so.
    for condition in conditions(final):
        if condition.get("status") == "True":
            why = condition.get("message") or condition.get("reason")
            out.warn(f"{text_of(condition.get('type'))}: {text_of(why)}")


@app.command("list")
def list_snapshots(
    ctx: typer.Context,
    cluster: Annotated[
        str | None, typer.Option("--cluster", "-c", metavar="CLUSTER", help="Only this cluster's snapshots.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only snapshots in this status, e.g. completed or failed.")
    ] = None,
    location: Annotated[
        str | None, typer.Option("--location", metavar="NAME|ID", help="Only those in this storage location.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """List the organisation's snapshots: cluster, status, objects, stored size, location."""
    out = output_for(ctx, output)
    params: dict[str, str | int] = {}
    if status:
        params["status"] = status.strip()
    with clusters_client(ctx) as api:
        if cluster:
            params["cluster"] = resolve_cluster(api, cluster)["id"]
        if location:
            params["location"] = find_location(api, location)["id"]
        items = api.list_all(SNAPSHOTS_PATH, params or None).items
    out.listing(SNAPSHOT_COLUMNS, items, empty="No snapshots.")


@app.command("get")
def get(ctx: typer.Context, snapshot: SnapshotArg, output: OutputOption = None) -> None:
    """Show a snapshot: status, selection, sizes, versions, the kinds it holds, its conditions."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        item = api.get(snapshot_path(find_snapshot(api, snapshot)))
    if out.is_json:
        out.json(item)
        return
    out.record(snapshot_rows(item))
    out.result("")
    out.table(KIND_COUNT_COLUMNS, kind_counts(item), empty="No kinds recorded.")
    found = conditions(item)
    if found:
        out.result("")
        out.table(CONDITION_COLUMNS, found, empty="")


@app.command("delete")
def delete(
    ctx: typer.Context,
    snapshot: SnapshotArg,
    yes: YesOption = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Delete a snapshot and its data in storage (asks first unless --yes)."""
    out = output_for(ctx, output)
    # Refuse before touching the server: a script that forgot --yes must not half-run.
    if not yes and not stdin_is_terminal():
        raise UsageError("refusing to delete a snapshot without confirmation", hint="pass --yes to confirm")
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        item = find_snapshot(api, snapshot)
        name = text_of(item.get("name"))
        confirm(
            f"Delete snapshot {name} ({count_cell(item.get('object_count'))} objects, "
            f"{human_bytes(item.get('stored_bytes'))}) from {text_of(item.get('location_name'))}? "
            "This cannot be undone.",
            yes=yes,
        )
        accepted = api.request_delete(snapshot_path(item))
        if not wait:
            if out.is_json:
                out.json(accepted)
                return
            out.result(f"Deleting snapshot {name}: {_operation_text(accepted)}.")
            operation_note(out, accepted)
            return
        # The API may stop showing a deleted snapshot at all: gone is deleted.
        followed = follow_resource(api, out, {**item, **accepted}, snapshot_path(item), seconds)
    final = followed.resource or {**item, **accepted, "status": LIVE_GONE}
    if out.is_json:
        out.json(final)
    if final.get("status") != LIVE_GONE:
        fail(f"snapshot {name} is still {text_of(final.get('status'))}", followed.operation)
    if not out.is_json:
        out.result(f"Deleted snapshot {name}.")
