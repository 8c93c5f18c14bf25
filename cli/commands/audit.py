"""`flotilla audit`: the organisation's audit log, newest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.output import Column, OutputOption, field, time_field
from cli.runtime import CommandGroup, client_for, output_for

AUDIT_PATH = "orgs/audit/"
DEFAULT_LIMIT = 100


def audit_object(item: dict[str, Any]) -> str:
    """`type:id name`, as much of it as the entry has."""
    kind, ident, label = item.get("object_type"), item.get("object_id"), item.get("object_repr")
    head = ":".join(str(part) for part in (kind, ident) if part not in (None, ""))
    return " ".join(part for part in (head, str(label) if label not in (None, "") else "") if part) or "-"


AUDIT_COLUMNS = [
    time_field("created_at", "time"),
    field("actor"),
    field("source", no_wrap=True),
    field("action", no_wrap=True),
    Column("object", audit_object),
    field("ip", no_wrap=True),
]


def audit(
    ctx: typer.Context,
    action: Annotated[
        str | None, typer.Option("--action", metavar="PREFIX", help="Only actions starting so, e.g. member.")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", metavar="EMAIL", help="Only this actor's actions.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=0, help="At most this many entries, newest first; 0 for all.")
    ] = DEFAULT_LIMIT,
    output: OutputOption = None,
) -> None:
    """Show the audit log of the organisation (admins and owners), newest first."""
    out = output_for(ctx, output)
    params: dict[str, str | int] = {}
    if action:
        params["action"] = action
    if actor:
        params["actor"] = actor
    with client_for(ctx) as api:
        listing = api.list_all(AUDIT_PATH, params, limit=limit or None)
    if out.is_json:
        out.json(listing.items)
        return
    out.table(AUDIT_COLUMNS, listing.items, empty="No audit entries.")
    if listing.truncated:
        out.note(
            f"Showing the newest {len(listing.items)} of {listing.count} entries; use --limit N (0 for all)."
        )


def register(app: CommandGroup) -> None:
    """Add `flotilla audit` to the root app."""
    app.command("audit")(audit)
