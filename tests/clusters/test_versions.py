"""KubeVersion: the one reading of a Kubernetes version string, and the upgrade rules built on it."""

from __future__ import annotations

import pytest

from clusters import versions
from clusters.services import specs
from clusters.versions import InvalidVersion, KubeVersion
from orgs.exceptions import ValidationFailed


def test_with_or_without_v_is_the_same_version() -> None:
    assert KubeVersion.parse("v1.31.4") == KubeVersion.parse("1.31.4") == KubeVersion(1, 31, 4)
    assert KubeVersion.parse(" 1.31.4 ") == KubeVersion(1, 31, 4)
    version = KubeVersion.parse("v1.31.4")
    assert str(version) == "1.31.4"
    assert version.tag == "v1.31.4"
    assert (version.major, version.minor, version.patch) == (1, 31, 4)
    assert version.series == "1.31" and version.next_series() == "1.32"


def test_versions_compare_as_numbers_not_text() -> None:
    assert KubeVersion.parse("1.9.0") < KubeVersion.parse("1.10.0") < KubeVersion.parse("v1.10.1")
    assert KubeVersion.parse("2.0.0") > KubeVersion.parse("1.99.99")
    assert versions.newest_first(["1.9.0", "v1.36.1", "1.10.2", "1.36.1"]) == ["1.36.1", "1.10.2", "1.9.0"]


def test_from_any_reads_what_servers_and_distributions_report() -> None:
    assert KubeVersion.from_any("v1.31.4+k3s1") == KubeVersion(1, 31, 4)
    assert KubeVersion.from_any("v1.30.2-gke.1587003") == KubeVersion(1, 30, 2)
    assert KubeVersion.from_any("v1.29.8-eks-a737599") == KubeVersion(1, 29, 8)
    already = KubeVersion(1, 31, 4)
    assert KubeVersion.from_any(already) is already
    # parse is strict: a suffix is not a version someone may ask for.
    with pytest.raises(InvalidVersion):
        KubeVersion.parse("v1.31.4+k3s1")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v",
        "1.31",
        "1",
        "1.31.4.5",
        "vv1.31.4",
        "V1.31.4",
        "1.31.x",
        "01.31.4",
        "1..4",
        "latest",
        "-1.2.3",
    ],
)
def test_bad_strings_are_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidVersion) as caught:
        KubeVersion.parse(text)
    assert str(caught.value) == f"{text!r} is not a Kubernetes version: write it as 1.31.4 or v1.31.4."
    assert isinstance(caught.value, ValueError)
    with pytest.raises(InvalidVersion):
        KubeVersion.from_any(text)


def test_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidVersion):
        KubeVersion.parse(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidVersion):
        KubeVersion.from_any(131)  # type: ignore[arg-type]


def test_upgrade_rules_take_either_spelling() -> None:
    assert versions.upgrade_problem("v1.35.4", "1.35.4") == versions.UpgradeProblem.SAME
    assert versions.upgrade_problem("1.36.1", "v1.35.4") == versions.UpgradeProblem.DOWNGRADE
    assert versions.upgrade_problem("1.34.2", "1.36.1") == versions.UpgradeProblem.SKIPS_A_MINOR
    assert versions.upgrade_problem("1.36.1", "2.0.0") == versions.UpgradeProblem.SKIPS_A_MINOR
    assert versions.upgrade_problem("v1.35.4", "1.36.1") is None
    assert versions.upgrade_problem("1.35.4", "1.35.10") is None
    assert versions.next_minor("v1.34.2") == "1.35"
    assert versions.upgrade_targets("1.35.4", ["1.36.1", "1.35.4", "1.37.0", "1.35.9"]) == [
        "1.36.1",
        "1.35.9",
    ]


class _Offers:
    """A provider's catalogue of versions, as check_version reads it."""

    def __init__(self, *offered: str) -> None:
        self.offered = list(offered)

    def versions(self) -> list[str]:
        return self.offered


def test_a_requested_version_is_read_once_and_strictly() -> None:
    driver = _Offers("1.36.1", "1.35.4")
    assert specs.check_version(driver, "v1.36.1") == "1.36.1"  # type: ignore[arg-type]
    assert specs.check_version(driver, " 1.35.4") == "1.35.4"  # type: ignore[arg-type]
    assert specs.check_version(driver, "") == "1.36.1"  # type: ignore[arg-type]
    # Was accepted as 1.36.1 (lstrip("v") strips every leading v).
    with pytest.raises(ValidationFailed) as caught:
        specs.check_version(driver, "vv1.36.1")  # type: ignore[arg-type]
    assert caught.value.fields == {
        "version": [
            "'vv1.36.1' is not a Kubernetes version: write it as 1.31.4 or v1.31.4. "
            "Choose one of: 1.36.1, 1.35.4."
        ]
    }
    with pytest.raises(ValidationFailed, match=r"Choose one of: 1\.36\.1, 1\.35\.4"):
        specs.check_version(driver, "1.34.2")  # type: ignore[arg-type]
