"""Every call to a cluster goes through the gateway: no product module outside it imports the
kubernetes client (an import scan of the source tree; tests/ and bench/ may use the client)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = (ROOT / "clusters" / "kube", ROOT / "clusters" / "kube_transport.py")
NOT_PRODUCT = {"tests", "bench", ".venv", "node_modules", "build", "dist"}


def _product_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in NOT_PRODUCT or relative.parts[0].startswith("."):
            continue
        if any(path == g or g in path.parents for g in GATEWAY):
            continue
        files.append(path)
    return files


def kubernetes_imports(source: str) -> list[int]:
    """Lines of a module that import the kubernetes client (any form of import)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names = [str(node.args[0].value)]
        else:
            continue
        if any(name == "kubernetes" or name.startswith("kubernetes.") for name in names):
            found.append(node.lineno)
    return found


def test_the_scan_sees_every_form_of_import() -> None:
    assert kubernetes_imports("import kubernetes") == [1]
    assert kubernetes_imports("x = 1\nfrom kubernetes.client import CoreV1Api") == [2]
    assert kubernetes_imports("def f():\n    import kubernetes.watch as w") == [2]
    assert kubernetes_imports("importlib.import_module('kubernetes.client')") == [1]
    assert kubernetes_imports("import kubernetes_asyncio_not_ours\nfrom . import kubernetes") == []


def test_no_product_code_outside_the_gateway_imports_kubernetes() -> None:
    files = _product_files()
    assert any(p.parts[-2:] == ("local", "runtime.py") for p in files)  # the scan reaches the apps
    offenders = [
        f"{path.relative_to(ROOT)}:{line}" for path in files for line in kubernetes_imports(path.read_text())
    ]
    assert offenders == []
