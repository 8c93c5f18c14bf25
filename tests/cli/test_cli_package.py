"""`flotilla-cli` is its own distribution: it declares what cli/ imports and installs without Django.

No Django here: runs in the Django-free unit run too (`pytest tests/cli -p no:django --noconftest`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.cli.standalone import ROOT, clean_env, standalone_cli

# Import name -> distribution name, where they differ.
DISTRIBUTION_OF = {"yaml": "pyyaml"}


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {name.split(".")[0] for name in names}
    return {DISTRIBUTION_OF.get(n, n) for n in found if n != "cli" and n not in sys.stdlib_module_names}


def _declared(pyproject: Path) -> set[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {dep.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower() for dep in deps}


def test_the_cli_declares_exactly_what_it_imports() -> None:
    assert (
        _declared(ROOT / "cli" / "pyproject.toml")
        == _third_party_imports()
        == {"typer", "httpx", "rich", "pyyaml"}
    )


def test_the_server_gets_its_command_only_from_the_cli_distribution() -> None:
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "flotilla-cli" in _declared(ROOT / "pyproject.toml")
    assert "scripts" not in server["project"]
    assert not any(p.startswith("cli") for p in server["tool"]["setuptools"]["packages"]["find"]["include"])
    cli = tomllib.loads((ROOT / "cli" / "pyproject.toml").read_text())
    assert cli["project"]["scripts"] == {"flotilla": "cli.main:app"}
    assert cli["project"]["version"] == next(
        d.split("==")[1] for d in server["project"]["dependencies"] if d.startswith("flotilla-cli")
    )


@pytest.mark.timeout(600)
def test_pip_install_of_cli_alone_gives_a_working_command(tmp_path_factory: pytest.TempPathFactory) -> None:
    bin_dir = standalone_cli(tmp_path_factory.mktemp("standalone-cli"))
    env = clean_env()
    no_django = subprocess.run([bin_dir / "python", "-c", "import django"], env=env, capture_output=True)
    assert no_django.returncode != 0 and b"No module named 'django'" in no_django.stderr
    for server_only in ("kubernetes", "libcloud", "psycopg", "daphne", "clusters", "orgs"):
        probe = subprocess.run([bin_dir / "python", "-c", f"import {server_only}"], env=env, cwd=bin_dir)
        assert probe.returncode != 0, f"{server_only} is importable next to the CLI alone"

    helped = subprocess.run(
        [bin_dir / "flotilla", "--help"], env=env, cwd=bin_dir, capture_output=True, text=True
    )
    assert helped.returncode == 0, helped.stderr
    assert "clusters" in helped.stdout and "kubeconfig" in helped.stdout
    version = subprocess.run(
        [bin_dir / "flotilla", "--version"], env=env, cwd=bin_dir, capture_output=True, text=True
    )
    assert version.stdout.strip() == "flotilla-cli 0.1.0"
    # The installed copy, not the checkout, answered.
    where = subprocess.run(
        [bin_dir / "python", "-c", "import cli; print(cli.__file__)"],
        env=env,
        cwd=bin_dir,
        capture_output=True,
        text=True,
    )
    assert "site-packages" in where.stdout and str(ROOT) not in where.stdout
