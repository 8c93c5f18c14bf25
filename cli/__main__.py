"""`python -m cli` runs the `flotilla` command."""

from cli.main import run

run()
