"""ownerReferences re-linked from the source's uids to the restored owners' new uids.

An ownerReference carries the owner's uid, and the garbage collector deletes an object at once
when no object with that uid exists. The uids of the source mean nothing in the target, so every
reference is either rewritten to the new owner's uid or removed (and the report says so): a
dangling uid is never written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snapshots.restore.clean import json_copy
from snapshots.restore.order import describe


def owner_uids(obj: Mapping[str, Any]) -> list[str]:
    """The owners' uids named by the object's ownerReferences, in order."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return [str(ref["uid"]) for ref in refs if isinstance(ref, Mapping) and ref.get("uid")]


def relink(obj: Mapping[str, Any], uid_map: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """A copy whose ownerReferences point at the new owners; references to owners not restored go.

    `uid_map` maps a source uid to the uid the restored owner got in the target. The notes name
    each removed reference.
    """
    result: dict[str, Any] = json_copy(obj)
    metadata = result.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("ownerReferences"):
        return result, []
    kept: list[dict[str, Any]] = []
    notes: list[str] = []
    for ref in metadata["ownerReferences"]:
        if not isinstance(ref, dict):
            continue
        new_uid = uid_map.get(str(ref.get("uid", "")))
        if new_uid is None:
            notes.append(
                f"the owner {ref.get('kind', '?')} {ref.get('name', '?')} was not restored: "
                f"{describe(result)} was restored without that ownerReference"
            )
            continue
        kept.append({**ref, "uid": new_uid})
    if kept:
        metadata["ownerReferences"] = kept
    else:
        del metadata["ownerReferences"]
    return result, notes
