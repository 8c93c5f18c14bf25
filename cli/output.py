"""How results reach the user: rich tables for people, the API's JSON for scripts.

Rules every command follows:
- stdout carries the result only (a table, a record, JSON, or the one value worth capturing
  such as a new token's secret); notes, warnings and errors go to stderr;
- `--output json` prints the API's JSON unchanged (a list command prints one JSON array of every
  item across pages); nothing else is written to stdout in that mode;
- on a terminal tables are boxed and sized to it; elsewhere they are plain, never wrapped, with
  no trailing spaces and no colour, so that `grep` and `awk` can read them.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.errors import CliError

NON_TTY_WIDTH = 10_000
MISSING = "-"


class OutputFormat(StrEnum):
    """The values of `-o/--output`."""

    table = "table"
    json = "json"


OutputOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="table (default) or json; overrides the global -o.",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class Column:
    """One table column: a header and how to get the cell's text from an item."""

    header: str
    value: Callable[[dict[str, Any]], str]
    no_wrap: bool = False


def field(name: str, header: str | None = None, *, no_wrap: bool = False) -> Column:
    """A column showing `item[name]` as text."""
    return Column(header or name.replace("_", " "), lambda item: text_of(item.get(name)), no_wrap)


def time_field(name: str, header: str | None = None) -> Column:
    """A column showing the timestamp `item[name]` in UTC."""
    return Column(header or name.replace("_", " "), lambda item: timestamp(item.get(name)), True)


def text_of(value: Any) -> str:
    """A cell's text: `-` for null or empty, JSON for structures."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def timestamp(value: Any) -> str:
    """An ISO 8601 timestamp from the API shown as `YYYY-MM-DD HH:MM:SSZ` (UTC)."""
    if not isinstance(value, str) or not value:
        return MISSING
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return value
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class Output:
    """The output of one invocation, in the format the user chose."""

    def __init__(self, fmt: OutputFormat = OutputFormat.table) -> None:
        self.format = fmt

    @property
    def is_json(self) -> bool:
        """True in `--output json` mode."""
        return self.format is OutputFormat.json

    def json(self, data: Any) -> None:
        """Print JSON to stdout (stable: two-space indent, keys in the API's order)."""
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))

    def listing(self, columns: Sequence[Column], items: Sequence[dict[str, Any]], *, empty: str) -> None:
        """A list result: the items as JSON, or as a table."""
        if self.is_json:
            self.json(list(items))
        else:
            self.table(columns, items, empty=empty)

    def table(self, columns: Sequence[Column], items: Sequence[dict[str, Any]], *, empty: str) -> None:
        """Print items as a table (stdout), or `empty` (stderr) when there are none."""
        if not items:
            self.note(empty)
            return
        terminal = _stdout_is_terminal()
        table = Table(
            box=box.SIMPLE_HEAD if terminal else None,
            show_edge=False,
            pad_edge=False,
            header_style="bold" if terminal else "",
        )
        for column in columns:
            table.add_column(column.header.upper(), no_wrap=column.no_wrap or not terminal, overflow="fold")
        for item in items:
            table.add_row(*(Text(column.value(item)) for column in columns))
        _print_rich(table, terminal)

    def record(self, rows: Sequence[tuple[str, str]]) -> None:
        """Print one object as aligned `label  value` lines (stdout)."""
        terminal = _stdout_is_terminal()
        table = Table(box=None, show_header=False, show_edge=False, pad_edge=False)
        table.add_column(style="bold" if terminal else "", no_wrap=True)
        table.add_column(overflow="fold", no_wrap=not terminal)
        for label, value in rows:
            table.add_row(Text(f"{label}:"), Text(value))
        _print_rich(table, terminal)

    def result(self, text: str) -> None:
        """Print one line of result to stdout, exactly as given (no markup)."""
        typer.echo(text)

    def note(self, text: str) -> None:
        """Print a message for people to stderr."""
        typer.echo(text, err=True)

    def warn(self, text: str) -> None:
        """Print `warning: text` to stderr."""
        typer.echo(f"{typer.style('warning:', fg='yellow', bold=True)} {text}", err=True)


def print_error(error: CliError) -> None:
    """`error: <message>`, then one `  field: reason` line per other field error, then the hint (stderr)."""
    typer.echo(f"{typer.style('error:', fg='red', bold=True)} {error.message}", err=True)
    for name, reasons in error.fields.items():
        for reason in reasons:
            if f"{name}: {reason}" != error.message:  # the message already says it
                typer.echo(f"  {name}: {reason}", err=True)
    if error.hint:
        typer.echo(f"hint: {error.hint}", err=True)


def _stdout_is_terminal() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def _print_rich(renderable: Table, terminal: bool) -> None:
    if terminal:
        Console(file=sys.stdout, highlight=False, soft_wrap=False).print(renderable)
        return
    buffer = io.StringIO()
    Console(file=buffer, width=NON_TTY_WIDTH, color_system=None, highlight=False, force_terminal=False).print(
        renderable
    )
    for line in buffer.getvalue().splitlines():
        typer.echo(line.rstrip())
