"""`flotilla tokens ...`: API tokens of the organisation (the secret is shown once, at creation)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.choices import Role
from cli.config import resolve_credentials
from cli.durations import expiry, isoformat_z
from cli.errors import ApiError, CliError, ExitCode, UsageError
from cli.output import Column, OutputOption, field, text_of, time_field, timestamp
from cli.runtime import CommandGroup, client_for, output_for

app = CommandGroup(help="API tokens: list, create (the secret is shown once), revoke.")

TOKENS_PATH = "orgs/tokens/"


def token_status(item: dict[str, Any]) -> str:
    """active, revoked or expired."""
    if item.get("revoked_at"):
        return "revoked"
    if item.get("active") is False:
        return "expired"
    return "active"


TOKEN_COLUMNS = [
    field("id", no_wrap=True),
    field("name"),
    field("prefix", no_wrap=True),
    field("role", no_wrap=True),
    field("owner"),
    time_field("created_at", "created"),
    time_field("expires_at", "expires"),
    time_field("last_used_at", "last used"),
    Column("status", token_status, no_wrap=True),
]


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    active: Annotated[
        bool, typer.Option("--active/--all", help="Only tokens not revoked, or all of them (the default).")
    ] = False,
    output: OutputOption = None,
) -> None:
    """List the organisation's tokens, revoked ones included unless --active."""
    out = output_for(ctx, output)
    with client_for(ctx) as api:
        tokens = api.list_all(TOKENS_PATH, {"active": "true"} if active else None).items
    out.listing(TOKEN_COLUMNS, tokens, empty="No active tokens." if active else "No tokens.")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name saying what the token is for, e.g. ci-deploy.")],
    role: Annotated[
        Role, typer.Option("--role", case_sensitive=False, help="The token's role (at most your own).")
    ] = Role.viewer,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires", metavar="WHEN", help="Expiry, e.g. 2026-12-31T00:00:00Z or 2026-12-31 (UTC)."
        ),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option("--expires-in", metavar="DURATION", help="Expiry from now, e.g. 12h, 30d, 2w."),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Create a token and print its secret: it is shown this once and can never be read again."""
    out = output_for(ctx, output)
    if not name.strip():
        raise UsageError("NAME: the name is empty")
    body: dict[str, Any] = {"name": name.strip(), "role": role.value}
    expires_at = expiry(expires, expires_in)
    if expires_at is not None:
        body["expires_at"] = isoformat_z(expires_at)
    with client_for(ctx) as api:
        created = api.post(TOKENS_PATH, body)
    if out.is_json:
        out.json(created)
        return
    secret = created.get("token")
    if not isinstance(secret, str) or not secret:
        raise CliError("the server created the token but sent no secret", ExitCode.SERVER)
    expiry_text = timestamp(created.get("expires_at")) if created.get("expires_at") else "never"
    out.note(
        f"Created token {text_of(created.get('name'))} (id {text_of(created.get('id'))}, "
        f"role {text_of(created.get('role'))}, expires {expiry_text})."
    )
    out.result(secret)
    out.warn("this secret is shown only once and cannot be retrieved later; store it now")


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[
        str, typer.Argument(metavar="ID", help="The token's id (see `flotilla tokens list`).")
    ],
    output: OutputOption = None,
) -> None:
    """Revoke a token: it stops working at once."""
    out = output_for(ctx, output)
    if not (token_id.strip().isascii() and token_id.strip().isdigit()):
        raise UsageError(f"ID: {token_id!r} is not a token id (a number; see `flotilla tokens list`)")
    path = f"{TOKENS_PATH}{int(token_id)}/"
    credentials = resolve_credentials()
    with client_for(ctx, credentials) as api:
        try:
            token = api.get(path)
        except ApiError as exc:
            if exc.status == 404:
                raise CliError(f"no token with id {int(token_id)}", ExitCode.NOT_FOUND) from exc
            raise
        api.delete(path)
    if not out.is_json:
        out.result(
            f"Revoked token {int(token_id)} ({text_of(token.get('name'))}, {text_of(token.get('prefix'))})."
        )
    if token.get("prefix") and token.get("prefix") == credentials.token_prefix:
        out.warn("that was the token this CLI is using; log in again with another one")
