"""The `flotilla` command: a thin client of the Flotilla REST API (it imports no Django).

Run as `flotilla ...`, `python -m cli ...` or `python -m cli.main ...`.

Credentials come from `FLOTILLA_SERVER` / `FLOTILLA_TOKEN` when set, else from the file written
by `flotilla login` (see `cli.config`). Output is a table by default; `-o json` (globally, or
on any command) prints the API's JSON instead, lists as one array of every item across pages.

Exit codes (scripts can rely on them; also in docs/cli.md):

    0  success
    1  unexpected error (including a declined confirmation prompt)
    2  usage error or bad input, including the API's 400 (and 413/415)
    3  not authenticated: not logged in, or the API answered 401
    4  permission denied (403)
    5  not found (404)
    6  conflict (409), including an exceeded quota
    7  rate limited (429)
    8  server error (5xx), an unusable answer, or the server could not be reached in time
    9  `--wait`: the operation failed or was cancelled (its error is printed)
   10  `--wait --timeout`: the operation had not finished in time (it goes on)
  130  `--wait`: interrupted with Ctrl-C (the operation goes on; it is not cancelled)
  141  the output's reader went away (e.g. `flotilla clusters list | head -1`); nothing more is printed

For a 4xx the API's error code decides when it names one of these cases (`not_authenticated`
is 3 even when sent with 403); command-line mistakes caught by the parser also exit 2.

Errors are printed to stderr as `error: <message>`, then one `  <field>: <reason>` line per
field error, then possibly a `hint: ...` line; never a traceback (set FLOTILLA_CLI_TRACEBACK=1
to get one for a bug report).
"""

from __future__ import annotations

from typing import Annotated

import httpx
import typer

from cli import __version__
from cli.commands import (
    apps,
    audit,
    auth,
    clusters,
    kubeconfig,
    members,
    orgs,
    providers,
    restore,
    snapshots,
    storage,
    tokens,
)
from cli.output import OutputFormat
from cli.runtime import AppState, CommandGroup

HELP = (
    "Flotilla from the terminal: clusters, apps, providers, kubeconfigs, snapshots and restores, "
    "members, tokens and the audit log."
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"flotilla-cli {__version__}")
        raise typer.Exit()


def build_app(*, transport: httpx.BaseTransport | None = None) -> CommandGroup:
    """The `flotilla` app; `transport` replaces the network (tests pass an `httpx.MockTransport`)."""
    app = CommandGroup(name="flotilla", help=HELP)

    @app.callback()
    def root(
        ctx: typer.Context,
        output: Annotated[
            OutputFormat,
            typer.Option(
                "--output",
                "-o",
                case_sensitive=False,
                envvar="FLOTILLA_OUTPUT",
                help="table for people, json for scripts.",
            ),
        ] = OutputFormat.table,
        version: Annotated[
            bool,
            typer.Option(
                "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
            ),
        ] = False,
    ) -> None:
        ctx.obj = AppState(output=output, transport=transport)

    auth.register(app)
    app.add_typer(orgs.app, name="orgs")
    app.add_typer(members.app, name="members")
    app.add_typer(tokens.app, name="tokens")
    audit.register(app)
    app.add_typer(providers.app, name="providers")
    app.add_typer(clusters.app, name="clusters")
    app.add_typer(apps.app, name="apps")
    kubeconfig.register(app)
    app.add_typer(snapshots.app, name="snapshots")
    restore.register(app)
    app.add_typer(restore.app, name="restores")
    app.add_typer(storage.app, name="storage")
    return app


app = build_app()


def run() -> None:
    """Entry point for `python -m cli` and `python -m cli.main`."""
    app(prog_name="flotilla")


if __name__ == "__main__":
    run()
