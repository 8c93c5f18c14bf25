"""A throwaway virtualenv with only the `flotilla-cli` distribution (./cli) and its declared deps.

Built once per test process (about 20 s, from pip's cache), from a copy of ./cli so that pip's
in-tree build leaves nothing in the checkout and never races another test run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_built: dict[str, Path] = {}


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the checkout on PYTHONPATH (it would hide what the venv lacks)."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE"}}
    env = {k: v for k, v in env.items() if not k.startswith("FLOTILLA_")}
    return {**env, **extra}


def standalone_cli(workdir: Path) -> Path:
    """The `bin/` directory of a venv holding `pip install ./cli` and nothing of the server."""
    if "bin" in _built:
        return _built["bin"]
    source = workdir / "flotilla-cli"
    shutil.copytree(ROOT / "cli", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    venv = workdir / "venv"
    # The venv's interpreter is the tests' own (3.11), without the project's site-packages.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    bin_dir = venv / "bin"
    # The project venv's pip installs into the new one (`--python`): no pip bootstrap per run.
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(bin_dir / "python"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    _built["bin"] = bin_dir
    return bin_dir
