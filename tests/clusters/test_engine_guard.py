"""Only the engine moves an operation's status: no other product module writes it directly."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["clusters", "orgs", "networking", "snapshots", "observability", "config"]


def _writes_operation_status(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        # Operation.objects....update(status=...)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update":
            receiver = ast.unparse(node.func.value)
            if "Operation" in receiver and any(k.arg == "status" for k in node.keywords):
                lines.append(node.lineno)
        # operation.status = ... / op.status = ...
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "status":
                    owner = ast.unparse(target.value).lower()
                    if "operation" in owner or owner == "op":
                        lines.append(node.lineno)
    return sorted(lines)


def test_no_module_outside_the_engine_writes_an_operations_status() -> None:
    offenders = []
    for app in PRODUCT:
        for path in (ROOT / app).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if relative.parts[:2] == ("clusters", "engine") or "migrations" in relative.parts:
                continue
            for line in _writes_operation_status(ast.parse(path.read_text(), str(path))):
                offenders.append(f"{relative}:{line}")
    assert offenders == []


def test_the_scan_finds_a_direct_write() -> None:
    code = "Operation.objects.filter(pk=1).update(status='failed')\noperation.status = 'queued'\n"
    assert _writes_operation_status(ast.parse(code)) == [1, 2]
