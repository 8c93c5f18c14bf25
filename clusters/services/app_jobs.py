"""App rollouts and deletions as jobs of the operations engine.

A rollout (`app_rollout`) takes two kinds of step. The first applies the revision's objects with
server-side apply as Flotilla's field manager (namespace when missing, Secret, workload, Service;
what the revision no longer has and Flotilla made is deleted) and records the workload's
generation in the operation's state. Every later step reads the controller's own status
(observedGeneration, updated/ready/available replicas, conditions) and the pods, and either
finishes (Available), fails with the controller's reason and the pods' why (a progress deadline
exceeded, a quota, a readiness check that never passes), or waits a second without holding a
worker. A worker killed between steps loses nothing: applying again is idempotent, and the state
says which step comes next.

A deletion (`app_delete`) deletes, by name, only the objects Flotilla made for the app (each
checked by its app-id annotation, so nothing of the same name that someone else made goes), then
waits until the workload is gone.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from clusters import kube
from clusters.choices import (
    APP_TRANSITIONS,
    AppOperationKind,
    AppStatus,
    EventLevel,
)
from clusters.engine.jobs import Job, Run, register_job
from clusters.engine.outcome import Outcome
from clusters.exceptions import ProviderError
from clusters.models import App, AppRevision, ClusterEvent, Operation
from clusters.permissions import Action
from clusters.services.app_events import app_changed
from clusters.services.app_status import record_replicas
from clusters.services.workloads import cluster_client, label_selector, list_pods
from clusters.workloads.adopt import takeover_patch
from clusters.workloads.manifests import APP_ID_ANNOTATION, MANAGED_BY, AppObjects, render_app
from clusters.workloads.rollout import interpret, revision_pods
from clusters.workloads.spec import AppSpec

WATCH_INTERVAL = 1.0
NAMESPACE_MANAGED = "app.kubernetes.io/managed-by"


class RolloutFailed(ProviderError):
    """The controller says the rollout cannot complete: not retried (a new revision fixes it)."""

    retryable = False


def _objects(app: App, revision: AppRevision) -> AppObjects:
    return render_app(
        app_id=app.pk,
        name=app.name,
        namespace=app.namespace,
        kind=app.kind,
        spec=AppSpec.from_dict(revision.spec),
        selector=app.selector,
        revision=revision.number,
        secrets=revision.secret_values(),
        secrets_revision=revision.secrets_revision,
    )


def _ours(obj: dict[str, Any], app: App) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations.get(APP_ID_ANNOTATION) == str(app.pk)


def _delete_if_ours(client: kube.Client, app: App, api_version: str, kind: str, name: str) -> bool:
    """Delete an object Flotilla made for this app; True when it is gone (or never was)."""
    try:
        found = kube.get(client, api_version, kind, name, app.namespace)
    except kube.NotFound:
        return True
    if not _ours(found, app):
        return True  # someone else's object of the same name: never touched
    kube.delete(client, api_version, kind, name, app.namespace, missing_ok=True)
    return False


class AppJob(Job):
    """Rollouts and deletions of one app."""

    def load(self, run: Run) -> App:
        return App.objects.select_related("cluster", "cluster__provider").get(
            pk=int(run.operation.subject_id or 0)
        )

    def permission(self, operation: Operation) -> str:
        return Action.APP_DELETE if operation.kind == AppOperationKind.DELETE else Action.APP_DEPLOY

    def _target(self, run: Run) -> AppStatus:
        return AppStatus.DELETING if run.operation.kind == AppOperationKind.DELETE else AppStatus.DEPLOYING

    def begin(self, run: Run) -> None:
        app: App = run.subject
        target = self._target(run)
        if app.status != target and target in APP_TRANSITIONS[app.status]:
            app.transition_to(target)
            app.save(update_fields=["status", "status_reason", "updated_at"])
            self.changed(run)

    def step(self, run: Run) -> Outcome:
        if run.operation.kind == AppOperationKind.DELETE:
            return self._delete(run)
        state = run.operation.state or {}
        if state.get("applied") != run.operation.params.get("revision"):
            return self._apply(run)
        return self._watch(run)

    # --- rollout ---

    def _apply(self, run: Run) -> Outcome:
        app: App = run.subject
        number = int(run.operation.params["revision"])
        revision = AppRevision.objects.get(app=app, number=number)
        client = cluster_client(app.cluster)
        owns_namespace = self._ensure_namespace(client, app)
        objects = _objects(app, revision)
        if run.operation.params.get("adopt") and not (run.operation.state or {}).get("taken_over"):
            # Server-side apply cannot drop list entries another manager owns (the old container
            # beside the app's): replace the pod's lists once, then apply.
            kube.patch(
                client,
                "apps/v1",
                "Deployment",
                app.name,
                takeover_patch(objects.workload),
                namespace=app.namespace,
            )
            self._save_state(run, taken_over=True)
        workload: dict[str, Any] = {}
        for obj in objects.all():
            # Forced: the revision is the desired state, whoever last wrote a field by hand.
            result = kube.apply(client, obj, force=True)
            if obj is objects.workload:
                workload = result
        if run.operation.params.get("adopt"):
            self._take_over(client, app, workload)
        if objects.secret is None:
            _delete_if_ours(client, app, "v1", "Secret", f"{app.name}-secrets")
        if objects.service is None:
            _delete_if_ours(client, app, "v1", "Service", app.name)
        generation = int((workload.get("metadata") or {}).get("generation") or 0)
        self._save_state(run, applied=number, generation=generation)
        if owns_namespace and not app.owns_namespace:
            App.objects.filter(pk=app.pk).update(owns_namespace=True)
        return Outcome.step(f"Applied revision {number}; waiting for the controller", progress=10)

    def _save_state(self, run: Run, **values: Any) -> None:
        """Commit the rollout's progress at once: a worker killed after it resumes from here."""
        state = {**(run.operation.state or {}), **values}
        Operation.objects.filter(pk=run.operation.pk).update(state=state)
        run.operation.state = state

    def _ensure_namespace(self, client: kube.Client, app: App) -> bool:
        """Create the app's namespace when it is missing; True when Flotilla made it."""
        try:
            found = kube.get(client, "v1", "Namespace", app.namespace)
        except kube.NotFound:
            kube.apply(
                client,
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": app.namespace, "labels": {NAMESPACE_MANAGED: MANAGED_BY}},
                },
            )
            return True
        labels = (found.get("metadata") or {}).get("labels") or {}
        return app.owns_namespace and labels.get(NAMESPACE_MANAGED) == MANAGED_BY

    def _take_over(self, client: kube.Client, app: App, workload: dict[str, Any]) -> None:
        """An adopted workload: drop every claim but Flotilla's apply, so that a field Flotilla
        stops setting is removed rather than kept alive by its original creator's ownership (or by
        the take-over patch's)."""
        meta = workload.get("metadata") or {}
        entries = [
            m
            for m in meta.get("managedFields") or []
            if m.get("manager") == kube.FIELD_MANAGER and m.get("operation") == "Apply"
        ]
        if entries and len(entries) != len(meta.get("managedFields") or []):
            kube.patch(
                client,
                "apps/v1",
                "Deployment",
                app.name,
                {"metadata": {"managedFields": entries}},
                namespace=app.namespace,
            )

    def _watch(self, run: Run) -> Outcome:
        app: App = run.subject
        client = cluster_client(app.cluster)
        workload = kube.get(client, "apps/v1", "Deployment", app.name, app.namespace)
        selector = label_selector(app.selector)
        pods = list(kube.list_items(client, ("v1", "Pod"), namespace=app.namespace, label_selector=selector))
        replica_sets = list(
            kube.list_items(
                client, ("apps/v1", "ReplicaSet"), namespace=app.namespace, label_selector=selector
            )
        )
        # Only the new revision's pods explain why it is stuck (an old pod may be fine).
        current = revision_pods(workload, replica_sets, pods)
        rollout = interpret(workload, current, generation=int(run.operation.state.get("generation") or 0))
        record_replicas(run.schema_name, app, rollout)
        if rollout.phase == "available":
            return Outcome.finished(rollout.message)
        if rollout.phase == "failed":
            raise RolloutFailed(rollout.message)
        progress = 10 + (80 * rollout.available // rollout.desired if rollout.desired else 80)
        return Outcome.wait(rollout.message, WATCH_INTERVAL, progress=min(95, progress))

    # --- deletion ---

    def _delete(self, run: Run) -> Outcome:
        app: App = run.subject
        if app.cluster.deleted_at is not None:
            return Outcome.finished("Its cluster is deleted")
        client = cluster_client(app.cluster)
        gone = _delete_if_ours(client, app, "apps/v1", "Deployment", app.name) if not app.adopted else True
        if app.adopted:
            # An adopted workload is the app: it goes too (it was checked before adoption).
            try:
                kube.delete(client, "apps/v1", "Deployment", app.name, app.namespace)
                gone = False
            except kube.NotFound:
                gone = True
        gone = _delete_if_ours(client, app, "v1", "Service", app.name) and gone
        gone = _delete_if_ours(client, app, "v1", "Secret", f"{app.name}-secrets") and gone
        if not gone:
            return Outcome.wait("Deleting the app's objects", WATCH_INTERVAL, progress=50)
        if self._namespace_is_ours_to_delete(client, app):
            kube.delete(client, "v1", "Namespace", app.namespace, missing_ok=True)
        pods = list_pods(
            app.cluster, namespace=app.namespace, selector=label_selector(app.selector), fresh=True
        )
        if pods:
            return Outcome.wait(f"Waiting for {len(pods)} pod(s) to stop", WATCH_INTERVAL, progress=80)
        return Outcome.finished("Deleted")

    def _namespace_is_ours_to_delete(self, client: kube.Client, app: App) -> bool:
        """Flotilla made the namespace for an app of this cluster (and it is still labelled so),
        and no other app of the cluster lives in it."""
        same = App.objects.filter(cluster=app.cluster, namespace=app.namespace)
        if not same.filter(owns_namespace=True).exists():
            return False
        if same.filter(deleted_at__isnull=True).exclude(pk=app.pk).exists():
            return False
        try:
            found = kube.get(client, "v1", "Namespace", app.namespace)
        except kube.NotFound:
            return False
        labels = (found.get("metadata") or {}).get("labels") or {}
        return bool(labels.get(NAMESPACE_MANAGED) == MANAGED_BY)

    # --- settling ---

    def _newer_active(self, run: Run) -> bool:
        return (
            Operation.objects.filter(
                subject_type="app", subject_id=run.operation.subject_id, pk__gt=run.operation.pk
            )
            .exclude(status__in=("succeeded", "failed", "cancelled"))
            .exists()
        )

    def succeed(self, run: Run, outcome: Outcome) -> None:
        app = (
            App.objects.select_for_update()
            .select_related("cluster")
            .get(pk=int(run.operation.subject_id or 0))
        )
        run.subject = app
        if run.operation.kind == AppOperationKind.DELETE:
            app.transition_to(AppStatus.DELETED)
            app.deleted_at = timezone.now()
            app.secrets = ""
            app.save()
            AppRevision.objects.filter(app=app).update(secrets="")
        elif not self._newer_active(run) and app.status != AppStatus.AVAILABLE:
            app.transition_to(AppStatus.AVAILABLE, "")
            app.observed_at = timezone.now()
            app.save()
        self._event(run, app, f"{app.name}: {outcome.message or 'done'}")

    def fail(self, run: Run, message: str) -> None:
        app = (
            App.objects.select_for_update()
            .select_related("cluster")
            .get(pk=int(run.operation.subject_id or 0))
        )
        run.subject = app
        if app.status in (AppStatus.DELETED,) or self._newer_active(run):
            return
        if app.status == AppStatus.FAILED or AppStatus.FAILED in APP_TRANSITIONS[app.status]:
            app.transition_to(AppStatus.FAILED, message[:2000])
            app.save(update_fields=["status", "status_reason", "updated_at"])
        self._event(run, app, f"{app.name}: failed: {message}", level=EventLevel.ERROR)

    def cancelled(self, run: Run) -> None:
        app = (
            App.objects.select_for_update()
            .select_related("cluster")
            .get(pk=int(run.operation.subject_id or 0))
        )
        run.subject = app
        if self._newer_active(run) or app.status != AppStatus.DEPLOYING:
            return  # superseded: the newer operation owns the status
        app.transition_to(
            AppStatus.DEGRADED, "The rollout was cancelled; the cluster may run an older revision."
        )
        app.save(update_fields=["status", "status_reason", "updated_at"])

    def _event(self, run: Run, app: App, message: str, *, level: str = EventLevel.INFO) -> None:
        event = ClusterEvent.objects.create(
            cluster_id=app.cluster_id, operation=run.operation, app=app, level=level, message=message[:2000]
        )
        app_changed(run.schema_name, app, operation=run.operation, event=event)

    def note(self, run: Run, message: str, *, level: str = EventLevel.INFO) -> None:
        app = run.subject if isinstance(run.subject, App) else self.load(run)
        with transaction.atomic():
            self._event(run, app, f"{app.name}: {message}", level=level)

    def changed(self, run: Run) -> None:
        app = run.subject if isinstance(run.subject, App) else self.load(run)
        app_changed(run.schema_name, app, operation=run.operation)


def register_app_jobs() -> None:
    """Register the app kinds with the engine (from ClustersConfig.ready())."""
    job = AppJob()
    for kind in AppOperationKind:
        register_job(kind.value, job, label=kind.label)
