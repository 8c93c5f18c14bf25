"""`flotilla providers ...`: the organisation's provider accounts, the kinds of provider, catalogues.

Credentials are write-only: the API never returns them, and this command never prints them.
A field's value comes from `--field KEY=VALUE` (`KEY=@FILE` reads a file), else from the
environment variable `FLOTILLA_PROVIDER_<KEY>`, else, for a required field on a terminal, from a
prompt (hidden for secrets).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cli.client import ApiClient, JsonObject
from cli.commands.clusters import clusters_client
from cli.errors import CliError, ExitCode, UsageError
from cli.output import Column, OutputOption, field, text_of, time_field, timestamp
from cli.runtime import CommandGroup, confirm, output_for, stdin_is_terminal

app = CommandGroup(
    help="Provider accounts (where clusters run): list, connect, rotate, remove; catalogues (and refresh)."
)

PROVIDERS_PATH = "clusters/providers/"
FIELD_ENV_PREFIX = "FLOTILLA_PROVIDER_"


def field_env(name: str) -> str:
    """The environment variable that can hold a field: `FLOTILLA_PROVIDER_<NAME>`."""
    return FIELD_ENV_PREFIX + name.upper().replace("-", "_")


def settings_cell(item: JsonObject) -> str:
    """`k=v,k2=v2` of the account's settings (never its credentials, which the API does not send)."""
    settings = item.get("settings") or {}
    if not isinstance(settings, dict) or not settings:
        return "-"
    return ",".join(f"{k}={text_of(v)}" for k, v in settings.items())


PROVIDER_COLUMNS = [
    field("name"),
    field("kind", no_wrap=True),
    field("cluster_count", "clusters", no_wrap=True),
    field("has_credentials", "credentials", no_wrap=True),
    time_field("validated_at", "validated"),
    time_field("created_at", "created"),
]


def fields_cell(kind: JsonObject) -> str:
    """The kind's fields: `name*` when required, `(secret)` when secret."""
    parts = []
    for spec in kind.get("fields") or []:
        if isinstance(spec, dict):
            text = str(spec.get("name")) + ("*" if spec.get("required") else "")
            parts.append(text + (" (secret)" if spec.get("secret") else ""))
    return ", ".join(parts) or "-"


KIND_COLUMNS = [
    field("kind", no_wrap=True),
    field("label"),
    field("provisions", no_wrap=True),
    Column("capabilities", lambda kind: ", ".join(str(c) for c in kind.get("capabilities") or []) or "-"),
    Column("fields (* required)", fields_cell),
]
REGION_COLUMNS = [field("id", no_wrap=True), field("name")]
SIZE_COLUMNS = [
    field("id", no_wrap=True),
    field("name"),
    field("cpus", no_wrap=True),
    Column("memory", lambda s: f"{text_of(s.get('memory_mb'))} MiB", no_wrap=True),
    Column(
        "price/h",
        lambda s: f"{s['price_hourly']:.4f}" if isinstance(s.get("price_hourly"), int | float) else "-",
        no_wrap=True,
    ),
]

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The provider account's name.")]
FieldOption = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        "-f",
        metavar="KEY=VALUE",
        help=f"A credential or setting (repeatable); KEY=@FILE reads the value from a file. "
        f"Missing fields come from {FIELD_ENV_PREFIX}<KEY> or a prompt.",
    ),
]


def find_provider(api: ApiClient, name: str) -> JsonObject:
    """The provider account with this name; exit 5 when there is none."""
    wanted = name.strip()
    for item in api.list_all(PROVIDERS_PATH).items:
        if item.get("name") == wanted:
            return item
    raise CliError(
        f"no provider account named {wanted!r}",
        ExitCode.NOT_FOUND,
        hint="`flotilla providers list` shows them",
    )


def provider_kinds(api: ApiClient) -> list[JsonObject]:
    """The kinds of provider the server knows, with their fields."""
    return api.get_list(f"{PROVIDERS_PATH}kinds/")


def find_kind(kinds: list[JsonObject], kind: str) -> JsonObject:
    """The description of one kind; a usage error naming the known ones otherwise."""
    for item in kinds:
        if item.get("kind") == kind:
            return item
    known = ", ".join(str(k.get("kind")) for k in kinds)
    raise UsageError(f"--kind: unknown kind {kind!r}; choose one of: {known}")


def collect_fields(kind: JsonObject, given: list[str]) -> dict[str, str]:
    """The fields to send: `--field` values, then the environment, then prompts for required ones."""
    declared = {str(f["name"]): f for f in kind.get("fields") or [] if isinstance(f, dict) and f.get("name")}
    values: dict[str, str] = {}
    typed_secrets: list[str] = []
    for item in given:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            # Never echo the argument: it may be a secret typed without its KEY=.
            raise UsageError("--field: expected KEY=VALUE (or KEY=@FILE)")
        if key in values:
            raise UsageError(f"--field {key}: given twice")
        if value.startswith("@"):
            values[key] = _read_field_file(key, value[1:])
        else:
            values[key] = value
            if declared.get(key, {}).get("secret"):
                typed_secrets.append(key)
    missing: list[str] = []
    for name, spec in declared.items():
        if name in values:
            continue
        from_env = os.environ.get(field_env(name))
        if from_env:
            values[name] = from_env
        elif spec.get("required"):
            if stdin_is_terminal() and not spec.get("multiline"):
                label = text_of(spec.get("label") or name)
                values[name] = typer.prompt(label, hide_input=bool(spec.get("secret")))
            else:
                missing.append(name)
    if missing:
        raise CliError(
            f"missing required field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}",
            ExitCode.USAGE,
            fields={
                name: [f"pass --field {name}=VALUE (or {name}=@FILE), or set {field_env(name)}"]
                for name in missing
            },
        )
    if typed_secrets:
        typer.echo(
            f"{typer.style('warning:', fg='yellow', bold=True)} secret field"
            f"{'s' if len(typed_secrets) > 1 else ''} {', '.join(typed_secrets)} given on the command "
            "line can be seen in the process list and shell history; prefer KEY=@FILE, "
            f"{FIELD_ENV_PREFIX}<KEY> or the prompt",
            err=True,
        )
    return values


def _read_field_file(key: str, source: str) -> str:
    path = Path(source).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"--field {key}: cannot read {path}: {reason}") from exc
    # A file of one line (a token) keeps no trailing newline; a multi-line one (a JSON key) is kept whole.
    return text.rstrip("\r\n") if text.count("\n") <= 1 else text


@app.command("list")
def list_providers(ctx: typer.Context, output: OutputOption = None) -> None:
    """List the organisation's provider accounts."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        items = api.list_all(PROVIDERS_PATH).items
    out.listing(PROVIDER_COLUMNS, items, empty="No provider accounts.")


@app.command("get")
def get(ctx: typer.Context, name: NameArg, output: OutputOption = None) -> None:
    """Show a provider account (its settings; credentials are never shown)."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        account = api.get(f"{PROVIDERS_PATH}{find_provider(api, name)['id']}/")
    if out.is_json:
        out.json(account)
        return
    out.record(
        [
            ("Name", text_of(account.get("name"))),
            ("Id", text_of(account.get("id"))),
            ("Kind", text_of(account.get("kind"))),
            ("Settings", settings_cell(account)),
            ("Credentials", "stored" if account.get("has_credentials") else "none"),
            ("Validated", timestamp(account.get("validated_at"))),
            ("Clusters", text_of(account.get("cluster_count"))),
            ("Created", timestamp(account.get("created_at"))),
        ]
    )


@app.command("kinds")
def kinds(ctx: typer.Context, output: OutputOption = None) -> None:
    """The kinds of provider and the fields each needs."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        items = provider_kinds(api)
    out.listing(KIND_COLUMNS, items, empty="No kinds of provider.")


@app.command("catalogue")
def catalogue(
    ctx: typer.Context,
    name: NameArg,
    region: Annotated[
        str | None, typer.Option("--region", help="The region whose sizes to list (default: the first).")
    ] = None,
    output: OutputOption = None,
) -> None:
    """What a provider offers: regions, machine sizes of a region, Kubernetes versions."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        account = find_provider(api, name)
        offer = api.get(f"{PROVIDERS_PATH}{account['id']}/catalogue/", {"region": region} if region else None)
    if out.is_json:
        out.json(offer)
        return
    regions = [r for r in offer.get("regions") or [] if isinstance(r, dict)]
    sizes = [s for s in offer.get("sizes") or [] if isinstance(s, dict)]
    versions = [str(v) for v in offer.get("versions") or []]
    shown_region = region or (str(regions[0].get("id")) if regions else "-")
    out.result("Regions:")
    out.table(REGION_COLUMNS, regions, empty="No regions.")
    out.result("")
    out.result(f"Sizes in {shown_region}:")
    out.table(SIZE_COLUMNS, sizes, empty="No sizes.")
    out.result("")
    out.result(f"Kubernetes versions: {', '.join(versions) or '-'}")


@app.command("refresh")
def refresh(ctx: typer.Context, name: NameArg, output: OutputOption = None) -> None:
    """Read a provider's catalogue again now (the server keeps it a few minutes between reads)."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        account = find_provider(api, name)
        offer = api.post(f"{PROVIDERS_PATH}{account['id']}/refresh-catalogue/", {})
    if out.is_json:
        out.json(offer)
        return
    regions = len(offer.get("regions") or [])
    versions = len(offer.get("versions") or [])
    out.result(f"Read the catalogue of {account['name']} again: {regions} region(s), {versions} version(s).")


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    kind: Annotated[
        str, typer.Option("--kind", help="The kind of provider (see `flotilla providers kinds`).")
    ],
    fields: FieldOption = None,
    output: OutputOption = None,
) -> None:
    """Connect a provider account; the server checks its credentials before saving anything."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        spec = find_kind(provider_kinds(api), kind.strip())
        values = collect_fields(spec, fields or [])
        account = api.post(PROVIDERS_PATH, {"name": name.strip(), "kind": kind.strip(), "fields": values})
    if out.is_json:
        out.json(account)
    else:
        out.result(
            f"Connected provider account {text_of(account.get('name'))} ({text_of(account.get('kind'))})."
        )


@app.command("update")
def update(
    ctx: typer.Context,
    name: NameArg,
    fields: FieldOption = None,
    output: OutputOption = None,
) -> None:
    """Replace a provider account's credentials (rotation); they are checked before being saved."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        account = find_provider(api, name)
        spec = find_kind(provider_kinds(api), str(account.get("kind")))
        values = collect_fields(spec, fields or [])
        updated = api.patch(f"{PROVIDERS_PATH}{account['id']}/", {"fields": values})
    if out.is_json:
        out.json(updated)
    else:
        out.result(f"Updated the credentials of provider account {text_of(updated.get('name'))}.")


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    output: OutputOption = None,
) -> None:
    """Remove a provider account and its stored credentials (asks first unless --yes)."""
    out = output_for(ctx, output)
    if not yes and not stdin_is_terminal():
        raise UsageError(
            "refusing to remove a provider account without confirmation", hint="pass --yes to confirm"
        )
    with clusters_client(ctx) as api:
        account = find_provider(api, name)
        confirm(f"Remove provider account {account['name']} ({text_of(account.get('kind'))})?", yes=yes)
        api.delete(f"{PROVIDERS_PATH}{account['id']}/")
    if not out.is_json:
        out.result(f"Removed provider account {account['name']}.")
