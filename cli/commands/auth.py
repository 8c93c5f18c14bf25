"""`flotilla login`, `logout` and `whoami`: saving and checking the credentials."""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Annotated
from urllib.parse import urlsplit

import typer

from cli.client import ApiClient
from cli.commands.orgs import CURRENT_PATH, current
from cli.config import (
    SERVER_ENV,
    TOKEN_ENV,
    StoredLogin,
    check_token,
    config_path,
    delete_login,
    normalize_server,
    write_login,
)
from cli.errors import UsageError
from cli.output import Output, OutputOption, text_of
from cli.runtime import CommandGroup, output_for, state_of, stdin_is_terminal


def register(app: CommandGroup) -> None:
    """Add the top-level authentication commands to the root app."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)


def login(
    ctx: typer.Context,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", help=f"The Flotilla URL, e.g. https://flotilla.example.com [env: {SERVER_ENV}]"
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="An API token (flt_...); '-' reads it from stdin; omitted: prompt."),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Check a token against the server, then save server, token and org to the config file."""
    out = output_for(ctx, output)
    server = server or os.environ.get(SERVER_ENV)
    if not server:
        raise UsageError("--server is required", hint=f"pass --server URL or set {SERVER_ENV}")
    base = normalize_server(server)
    secret = _read_token(token)
    with ApiClient(base, secret, transport=state_of(ctx).transport) as api:
        org = api.get(CURRENT_PATH)
    slug = org.get("slug")
    path = write_login(StoredLogin(server=base, token=secret, org=slug if isinstance(slug, str) else None))
    if out.is_json:
        out.json(org)
    else:
        out.result(
            f"Logged in to {base}: organisation {text_of(org.get('name'))} ({text_of(slug)}), "
            f"role {text_of(org.get('role'))}."
        )
        out.note(f"Credentials saved to {path}.")
    _warn_if_cleartext(out, base)
    overriding = [name for name in (SERVER_ENV, TOKEN_ENV) if os.environ.get(name)]
    if overriding:
        out.warn(f"{' and '.join(overriding)} set in the environment take precedence over the saved login")


def logout(ctx: typer.Context, output: OutputOption = None) -> None:
    """Forget the saved login (the token itself stays valid; revoke it with `flotilla tokens revoke`)."""
    out = output_for(ctx, output)
    path = config_path()
    removed = delete_login()
    if not out.is_json:
        out.result(f"Logged out (removed {path})." if removed else "Not logged in; nothing to remove.")
    if os.environ.get(TOKEN_ENV):
        out.warn(f"{TOKEN_ENV} is still set in the environment and will be used")


def whoami(ctx: typer.Context, output: OutputOption = None) -> None:
    """Show the current organisation and your role (the same as `flotilla orgs current`)."""
    current(ctx, output)


def _read_token(option: str | None) -> str:
    if option == "-":
        return check_token(sys.stdin.readline(), source="--token - (stdin)")
    if option is not None:
        return check_token(option, source="--token")
    if not stdin_is_terminal():
        raise UsageError(
            "no token given and stdin is not a terminal to ask for one",
            hint="pass --token TOKEN, or --token - to read it from stdin",
        )
    return check_token(str(typer.prompt("API token", hide_input=True)), source="the prompt")


def _warn_if_cleartext(out: Output, server: str) -> None:
    parts = urlsplit(server)
    if parts.scheme != "http" or not parts.hostname:
        return
    host = parts.hostname
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost" or host.endswith(".localhost")
    if not loopback:
        out.warn(f"{server} is not https: the token will cross the network unencrypted")
