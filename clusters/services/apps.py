"""App writes: deploy, update, scale, restart, roll back, adopt and delete apps; delete a pod.

Every change of an app records a revision (the whole spec, its secret variables encrypted, what
changed, who, when) and an operation of the engine that applies it and follows the rollout
(clusters.services.app_jobs). A change while an earlier rollout is still going supersedes it: the
earlier one is cancelled at the end of its step and the new one starts after it. Every input is
validated the way Kubernetes validates it (clusters.workloads.spec) before anything is recorded,
so a bad value is a 400 naming the field and nothing reaches the cluster.

Secret variables' values are never audited, logged, put in task arguments or returned: only
their names are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from clusters import kube
from clusters.choices import (
    ACTIVE_OPERATION_STATUSES,
    LIVE_STATUSES,
    AppKind,
    AppOperationKind,
    AppStatus,
    ClusterStatus,
    RevisionKind,
)
from clusters.engine import runner
from clusters.models import App, AppRevision, Cluster, ClusterEvent, Operation
from clusters.permissions import Action, require
from clusters.services.app_events import app_changed
from clusters.services.workloads import app_pods, cluster_client
from clusters.workloads.adopt import spec_from_workload
from clusters.workloads.manifests import APP_LABEL
from clusters.workloads.spec import (
    AppSpec,
    parse_app_spec,
    validate_app_name,
    validate_namespace,
    validate_secrets,
)
from orgs.actors import Actor
from orgs.exceptions import Conflict, InvalidTransition, NotFound, ValidationFailed
from orgs.services.audit import record_action

SUBJECT = "app"
# The kinds of workload an app can be made from (adoption) and the API versions they are read at.
ADOPTABLE = {"Deployment": "apps/v1"}


@dataclass(frozen=True)
class AppRequested:
    """An app and the operation queued for it (`created` False on an idempotent replay)."""

    app: App
    operation: Operation
    created: bool = True


def _schema(actor: Actor) -> str:
    return actor.org.schema_name if actor.org is not None else ""


def _require_live_cluster(cluster: Cluster) -> None:
    if cluster.deleted_at is not None or cluster.status not in LIVE_STATUSES:
        label = ClusterStatus(cluster.status).label.lower()
        raise Conflict(
            f"Cluster {cluster.name} is {label}: apps are deployed once it is Ready.",
            fields={"cluster": [f"Cluster is {label}."]},
        )


def _require_changeable(app: App) -> None:
    if app.status in (AppStatus.DELETING, AppStatus.DELETED):
        raise InvalidTransition(f"App {app.name} is {AppStatus(app.status).label.lower()}.")


def _replay(idempotency_key: str) -> AppRequested | None:
    if not idempotency_key:
        return None
    operation = Operation.objects.filter(idempotency_key=idempotency_key).first()
    if operation is None:
        return None
    if operation.subject_type != SUBJECT:
        raise Conflict("This Idempotency-Key was used for another kind of request.")
    return AppRequested(
        App.objects.select_related("cluster").get(pk=int(operation.subject_id or 0)), operation, False
    )


def _checked(checks: Iterable[Callable[[], Any]]) -> list[Any]:
    """Run several validations and raise one error naming every bad field."""
    results: list[Any] = []
    fields: dict[str, list[str]] = {}
    for check in checks:
        try:
            results.append(check())
        except ValidationFailed as exc:
            for name, reasons in exc.fields.items():
                fields.setdefault(name, []).extend(reasons)
            results.append(None)
    if fields:
        summary = "; ".join(f"{name}: {reasons[0]}" for name, reasons in fields.items())
        raise ValidationFailed(f"The app is not valid: {summary}", fields=fields)
    return results


def _audit_summary(app: App, spec: AppSpec) -> dict[str, Any]:
    """What the audit log keeps of an app: never a secret's value."""
    return {
        "cluster": app.cluster.name,
        "namespace": app.namespace,
        "name": app.name,
        "image": spec.image,
        "replicas": spec.replicas,
        "secret_keys": list(spec.secret_keys),
        "revision": app.revision,
    }


def _store_secrets(values: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(values.items()))) if values else ""


def _record_revision(
    actor: Actor,
    app: App,
    kind: RevisionKind,
    spec: AppSpec,
    secrets: Mapping[str, str],
    *,
    changes: list[str],
    secrets_revision: int,
    rolled_back_to: int | None = None,
) -> AppRevision:
    """Append a revision and make it the app's desired state (saved)."""
    number = app.revision + 1
    stored = _store_secrets(secrets)
    revision = AppRevision.objects.create(
        app=app,
        number=number,
        kind=kind,
        spec=spec.to_dict(),
        secrets=stored,
        secrets_revision=secrets_revision,
        changes=changes,
        rolled_back_to=rolled_back_to,
        created_by=actor.label[:254],
    )
    app.revision = number
    app.spec = spec.to_dict()
    app.secrets = stored
    app.secrets_revision = secrets_revision
    app.desired_replicas = spec.replicas
    if app.status != AppStatus.DEPLOYING:
        app.transition_to(AppStatus.DEPLOYING)
    app.status_reason = ""
    app.save()
    return revision


def _start_operation(
    actor: Actor, app: App, kind: str, params: dict[str, Any], *, message: str, idempotency_key: str = ""
) -> Operation:
    """Record the app's operation and hand it to the engine; any earlier one still active is
    superseded (cancelled at the end of its step). Call inside the write's transaction."""
    for active in Operation.objects.select_for_update().filter(
        subject_type=SUBJECT, subject_id=app.pk, status__in=ACTIVE_OPERATION_STATUSES, cancel_requested=False
    ):
        runner.request_cancel(active, reason=f"superseded: {message}")
    operation = Operation.objects.create(
        cluster=app.cluster,
        subject_type=SUBJECT,
        subject_id=app.pk,
        kind=kind,
        params=params,
        requested_by=actor.label[:254],
        idempotency_key=idempotency_key,
        step="Queued",
    )
    event = ClusterEvent.objects.create(
        cluster=app.cluster, operation=operation, app=app, message=f"{app.name}: {message} by {actor.label}"
    )
    runner.submit(operation)
    app_changed(_schema(actor), app, operation=operation, event=event)
    return operation


def _locked(app: App) -> App:
    return App.objects.select_for_update().select_related("cluster").get(pk=app.pk)


# --- deploy, change, roll back ---------------------------------------------------------------


def deploy_app(
    actor: Actor,
    *,
    cluster: Cluster,
    name: Any,
    namespace: Any = "default",
    spec: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
    idempotency_key: str = "",
) -> AppRequested:
    """Deploy a new app from an image to a cluster (rolled out by the engine)."""
    require(actor, Action.APP_DEPLOY)
    replay = _replay(idempotency_key)
    if replay is not None:
        return replay
    given_keys = [str(k) for k in secrets] if isinstance(secrets, Mapping) else []
    # One error naming every bad field, whichever part of the request it is in.
    name, namespace, values, checked = _checked(
        [
            lambda: validate_app_name(name),
            lambda: validate_namespace(namespace),
            lambda: validate_secrets(secrets or {}, env_names=()),
            lambda: parse_app_spec(spec, secret_keys=given_keys),
        ]
    )
    values = values or {}
    checked = replace(checked, secret_keys=tuple(sorted(values)))
    try:
        with transaction.atomic():
            cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
            _require_live_cluster(cluster)
            if App.objects.filter(
                cluster=cluster, namespace=namespace, name=name, deleted_at__isnull=True
            ).exists():
                raise Conflict(
                    f"An app named {name!r} already exists in {cluster.name}/{namespace}.",
                    fields={"name": ["Taken in this namespace."]},
                )
            app = App.objects.create(
                cluster=cluster,
                namespace=namespace,
                name=name,
                kind=AppKind.DEPLOYMENT,
                spec=checked.to_dict(),
                selector={APP_LABEL: name},
                created_by=actor.label[:254],
            )
            _record_revision(
                actor,
                app,
                RevisionKind.DEPLOY,
                checked,
                values,
                changes=[f"deployed {checked.image} x {checked.replicas}"],
                secrets_revision=1 if values else 0,
            )
            record_action(actor, "app.deployed", obj=app, after=_audit_summary(app, checked))
            operation = _start_operation(
                actor,
                app,
                AppOperationKind.ROLLOUT,
                {"revision": app.revision},
                message=f"deploy of revision {app.revision} requested",
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        # Two requests raced for the name or the key: the loser is told which.
        replay = _replay(idempotency_key)
        if replay is not None:
            return replay
        raise Conflict(
            f"An app named {name!r} already exists in {cluster.name}/{namespace}.",
            fields={"name": ["Taken in this namespace."]},
        ) from None
    return AppRequested(app, operation)


def _change(
    actor: Actor,
    app: App,
    kind: RevisionKind,
    spec: AppSpec,
    secrets: Mapping[str, str],
    *,
    changes: list[str],
    secrets_revision: int | None = None,
    rolled_back_to: int | None = None,
    audit: str,
) -> AppRequested:
    """Record a new revision of a locked app and roll it out (inside the caller's transaction)."""
    before = _audit_summary(app, AppSpec.from_dict(app.spec))
    if secrets_revision is None:
        changed = dict(secrets) != app.secret_values()
        secrets_revision = app.revision + 1 if changed and secrets else app.secrets_revision
    _record_revision(
        actor,
        app,
        kind,
        spec,
        secrets,
        changes=changes,
        secrets_revision=secrets_revision,
        rolled_back_to=rolled_back_to,
    )
    record_action(
        actor, audit, obj=app, before=before, after={**_audit_summary(app, spec), "changes": changes}
    )
    operation = _start_operation(
        actor,
        app,
        AppOperationKind.ROLLOUT,
        {"revision": app.revision},
        message=f"{RevisionKind(kind).label.lower()} to revision {app.revision} requested",
    )
    return AppRequested(app, operation)


def _secret_lines(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """Changed values of secrets kept by name (additions and removals come from the spec's names)."""
    return [f"secret {key} changed" for key in sorted(set(old) & set(new)) if old[key] != new[key]]


def update_app(
    actor: Actor,
    app: App,
    *,
    changes: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
    remove_secrets: Iterable[Any] = (),
) -> AppRequested:
    """Change any field of an app (a partial spec); secrets are set by name or removed by name."""
    require(actor, Action.APP_DEPLOY)
    with transaction.atomic():
        app = _locked(app)
        _require_changeable(app)
        _require_live_cluster(app.cluster)
        current = app.secret_values()
        (given,) = _checked([lambda: validate_secrets(secrets or {}, env_names=())])
        wanted = {**current, **(given or {})}
        missing = [str(key) for key in remove_secrets if str(key) not in wanted]
        if missing:
            raise ValidationFailed.for_field(
                "remove_secrets", f"The app has no secret variable named {', '.join(missing)}."
            )
        for key in remove_secrets:
            wanted.pop(str(key), None)
        base = AppSpec.from_dict(app.spec)
        (spec,) = _checked([lambda: parse_app_spec(changes, base=base, secret_keys=wanted.keys())])
        spec = replace(spec, secret_keys=tuple(sorted(wanted)))
        lines = spec.changes_from(base) + _secret_lines(current, wanted)
        if not lines:
            raise ValidationFailed("The update changes nothing.", fields={"spec": ["Nothing would change."]})
        return _change(actor, app, RevisionKind.UPDATE, spec, wanted, changes=lines, audit="app.updated")


def scale_app(actor: Actor, app: App, *, replicas: Any) -> AppRequested:
    """Set the app's number of replicas (a revision of its own)."""
    require(actor, Action.APP_DEPLOY)
    with transaction.atomic():
        app = _locked(app)
        _require_changeable(app)
        _require_live_cluster(app.cluster)
        base = AppSpec.from_dict(app.spec)
        (spec,) = _checked(
            [lambda: parse_app_spec({"replicas": replicas}, base=base, secret_keys=base.secret_keys)]
        )
        if spec.replicas == base.replicas:
            raise ValidationFailed.for_field("replicas", f"The app already runs {base.replicas} replicas.")
        return _change(
            actor,
            app,
            RevisionKind.SCALE,
            spec,
            app.secret_values(),
            changes=spec.changes_from(base),
            audit="app.scaled",
        )


def restart_app(actor: Actor, app: App) -> AppRequested:
    """A rolling restart: every pod is replaced, a few at a time, with the same spec."""
    require(actor, Action.APP_DEPLOY)
    with transaction.atomic():
        app = _locked(app)
        _require_changeable(app)
        _require_live_cluster(app.cluster)
        base = AppSpec.from_dict(app.spec)
        spec = replace(base, restarted_at=timezone.now().isoformat(timespec="seconds"))
        return _change(
            actor,
            app,
            RevisionKind.RESTART,
            spec,
            app.secret_values(),
            changes=["rolling restart"],
            audit="app.restarted",
        )


def rollback_app(actor: Actor, app: App, *, revision: Any = None) -> AppRequested:
    """Go back to an earlier revision's spec and secrets (recorded as a new revision)."""
    require(actor, Action.APP_DEPLOY)
    with transaction.atomic():
        app = _locked(app)
        _require_changeable(app)
        _require_live_cluster(app.cluster)
        if revision is None:
            target_number = app.revision - 1
        elif isinstance(revision, int) and not isinstance(revision, bool):
            target_number = revision
        elif isinstance(revision, str) and revision.strip().isdigit():
            target_number = int(revision)
        else:
            raise ValidationFailed.for_field("revision", "Must be a revision number.")
        if target_number == app.revision:
            raise ValidationFailed.for_field("revision", f"Revision {target_number} is the current one.")
        target = AppRevision.objects.filter(app=app, number=target_number).first()
        if target is None:
            raise ValidationFailed.for_field(
                "revision", f"App {app.name} has no revision {target_number} (it has 1 to {app.revision})."
            )
        base = AppSpec.from_dict(app.spec)
        spec = AppSpec.from_dict(target.spec)
        secrets = target.secret_values()
        lines = [f"rolled back to revision {target_number}", *spec.changes_from(base)]
        lines += _secret_lines(app.secret_values(), secrets)
        return _change(
            actor,
            app,
            RevisionKind.ROLLBACK,
            spec,
            secrets,
            changes=lines,
            # The pod template is the target revision's again: Kubernetes reuses its ReplicaSet.
            secrets_revision=target.secrets_revision,
            rolled_back_to=target_number,
            audit="app.rolled_back",
        )


# --- adopt, delete ---------------------------------------------------------------------------


def adopt_workload(
    actor: Actor, cluster: Cluster, *, kind: Any = "Deployment", namespace: Any, name: Any
) -> AppRequested:
    """Make an existing workload of the cluster (one Flotilla did not create) an app it manages."""
    require(actor, Action.APP_DEPLOY)
    if kind not in ADOPTABLE:
        raise ValidationFailed.for_field(
            "kind",
            f"Only a Deployment can be adopted for now (not {kind!r}); stateful apps come with volumes.",
        )
    namespace, name = _checked([lambda: validate_namespace(namespace), lambda: validate_app_name(name)])
    _require_live_cluster(cluster)
    if App.objects.filter(cluster=cluster, namespace=namespace, name=name, deleted_at__isnull=True).exists():
        raise Conflict(
            f"{namespace}/{name} is already an app of {cluster.name}.", fields={"name": ["Already an app."]}
        )
    client = cluster_client(cluster)
    try:
        found = kube.get(client, ADOPTABLE[kind], kind, name, namespace)
    except kube.NotFound:
        raise NotFound(f"Cluster {cluster.name} has no {kind} {namespace}/{name}.") from None
    adoptable = spec_from_workload(found)
    with transaction.atomic():
        cluster = Cluster.objects.select_for_update().get(pk=cluster.pk)
        _require_live_cluster(cluster)
        if App.objects.filter(
            cluster=cluster, namespace=namespace, name=name, deleted_at__isnull=True
        ).exists():
            raise Conflict(f"{namespace}/{name} is already an app of {cluster.name}.")
        app = App.objects.create(
            cluster=cluster,
            namespace=namespace,
            name=name,
            kind=AppKind.DEPLOYMENT,
            spec=adoptable.spec.to_dict(),
            selector=dict(adoptable.selector),
            adopted=True,
            created_by=actor.label[:254],
        )
        _record_revision(
            actor,
            app,
            RevisionKind.ADOPT,
            adoptable.spec,
            {},
            changes=[
                f"adopted {kind} {namespace}/{name} ({adoptable.spec.image} x {adoptable.spec.replicas})"
            ],
            secrets_revision=0,
        )
        record_action(actor, "app.adopted", obj=app, after=_audit_summary(app, adoptable.spec))
        operation = _start_operation(
            actor,
            app,
            AppOperationKind.ROLLOUT,
            {"revision": app.revision, "adopt": True},
            message=f"adoption of {kind} {namespace}/{name} requested",
        )
    return AppRequested(app, operation)


def delete_app(actor: Actor, app: App) -> AppRequested:
    """Delete an app and everything Flotilla created for it in the cluster (and nothing else)."""
    require(actor, Action.APP_DELETE)
    with transaction.atomic():
        app = _locked(app)
        if app.status == AppStatus.DELETED:
            raise InvalidTransition(f"App {app.name} is already deleted.")
        existing = Operation.objects.filter(
            subject_type=SUBJECT,
            subject_id=app.pk,
            kind=AppOperationKind.DELETE,
            status__in=ACTIVE_OPERATION_STATUSES,
        ).first()
        if existing is not None:
            return AppRequested(app, existing, created=False)
        before = _audit_summary(app, AppSpec.from_dict(app.spec))
        if app.status != AppStatus.DELETING:
            app.transition_to(AppStatus.DELETING)
            app.save(update_fields=["status", "status_reason", "updated_at"])
        record_action(actor, "app.deleted", obj=app, before=before)
        operation = _start_operation(actor, app, AppOperationKind.DELETE, {}, message="deletion requested")
    return AppRequested(app, operation)


def delete_app_pod(actor: Actor, app: App, *, pod: str) -> None:
    """Delete one of an app's pods (its controller makes a new one); a pod that is not the
    app's is not found, whatever else runs in the namespace."""
    # Checked before the pods are read, so a viewer is refused whether the cluster answers or not.
    require(actor, Action.APP_DEPLOY)
    if pod not in {p.name for p in app_pods(actor, app)}:
        raise NotFound(f"App {app.name} has no pod {pod!r}.")
    delete_pod(actor, app.cluster, namespace=app.namespace, name=pod)


def delete_pod(actor: Actor, cluster: Cluster, *, namespace: str, name: str) -> None:
    """Delete one pod of the cluster (its controller, if any, makes a new one)."""
    require(actor, Action.APP_DEPLOY)
    _require_live_cluster(cluster)
    client = cluster_client(cluster)
    try:
        kube.delete(client, "v1", "Pod", name, namespace)
    except kube.NotFound:
        raise NotFound(f"Cluster {cluster.name} has no pod {namespace}/{name}.") from None
    record_action(actor, "pod.deleted", obj=cluster, after={"namespace": namespace, "pod": name})
