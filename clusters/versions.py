"""Kubernetes versions: one value type, their order, and which upgrades Kubernetes (and k3s) allow.

`KubeVersion` is the one way a version string is read anywhere in Flotilla: "v1.31.4" and
"1.31.4" are the same version; `str()` is the plain form that Flotilla stores and shows
("1.31.4"), `.tag` the form of Kubernetes release tags and kubelets ("v1.31.4").

One rule for every provider and every interface: an upgrade moves to a newer version at most one
minor version ahead, never back. Callers word the refusal for their audience (a field error in
the API and portal, a provider error in the reconcile loop).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

# major.minor.patch, an optional "v"; what an API server or a distribution adds after the patch
# ("+k3s1", "-gke.100", "-eks-4a1b") is accepted by from_any and dropped: Flotilla compares the
# upstream release a distribution builds on.
_VERSION = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?P<suffix>[-+][0-9A-Za-z.+_-]*)?$")


class InvalidVersion(ValueError):
    """A string that is not a Kubernetes version (major.minor.patch, with or without a "v")."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"{text!r} is not a Kubernetes version: write it as 1.31.4 or v1.31.4.")


@dataclass(frozen=True, order=True)
class KubeVersion:
    """A Kubernetes release, compared by (major, minor, patch)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Self:
        """Exactly "1.31.4" or "v1.31.4" (surrounding spaces ignored); InvalidVersion otherwise."""
        match = _VERSION.match(text.strip()) if isinstance(text, str) else None
        if match is None or match["suffix"]:
            raise InvalidVersion(str(text))
        return cls(int(match[1]), int(match[2]), int(match[3]))

    @classmethod
    def from_any(cls, value: str | KubeVersion) -> KubeVersion:
        """A version as anything reports it, build and distribution suffixes dropped ("v1.31.4+k3s1")."""
        if isinstance(value, KubeVersion):
            return value
        match = _VERSION.match(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise InvalidVersion(str(value))
        return cls(int(match[1]), int(match[2]), int(match[3]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def tag(self) -> str:
        """The release tag form, "v1.31.4" (Go module versions, kubelet versions)."""
        return f"v{self}"

    @property
    def series(self) -> str:
        """The minor series, "1.31"."""
        return f"{self.major}.{self.minor}"

    def next_series(self) -> str:
        """The minor series an upgrade may move to next: "1.31.4" -> "1.32"."""
        return f"{self.major}.{self.minor + 1}"


def newest_first(offered: Iterable[str | KubeVersion]) -> list[str]:
    """Versions as plain strings, newest first (the order catalogues offer them in)."""
    return [str(v) for v in sorted({KubeVersion.from_any(v) for v in offered}, reverse=True)]


class UpgradeProblem(StrEnum):
    SAME = "same"
    DOWNGRADE = "downgrade"
    SKIPS_A_MINOR = "skips a minor"


def next_minor(version: str | KubeVersion) -> str:
    """ "1.34.2" -> "1.35": where an upgrade from `version` may go next."""
    return KubeVersion.from_any(version).next_series()


def upgrade_problem(current: str | KubeVersion, target: str | KubeVersion) -> UpgradeProblem | None:
    """Why moving from `current` to `target` is not an upgrade Kubernetes allows (None: it is)."""
    have, want = KubeVersion.from_any(current), KubeVersion.from_any(target)
    if want == have:
        return UpgradeProblem.SAME
    if want < have:
        return UpgradeProblem.DOWNGRADE
    if want.major != have.major or want.minor > have.minor + 1:
        return UpgradeProblem.SKIPS_A_MINOR
    return None


def upgrade_targets(current: str, offered: Iterable[str]) -> list[str]:
    """The offered versions a cluster on `current` can be upgraded to."""
    return [version for version in offered if upgrade_problem(current, version) is None]
