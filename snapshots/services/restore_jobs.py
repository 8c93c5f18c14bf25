"""Restoring a snapshot, or previewing a restore, as jobs of the operations engine.

The first step opens the manifest (format version, the org's key, every chunk's checksum is
checked as the chunk is read) and checks that the target serves every kind the restore would
write — a kind it does not serve (and that no CRD of the snapshot brings) stops the restore
before anything is written. Then the chunks are taken in the restore's order
(snapshots.restore.order: CRDs, then Established; namespaces; cluster prerequisites; service
accounts, secrets, config maps; volumes; services; controllers; the rest; custom resources;
webhooks last), one chunk per step. Within a chunk, objects are written concurrently
(FLOTILLA_RESTORE_CONCURRENCY requests in flight, 429s honoured), owners before the objects
they own: an object whose owner is not restored yet waits for the next wave, or for the final
pass, where its ownerReferences are re-linked to the new owners' uids (or dropped, and said so,
when the owner is not restored: a dangling uid would have the garbage collector delete it).

Every restored object carries the annotation RESTORE_ANNOTATION with the restore's uuid: a
worker killed mid-chunk does the chunk again, and an object that "already exists" with this
restore's mark is one it made itself, not a conflict. The chunk's report rows and the
checkpoint are written in one transaction, so nothing is recorded twice or lost.

A preview writes nothing: each object is compared with the target through server-side dry-run
(create, or apply for the `update` policy) and its report says what a restore would do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clusters import kube
from clusters.choices import EventLevel
from clusters.engine.jobs import Job, Run
from clusters.engine.outcome import Outcome
from clusters.models import ClusterEvent, Operation
from clusters.services.workloads import cluster_client
from snapshots import format as fmt
from snapshots.choices import (
    ExistingPolicy,
    ItemAction,
    ItemResult,
    RestoreMode,
    RestoreStatus,
)
from snapshots.exceptions import RestoreRefused
from snapshots.models import Restore, RestoreItem, Snapshot
from snapshots.models.restores import empty_counts
from snapshots.permissions import Action
from snapshots.restore import (
    NEVER_RESTORED,
    Taken,
    clean,
    created_by_target,
    field_diff,
    owner_uids,
    phase_of,
    relink,
    service_ips,
    skip_reason,
    without_ips,
)
from snapshots.selection import Selection, split_api_version
from snapshots.services.events import restore_changed
from snapshots.services.locations import store_of
from snapshots.services.restores import parse_options
from snapshots.services.snapshot_jobs import chunk_key, manifest_key
from snapshots.storage import Store

logger = logging.getLogger(__name__)

RESTORE_ANNOTATION = "snapshots.flotilla.dev/restore"
CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
CRD_API = "apiextensions.k8s.io/v1"
ESTABLISH_WAIT = 1.0
TOO_MANY_TRIES = 6

COUNT_OF = {
    ItemAction.CREATE: "created",
    ItemAction.UPDATE: "updated",
    ItemAction.UNCHANGED: "unchanged",
    ItemAction.SKIP: "skipped",
    ItemAction.CONFLICT: "conflict",
    ItemAction.FAIL: "failed",
}


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


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _ours(live: dict[str, Any], restore: Restore) -> bool:
    return (_meta(live).get("annotations") or {}).get(RESTORE_ANNOTATION) == str(restore.uuid)


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
    namespace = (_meta(obj).get("namespace") or "default") if res.namespaced else None
    made: dict[str, Any] = client.request(
        "POST", res.path(namespace), query={"fieldManager": kube.FIELD_MANAGER, "dryRun": "All"}, body=obj
    )
    return made


def _crd_kinds(crd: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(group, version, kind) a CRD of the snapshot will serve."""
    spec = crd.get("spec") or {}
    group, kind = str(spec.get("group") or ""), str((spec.get("names") or {}).get("kind") or "")
    return {(group, str(v.get("name")), kind) for v in spec.get("versions") or [] if v.get("served")}


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


class RestoreJob(Job):
    """Restores and previews."""

    def load(self, run: Run) -> Restore:
        return Restore.objects.select_related(
            "snapshot", "snapshot__location", "target", "target__provider"
        ).get(pk=int(run.operation.subject_id or 0))

    def permission(self, operation: Operation) -> str:
        return Action.RESTORE

    def conflicts(self, operation: Operation) -> Q:
        return Q(subject_type=operation.subject_type, subject_id=operation.subject_id)

    def begin(self, run: Run) -> None:
        restore: Restore = run.subject
        if restore.status == RestoreStatus.PENDING:
            restore.transition_to(RestoreStatus.RUNNING)
            restore.save(update_fields=["status", "reason"])
            self.changed(run)

    def step(self, run: Run) -> Outcome:
        restore: Restore = run.subject
        ctx = run.extra.get("context")
        if ctx is None or ctx.restore.pk != restore.pk:
            ctx = run.extra["context"] = Context(run, restore)
        state = dict(run.operation.state or {})
        if "order" not in state:
            return self._open(run, ctx, state)
        if int(state.get("checked", len(state["order"]))) < len(state["order"]):
            return self._precheck(run, ctx, state)
        if state.get("waiting_crds"):
            return self._wait_crds(run, ctx, state)
        if int(state["pos"]) < len(state["order"]):
            return self._chunk(run, ctx, state)
        if state.get("deferred"):
            return self._deferred(run, ctx, state)
        return Outcome.finished(self._summary(state))

    def succeed(self, run: Run, outcome: Outcome) -> None:
        restore = Restore.objects.select_for_update().get(pk=int(run.operation.subject_id or 0))
        run.subject = restore
        state = run.operation.state or {}
        counts = {**empty_counts(), **(state.get("counts") or {})}
        restore.counts = counts
        failed = counts["failed"] + counts["conflict"] * (0 if restore.mode == RestoreMode.PREVIEW else 1)
        status = (
            RestoreStatus.PARTIAL
            if failed and restore.mode == RestoreMode.RESTORE
            else RestoreStatus.COMPLETED
        )
        restore.transition_to(status, self._summary(state) if status == RestoreStatus.PARTIAL else "")
        restore.completed_at = timezone.now()
        restore.save(update_fields=["status", "reason", "counts", "completed_at"])
        self._event(
            run,
            f"{restore.get_mode_display().lower()} of snapshot {restore.snapshot.name}: "
            f"{self._summary(state)}",
        )
        self.changed(run)

    def fail(self, run: Run, message: str) -> None:
        restore = Restore.objects.select_for_update().get(pk=int(run.operation.subject_id or 0))
        run.subject = restore
        state = run.operation.state or {}
        restore.counts = {**empty_counts(), **(state.get("counts") or {})}
        done = sum(restore.counts[k] for k in ("created", "updated"))
        told = message
        if restore.mode == RestoreMode.RESTORE and "order" in state and int(state.get("pos") or 0) > 0:
            told += (
                f" — {done:,} objects were restored before it stopped (see the report); the rest were not."
            )
        elif restore.mode == RestoreMode.RESTORE:
            told += " — nothing was written to the target."
        restore.transition_to(RestoreStatus.FAILED, told[:4000])
        restore.completed_at = timezone.now()
        restore.save(update_fields=["status", "reason", "counts", "completed_at"])
        self._event(
            run, f"restore of snapshot {restore.snapshot.name} failed: {told}", level=EventLevel.ERROR
        )
        self.changed(run)

    def cancelled(self, run: Run) -> None:
        restore = Restore.objects.select_for_update().get(pk=int(run.operation.subject_id or 0))
        run.subject = restore
        state = run.operation.state or {}
        restore.counts = {**empty_counts(), **(state.get("counts") or {})}
        restore.transition_to(
            RestoreStatus.CANCELLED,
            f"Cancelled: {self._summary(state)}; the report lists what was done before.",
        )
        restore.completed_at = timezone.now()
        restore.save(update_fields=["status", "reason", "counts", "completed_at"])
        self.changed(run)

    def note(self, run: Run, message: str, *, level: str = EventLevel.INFO) -> None:
        if level != EventLevel.INFO:
            self._event(run, message, level=level)
        self.changed(run)

    def changed(self, run: Run) -> None:
        restore = run.subject if isinstance(run.subject, Restore) else self.load(run)
        restore_changed(run.schema_name, restore, operation=run.operation)

    # --- the first step: open, check, order ------------------------------------------------

    def _open(self, run: Run, ctx: Context, state: dict[str, Any]) -> Outcome:
        manifest = ctx.manifest
        # Every chunk is there, whole and as written, before anything is written to the target.
        for info in manifest.chunks:
            fmt.verify_chunk(info, ctx.store.get(chunk_key(ctx.snapshot, info.name)))
        discovered = kube.discovery(ctx.client, refresh=True)
        brought: set[tuple[str, str, str]] = set()
        selected_services: list[list[str]] = []
        for index, info in enumerate(manifest.chunks):
            if (split_api_version(info.api_version)[0], info.kind) == CRD:
                for crd in ctx.objects(index):
                    if ctx.selection.wants(crd) and skip_reason(crd) is None:
                        brought |= _crd_kinds(crd)
            elif info.api_version == "v1" and info.kind == "Service":
                for svc in ctx.objects(index):
                    if (svc.get("spec") or {}).get("selector"):
                        meta = _meta(svc)
                        selected_services.append(
                            [str(meta.get("namespace") or ""), str(meta.get("name") or "")]
                        )
        missing: dict[str, int] = {}
        for info in manifest.chunks:
            group, version = split_api_version(info.api_version)
            if (group, info.kind) in NEVER_RESTORED or not ctx.selection.wants_resource(
                group, version, info.kind, info.namespaced
            ):
                continue
            if (
                discovered.find(info.api_version, info.kind) is None
                and (group, version, info.kind) not in brought
            ):
                key = f"{info.api_version} {info.kind}"
                missing[key] = missing.get(key, 0) + info.count
        if missing:
            listed = ", ".join(f"{k} ({n} objects)" for k, n in sorted(missing.items()))
            raise RestoreRefused(
                f"Cluster {ctx.restore.target.name} ({discovered.git_version}) does not serve {listed}, "
                "and no CustomResourceDefinition of the snapshot brings them"
            )
        crd_groups = {g for g, _, _ in brought}
        order = sorted(
            range(len(manifest.chunks)),
            key=lambda i: (
                phase_of(
                    split_api_version(manifest.chunks[i].api_version)[0],
                    manifest.chunks[i].kind,
                    crd_groups=crd_groups,
                ),
                i,
            ),
        )
        state = {
            "order": order,
            "pos": 0,
            "seq": 0,
            "uid_map": {},
            "deferred": [],
            "counts": empty_counts(),
            "crds": [],
            "waiting_crds": False,
            "namespaces": [],
            "reassigned": [],
            "total": manifest.object_count,
            "seen": 0,
            "selected_services": selected_services,
            # With the `fail` policy, every object is first looked up in the target: one that
            # exists fails the restore before anything is written.
            "checked": 0 if ctx.existing == ExistingPolicy.FAIL and not ctx.preview else len(order),
            "conflicts": 0,
        }
        self._save(run, state)
        ctx.services_with_selector = frozenset((ns, name) for ns, name in selected_services)
        verb = "Previewing" if ctx.preview else "Restoring"
        return Outcome.step(f"{verb} {manifest.object_count:,} objects in {len(order)} chunks", progress=1)

    def _precheck(self, run: Run, ctx: Context, state: dict[str, Any]) -> Outcome:
        """One chunk's objects looked up in the target (the `fail` policy); at the end, any that
        exists fails the restore with nothing written."""
        pos = int(state["checked"])
        index = int(state["order"][pos])
        candidates = []
        for obj in ctx.objects(index):
            if self._screen(ctx, obj) is not None or created_by_target(obj):
                continue
            desired = clean(obj, namespace_map=ctx.namespace_map, storage_class_map=ctx.storage_class_map)
            if kube.discovery(ctx.client).find(str(desired["apiVersion"]), str(desired["kind"])) is not None:
                candidates.append(desired)
        with ThreadPoolExecutor(max_workers=ctx.workers, thread_name_prefix="restore-check") as pool:
            found = list(pool.map(lambda d: self._live(ctx, d), candidates))
        rows = []
        for desired, live in zip(candidates, found, strict=True):
            if live is None:
                continue
            dmeta = _meta(desired)
            rows.append(
                Row(
                    str(desired["apiVersion"]),
                    str(desired["kind"]),
                    str(dmeta.get("namespace") or ""),
                    "",
                    str(dmeta.get("name") or ""),
                    ItemAction.CONFLICT,
                    ItemResult.FAILED,
                    "exists in the target (the policy for existing objects is 'fail')",
                )
            )
        state["checked"] = pos + 1
        state["conflicts"] = int(state["conflicts"]) + len(rows)
        self._record(run, ctx, state, rows, stop=False)
        if state["checked"] >= len(state["order"]) and state["conflicts"]:
            raise RestoreRefused(
                f"{state['conflicts']:,} objects already exist in the target and the policy for "
                "existing objects is 'fail' (the report lists them)"
            )
        return Outcome.step(
            f"Looked for existing objects in {pos + 1} of {len(state['order'])} chunks", progress=1
        )

    def _wait_crds(self, run: Run, ctx: Context, state: dict[str, Any]) -> Outcome:
        pending = []
        for name in state["crds"]:
            try:
                crd = kube.get(ctx.client, CRD_API, CRD[1], name)
            except kube.NotFound:
                pending.append(name)
                continue
            conditions = (crd.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
                pending.append(name)
        if pending:
            return Outcome.wait(
                f"Waiting for {len(pending)} CustomResourceDefinitions to be Established", ESTABLISH_WAIT
            )
        kube.discovery(ctx.client, refresh=True)
        state["waiting_crds"] = False
        self._save(run, state)
        return Outcome.step("CustomResourceDefinitions Established")

    # --- chunks -----------------------------------------------------------------------------

    def _chunk(self, run: Run, ctx: Context, state: dict[str, Any]) -> Outcome:
        pos = int(state["pos"])
        index = int(state["order"][pos])
        info = ctx.manifest.chunks[index]
        is_crd = (split_api_version(info.api_version)[0], info.kind) == CRD
        objects = ctx.objects(index)
        positions = [(index, i) for i in range(len(objects))]
        rows, deferred = self._write(ctx, state, list(zip(positions, objects, strict=True)), final=False)
        state["deferred"] = list(state["deferred"]) + [list(p) for p in deferred]
        state["pos"] = pos + 1
        state["seen"] = int(state["seen"]) + len(objects)
        if is_crd and not ctx.preview:
            made = [
                r.name
                for r in rows
                if r.kind == CRD[1]
                and r.result == ItemResult.DONE
                and r.action in (ItemAction.CREATE, ItemAction.UPDATE)
            ]
            state["crds"] = sorted(set(state["crds"]) | set(made))
            following = state["order"][pos + 1] if pos + 1 < len(state["order"]) else None
            next_is_crd = (
                following is not None
                and (
                    split_api_version(ctx.manifest.chunks[following].api_version)[0],
                    ctx.manifest.chunks[following].kind,
                )
                == CRD
            )
            state["waiting_crds"] = bool(state["crds"]) and not next_is_crd
        self._record(run, ctx, state, rows)
        return self._progress(ctx, state)

    def _deferred(self, run: Run, ctx: Context, state: dict[str, Any]) -> Outcome:
        """Objects whose owners came later: written now, their references re-linked or dropped."""
        by_chunk: dict[int, list[int]] = {}
        for chunk, i in state["deferred"]:
            by_chunk.setdefault(int(chunk), []).append(int(i))
        work: list[tuple[tuple[int, int], dict[str, Any]]] = []
        for chunk, wanted in sorted(by_chunk.items()):
            objects = ctx.objects(chunk)
            work.extend(((chunk, i), objects[i]) for i in sorted(wanted))
        rows, _ = self._write(ctx, state, work, final=True)
        state["deferred"] = []
        self._record(run, ctx, state, rows)
        return self._progress(ctx, state)

    def _progress(self, ctx: Context, state: dict[str, Any]) -> Outcome:
        total = max(1, int(state["total"]))
        verb = "Previewed" if ctx.preview else "Restored"
        return Outcome.step(
            f"{verb} {int(state['seen']):,} of {int(state['total']):,} objects ({self._summary(state)})",
            progress=1 + int(97 * int(state["seen"]) / total),
        )

    def _record(
        self, run: Run, ctx: Context, state: dict[str, Any], rows: list[Row], *, stop: bool = True
    ) -> None:
        """The chunk's report rows and the checkpoint, in one transaction."""
        seq = int(state["seq"])
        counts = state["counts"]
        items = []
        for row in rows:
            counts[COUNT_OF[ItemAction(row.action)]] = (
                int(counts.get(COUNT_OF[ItemAction(row.action)], 0)) + 1
            )
            items.append(
                RestoreItem(
                    restore_id=ctx.restore.pk,
                    seq=seq,
                    api_version=row.api_version,
                    kind=row.kind,
                    namespace=row.namespace,
                    source_namespace=row.source_namespace,
                    name=row.name,
                    action=row.action,
                    result=row.result,
                    message=row.message[:4000],
                    diff=row.diff[:200],
                )
            )
            seq += 1
            if row.source_uid in ctx.owner_uids and row.target_uid:
                state["uid_map"][row.source_uid] = row.target_uid
        state["seq"] = seq
        stopped = next(
            (
                r
                for r in rows
                if stop
                and r.action == ItemAction.CONFLICT
                and not ctx.preview
                and ctx.existing == ExistingPolicy.FAIL
            ),
            None,
        )
        with transaction.atomic():
            RestoreItem.objects.bulk_create(items, batch_size=1000)
            self._save(run, state)
            Restore.objects.filter(pk=ctx.restore.pk).update(counts=counts)
        ctx.restore.counts = counts
        if stopped is not None:
            where = f"{stopped.namespace}/" if stopped.namespace else ""
            raise RestoreRefused(
                f"{stopped.kind} {where}{stopped.name} already exists in the target and the policy "
                "for existing objects is 'fail'"
            )

    # --- objects --------------------------------------------------------------------------------

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
        meta = _meta(obj)
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
            source = _meta(obj).get("namespace")
            if source and obj.get("kind") != "Namespace":
                wanted.add(ctx.namespace_map.get(str(source), str(source)))
            elif obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1":
                name = str(_meta(obj).get("name") or "")
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
        meta = _meta(obj)
        source_ns = str(meta.get("namespace") or "")
        desired, notes = self._desired(ctx, obj, uid_map, taken, final)
        dmeta = _meta(desired)
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
                    str(_meta(made).get("uid") or ""),
                )
                return
            self._update(ctx, live, desired, row)
            return
        try:
            made = self._create(ctx, desired, row)
            row.action, row.result, row.target_uid = (
                ItemAction.CREATE,
                ItemResult.DONE,
                str(_meta(made).get("uid") or ""),
            )
        except kube.AlreadyExists:
            live = self._live(ctx, desired)
            if live is not None and _ours(live, ctx.restore):
                row.action, row.result, row.target_uid = (
                    ItemAction.CREATE,
                    ItemResult.DONE,
                    str(_meta(live).get("uid") or ""),
                )
                return
            row.target_uid = str(_meta(live or {}).get("uid") or "")
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
        row.target_uid = str(_meta(applied).get("uid") or "")
        row.diff = changes
        row.action = ItemAction.UPDATE if changes else ItemAction.UNCHANGED
        row.result = ItemResult.DONE

    def _live(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        dmeta = _meta(desired)
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

    def _summary(self, state: dict[str, Any]) -> str:
        counts = {**empty_counts(), **(state.get("counts") or {})}
        return ", ".join(f"{n:,} {k}" for k, n in counts.items() if n) or "nothing to do"

    def _save(self, run: Run, state: dict[str, Any]) -> None:
        saved = Operation.objects.filter(pk=run.operation.pk, claimed_by=run.worker).update(state=state)
        if not saved:
            raise RestoreRefused("This worker lost the operation to another one.")
        run.operation.state = state

    def _event(self, run: Run, message: str, *, level: str = EventLevel.INFO) -> None:
        with transaction.atomic():
            ClusterEvent.objects.create(
                cluster_id=run.operation.cluster_id, operation=run.operation, message=message, level=level
            )
