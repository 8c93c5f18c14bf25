"""ownerReferences re-linked to the restored owners, never left dangling."""

from __future__ import annotations

import copy
from typing import Any

from snapshots.restore.owners import owner_uids, relink


def with_owners(*refs: tuple[str, str, str]) -> dict[str, Any]:
    """A ConfigMap owned by (kind, name, uid) references."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "namespace": "shop",
            "ownerReferences": [
                {
                    "apiVersion": "example.com/v1",
                    "kind": kind,
                    "name": name,
                    "uid": uid,
                    "controller": index == 0,
                }
                for index, (kind, name, uid) in enumerate(refs)
            ],
        },
    }


def test_owner_uids() -> None:
    assert owner_uids(with_owners(("Widget", "w", "u1"), ("Gadget", "g", "u2"))) == ["u1", "u2"]
    assert owner_uids({"metadata": {}}) == []
    assert owner_uids({}) == []


def test_relink_replaces_uids_and_keeps_the_rest() -> None:
    source = with_owners(("Widget", "w", "u1"))
    before = copy.deepcopy(source)
    relinked, notes = relink(source, {"u1": "new1"})
    assert source == before
    assert notes == []
    assert relinked["metadata"]["ownerReferences"] == [
        {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "new1", "controller": True}
    ]


def test_a_reference_to_an_owner_not_restored_is_removed_and_noted() -> None:
    relinked, notes = relink(with_owners(("Widget", "w", "u1"), ("Gadget", "g", "u2")), {"u2": "new2"})
    assert [ref["uid"] for ref in relinked["metadata"]["ownerReferences"]] == ["new2"]
    assert notes == [
        "the owner Widget w was not restored: ConfigMap shop/c was restored without that ownerReference"
    ]


def test_no_owner_restored_removes_the_field() -> None:
    relinked, notes = relink(with_owners(("Widget", "w", "u1")), {})
    assert "ownerReferences" not in relinked["metadata"]
    assert len(notes) == 1


def test_no_references_is_a_no_op() -> None:
    plain = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert relink(plain, {"x": "y"}) == (plain, [])


def test_never_writes_a_source_uid() -> None:
    refs = [("Widget", f"w{i}", f"u{i}") for i in range(6)]
    uid_map = {"u0": "n0", "u2": "n2", "u4": "n4"}
    relinked, notes = relink(with_owners(*refs), uid_map)
    written = owner_uids(relinked)
    assert written == ["n0", "n2", "n4"]
    assert not set(written) & {uid for _, _, uid in refs}
    assert len(notes) == 3
