"""The `flotilla` command: a thin HTTP client of the Flotilla REST API (it imports no Django)."""

from __future__ import annotations

from importlib import metadata


def _version() -> str:
    try:
        return metadata.version("flotilla-cli")
    except metadata.PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


__version__ = _version()
