"""How a restore writes one batch of a snapshot's objects into its target, or dry-runs it.

`Context` is what one pass over a restore needs (the snapshot opened and verified, the target's
client, the options); `ObjectWrites` (mixed into the restore job) screens each object, makes the
namespaces it needs, cleans, re-owns and re-addresses it, and writes it — a POST as `flotilla`,
or a forced server-side apply as `flotilla` for the `update` policy, or the same through
server-side dry-run for a preview — in owner-first waves of concurrent requests. Every object
written carries RESTORE_ANNOTATION with the restore's uuid, so that a pass resumed after a
worker died knows the objects it made itself. Each write's outcome is a `Row` of the report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings

from clusters import kube
from clusters.engine.jobs import Run
from clusters.services.workloads import cluster_client
from snapshots import format as fmt
from snapshots.choices import (
    ExistingPolicy,
    ItemAction,
    ItemResult,
    RestoreMode,
)
from snapshots.exceptions import RestoreRefused
from snapshots.models import Restore, Snapshot
from snapshots.restore import (
    Taken,
    clean,
    created_by_target,
    field_diff,
    owner_uids,
    relink,
    service_ips,
    skip_reason,
    without_ips,
)
from snapshots.selection import Selection, split_api_version
from snapshots.services.locations import store_of
from snapshots.services.restores import parse_options
from snapshots.services.snapshot_jobs import chunk_key, manifest_key
from snapshots.storage import Store

RESTORE_ANNOTATION = "snapshots.flotilla.dev/restore"
TOO_MANY_TRIES = 6


@dataclass
class Row:
    """One report row before it is saved."""

    api_version: str
    kind: str
    namespace: str
    source_namespace: str
    name: str
    action: str
    result: str
    message: str = ""
    diff: list[dict[str, Any]] = field(default_factory=list)
    source_uid: str = ""
    target_uid: str = ""


def _group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    group, _ = split_api_version(str(obj.get("apiVersion") or ""))
    return group, str(obj.get("kind") or "")


def meta_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _ours(live: dict[str, Any], restore: Restore) -> bool:
    return (meta_of(live).get("annotations") or {}).get(RESTORE_ANNOTATION) == str(restore.uuid)


def _retrying(call: Callable[[], Any]) -> Any:
    """A write the gateway does not repeat itself (POST): a 429 was not applied, so try again."""
    for attempt in range(TOO_MANY_TRIES):
        try:
            return call()
        except kube.TooManyRequests as exc:
            if attempt == TOO_MANY_TRIES - 1:
                raise
            time.sleep(max(exc.retry_after, 0.2 * (attempt + 1)))
    raise AssertionError("unreachable")


def _dry_create(client: kube.Client, obj: dict[str, Any]) -> dict[str, Any]:
    res = kube.resource(client, obj["apiVersion"], obj["kind"])
    namespace = (meta_of(obj).get("namespace") or "default") if res.namespaced else None
    made: dict[str, Any] = client.request(
        "POST", res.path(namespace), query={"fieldManager": kube.FIELD_MANAGER, "dryRun": "All"}, body=obj
    )
    return made


class _Explicit:
    """The kube-* namespaces a selection names deliberately (a container for skip_reason)."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection

    def __contains__(self, namespace: object) -> bool:
        return isinstance(namespace, str) and self.selection.explicitly_includes(namespace)


class Context:
    """What one pass over a restore needs: the snapshot opened, the target's client, the options."""

    def __init__(self, run: Run, restore: Restore) -> None:
        snapshot = restore.snapshot
        if snapshot.location is None:
            raise RestoreRefused(f"Snapshot {snapshot.name} has no storage location left: it cannot be read.")
        self.restore = restore
        self.snapshot: Snapshot = snapshot
        self.store: Store = store_of(snapshot.location, run.schema_name)
        stored = self.store.get(manifest_key(snapshot))
        self.manifest, self.data_key = fmt.open_manifest(
            stored, fmt.org_keys(run.schema_name), snapshot_id=str(snapshot.uuid)
        )
        # The database kept the stored manifest's digest when the snapshot completed: a manifest
        # replaced since (even a validly sealed one, say an older snapshot's) is refused.
        if snapshot.manifest_sha256 and fmt.manifest_digest(stored) != snapshot.manifest_sha256:
            raise fmt.Tampered(
                f"The manifest of snapshot {snapshot.name} is not the one written when it completed."
            )
        self.client = cluster_client(restore.target)
        options = parse_options(restore.options)
        self.selection: Selection = options.selection
        self.namespace_map = options.namespace_map
        self.storage_class_map = options.storage_class_map
        self.existing = options.existing
        self.preview = restore.mode == RestoreMode.PREVIEW
        self.owner_uids = frozenset(self.manifest.owner_uids)
        self.included = _Explicit(self.selection)
        state = run.operation.state or {}
        self.services_with_selector = frozenset(
            (ns, name) for ns, name in state.get("selected_services") or []
        )
        self.workers = max(1, int(getattr(settings, "FLOTILLA_RESTORE_CONCURRENCY", 16)))

    def objects(self, index: int) -> list[dict[str, Any]]:
        """A chunk's objects, checked (checksum, authentication, every object's digest)."""
        info = self.manifest.chunks[index]
        data = self.store.get(chunk_key(self.snapshot, info.name))
        return list(fmt.open_chunk(str(self.snapshot.uuid), self.data_key, info, data))


class ObjectWrites:
    """The per-object half of a restore (see the module docstring)."""

    def _write(
        self,
        ctx: Context,
        state: dict[str, Any],
        work: list[tuple[tuple[int, int], dict[str, Any]]],
        *,
        final: bool,
    ) -> tuple[list[Row], list[tuple[int, int]]]:
        """Write (or dry-run) a batch, owners first: waves of objects whose owners are known."""
        rows: list[Row] = []
        uid_map: dict[str, str] = state["uid_map"]
        lock = threading.Lock()
        pending = []
        for position, obj in work:
            row = self._screen(ctx, obj)
            if row is not None:
                if row.action != "":
                    rows.append(row)
                continue
            pending.append((position, obj))
        self._ensure_namespaces(ctx, state, [obj for _, obj in pending], rows)
        taken = self._taken(ctx, [obj for _, obj in pending])
        with ThreadPoolExecutor(max_workers=ctx.workers, thread_name_prefix="restore") as pool:
            while pending:
                ready: list[tuple[tuple[int, int], dict[str, Any]]] = []
                waiting: list[tuple[tuple[int, int], dict[str, Any]]] = []
                for position, obj in pending:
                    unknown = [u for u in owner_uids(obj) if u in ctx.owner_uids and u not in uid_map]
                    (waiting if unknown and not ctx.preview else ready).append((position, obj))
                if not ready:
                    if final:
                        ready, waiting = waiting, []
                    else:
                        return rows, [p for p, _ in waiting]
                results = list(
                    pool.map(
                        lambda item: self._one(ctx, item[1], uid_map, taken, final or ctx.preview), ready
                    )
                )
                for row in results:
                    rows.append(row)
                    if row.source_uid in ctx.owner_uids and row.target_uid:
                        with lock:
                            uid_map[row.source_uid] = row.target_uid
                pending = waiting
        return rows, []

    def _screen(self, ctx: Context, obj: dict[str, Any]) -> Row | None:
        """Not the restore's business (not selected: no row), or skipped by policy (a row)."""
        if not ctx.selection.wants(obj):
            return Row("", "", "", "", "", "", "")
        reason = skip_reason(
            obj,
            explicitly_included_namespaces=ctx.included,
            services_with_selector=ctx.services_with_selector,
        )
        if reason is None:
            return None
        meta = meta_of(obj)
        source_ns = str(meta.get("namespace") or "")
        return Row(
            str(obj.get("apiVersion") or ""),
            str(obj.get("kind") or ""),
            ctx.namespace_map.get(source_ns, source_ns),
            source_ns,
            str(meta.get("name") or ""),
            ItemAction.SKIP,
            ItemResult.PLANNED if ctx.preview else ItemResult.DONE,
            reason,
        )

    def _ensure_namespaces(
        self, ctx: Context, state: dict[str, Any], objects: Iterable[dict[str, Any]], rows: list[Row]
    ) -> None:
        """The target namespaces a batch writes into exist (made when the snapshot has none)."""
        known = set(state["namespaces"])
        wanted = set()
        for obj in objects:
            source = meta_of(obj).get("namespace")
            if source and obj.get("kind") != "Namespace":
                wanted.add(ctx.namespace_map.get(str(source), str(source)))
            elif obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
                name = str(meta_of(obj).get("name") or "")
                # The snapshot's own Namespace object makes it (its phase comes first).
                known.add(ctx.namespace_map.get(name, name))
        for name in sorted(wanted - known):
            try:
                kube.get(ctx.client, "v1", "Namespace", name)
            except kube.NotFound:
                if ctx.preview:
                    rows.append(
                        Row(
                            "v1",
                            "Namespace",
                            "",
                            "",
                            name,
                            ItemAction.CREATE,
                            ItemResult.PLANNED,
                            "made for the restored objects",
                        )
                    )
                else:
                    body = {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {
                            "name": name,
                            "annotations": {RESTORE_ANNOTATION: str(ctx.restore.uuid)},
                        },
                    }
                    try:
                        _retrying(partial(kube.create, ctx.client, body))
                        rows.append(
                            Row(
                                "v1",
                                "Namespace",
                                "",
                                "",
                                name,
                                ItemAction.CREATE,
                                ItemResult.DONE,
                                "made for the restored objects",
                            )
                        )
                    except kube.AlreadyExists:
                        pass
            known.add(name)
        state["namespaces"] = sorted(known)

    def _taken(self, ctx: Context, objects: list[dict[str, Any]]) -> Taken:
        """The target's cluster IPs and node ports, read once for a batch that has Services."""
        if not any(o.get("kind") == "Service" and o.get("apiVersion") == "v1" for o in objects):
            return Taken()
        taken = Taken.from_services(kube.list_items(ctx.client, ("v1", "Service")))
        return taken
        for svc in kube.list_items(ctx.client, ("v1", "Service")):
            spec = svc.get("spec") or {}
            for ip in [spec.get("clusterIP"), *(spec.get("clusterIPs") or [])]:
                if ip and ip != "None":
                    taken.cluster_ips.add(str(ip))
            for port in spec.get("ports") or []:
                if port.get("nodePort"):
                    taken.node_ports.add(int(port["nodePort"]))
            if spec.get("healthCheckNodePort"):
                taken.node_ports.add(int(spec["healthCheckNodePort"]))
        return taken

    def _desired(
        self, ctx: Context, obj: dict[str, Any], uid_map: dict[str, str], taken: Taken, final: bool
    ) -> tuple[dict[str, Any], list[str]]:
        desired = clean(obj, namespace_map=ctx.namespace_map, storage_class_map=ctx.storage_class_map)
        notes: list[str] = []
        if not ctx.preview:
            desired, linked = relink(desired, uid_map)
            notes.extend(linked)
        if desired.get("kind") == "Service" and desired.get("apiVersion") == "v1":
            desired, moved = service_ips(desired, taken)
            notes.extend(moved)
        meta = desired.setdefault("metadata", {})
        if not ctx.preview:
            meta.setdefault("annotations", {})[RESTORE_ANNOTATION] = str(ctx.restore.uuid)
        return desired, notes

    def _one(
        self, ctx: Context, obj: dict[str, Any], uid_map: dict[str, str], taken: Taken, final: bool
    ) -> Row:
        """Write (or dry-run) one object; the API server's refusal becomes the row's message."""
        meta = meta_of(obj)
        source_ns = str(meta.get("namespace") or "")
        desired, notes = self._desired(ctx, obj, uid_map, taken, final)
        dmeta = meta_of(desired)
        row = Row(
            str(desired.get("apiVersion") or ""),
            str(desired.get("kind") or ""),
            str(dmeta.get("namespace") or ""),
            source_ns,
            str(dmeta.get("name") or ""),
            ItemAction.FAIL,
            ItemResult.FAILED,
            source_uid=str(meta.get("uid") or ""),
        )
        try:
            if ctx.preview:
                self._preview_one(ctx, desired, row)
            else:
                self._restore_one(ctx, desired, row)
        except kube.KubeError as exc:
            row.action, row.result = ItemAction.FAIL, ItemResult.FAILED
            row.message = exc.message
        if notes:
            row.message = "; ".join([m for m in [row.message] if m] + notes)
        return row

    def _restore_one(self, ctx: Context, desired: dict[str, Any], row: Row) -> None:
        if ctx.existing == ExistingPolicy.UPDATE:
            live = self._live(ctx, desired)
            if live is None or _ours(live, ctx.restore):
                made = live if live is not None else self._create(ctx, desired, row)
                row.action, row.result, row.target_uid = (
                    ItemAction.CREATE,
                    ItemResult.DONE,
                    str(meta_of(made).get("uid") or ""),
                )
                return
            self._update(ctx, live, desired, row)
            return
        try:
            made = self._create(ctx, desired, row)
            row.action, row.result, row.target_uid = (
                ItemAction.CREATE,
                ItemResult.DONE,
                str(meta_of(made).get("uid") or ""),
            )
        except kube.AlreadyExists:
            live = self._live(ctx, desired)
            if live is not None and _ours(live, ctx.restore):
                row.action, row.result, row.target_uid = (
                    ItemAction.CREATE,
                    ItemResult.DONE,
                    str(meta_of(live).get("uid") or ""),
                )
                return
            row.target_uid = str(meta_of(live or {}).get("uid") or "")
            if live is not None and created_by_target(desired):
                # The target made it itself (the default ServiceAccount): the snapshot's is the
                # user's, whatever the policy.
                self._update(ctx, live, desired, row)
                return
            if ctx.existing == ExistingPolicy.FAIL:
                row.action, row.result, row.message = (
                    ItemAction.CONFLICT,
                    ItemResult.FAILED,
                    "exists in the target",
                )
            else:
                row.action, row.result, row.message = (
                    ItemAction.SKIP,
                    ItemResult.DONE,
                    "exists in the target (kept as it is)",
                )

    def _create(self, ctx: Context, desired: dict[str, Any], row: Row) -> dict[str, Any]:
        try:
            made: dict[str, Any] = _retrying(lambda: kube.create(ctx.client, desired))
        except kube.Invalid:
            if desired.get("kind") != "Service":
                raise
            # The kept clusterIP or nodePort is outside the target's ranges: let it assign new ones.
            made = _retrying(lambda: kube.create(ctx.client, without_ips(desired)))
            row.message = "its clusterIP/nodePorts are outside the target's ranges: new ones were assigned"
        return made

    def _update(self, ctx: Context, live: dict[str, Any], desired: dict[str, Any], row: Row) -> None:
        try:
            applied = kube.apply(ctx.client, desired, force=True)
        except kube.Invalid as exc:
            if not desired.get("immutable") and "immutable" not in exc.message:
                raise
            kube.delete(
                ctx.client,
                desired["apiVersion"],
                desired["kind"],
                row.name,
                row.namespace or None,
                missing_ok=True,
            )
            applied = _retrying(lambda: kube.create(ctx.client, desired))
            row.message = "immutable in the target: replaced"
        changes = field_diff(live, applied)
        row.target_uid = str(meta_of(applied).get("uid") or "")
        row.diff = changes
        row.action = ItemAction.UPDATE if changes else ItemAction.UNCHANGED
        row.result = ItemResult.DONE

    def _live(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        dmeta = meta_of(desired)
        try:
            return kube.get(
                ctx.client,
                desired["apiVersion"],
                desired["kind"],
                str(dmeta.get("name")),
                dmeta.get("namespace"),
            )
        except kube.NotFound:
            return None

    def _preview_one(self, ctx: Context, desired: dict[str, Any], row: Row) -> None:
        row.result = ItemResult.PLANNED
        served = kube.discovery(ctx.client).find(str(desired["apiVersion"]), str(desired["kind"]))
        if served is None:
            row.action, row.message = (
                ItemAction.CREATE,
                "its CustomResourceDefinition is created by this restore",
            )
            return
        namespace = row.namespace
        if served.namespaced and namespace and not self._namespace_exists(ctx, namespace):
            if created_by_target(desired):
                row.action = ItemAction.UPDATE
                row.message = f"the target makes it with namespace {namespace}; the restore then updates it"
            else:
                row.action, row.message = (
                    ItemAction.CREATE,
                    f"namespace {namespace} is created by this restore",
                )
            return
        live = self._live(ctx, desired)
        if live is None:
            try:
                _retrying(lambda: _dry_create(ctx.client, desired))
                row.action = ItemAction.CREATE
            except kube.KubeError as exc:
                row.action, row.result, row.message = ItemAction.FAIL, ItemResult.FAILED, exc.message
            return
        if ctx.existing == ExistingPolicy.SKIP:
            row.action, row.message = ItemAction.SKIP, "exists in the target (would be kept as it is)"
        elif ctx.existing == ExistingPolicy.FAIL:
            row.action, row.message = ItemAction.CONFLICT, "exists in the target: the restore would stop here"
        else:
            try:
                dry = kube.apply(ctx.client, desired, force=True, dry_run=True)
            except kube.Invalid as exc:
                if desired.get("immutable") or "immutable" in exc.message:
                    row.action, row.message = (
                        ItemAction.UPDATE,
                        "immutable in the target: it would be replaced",
                    )
                    return
                raise
            row.diff = field_diff(live, dry)
            row.action = ItemAction.UPDATE if row.diff else ItemAction.UNCHANGED

    def _namespace_exists(self, ctx: Context, name: str) -> bool:
        cache: dict[str, bool] = ctx.__dict__.setdefault("_namespaces", {})
        if name not in cache:
            try:
                kube.get(ctx.client, "v1", "Namespace", name)
                cache[name] = True
            except kube.NotFound:
                cache[name] = False
        return cache[name]

    # --- helpers --------------------------------------------------------------------------
