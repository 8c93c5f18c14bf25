"""`flotilla orgs ...`: the organisation the token belongs to."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.config import Credentials, resolve_credentials
from cli.output import OutputOption, text_of, timestamp
from cli.runtime import CommandGroup, client_for, output_for

app = CommandGroup(help="The current organisation (the one your token belongs to).")

CURRENT_PATH = "orgs/current/"


def org_rows(org: dict[str, Any], credentials: Credentials | None = None) -> list[tuple[str, str]]:
    """The labelled lines describing an organisation (and, when given, the credentials used)."""
    rows = [
        ("Organisation", text_of(org.get("name"))),
        ("Slug", text_of(org.get("slug"))),
        ("Your role", text_of(org.get("role"))),
        ("Created", timestamp(org.get("created_at"))),
        ("Max clusters", text_of(org.get("max_clusters"))),
        ("Max nodes", text_of(org.get("max_nodes"))),
    ]
    if credentials is not None:
        rows += [("Server", credentials.server), ("Token", credentials.token_prefix)]
    return rows


@app.command("current")
def current(ctx: typer.Context, output: OutputOption = None) -> None:
    """Show the current organisation, your role in it, and which server and token are used."""
    out = output_for(ctx, output)
    credentials = resolve_credentials()
    with client_for(ctx, credentials) as api:
        org = api.get(CURRENT_PATH)
    if out.is_json:
        out.json(org)
    else:
        out.record(org_rows(org, credentials))


@app.command("rename")
def rename(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new display name.")],
    output: OutputOption = None,
) -> None:
    """Rename the current organisation (admins and owners); its slug does not change."""
    out = output_for(ctx, output)
    with client_for(ctx) as api:
        org = api.patch(CURRENT_PATH, {"name": name})
    if out.is_json:
        out.json(org)
    else:
        out.result(f"Renamed organisation {text_of(org.get('slug'))} to {text_of(org.get('name'))!r}.")
