"""Command groups of the `flotilla` CLI, one module each; `cli.main` assembles them."""
