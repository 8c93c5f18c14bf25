"""What the cluster says about apps, kept on each app row (the cache every list reads).

`record_replicas` is called by a rollout on each of its steps; `observe_apps` by the cluster's
periodic health refresh (clusters.services.health): one list of Flotilla's Deployments across
the cluster, whatever the number of apps, and the settled apps move between Available and
Degraded with a timeline line when that changes. No list page or API list calls a cluster.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from clusters import kube
from clusters.choices import ACTIVE_OPERATION_STATUSES, AppStatus, EventLevel
from clusters.models import App, Cluster, ClusterEvent, Operation
from clusters.services.app_events import app_changed
from clusters.workloads.manifests import APP_ID_ANNOTATION, MANAGED_BY
from clusters.workloads.rollout import Rollout, interpret


def _counts(rollout: Rollout) -> dict[str, int]:
    return {
        "desired_replicas": rollout.desired,
        "updated_replicas": rollout.updated,
        "ready_replicas": rollout.ready,
        "available_replicas": rollout.available,
    }


def record_replicas(schema_name: str, app: App, rollout: Rollout) -> None:
    """Store the replica counts a rollout step just read (and tell open pages when they moved)."""
    counts = _counts(rollout)
    moved = any(getattr(app, name) != value for name, value in counts.items())
    App.objects.filter(pk=app.pk).update(**counts, observed_at=timezone.now())
    for name, value in counts.items():
        setattr(app, name, value)
    if moved:
        app_changed(schema_name, app)


def observe_apps(schema_name: str, cluster: Cluster, client: kube.Client) -> int:
    """Refresh every live app of the cluster from one list of its Deployments; returns how many moved."""
    apps = {
        a.pk: a
        for a in App.objects.filter(cluster=cluster, deleted_at__isnull=True).exclude(
            status=AppStatus.DELETING
        )
    }
    if not apps:
        return 0
    seen: dict[int, dict[str, Any]] = {}
    for obj in kube.list_items(
        client, ("apps/v1", "Deployment"), label_selector=f"app.kubernetes.io/managed-by={MANAGED_BY}"
    ):
        value = ((obj.get("metadata") or {}).get("annotations") or {}).get(APP_ID_ANNOTATION, "")
        if value.isdigit() and int(value) in apps:
            seen[int(value)] = obj
    busy = set(
        Operation.objects.filter(
            subject_type="app", subject_id__in=list(apps), status__in=ACTIVE_OPERATION_STATUSES
        ).values_list("subject_id", flat=True)
    )
    moved = 0
    now = timezone.now()
    for app_id, app in apps.items():
        found = seen.get(app_id)
        if found is None:
            if app.status in (AppStatus.PENDING, AppStatus.DEPLOYING) or app_id in busy:
                continue
            rollout = Rollout(
                "failed", "Its workload is missing from the cluster.", app.desired_replicas, 0, 0, 0
            )
        else:
            generation = int((found.get("metadata") or {}).get("generation") or 0)
            rollout = interpret(found, [], generation=generation)
        counts = _counts(rollout)
        with transaction.atomic():
            locked = App.objects.select_for_update().get(pk=app_id)
            changed = any(getattr(locked, name) != value for name, value in counts.items())
            for name, value in counts.items():
                setattr(locked, name, value)
            locked.observed_at = now
            target = _settled_status(locked, rollout, busy=app_id in busy)
            event = None
            if target is not None and target != locked.status:
                locked.transition_to(target, "" if target == AppStatus.AVAILABLE else rollout.message)
                level = EventLevel.INFO if target == AppStatus.AVAILABLE else EventLevel.WARNING
                event = ClusterEvent.objects.create(
                    cluster=cluster,
                    app=locked,
                    level=level,
                    message=f"{locked.name}: {AppStatus(target).label}"
                    + ("" if target == AppStatus.AVAILABLE else f" ({rollout.message})"),
                )
                changed = True
            locked.save()
            if changed:
                moved += 1
                app_changed(schema_name, locked, event=event)
    return moved


def _settled_status(app: App, rollout: Rollout, *, busy: bool) -> str | None:
    """Available or Degraded for an app no rollout is working on; None leaves the status alone."""
    if busy or app.status not in (AppStatus.AVAILABLE, AppStatus.DEGRADED):
        return None
    return AppStatus.AVAILABLE if rollout.phase == "available" else AppStatus.DEGRADED
