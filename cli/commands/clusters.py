"""`flotilla clusters ...`: create, import, scale, upgrade and delete clusters; follow their operations.

Clusters are named by name (resolved with `GET clusters/?name=`). Every change answers with an
operation; `--wait` follows it with a progress bar (see `cli.progress`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.client import ApiClient, JsonObject
from cli.cluster_tables import (
    CLUSTER_COLUMNS,
    EVENT_COLUMNS,
    NODE_COLUMNS,
    POOL_COLUMNS,
    cluster_rows,
    nodes_cell,
)
from cli.config import resolve_credentials
from cli.errors import ApiError, CliError, ExitCode, UsageError
from cli.output import Output, OutputOption, text_of
from cli.pools import POOL_SYNTAX, parse_pool
from cli.progress import (
    OPERATION_COLUMNS,
    OPERATIONS_PATH,
    TimeoutOption,
    WaitOption,
    describe,
    follow,
    operation_call,
    operation_id,
    parse_timeout,
)
from cli.runtime import CommandGroup, confirm, output_for, state_of, stdin_is_terminal

app = CommandGroup(help="Kubernetes clusters: create, import, scale, upgrade, delete; their operations.")

CLUSTERS_PATH = "clusters/"
DEFAULT_OPERATIONS_LIMIT = 50


# --- the client ---------------------------------------------------------------------------------


def clusters_client(ctx: typer.Context) -> ApiClient:
    """An API client for the credentials of this run."""
    creds = resolve_credentials()
    return ApiClient(creds.server, creds.token, transport=state_of(ctx).transport)


def find_cluster(api: ApiClient, name: str) -> JsonObject:
    """The live cluster with this exact name; exit 5 when there is none."""
    wanted = name.strip()
    if not wanted:
        raise UsageError("NAME: the cluster name is empty")
    for item in api.list_all(CLUSTERS_PATH, {"name": wanted}).items:
        if item.get("name") == wanted:
            return item
    raise CliError(
        f"no cluster named {wanted!r}", ExitCode.NOT_FOUND, hint="`flotilla clusters list` shows them"
    )


def find_pool(cluster: JsonObject, pool_name: str) -> JsonObject:
    """The cluster's pool with this name; exit 5 when there is none."""
    pools = [p for p in cluster.get("pools") or [] if isinstance(p, dict)]
    for pool in pools:
        if pool.get("name") == pool_name:
            return pool
    names = ", ".join(str(p.get("name")) for p in pools) or "none"
    raise CliError(
        f"cluster {cluster.get('name')} has no pool named {pool_name!r} (its pools: {names})",
        ExitCode.NOT_FOUND,
    )


def cluster_path(cluster: JsonObject) -> str:
    """The API path of a cluster."""
    return f"{CLUSTERS_PATH}{cluster['id']}/"


def _refuse_without_yes(yes: bool, what: str) -> None:
    # Refuse before touching the server: a script that forgot --yes must not half-run.
    if not yes and not stdin_is_terminal():
        raise UsageError(f"refusing to {what} without confirmation", hint="pass --yes to confirm")


# --- commands -----------------------------------------------------------------------------------

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The cluster's name.")]
PoolOption = Annotated[
    list[str],
    typer.Option("--pool", metavar="SPEC", help=f"A node pool (repeatable): {POOL_SYNTAX}."),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
IdempotencyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        metavar="KEY",
        help="Any unique string (at most 100 characters): retrying with the same key gives the same cluster.",
    ),
]


@app.command("list")
def list_clusters(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="Only clusters in this status, e.g. ready or error.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """List the organisation's clusters with their status, nodes and running operation."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        clusters = api.list_all(CLUSTERS_PATH, {"status": status} if status else None).items
    out.listing(CLUSTER_COLUMNS, clusters, empty="No clusters.")


@app.command("get")
def get(ctx: typer.Context, name: NameArg, output: OutputOption = None) -> None:
    """Show one cluster: status and conditions, versions, nodes, pools."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        cluster = api.get(cluster_path(find_cluster(api, name)))
    if out.is_json:
        out.json(cluster)
        return
    out.record(cluster_rows(cluster))
    out.result("")
    out.table(POOL_COLUMNS, [p for p in cluster.get("pools") or [] if isinstance(p, dict)], empty="No pools.")


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    pool: PoolOption,
    provider: Annotated[
        str | None,
        typer.Option("--provider", help="A provider account's name (default: the organisation's local one)."),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="A region of the provider (needed when it has several).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="The Kubernetes version (default: the newest offered).")
    ] = None,
    idempotency_key: IdempotencyOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Create a cluster with one or more node pools (`flotilla providers catalogue` lists sizes)."""
    out = output_for(ctx, output)
    if not pool:
        raise UsageError("give at least one --pool", hint=f"--pool {POOL_SYNTAX}")
    pools = [parse_pool(spec) for spec in pool]
    seconds = parse_timeout(timeout)
    body: JsonObject = {"name": name.strip(), "pools": pools}
    for key, value in (("provider", provider), ("region", region), ("version", version)):
        if value:
            body[key] = value.strip()
    with clusters_client(ctx) as api:
        with api.header("Idempotency-Key", idempotency_key.strip() if idempotency_key else None):
            accepted = api.post(CLUSTERS_PATH, body)
        _follow_accepted(out, api, accepted, verb="Creating", wait=wait, timeout=seconds)


@app.command("import")
def import_cluster(
    ctx: typer.Context,
    name: NameArg,
    kubeconfig: Annotated[
        str, typer.Option("--kubeconfig", metavar="FILE", help="The cluster's kubeconfig ('-' reads stdin).")
    ],
    context: Annotated[
        str | None,
        typer.Option("--context", help="The kubeconfig context to use (default: its current one)."),
    ] = None,
    idempotency_key: IdempotencyOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Import a running cluster by its kubeconfig (the server checks it, then reaches the cluster in
    the background: --wait to follow that and fail with the reason)."""
    out = output_for(ctx, output)
    text = _read_kubeconfig(kubeconfig)
    seconds = parse_timeout(timeout)
    body: JsonObject = {"name": name.strip(), "kubeconfig": text}
    if context:
        body["context"] = context
    with clusters_client(ctx) as api:
        with api.header("Idempotency-Key", idempotency_key.strip() if idempotency_key else None):
            accepted = api.post(f"{CLUSTERS_PATH}import/", body)
        _follow_accepted(out, api, accepted, verb="Importing", wait=wait, timeout=seconds)


def _read_kubeconfig(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"--kubeconfig: cannot read {path}: {reason}") from exc


def _follow_accepted(
    out: Output, api: ApiClient, accepted: JsonObject, *, verb: str, wait: bool, timeout: float | None
) -> None:
    cluster, operation = accepted.get("cluster"), accepted.get("operation")
    if not isinstance(cluster, dict) or not isinstance(operation, dict) or "id" not in operation:
        raise CliError("unexpected answer from the server: no cluster and operation", ExitCode.SERVER)
    name = text_of(cluster.get("name"))

    def shape(op: JsonObject) -> JsonObject:
        return {"cluster": _fresh(api, cluster) if wait else cluster, "operation": op}

    def done() -> str:
        fresh = _fresh(api, cluster)
        return (
            f"Cluster {name} is {text_of(fresh.get('status'))}: {nodes_cell(fresh)} nodes ready, "
            f"Kubernetes {text_of(fresh.get('observed_version') or fresh.get('version'))}."
        )

    follow(
        out,
        api,
        operation,
        wait=wait,
        timeout=timeout,
        started=f"{verb} cluster {name}",
        done=done,
        body=shape,
    )


def _fresh(api: ApiClient, cluster: JsonObject) -> JsonObject:
    try:
        return api.get(cluster_path(cluster))
    except ApiError as exc:
        if exc.status == 404:
            return cluster
        raise


@app.command("scale")
def scale(
    ctx: typer.Context,
    name: NameArg,
    pool: Annotated[str, typer.Argument(metavar="POOL", help="The pool's name.")],
    count: Annotated[int, typer.Argument(metavar="COUNT", min=0, help="The pool's new number of nodes.")],
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Set the number of nodes of a pool."""
    out = output_for(ctx, output)
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        cluster = find_cluster(api, name)
        target = find_pool(cluster, pool)
        operation = api.patch(f"{cluster_path(cluster)}pools/{target['id']}/", {"count": count})
        follow(
            out,
            api,
            operation,
            wait=wait,
            timeout=seconds,
            started=f"Scaling pool {pool} of {cluster['name']} to {count}",
            done=f"Pool {pool} of {cluster['name']} has {count} node{'s' if count != 1 else ''}.",
        )


@app.command("add-pool")
def add_pool(
    ctx: typer.Context,
    name: NameArg,
    pool: Annotated[str, typer.Option("--pool", metavar="SPEC", help=f"The new pool: {POOL_SYNTAX}.")],
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Add a node pool to a cluster."""
    out = output_for(ctx, output)
    spec = parse_pool(pool)
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        cluster = find_cluster(api, name)
        operation = api.post(f"{cluster_path(cluster)}pools/", spec)
        follow(
            out,
            api,
            operation,
            wait=wait,
            timeout=seconds,
            started=f"Adding pool {spec['name']} to {cluster['name']}",
            done=f"Pool {spec['name']} of {cluster['name']} is ready.",
        )


@app.command("remove-pool")
def remove_pool(
    ctx: typer.Context,
    name: NameArg,
    pool: Annotated[str, typer.Argument(metavar="POOL", help="The pool's name.")],
    yes: YesOption = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Remove a node pool and its nodes (asks first unless --yes)."""
    out = output_for(ctx, output)
    _refuse_without_yes(yes, "remove a pool")
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        cluster = find_cluster(api, name)
        target = find_pool(cluster, pool)
        confirm(
            f"Remove pool {pool} ({text_of(target.get('count'))} nodes) from cluster {cluster['name']}?",
            yes=yes,
        )
        operation = api.request_delete(f"{cluster_path(cluster)}pools/{target['id']}/")
        follow(
            out,
            api,
            operation,
            wait=wait,
            timeout=seconds,
            started=f"Removing pool {pool} from {cluster['name']}",
            done=f"Removed pool {pool} from {cluster['name']}.",
        )


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str, typer.Argument(metavar="VERSION", help="The Kubernetes version to move to.")],
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Move a cluster to another Kubernetes version (`flotilla providers catalogue` lists them)."""
    out = output_for(ctx, output)
    seconds = parse_timeout(timeout)
    wanted = version.strip()
    with clusters_client(ctx) as api:
        cluster = find_cluster(api, name)
        operation = api.post(f"{cluster_path(cluster)}upgrade/", {"version": wanted})
        follow(
            out,
            api,
            operation,
            wait=wait,
            timeout=seconds,
            started=f"Upgrading {cluster['name']} to {wanted}",
            done=f"Cluster {cluster['name']} runs Kubernetes {wanted}.",
        )


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: NameArg,
    yes: YesOption = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Delete a cluster and everything made for it (asks first unless --yes)."""
    out = output_for(ctx, output)
    _refuse_without_yes(yes, "delete a cluster")
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        cluster = find_cluster(api, name)
        confirm(
            f"Delete cluster {cluster['name']} ({nodes_cell(cluster)} nodes ready) and all its resources? "
            "This cannot be undone.",
            yes=yes,
        )
        operation = api.request_delete(cluster_path(cluster))
        follow(
            out,
            api,
            operation,
            wait=wait,
            timeout=seconds,
            started=f"Deleting cluster {cluster['name']}",
            done=f"Deleted cluster {cluster['name']}.",
        )


@app.command("nodes")
def nodes(ctx: typer.Context, name: NameArg, output: OutputOption = None) -> None:
    """List a cluster's nodes as last observed."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        items = api.get_list(f"{cluster_path(find_cluster(api, name))}nodes/")
    out.listing(NODE_COLUMNS, items, empty="No nodes.")


@app.command("events")
def events(ctx: typer.Context, name: NameArg, output: OutputOption = None) -> None:
    """The newest 100 lines of a cluster's timeline, newest first."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        items = api.get_list(f"{cluster_path(find_cluster(api, name))}events/")
    out.listing(EVENT_COLUMNS, items, empty="No events.")


@app.command("operations")
def operations(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help="Only this cluster's operations.")
    ] = None,
    active: Annotated[bool, typer.Option("--active", help="Only queued or running operations.")] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, help="At most this many, newest first; 0 for all.")
    ] = DEFAULT_OPERATIONS_LIMIT,
    output: OutputOption = None,
) -> None:
    """List operations (create, scale, upgrade, delete, ...), newest first."""
    out = output_for(ctx, output)
    params: dict[str, str | int] = {}
    if active:
        params["active"] = "true"
    with clusters_client(ctx) as api:
        if name is not None:
            params["cluster"] = find_cluster(api, name)["id"]
        listing = api.list_all(OPERATIONS_PATH, params, limit=limit or None)
    if out.is_json:
        out.json(listing.items)
        return
    out.table(OPERATION_COLUMNS, listing.items, empty="No active operations." if active else "No operations.")
    if listing.truncated:
        out.note(f"Showing the newest {len(listing.items)} of {listing.count}; use --limit N (0 for all).")


OperationArg = Annotated[str, typer.Argument(metavar="OPERATION_ID", help="The operation's id.")]


@app.command("wait")
def wait_command(
    ctx: typer.Context,
    ident: OperationArg,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Follow an operation until it ends (exit 0 when it succeeded, 9 when it failed or was cancelled)."""
    out = output_for(ctx, output)
    number = operation_id(ident)
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        operation = operation_call(api.get, number)
        follow(
            out,
            api,
            operation,
            wait=True,
            timeout=seconds,
            started="",
            done=f"{describe(operation).capitalize()} succeeded.",
        )


@app.command("cancel")
def cancel(ctx: typer.Context, ident: OperationArg, output: OutputOption = None) -> None:
    """Cancel an operation: a queued one at once, a running one after its current step."""
    out = output_for(ctx, output)
    number = operation_id(ident)
    with clusters_client(ctx) as api:
        operation = operation_call(lambda path: api.post(path, {}), number, "cancel/")
    if out.is_json:
        out.json(operation)
    elif operation.get("status") == "cancelled":
        out.result(f"Cancelled {describe(operation)}.")
    else:
        out.result(f"Cancelling {describe(operation)}: it stops after its current step.")


@app.command("retry")
def retry(
    ctx: typer.Context,
    ident: OperationArg,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Run a failed or cancelled operation again."""
    out = output_for(ctx, output)
    number = operation_id(ident)
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        operation = operation_call(lambda path: api.post(path, {}), number, "retry/")
        follow(
            out,
            api,
            operation,
            wait=wait,
            timeout=seconds,
            started=f"Retrying {describe(operation)}",
            done=f"{describe(operation).capitalize()} succeeded.",
        )
