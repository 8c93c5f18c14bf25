"""The pure half of a restore: its order, how objects are cleaned, re-owned and re-addressed, diffs.

No Django and no I/O here: objects are the plain JSON dicts the API server returns. The restore
jobs (snapshots/services/) drive these functions against the target cluster, per object:

1. ``Selection.wants`` (the restore's own selection keys), then `skip_reason`: left out, reported;
2. `plan_phases` over what is kept: the phases in order, owners first within each;
3. `clean` (namespace and storage-class maps), then `relink` with the uids the owners got;
4. for Services, `service_ips` against `Taken.from_services` of the target (`without_ips` on an
   Invalid answer), reporting the notes;
5. for a preview or an update, `field_diff` of the live object and the dry-run answer.

`semantic_diff` compares two snapshots (source and restored cluster) for the fidelity test.
"""

from snapshots.restore.clean import (
    CONTROLLER_ANNOTATIONS,
    NEVER_RESTORED,
    NEVER_RESTORED_RULES,
    clean,
    controller_owner,
    created_by_target,
    skip_reason,
)
from snapshots.restore.diff import (
    DEFAULT_IGNORE,
    SEMANTIC_IGNORE,
    SEMANTIC_IGNORED,
    field_diff,
    format_path,
    object_key,
    parse_path,
    semantic_diff,
)
from snapshots.restore.network import Taken, service_ips, without_ips
from snapshots.restore.order import (
    PHASE_LABELS,
    PHASES,
    describe,
    is_custom,
    order_owners,
    phase_of,
    phase_of_object,
    plan_phases,
    sort_owned_last,
)
from snapshots.restore.owners import owner_uids, relink

__all__ = [
    "CONTROLLER_ANNOTATIONS",
    "DEFAULT_IGNORE",
    "NEVER_RESTORED",
    "NEVER_RESTORED_RULES",
    "PHASES",
    "PHASE_LABELS",
    "SEMANTIC_IGNORE",
    "SEMANTIC_IGNORED",
    "Taken",
    "clean",
    "controller_owner",
    "created_by_target",
    "describe",
    "field_diff",
    "format_path",
    "is_custom",
    "object_key",
    "order_owners",
    "owner_uids",
    "parse_path",
    "phase_of",
    "phase_of_object",
    "plan_phases",
    "relink",
    "semantic_diff",
    "service_ips",
    "skip_reason",
    "sort_owned_last",
    "without_ips",
]
