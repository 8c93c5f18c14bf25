"""Taking a snapshot, and deleting one, as jobs of the operations engine.

A snapshot (`snapshot`) first plans its units — every listable resource the cluster serves at
its group's preferred version (aggregated APIs left out), narrowed by the selection, one unit
per resource (or per namespace, when the selection names namespaces literally). Then each step
reads pages of the current unit (`limit` FLOTILLA_SNAPSHOT_PAGE, continue tokens), turns them
into compressed, encrypted chunks (snapshots.format) and writes them to the storage location,
for a few seconds, then checkpoints in the operation's state: the unit, its continue token, the
chunks written and the counts. Memory holds one page and one chunk, whatever the cluster's size.

A worker killed mid-way resumes from the checkpoint: chunk names are deterministic, so a chunk
written again replaces itself, and chunks written after the checkpoint are overwritten or, at
the end, removed. An expired continue token (410) restarts the unit's list; after
MAX_RESTARTS restarts the list goes on from the newer revision the server offers and the
snapshot says so in its `Consistent` condition. The manifest is written last, after every
chunk: a snapshot without one is never marked completed, and one that failed or was cancelled
has its chunks removed.

The data key is never stored in clear: the operation's state keeps it wrapped by the org's key.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clusters import kube
from clusters.choices import EventLevel
from clusters.engine.jobs import Job, Run
from clusters.engine.outcome import Outcome
from clusters.exceptions import ProviderError
from clusters.models import ClusterEvent, NodePool, Operation
from clusters.services.workloads import cluster_client
from orgs.exceptions import FlotillaError
from snapshots import format as fmt
from snapshots.choices import SnapshotOperationKind, SnapshotStatus
from snapshots.models import Snapshot
from snapshots.permissions import Action
from snapshots.selection import Selection
from snapshots.services.events import snapshot_changed
from snapshots.services.locations import store_of
from snapshots.storage import StorageUnavailable, Store

logger = logging.getLogger(__name__)

STEP_SECONDS = 4.0
# Chunks being compressed, encrypted and stored at once (each holds at most a chunk's objects).
PIPELINE = 2
MAX_RESTARTS = 3
MANIFEST = "manifest"


class SnapshotFailed(ProviderError):
    """The snapshot cannot be taken as asked (not retried)."""

    retryable = False


def chunk_key(snapshot: Snapshot, name: str) -> str:
    """Where a chunk is stored, relative to the org's area of the location."""
    return f"{snapshot.storage_prefix}/chunks/{name}"


def manifest_key(snapshot: Snapshot) -> str:
    """Where the manifest is stored."""
    return f"{snapshot.storage_prefix}/{MANIFEST}"


def kind_key(api_version: str, kind: str) -> str:
    """ "v1/ConfigMap", "apps/v1/Deployment": how the manifest counts kinds."""
    return f"{api_version}/{kind}"


def _literal(patterns: tuple[str, ...]) -> bool:
    return bool(patterns) and not any(c in p for p in patterns for c in "*?[")


def _prefetched(pages: kube.Pages) -> Iterator[tuple[dict[str, Any], str]]:
    """The pages of a list with the continue token after each, the next one read by a thread
    while the caller works on this one. Stopping early leaves at most one page read for nothing."""
    ahead: queue.Queue[tuple[dict[str, Any], str] | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        ahead.put((page, pages.next_token), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(None)
        except BaseException as exc:  # handed to the caller, raised there
            ahead.put(exc)

    reader = threading.Thread(target=read, name="snapshot-pages", daemon=True)
    reader.start()
    try:
        while True:
            got = ahead.get()
            if got is None:
                return
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            ahead.get_nowait()
        reader.join(timeout=30)


def plan_units(discovered: kube.Discovery, selection: Selection) -> list[dict[str, Any]]:
    """What a snapshot lists: one unit per resource (per namespace when namespaces are named)."""
    units: list[dict[str, Any]] = []
    for res in sorted(discovered.preferred_resources(), key=lambda r: (r.group, r.kind)):
        if not res.can("list") or "/" in res.plural:
            continue
        if not selection.wants_resource(res.group, res.version, res.kind, res.namespaced):
            continue
        base = {
            "group": res.group,
            "version": res.version,
            "kind": res.kind,
            "plural": res.plural,
            "namespaced": res.namespaced,
        }
        if res.namespaced and _literal(selection.include_namespaces):
            units.extend(
                {**base, "namespace": ns}
                for ns in selection.include_namespaces
                if selection.wants_namespace(ns)
            )
        else:
            units.append({**base, "namespace": None})
    return units


def _resource(unit: dict[str, Any]) -> kube.Resource:
    return kube.Resource(
        unit["group"], unit["version"], unit["kind"], unit["plural"], unit["namespaced"], ("list",)
    )


def _api_version(unit: dict[str, Any]) -> str:
    return f"{unit['group']}/{unit['version']}" if unit["group"] else unit["version"]


class SnapshotJob(Job):
    """Snapshots and their deletion."""

    def load(self, run: Run) -> Snapshot:
        return Snapshot.objects.select_related("location", "cluster", "cluster__provider").get(
            pk=int(run.operation.subject_id or 0)
        )

    def permission(self, operation: Operation) -> str:
        if operation.kind == SnapshotOperationKind.SNAPSHOT_DELETE:
            return Action.SNAPSHOT_DELETE
        return Action.SNAPSHOT_CREATE

    # --- hooks ---------------------------------------------------------------------------

    def begin(self, run: Run) -> None:
        snapshot: Snapshot = run.subject
        if run.operation.kind == SnapshotOperationKind.SNAPSHOT and snapshot.status == SnapshotStatus.PENDING:
            snapshot.transition_to(SnapshotStatus.RUNNING)
            snapshot.save(update_fields=["status", "reason"])
            self.changed(run)

    def step(self, run: Run) -> Outcome:
        if run.operation.kind == SnapshotOperationKind.SNAPSHOT_DELETE:
            return self._delete(run)
        snapshot: Snapshot = run.subject
        if snapshot.location is None:
            raise SnapshotFailed(f"Snapshot {snapshot.name} has no storage location.")
        if snapshot.cluster is None:
            raise SnapshotFailed(f"The cluster of snapshot {snapshot.name} is gone.")
        store = store_of(snapshot.location, run.schema_name)
        state = dict(run.operation.state or {})
        if "units" not in state:
            return self._plan(run, snapshot, state)
        if state["unit"] < len(state["units"]):
            return self._take(run, snapshot, store, state)
        return self._seal(run, snapshot, store, state)

    def succeed(self, run: Run, outcome: Outcome) -> None:
        snapshot = Snapshot.objects.select_for_update().get(pk=int(run.operation.subject_id or 0))
        run.subject = snapshot
        if run.operation.kind == SnapshotOperationKind.SNAPSHOT_DELETE:
            snapshot.transition_to(SnapshotStatus.DELETED)
            snapshot.deleted_at = timezone.now()
            snapshot.save(update_fields=["status", "reason", "deleted_at"])
            self._event(run, f"snapshot {snapshot.name} deleted from its storage")
            self.changed(run)
            return
        state = run.operation.state or {}
        snapshot.transition_to(SnapshotStatus.COMPLETED)
        snapshot.object_count = int(state.get("objects") or 0)
        snapshot.raw_bytes = int(state.get("raw") or 0)
        snapshot.stored_bytes = int(state.get("stored") or 0) + int(state.get("manifest_bytes") or 0)
        snapshot.chunk_count = len(state.get("chunks") or [])
        snapshot.kinds = dict(state.get("kinds") or {})
        snapshot.conditions = list(state.get("conditions") or [])
        snapshot.kubernetes_version = str(
            (state.get("cluster") or {}).get("kubernetes_version") or snapshot.kubernetes_version
        )
        snapshot.format_version = fmt.FORMAT_VERSION
        snapshot.manifest_sha256 = str(state.get("manifest_sha256") or "")
        snapshot.completed_at = timezone.now()
        snapshot.save()
        self._event(
            run,
            f"snapshot {snapshot.name} completed: {snapshot.object_count:,} objects, "
            f"{snapshot.stored_bytes / 1e6:.1f} MB stored",
        )
        self.changed(run)

    def fail(self, run: Run, message: str) -> None:
        snapshot = Snapshot.objects.select_for_update().get(pk=int(run.operation.subject_id or 0))
        run.subject = snapshot
        if run.operation.kind == SnapshotOperationKind.SNAPSHOT_DELETE:
            snapshot.reason = f"Deletion failed: {message}"[:2000]
            snapshot.save(update_fields=["reason"])
            self._event(
                run, f"deletion of snapshot {snapshot.name} failed: {message}", level=EventLevel.ERROR
            )
            self.changed(run)
            return
        left = self._discard(run, snapshot)
        snapshot.transition_to(SnapshotStatus.FAILED, (message + left)[:2000])
        snapshot.save(update_fields=["status", "reason"])
        self._event(run, f"snapshot {snapshot.name} failed: {message}", level=EventLevel.ERROR)
        self.changed(run)

    def cancelled(self, run: Run) -> None:
        snapshot = Snapshot.objects.select_for_update().get(pk=int(run.operation.subject_id or 0))
        run.subject = snapshot
        if run.operation.kind == SnapshotOperationKind.SNAPSHOT_DELETE:
            return
        left = self._discard(run, snapshot)
        snapshot.transition_to(SnapshotStatus.CANCELLED, ("Cancelled before it completed." + left)[:2000])
        snapshot.save(update_fields=["status", "reason"])
        self._event(run, f"snapshot {snapshot.name} cancelled")
        self.changed(run)

    def note(self, run: Run, message: str, *, level: str = EventLevel.INFO) -> None:
        # Progress lines ("12,000 objects…") change every step: open pages hear of them, the
        # timeline keeps warnings (a retried attempt) and the milestones this job writes itself.
        if level != EventLevel.INFO:
            self._event(run, message, level=level)
        self.changed(run)

    def changed(self, run: Run) -> None:
        snapshot = run.subject if isinstance(run.subject, Snapshot) else self.load(run)
        snapshot_changed(run.schema_name, snapshot, operation=run.operation)

    # --- steps ---------------------------------------------------------------------------

    def _plan(self, run: Run, snapshot: Snapshot, state: dict[str, Any]) -> Outcome:
        """Discovery, the units to list, a fresh data key (kept wrapped), the cluster's facts."""
        client = cluster_client(snapshot.cluster)  # type: ignore[arg-type]
        discovered = kube.discovery(client, refresh=True)
        selection = Selection.parse(snapshot.selection or {})
        units = plan_units(discovered, selection)
        org_key = fmt.org_keys(run.schema_name)[0]
        cluster = snapshot.cluster
        assert cluster is not None
        pools = [
            {"name": p.name, "size": p.size, "count": p.count, "labels": p.labels, "taints": p.taints}
            for p in NodePool.objects.filter(cluster=cluster, removing=False).order_by("name")
        ]
        state = {
            "envelope": fmt.wrap_key(fmt.new_data_key(), org_key, snapshot_id=str(snapshot.uuid)),
            "units": units,
            "unit": 0,
            "token": "",
            "seq": 0,
            "restarts": 0,
            "chunks": [],
            "kinds": {},
            "objects": 0,
            "raw": 0,
            "stored": 0,
            "owner_uids": [],
            "conditions": [],
            "unavailable": dict(discovered.unavailable),
            "cluster": {
                "name": cluster.name,
                "kubernetes_version": discovered.git_version,
                "provider": cluster.provider.kind,
                "region": cluster.region,
                "node_pools": pools,
            },
            "started_at": timezone.now().isoformat(),
        }
        if discovered.unavailable:
            state["conditions"].append(
                {
                    "type": "Complete",
                    "status": "False",
                    "reason": "DiscoveryIncomplete",
                    "message": "Some API groups did not answer discovery and were not listed: "
                    + ", ".join(f"{gv} ({why})" for gv, why in sorted(discovered.unavailable.items())),
                }
            )
        self._save(run, state)
        self._event(run, f"snapshot {snapshot.name}: {len(units)} resource lists planned")
        return Outcome.step(f"Listing {len(units)} resources", progress=1)

    def _take(self, run: Run, snapshot: Snapshot, store: Store, state: dict[str, Any]) -> Outcome:
        """Read pages for a few seconds, write their chunks, checkpoint.

        Three things overlap: a thread reads the next page (the API server's time, and the TLS
        reads, which release the GIL) while this one encodes the current page's objects, and
        full chunks are compressed, encrypted and stored by two more threads (zlib and AES-GCM
        release the GIL too). At most PIPELINE chunks are in flight, so memory stays bounded.
        """
        data_key = fmt.unwrap_key(
            state["envelope"], fmt.org_keys(run.schema_name), snapshot_id=str(snapshot.uuid)
        )
        client = cluster_client(snapshot.cluster)  # type: ignore[arg-type]
        selection = Selection.parse(snapshot.selection or {})
        filtered = bool(selection.include_namespaces or selection.exclude_namespaces)
        page_size = int(getattr(settings, "FLOTILLA_SNAPSHOT_PAGE", kube.DEFAULT_PAGE))
        target_bytes = int(getattr(settings, "FLOTILLA_SNAPSHOT_CHUNK_BYTES", 4 << 20))
        # Several small resources fit in one step; a big one spans several steps.
        ends = time.monotonic() + float(getattr(settings, "FLOTILLA_SNAPSHOT_STEP_SECONDS", STEP_SECONDS))
        owners: set[str] = set(state["owner_uids"])
        location = snapshot.location
        assert location is not None
        with ThreadPoolExecutor(max_workers=PIPELINE, thread_name_prefix="snapshot-seal") as sealers:
            in_flight: list[Future[fmt.SealedChunk]] = []

            def store_chunk(seal: Callable[[], fmt.SealedChunk]) -> fmt.SealedChunk:
                sealed = seal()
                # A store per thread: each holds its own connection to the location.
                store_of(location, run.schema_name).put(chunk_key(snapshot, sealed.info.name), sealed.data)
                return sealed

            def collect(limit: int) -> None:
                while len(in_flight) > limit:
                    sealed = in_flight.pop(0).result()
                    state["chunks"].append(sealed.info.to_dict())
                    state["stored"] = int(state["stored"]) + sealed.info.stored_bytes

            while True:
                index = int(state["unit"])
                unit = state["units"][index]
                api_version = _api_version(unit)
                kind = unit["kind"]
                builder = fmt.ChunkBuilder(
                    str(snapshot.uuid),
                    data_key,
                    api_version=api_version,
                    kind=kind,
                    namespaced=bool(unit["namespaced"]),
                    prefix=f"{index:05d}",
                    first_seq=int(state["seq"]),
                    target_bytes=target_bytes,
                )
                # Per object, only the namespace can still be refused: the resource passed the
                # selection when it was planned, and the server applied the label selector.
                by_name = unit["group"] == "" and kind == "Namespace"
                check = filtered and (unit.get("namespace") is None) and (unit["namespaced"] or by_name)
                verdicts: dict[str, bool] = {}
                pages = kube.list_pages(
                    client,
                    _resource(unit),
                    namespace=unit.get("namespace"),
                    label_selector=None if by_name else selection.list_label_selector(),
                    limit=page_size,
                    continue_token=str(state["token"]),
                )
                finished = False
                token = str(state["token"])
                try:
                    for page, token in _prefetched(pages):
                        for obj in page.get("items") or []:
                            meta = obj.get("metadata") or {}
                            if check:
                                key = str(meta.get("name") if by_name else meta.get("namespace") or "")
                                wanted = verdicts.get(key)
                                if wanted is None:
                                    wanted = verdicts[key] = selection.wants_namespace(key)
                                if not wanted:
                                    continue
                            # A list's items carry no apiVersion or kind of their own.
                            obj["apiVersion"], obj["kind"] = api_version, kind
                            meta.pop("managedFields", None)
                            for ref in meta.get("ownerReferences") or ():
                                if ref.get("uid"):
                                    owners.add(str(ref["uid"]))
                            seal = builder.add_deferred(obj)
                            if seal is not None:
                                collect(PIPELINE)
                                in_flight.append(sealers.submit(store_chunk, seal))
                        del page
                        if not token:
                            finished = True
                            break
                        if time.monotonic() > ends:
                            break
                except kube.ContinueExpired as exc:
                    collect(0)
                    return self._restart_unit(run, snapshot, store, state, exc)
                except kube.NotFound:
                    # The resource went away between discovery and its list (a CRD deleted).
                    finished = True
                last = builder.flush_deferred()
                if last is not None:
                    in_flight.append(sealers.submit(store_chunk, last))
                collect(0)
                state["seq"] = builder.next_seq
                key = kind_key(api_version, kind)
                state["kinds"][key] = int(state["kinds"].get(key, 0)) + builder.objects
                state["objects"] = int(state["objects"]) + builder.objects
                state["raw"] = int(state["raw"]) + builder.raw_bytes
                if finished:
                    state.update(unit=index + 1, token="", seq=0, restarts=0)
                else:
                    state["token"] = token
                if not finished or int(state["unit"]) >= len(state["units"]) or time.monotonic() > ends:
                    break
        state["owner_uids"] = sorted(owners)
        self._save(run, state)
        done_units = int(state["unit"])
        progress = 2 + int(95 * done_units / max(1, len(state["units"])))
        return Outcome.step(
            f"{state['objects']:,} objects, {state['stored'] / 1e6:.1f} MB written "
            f"({done_units} of {len(state['units'])} resources)",
            progress=progress,
        )

    def _restart_unit(
        self, run: Run, snapshot: Snapshot, store: Store, state: dict[str, Any], exc: kube.ContinueExpired
    ) -> Outcome:
        """A continue token expired: list the unit again from the start (or, after
        MAX_RESTARTS, go on from the newer revision the server offers, and say so)."""
        index = int(state["unit"])
        unit = state["units"][index]
        prefix = f"{index:05d}-"
        if int(state["restarts"]) >= MAX_RESTARTS and exc.continue_token:
            state["token"] = exc.continue_token
            state["conditions"].append(
                {
                    "type": "Consistent",
                    "status": "False",
                    "reason": "ContinueExpired",
                    "message": f"The list of {unit['plural']} took longer than the API server keeps a "
                    f"revision {MAX_RESTARTS + 1} times; it was finished from a newer revision, so "
                    "objects changed meanwhile may be missing from it.",
                }
            )
            self._save(run, state)
            return Outcome.step(f"Listing {unit['plural']} again from a newer revision")
        # Drop what this unit wrote so far; its chunk names are reused from seq 0.
        dropped = [c for c in state["chunks"] if c["name"].startswith(prefix)]
        state["chunks"] = [c for c in state["chunks"] if not c["name"].startswith(prefix)]
        key = kind_key(_api_version(unit), unit["kind"])
        removed = sum(int(c["count"]) for c in dropped)
        state["kinds"][key] = max(0, int(state["kinds"].get(key, 0)) - removed)
        state["objects"] = int(state["objects"]) - removed
        state["raw"] = int(state["raw"]) - sum(int(c["raw_bytes"]) for c in dropped)
        state["stored"] = int(state["stored"]) - sum(int(c["stored_bytes"]) for c in dropped)
        state.update(token="", seq=0, restarts=int(state["restarts"]) + 1)
        self._save(run, state)
        self._event(run, f"snapshot {snapshot.name}: the list of {unit['plural']} expired; listing it again")
        return Outcome.step(f"Listing {unit['plural']} again (its continue token expired)")

    def _seal(self, run: Run, snapshot: Snapshot, store: Store, state: dict[str, Any]) -> Outcome:
        """Every unit is written: the manifest, last; stray chunks of a resumed pass removed."""
        data_key = fmt.unwrap_key(
            state["envelope"], fmt.org_keys(run.schema_name), snapshot_id=str(snapshot.uuid)
        )
        chunks = [fmt.ChunkInfo.from_dict(c) for c in state["chunks"]]
        listed = {c.name for c in chunks}
        for key in list(store.keys(f"{snapshot.storage_prefix}/chunks/")):
            if key.rsplit("/", 1)[-1] not in listed:
                store.delete(key)
        resources: dict[tuple[str, str], dict[str, Any]] = {}
        for unit in state["units"]:
            api_version = _api_version(unit)
            resources.setdefault(
                (api_version, unit["kind"]),
                {
                    "api_version": api_version,
                    "kind": unit["kind"],
                    "plural": unit["plural"],
                    "namespaced": unit["namespaced"],
                    "count": int(state["kinds"].get(kind_key(api_version, unit["kind"]), 0)),
                },
            )
        conditions = list(state["conditions"])
        if not any(c["type"] == "Consistent" for c in conditions):
            conditions.append(
                {
                    "type": "Consistent",
                    "status": "True",
                    "reason": "ListsComplete",
                    "message": "Every list was read in full at one revision per resource.",
                }
            )
        state["conditions"] = conditions
        manifest = fmt.Manifest(
            format_version=fmt.FORMAT_VERSION,
            snapshot_id=str(snapshot.uuid),
            created_at=str(state["started_at"]),
            cluster=dict(state["cluster"]),
            selection=dict(snapshot.selection or {}),
            chunks=chunks,
            kinds={k: v for k, v in state["kinds"].items() if v},
            object_count=int(state["objects"]),
            raw_bytes=int(state["raw"]),
            stored_bytes=int(state["stored"]),
            owner_uids=list(state["owner_uids"]),
            conditions=conditions,
            resources=list(resources.values()),
        )
        sealed = fmt.seal_manifest(manifest, data_key, state["envelope"])
        store.put(manifest_key(snapshot), sealed)
        # Read back: what is stored is what a restore will open.
        fmt.open_manifest(
            store.get(manifest_key(snapshot)), fmt.org_keys(run.schema_name), snapshot_id=str(snapshot.uuid)
        )
        state["manifest_sha256"] = fmt.manifest_digest(sealed)
        state["manifest_bytes"] = len(sealed)
        self._save(run, state)
        return Outcome.finished(f"{state['objects']:,} objects in {len(chunks)} chunks")

    def _delete(self, run: Run) -> Outcome:
        snapshot: Snapshot = run.subject
        if snapshot.location is not None:
            store = store_of(snapshot.location, run.schema_name)
            # The manifest first: from then on the snapshot is unreadable, whatever is left.
            store.delete(manifest_key(snapshot))
            removed = store.delete_prefix(f"{snapshot.storage_prefix}/")
            return Outcome.finished(f"{removed} objects removed from {snapshot.location.name}")
        return Outcome.finished("its storage location is gone")

    # --- helpers -------------------------------------------------------------------------

    def _discard(self, run: Run, snapshot: Snapshot) -> str:
        """Remove a snapshot's partial chunks; what to add to its reason if that failed."""
        if snapshot.location is None:
            return ""
        try:
            store_of(snapshot.location, run.schema_name).delete_prefix(f"{snapshot.storage_prefix}/")
        except (StorageUnavailable, FlotillaError, OSError) as exc:
            logger.warning("could not remove the chunks of snapshot %s: %s", snapshot.pk, exc)
            return (
                f" (its partial chunks could not be removed from {snapshot.location.name}: "
                "they are unreadable without a manifest)"
            )
        return ""

    def _save(self, run: Run, state: dict[str, Any]) -> None:
        """Checkpoint; a worker that lost its claim stops here rather than write over another's."""
        saved = Operation.objects.filter(pk=run.operation.pk, claimed_by=run.worker).update(state=state)
        if not saved:
            raise SnapshotFailed("This worker lost the operation to another one.")
        run.operation.state = state

    def _event(self, run: Run, message: str, *, level: str = EventLevel.INFO) -> None:
        with transaction.atomic():
            ClusterEvent.objects.create(
                cluster_id=run.operation.cluster_id, operation=run.operation, message=message, level=level
            )
