"""`flotilla restore SNAPSHOT --into CLUSTER` and `flotilla restores ...`: restores, previews, reports.

A restore is an operation like any other (`--wait` follows it), and ends with a report: one row per
object, created, updated (with the fields that changed), unchanged, skipped, in conflict or failed
with the API server's reason. `--preview` asks the target with server-side dry-run what a restore
would do, changes nothing, and prints that report; `flotilla restores confirm ID` then restores
with the same options. A restore that failed or ended partial exits 9, saying how many objects
failed; the report says exactly which were and were not restored.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated

import typer

from cli.client import ApiClient, JsonObject
from cli.commands.clusters import clusters_client
from cli.commands.snapshots import (
    ExcludeKindOption,
    ExcludeNamespaceOption,
    IdempotencyOption,
    KindOption,
    NamespaceOption,
    NoClusterScopedOption,
    SelectorOption,
    fail,
    find_snapshot,
    follow_resource,
    operation_note,
    resolve_cluster,
    selection_from,
)
from cli.errors import ApiError, CliError, ExitCode, UsageError
from cli.output import Output, OutputOption, text_of
from cli.progress import TimeoutOption, WaitOption, parse_timeout
from cli.runtime import CommandGroup, output_for
from cli.snapshot_tables import (
    RESTORE_COLUMNS,
    counts_from_items,
    print_report,
    restore_rows,
    summary,
)

app = CommandGroup(help="Restores and previews of snapshots: list, show, their reports, confirm a preview.")

RESTORES_PATH = "snapshots/restores/"
# A restore's statuses after which nothing changes; those that are not a success exit 9.
SUCCESS = "completed"
NAME_SYNTAX = "lowercase letters, digits, '-' (and '.' for a storage class)"


class Existing(StrEnum):
    """The values of `--existing`: what to do with an object the target already holds."""

    skip = "skip"
    update = "update"
    fail = "fail"


class ItemResultChoice(StrEnum):
    """The values of `restores report --result`."""

    done = "done"
    failed = "failed"
    planned = "planned"


class ItemActionChoice(StrEnum):
    """The values of `restores report --action`."""

    create = "create"
    update = "update"
    unchanged = "unchanged"
    skip = "skip"
    conflict = "conflict"
    fail = "fail"


def parse_map(values: Iterable[str] | None, *, option: str, subdomain: bool = False) -> dict[str, str]:
    """`FROM=TO` flags as a mapping; each side a Kubernetes name, each FROM given once."""
    mapping: dict[str, str] = {}
    for text in values or ():
        source, sep, target = (part.strip() for part in text.partition("="))
        if not sep or not source or not target:
            raise UsageError(f"{option} {text!r}: expected FROM=TO", hint=f"{option} shop=shop-copy")
        for name in (source, target):
            if not _is_name(name, subdomain=subdomain):
                raise UsageError(f"{option} {text!r}: {name!r} is not a name ({NAME_SYNTAX})")
        if source in mapping and mapping[source] != target:
            raise UsageError(f"{option}: {source!r} is mapped twice ({mapping[source]} and {target})")
        mapping[source] = target
    return mapping


def _is_name(name: str, *, subdomain: bool) -> bool:
    limit = 253 if subdomain else 63
    labels = name.split(".") if subdomain else [name]
    return len(name) <= limit and all(
        label
        and label[0].isalnum()
        and label[-1].isalnum()
        and all(ch.isascii() and (ch.islower() or ch.isdigit() or ch == "-") for ch in label)
        for label in labels
    )


def restore_id(text: str) -> int:
    """A RESTORE_ID argument as a number."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()):
        raise UsageError(
            f"RESTORE_ID: {text!r} is not a restore id",
            hint="restore ids are numbers; `flotilla restores list` lists them",
        )
    return int(value)


def restore_path(ident: object) -> str:
    """The API path of a restore."""
    return f"{RESTORES_PATH}{ident}/"


def get_restore(api: ApiClient, ident: int) -> JsonObject:
    """Restore `ident`; exit 5 when there is none."""
    try:
        return api.get(restore_path(ident))
    except ApiError as exc:
        if exc.status == 404:
            raise CliError(f"no restore with id {ident}", ExitCode.NOT_FOUND) from exc
        raise


def report_items(
    api: ApiClient, restore: JsonObject, params: dict[str, str | int] | None = None
) -> list[JsonObject]:
    """Every row of a restore's report, across all its pages."""
    return api.list_all(f"{restore_path(restore['id'])}items/", params or None).items


def _label(restore: JsonObject) -> str:
    what = "preview" if restore.get("mode") == "preview" else "restore"
    return (
        f"{what} {text_of(restore.get('id'))} of snapshot {text_of(restore.get('snapshot_name'))} "
        f"into {text_of(restore.get('target_name'))}"
    )


def _started(out: Output, restore: JsonObject) -> None:
    if out.is_json:
        out.json(restore)
        return
    operation = restore.get("operation")
    state = (
        f"operation {operation['id']} is {text_of(operation.get('status'))}"
        if isinstance(operation, dict) and "id" in operation
        else f"it is {text_of(restore.get('status'))}"
    )
    out.result(f"Started {_label(restore)}: {state}.")
    operation_note(out, restore, then=f"; `flotilla restores report {restore['id']}` shows what it did")


def finish(out: Output, api: ApiClient, restore: JsonObject, timeout: float | None) -> None:
    """Follow a restore or preview to its end, print its report, exit 9 unless it ended well."""
    followed = follow_resource(api, out, restore, restore_path(restore["id"]), timeout)
    final = followed.resource or restore
    items = report_items(api, final)
    preview = final.get("mode") == "preview"
    counts = (
        counts_from_items(items) if preview or not isinstance(final.get("counts"), dict) else final["counts"]
    )
    status = str(final.get("status"))
    if out.is_json:
        out.json({"restore": final, "items": items})
    else:
        verb = "would do" if preview else "did"
        out.result(
            f"{_label(final).capitalize()} is {text_of(status)}; "
            f"it {verb}: {summary(counts, preview=preview)}."
        )
        out.result("")
        print_report(out, items, unchanged_hidden=True)
    if status != SUCCESS:
        failed = counts.get("failed") if isinstance(counts.get("failed"), int) else 0
        total = sum(v for v in counts.values() if isinstance(v, int))
        reason = f" ({final['reason']})" if final.get("reason") else ""
        detail = f"; {failed:,} of {total:,} objects failed" if failed else ""
        fail(
            f"{_label(final)} {'ended partial' if status == 'partial' else text_of(status)}{reason}{detail}",
            followed.operation,
            hint=f"`flotilla restores report {final['id']} --result failed` lists the failures",
        )
    if preview and not out.is_json:
        out.note(
            f"Nothing was changed. `flotilla restores confirm {final['id']}` restores it with these options."
        )


# --- `flotilla restore` ---------------------------------------------------------------------------


def restore(
    ctx: typer.Context,
    snapshot: Annotated[str, typer.Argument(metavar="SNAPSHOT", help="The snapshot's name or id.")],
    into: Annotated[
        str, typer.Option("--into", metavar="CLUSTER", help="The cluster to restore into (name or id).")
    ],
    namespace_map: Annotated[
        list[str] | None,
        typer.Option("--namespace-map", metavar="FROM=TO", help="Restore namespace FROM as TO (repeatable)."),
    ] = None,
    storage_class_map: Annotated[
        list[str] | None,
        typer.Option(
            "--storage-class-map",
            metavar="FROM=TO",
            help="Give claims of storage class FROM the class TO (repeatable).",
        ),
    ] = None,
    namespace: NamespaceOption = None,
    exclude_namespace: ExcludeNamespaceOption = None,
    kind: KindOption = None,
    exclude_kind: ExcludeKindOption = None,
    selector: SelectorOption = None,
    no_cluster_scoped: NoClusterScopedOption = False,
    existing: Annotated[
        Existing | None,
        typer.Option(
            "--existing",
            case_sensitive=False,
            help="An object the target already holds: skip it (the server's default), update it "
            "(server-side apply), or fail.",
            show_default=False,
        ),
    ] = None,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Only say what a restore would do (server-side dry-run; waits and prints the report).",
        ),
    ] = False,
    idempotency_key: IdempotencyOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Restore a snapshot into a cluster (the same one or another), or preview what that would do."""
    out = output_for(ctx, output)
    options = selection_from(
        namespace=namespace,
        exclude_namespace=exclude_namespace,
        kind=kind,
        exclude_kind=exclude_kind,
        selector=selector,
        no_cluster_scoped=no_cluster_scoped,
    )
    options["namespace_map"] = parse_map(namespace_map, option="--namespace-map")
    options["storage_class_map"] = parse_map(storage_class_map, option="--storage-class-map", subdomain=True)
    if existing is not None:
        options["existing"] = existing.value
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        source = find_snapshot(api, snapshot)
        target = resolve_cluster(api, into)
        body: JsonObject = {
            "snapshot": source["id"],
            "target": target["id"],
            "mode": "preview" if preview else "restore",
            "options": options,
        }
        with api.header("Idempotency-Key", idempotency_key.strip() if idempotency_key else None):
            accepted = api.post(RESTORES_PATH, body)
        if "id" not in accepted:
            raise CliError("unexpected answer from the server: no restore", ExitCode.SERVER)
        if preview or wait:
            finish(out, api, accepted, seconds)
        else:
            _started(out, accepted)


def register(root: CommandGroup) -> None:
    """Add `flotilla restore` to the root app (`flotilla restores` is `app`)."""
    root.command("restore")(restore)


# --- `flotilla restores` --------------------------------------------------------------------------

RestoreArg = Annotated[str, typer.Argument(metavar="RESTORE_ID", help="The restore's id.")]


@app.command("list")
def list_restores(
    ctx: typer.Context,
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", metavar="SNAPSHOT", help="Only restores of this snapshot.")
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--into", "--target", metavar="CLUSTER", help="Only restores into this cluster."),
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only restores in this status, e.g. partial or failed.")
    ] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="restore or preview.")] = None,
    output: OutputOption = None,
) -> None:
    """List restores and previews: snapshot, target, mode, status, what they did."""
    out = output_for(ctx, output)
    params: dict[str, str | int] = {}
    for key, value in (("status", status), ("mode", mode)):
        if value:
            params[key] = value.strip()
    with clusters_client(ctx) as api:
        if snapshot:
            params["snapshot"] = find_snapshot(api, snapshot)["id"]
        if target:
            params["target"] = resolve_cluster(api, target)["id"]
        items = api.list_all(RESTORES_PATH, params or None).items
    out.listing(RESTORE_COLUMNS, items, empty="No restores.")


@app.command("get")
def get(ctx: typer.Context, ident: RestoreArg, output: OutputOption = None) -> None:
    """Show a restore: snapshot, target, options, status and counts (`report` lists every object)."""
    out = output_for(ctx, output)
    number = restore_id(ident)
    with clusters_client(ctx) as api:
        item = get_restore(api, number)
    if out.is_json:
        out.json(item)
        return
    out.record(restore_rows(item))


@app.command("report")
def report(
    ctx: typer.Context,
    ident: RestoreArg,
    result: Annotated[
        ItemResultChoice | None,
        typer.Option(
            "--result", case_sensitive=False, help="Only rows with this result.", show_default=False
        ),
    ] = None,
    action: Annotated[
        ItemActionChoice | None,
        typer.Option(
            "--action", case_sensitive=False, help="Only rows with this action.", show_default=False
        ),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", metavar="KIND", help="Only objects of this kind.")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", metavar="NS", help="Only objects of this (target) namespace."),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Every object of a restore's report: action, result, kind, namespace, name, why; then field diffs."""
    out = output_for(ctx, output)
    number = restore_id(ident)
    params: dict[str, str | int] = {}
    if result is not None:
        params["result"] = result.value
    if action is not None:
        params["action"] = action.value
    for key, value in (("kind", kind), ("namespace", namespace)):
        if value and value.strip():
            params[key] = value.strip()
    with clusters_client(ctx) as api:
        item = get_restore(api, number)
        items = report_items(api, item, params)
    if out.is_json:
        out.json(items)
        return
    print_report(out, items, unchanged_hidden=False)


@app.command("confirm")
def confirm_preview(
    ctx: typer.Context,
    ident: RestoreArg,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Restore what a completed preview showed, with the same options (a new restore)."""
    out = output_for(ctx, output)
    number = restore_id(ident)
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        try:
            accepted = api.post(f"{restore_path(number)}confirm/", {})
        except ApiError as exc:
            if exc.status == 404:
                raise CliError(f"no restore with id {number}", ExitCode.NOT_FOUND) from exc
            raise
        if "id" not in accepted:
            raise CliError("unexpected answer from the server: no restore", ExitCode.SERVER)
        if wait:
            finish(out, api, accepted, seconds)
        else:
            _started(out, accepted)
