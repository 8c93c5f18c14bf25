"""The spec checks every provider shares (pure functions: no database, no cluster)."""

from __future__ import annotations

import pytest

from clusters.services.specs import check_upgrade
from orgs.exceptions import ValidationFailed


@pytest.mark.parametrize(
    ("current", "target"),
    [("1.35.4", "1.36.1"), ("1.36.0", "1.36.1"), ("v1.35.4", "1.36.0"), ("1.36.9", "1.36.10")],
)
def test_upgrades_kubernetes_allows(current: str, target: str) -> None:
    assert check_upgrade(current, target) == target


@pytest.mark.parametrize(
    ("current", "target", "reason"),
    [
        ("1.36.1", "1.35.4", "does not support downgrades"),
        ("1.36.1", "1.36.0", "does not support downgrades"),
        ("1.36.1", "1.36.1", "already runs"),
        ("1.34.2", "1.36.1", "one minor version at a time: from 1.34.2, move to 1.35 first"),
        ("1.36.1", "2.0.0", "one minor version at a time"),
    ],
)
def test_upgrades_kubernetes_refuses(current: str, target: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_upgrade(current, target)
    assert reason in refused.value.fields["version"][0]
