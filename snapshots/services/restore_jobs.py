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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import transaction
from django.utils import timezone

from clusters import kube
from clusters.choices import EventLevel
from clusters.engine.jobs import Job, Run
from clusters.engine.outcome import Outcome
from clusters.models import ClusterEvent, Operation
from snapshots import format as fmt
from snapshots.choices import (
    ExistingPolicy,
    ItemAction,
    ItemResult,
    RestoreMode,
    RestoreStatus,
)
from snapshots.exceptions import RestoreRefused
from snapshots.models import Restore, RestoreItem
from snapshots.models.restores import empty_counts
from snapshots.permissions import Action
from snapshots.restore import (
    NEVER_RESTORED,
    clean,
    created_by_target,
    phase_of,
    skip_reason,
)
from snapshots.selection import split_api_version
from snapshots.services.events import restore_changed
from snapshots.services.restore_writes import (
    Context,
    ObjectWrites,
    Row,
    meta_of,
)
from snapshots.services.snapshot_jobs import chunk_key

logger = logging.getLogger(__name__)


CRD = ("apiextensions.k8s.io", "CustomResourceDefinition")
CRD_API = "apiextensions.k8s.io/v1"
ESTABLISH_WAIT = 1.0
COUNT_OF = {
    ItemAction.CREATE: "created",
    ItemAction.UPDATE: "updated",
    ItemAction.UNCHANGED: "unchanged",
    ItemAction.SKIP: "skipped",
    ItemAction.CONFLICT: "conflict",
    ItemAction.FAIL: "failed",
}


def _crd_kinds(crd: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(group, version, kind) a CRD of the snapshot will serve."""
    spec = crd.get("spec") or {}
    group, kind = str(spec.get("group") or ""), str((spec.get("names") or {}).get("kind") or "")
    return {(group, str(v.get("name")), kind) for v in spec.get("versions") or [] if v.get("served")}


class RestoreJob(ObjectWrites, Job):
    """Restores and previews."""

    def load(self, run: Run) -> Restore:
        return Restore.objects.select_related(
            "snapshot", "snapshot__location", "target", "target__provider"
        ).get(pk=int(run.operation.subject_id or 0))

    def permission(self, operation: Operation) -> str:
        return Action.RESTORE

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
                        meta = meta_of(svc)
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
            dmeta = meta_of(desired)
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
