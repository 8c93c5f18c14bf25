"""A command whose output's reader goes away (`flotilla ... | head`) stops quietly with 141.

Run as a real process with a real pipe: nothing else shows what the interpreter does at exit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
import typer
from cli.runtime import CommandGroup

app = CommandGroup()

@app.command("lines")
def lines() -> None:
    for n in range(200_000):
        typer.echo(f"line {n}")

@app.command("other")
def other() -> None:
    pass

app()
"""


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, "lines"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"line 0\n"
    process.stdout.close()  # the reader has what it wanted, like `head -1`

    stderr = process.stderr.read().decode()
    process.stderr.close()

    assert process.wait(timeout=60) == 141
    assert stderr == ""
