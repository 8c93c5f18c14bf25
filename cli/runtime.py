"""What every command shares at run time: the invocation's state, the API client, the error guard.

Commands are registered on a `CommandGroup`, whose `command()` wraps each function in `guarded`,
so that no command can forget to turn a `CliError` into `error: ...` on stderr and its exit code.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx
import typer

from cli.client import ApiClient
from cli.config import Credentials, resolve_credentials
from cli.errors import CliError, ExitCode, UsageError
from cli.output import Output, OutputFormat, print_error

F = TypeVar("F", bound=Callable[..., Any])

TRACEBACK_ENV = "FLOTILLA_CLI_TRACEBACK"


@dataclass
class AppState:
    """Options of the root command, and the HTTP transport (None: the network; tests inject one)."""

    output: OutputFormat = OutputFormat.table
    transport: httpx.BaseTransport | None = None


def state_of(ctx: typer.Context) -> AppState:
    """The invocation's state, set by the root callback."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, AppState) else AppState()


def output_for(ctx: typer.Context, override: OutputFormat | None = None) -> Output:
    """The output of this command: its own `-o` when given, else the global one."""
    return Output(override or state_of(ctx).output)


def client_for(ctx: typer.Context, credentials: Credentials | None = None) -> ApiClient:
    """An API client for the credentials of this run (environment, then config file)."""
    creds = credentials or resolve_credentials()
    return ApiClient(creds.server, creds.token, transport=state_of(ctx).transport)


def stdin_is_terminal() -> bool:
    """True when a person can answer a prompt."""
    isatty = getattr(sys.stdin, "isatty", None)
    return bool(isatty and isatty())


def confirm(question: str, *, yes: bool) -> None:
    """Go on when `--yes` was given or the person says yes; refuse (exit 2) when nobody can answer."""
    if yes:
        return
    if not stdin_is_terminal():
        raise UsageError("confirmation needed but stdin is not a terminal", hint="pass --yes to confirm")
    if not typer.confirm(question, default=False):
        raise CliError("cancelled", ExitCode.UNEXPECTED)


def guarded(func: F) -> F:
    """Run a command so that errors end as a message on stderr and a documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            print_error(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            # `flotilla ... | head`: the reader has what it wanted. Stop quietly, as Unix tools do.
            _discard_stdout()
            raise typer.Exit(int(ExitCode.BROKEN_PIPE)) from None
        except Exception as exc:
            if os.environ.get(TRACEBACK_ENV):
                raise
            print_error(
                CliError(
                    f"unexpected {type(exc).__name__}: {exc}",
                    hint=f"set {TRACEBACK_ENV}=1 to see the traceback, and report it",
                )
            )
            raise typer.Exit(int(ExitCode.UNEXPECTED)) from None

    return cast(F, wrapper)


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # no real file descriptor (e.g. captured output)
    finally:
        os.close(devnull)


class CommandGroup(typer.Typer):
    """A Typer whose commands are all `guarded`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("add_completion", False)
        kwargs.setdefault("pretty_exceptions_enable", False)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """Register a command, wrapped in `guarded`."""
        register = super().command(*args, **kwargs)

        def decorator(func: F) -> F:
            register(guarded(func))
            return func

        return decorator
