"""Kubernetes versions: their order, and which upgrades Kubernetes (and k3s) allow.

One rule for every provider and every interface: an upgrade moves to a newer version at most one
minor version ahead, never back. Callers word the refusal for their audience (a field error in
the API and portal, a provider error in the reconcile loop).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class UpgradeProblem(StrEnum):
    SAME = "same"
    DOWNGRADE = "downgrade"
    SKIPS_A_MINOR = "skips a minor"


def version_key(version: str) -> tuple[int, ...]:
    """ "v1.36.1" -> (1, 36, 1), for comparing versions."""
    return tuple(int(part) for part in version.lstrip("v").split(".") if part.isdigit())


def next_minor(version: str) -> str:
    """ "1.34.2" -> "1.35": where an upgrade from `version` may go next."""
    major, minor = version_key(version)[:2]
    return f"{major}.{minor + 1}"


def upgrade_problem(current: str, target: str) -> UpgradeProblem | None:
    """Why moving from `current` to `target` is not an upgrade Kubernetes allows (None: it is)."""
    have, want = version_key(current), version_key(target)
    if want == have:
        return UpgradeProblem.SAME
    if want < have:
        return UpgradeProblem.DOWNGRADE
    if want[:1] != have[:1] or want[1:2] > tuple(n + 1 for n in have[1:2]):
        return UpgradeProblem.SKIPS_A_MINOR
    return None


def upgrade_targets(current: str, offered: Iterable[str]) -> list[str]:
    """The offered versions a cluster on `current` can be upgraded to."""
    return [version for version in offered if upgrade_problem(current, version) is None]
