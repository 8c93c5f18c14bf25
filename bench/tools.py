"""Load-generation tools the benchmarks use, built once from Go modules and cached.

vegeta is an open-loop HTTP load generator: it sends requests at a fixed rate whatever the
server's latency, so a slow server cannot slow the offered load down (as a closed loop of
clients would) and the measured latency is the server's, queueing included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"


def cache_dir() -> Path:
    """The project's binary cache (FLOTILLA_CACHE_DIR, as for the Kubernetes binaries)."""
    explicit = os.environ.get("FLOTILLA_CACHE_DIR")
    base = (
        Path(explicit)
        if explicit
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flotilla"
    )
    return base.expanduser()


def vegeta() -> Path:
    """The vegeta binary, built with the Go toolchain the first time (about a minute)."""
    target = cache_dir() / "tools" / "vegeta" / VEGETA_VERSION
    binary = target / "vegeta"
    if binary.exists():
        return binary
    go = shutil.which("go") or "/usr/local/go/bin/go"
    target.mkdir(parents=True, exist_ok=True)
    print(f"Building vegeta {VEGETA_VERSION} from Go modules into {target} (once)", flush=True)
    subprocess.run(
        [go, "install", "-trimpath", "-ldflags", "-s -w", f"{VEGETA_MODULE}@{VEGETA_VERSION}"],
        env={**os.environ, "GOBIN": str(target), "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"},
        check=True,
    )
    built = target / "v12"
    if built.exists() and not binary.exists():
        built.rename(binary)
    return binary
