"""Operations (the API's task status resources): naming, listing, and following them with `--wait`.

The operation is polled about once a second (`GET clusters/operations/{id}/`). On a terminal the
progress is a rich bar on stderr; elsewhere (CI logs, pipes) it is one plain line on stderr each
time the status, progress or step changes. Ctrl-C stops the waiting, never the operation.

Waiting adds three exit codes to those of `cli.errors.ExitCode` (documented in `cli.main` and
docs/cli.md): the operation failed or was cancelled, the wait timed out, the wait was interrupted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from cli.client import ApiClient, JsonObject
from cli.durations import parse_duration
from cli.errors import ApiError, CliError, ExitCode, UsageError
from cli.output import Column, Output, field, print_error, text_of, time_field

OPERATIONS_PATH = "clusters/operations/"
POLL_INTERVAL = 1.0
# A server restart or a blip of the network should not end a wait of many minutes.
MAX_POLL_FAILURES = 10
SUCCEEDED = "succeeded"
FINISHED_STATUSES = frozenset({"succeeded", "failed", "cancelled"})

# The clock and the pause of the poll loop; tests replace them to run without real waits.
_clock: Callable[[], float] = time.monotonic
_sleep: Callable[[float], None] = time.sleep


class WaitExit(IntEnum):
    """Exit codes of `--wait`, beyond those of `ExitCode`."""

    OPERATION_FAILED = 9
    TIMED_OUT = 10
    INTERRUPTED = 130


WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Follow the operation with a progress bar until it ends; exit 9 when it fails.",
    ),
]
TimeoutOption = Annotated[
    str | None,
    typer.Option(
        "--timeout",
        metavar="DURATION",
        help="With --wait: stop waiting after this long (seconds, or e.g. 90s, 10m, 1h); exit 10.",
        show_default=False,
    ),
]


OPERATION_COLUMNS = [
    field("id", no_wrap=True),
    field("cluster_name", "cluster"),
    field("kind", no_wrap=True),
    field("status", no_wrap=True),
    Column("progress", lambda o: f"{text_of(o.get('progress'))}%", no_wrap=True),
    field("step"),
    field("attempts", no_wrap=True),
    time_field("created_at", "created"),
    field("error"),
]


def operation_cell(operation: Any) -> str:
    """`scale 40%`, `create queued`, or `-`."""
    if not isinstance(operation, dict):
        return "-"
    kind = text_of(operation.get("kind"))
    if operation.get("status") == "running":
        return f"{kind} {text_of(operation.get('progress'))}%"
    return f"{kind} {text_of(operation.get('status'))}"


def operation_id(text: str) -> int:
    """An OPERATION_ID argument as a number."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()):
        raise UsageError(
            f"OPERATION_ID: {text!r} is not an operation id",
            hint="operation ids are numbers; `flotilla clusters operations` lists them",
        )
    return int(value)


def operation_call(call: Callable[[str], JsonObject], ident: int, action: str = "") -> JsonObject:
    """`call(path)` on operation `ident` (or on its `action`); exit 5 when there is no such operation."""
    try:
        return call(f"{OPERATIONS_PATH}{ident}/{action}")
    except ApiError as exc:
        if exc.status == 404:
            raise CliError(f"no operation with id {ident}", ExitCode.NOT_FOUND) from exc
        raise


def parse_timeout(text: str | None) -> float | None:
    """`--timeout` in seconds: a plain number of seconds, or a duration such as `10m`."""
    if text is None:
        return None
    value = text.strip()
    if value.isascii() and value.isdigit():
        if int(value) <= 0:
            raise UsageError("--timeout: the duration must be longer than zero")
        return float(int(value))
    return parse_duration(value, option="--timeout").total_seconds()


@dataclass(frozen=True)
class WaitResult:
    """How a wait ended: with the operation finished, or not (timed out, interrupted)."""

    operation: JsonObject
    timed_out: bool = False
    interrupted: bool = False

    @property
    def succeeded(self) -> bool:
        """True when the operation ended well."""
        return self.operation.get("status") == SUCCEEDED


def describe(operation: JsonObject) -> str:
    """`operation 12 (scale demo)`."""
    what = " ".join(text_of(part) for part in (operation.get("kind"), operation.get("cluster_name")) if part)
    return f"operation {text_of(operation.get('id'))}" + (f" ({what})" if what else "")


def is_finished(operation: JsonObject) -> bool:
    """True when the operation will not change any more (unless retried)."""
    return operation.get("status") in FINISHED_STATUSES


def wait_for_operation(api: ApiClient, operation: JsonObject, *, timeout: float | None) -> WaitResult:
    """Poll the operation until it is finished, `timeout` seconds pass, or Ctrl-C."""
    path = f"{OPERATIONS_PATH}{operation['id']}/"
    deadline = None if timeout is None else _clock() + timeout
    display = _display_for(operation)
    current = operation
    failures = 0
    try:
        display.update(current)
        while not is_finished(current):
            if deadline is not None and _clock() >= deadline:
                return WaitResult(current, timed_out=True)
            _sleep(POLL_INTERVAL)
            try:
                current = api.get(path)
            except CliError as exc:
                # Keep waiting through a restart of the server; give up on anything else at once.
                failures += 1
                if (
                    exc.exit_code not in (ExitCode.SERVER, ExitCode.RATE_LIMITED)
                    or failures > MAX_POLL_FAILURES
                ):
                    raise
                continue
            failures = 0
            display.update(current)
    except KeyboardInterrupt:
        return WaitResult(current, interrupted=True)
    finally:
        display.close()
    return WaitResult(current)


def conclude(result: WaitResult) -> None:
    """Return when the operation succeeded; otherwise say why on stderr and exit 9, 10 or 130."""
    operation = result.operation
    ident = text_of(operation.get("id"))
    if result.interrupted:
        typer.echo(
            f"Stopped waiting; {describe(operation)} goes on ({text_of(operation.get('status'))}).", err=True
        )
        typer.echo(
            f"hint: `flotilla clusters wait {ident}` follows it again; "
            f"`flotilla clusters cancel {ident}` cancels it",
            err=True,
        )
        raise typer.Exit(int(WaitExit.INTERRUPTED))
    if result.timed_out:
        print_error(
            CliError(
                f"timed out waiting for {describe(operation)}; it is still "
                f"{text_of(operation.get('status'))} (step: {text_of(operation.get('step'))})",
                hint=f"`flotilla clusters wait {ident}` follows it again; "
                f"`flotilla clusters cancel {ident}` cancels it",
            )
        )
        raise typer.Exit(int(WaitExit.TIMED_OUT))
    if result.succeeded:
        return
    status = text_of(operation.get("status"))
    reason = operation.get("error") or operation.get("step") or ""
    message = f"{describe(operation)} {'was cancelled' if status == 'cancelled' else status}"
    if reason:
        message += f": {reason}"
    print_error(
        CliError(
            message,
            hint=f"`flotilla clusters retry {ident} --wait` runs it again"
            if status in ("failed", "cancelled")
            else None,
        )
    )
    raise typer.Exit(int(WaitExit.OPERATION_FAILED))


def follow(
    out: Output,
    api: ApiClient,
    operation: JsonObject,
    *,
    wait: bool,
    timeout: float | None,
    started: str,
    done: str | Callable[[], str],
    body: Callable[[JsonObject], Any] | None = None,
) -> None:
    """Report an accepted operation, or with `--wait` follow it to its end.

    Unless the operation succeeds, a wait ends with exit code 9, 10 or 130. In JSON mode the output
    is `body(operation)` (the operation itself by default) with the operation as last seen, however
    the wait ended.
    """
    shape = body or (lambda op: op)
    if not wait:
        if out.is_json:
            out.json(shape(operation))
            return
        out.result(
            f"{started}: operation {text_of(operation.get('id'))} is {text_of(operation.get('status'))}."
        )
        if not is_finished(operation):
            out.note(
                f"Follow it with `flotilla clusters wait {text_of(operation.get('id'))}` (or use --wait)."
            )
        return
    result = wait_for_operation(api, operation, timeout=timeout)
    if out.is_json:
        out.json(shape(result.operation))
    conclude(result)
    if not out.is_json:
        out.result(done() if callable(done) else done)


# --- display ------------------------------------------------------------------------------------


class _Display:
    def update(self, operation: JsonObject) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Leave the terminal tidy."""


class _Lines(_Display):
    """One plain stderr line per change of status, progress or step (logs, pipes, CI)."""

    def __init__(self, operation: JsonObject) -> None:
        self._last: tuple[Any, Any, Any] | None = None
        self._name = describe(operation)

    def update(self, operation: JsonObject) -> None:
        state = (operation.get("status"), operation.get("progress"), operation.get("step"))
        if state == self._last:
            return
        self._last = state
        status, progress, step = state
        percent = f"{int(progress):3d}%" if isinstance(progress, int | float) else "   -"
        line = f"{self._name}: {percent} {text_of(status)}"
        if step:
            line += f" - {step}"
        typer.echo(line, err=True)


class _Bar(_Display):
    """A rich progress bar with the step's text, on stderr (a terminal)."""

    def __init__(self, operation: JsonObject) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[step]}"),
            console=Console(stderr=True, highlight=False),
        )
        self._task = self._progress.add_task(describe(operation), total=100, step="")
        self._progress.start()

    def update(self, operation: JsonObject) -> None:
        progress = operation.get("progress")
        step = text_of(operation.get("step")) if operation.get("step") else ""
        status = text_of(operation.get("status"))
        self._progress.update(
            self._task,
            completed=progress if isinstance(progress, int | float) else 0,
            step=f"{status}: {step}" if step else status,
        )

    def close(self) -> None:
        self._progress.stop()


def _display_for(operation: JsonObject) -> _Display:
    isatty = getattr(sys.stderr, "isatty", None)
    return _Bar(operation) if isatty and isatty() else _Lines(operation)
