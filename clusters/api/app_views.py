"""API views of apps, and of the workloads and pods of a cluster: parse, call, serialise.

Changes answer 202 with the app and the operation that rolls it out; deploys accept an
`Idempotency-Key` header. Pod reads come from the cluster through a short cache
(clusters.services.workloads); app lists read only the database.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clusters import selectors
from clusters.api import app_serializers as a
from clusters.api.headers import IDEMPOTENCY, idempotency_key
from clusters.api.serializers import OperationSerializer
from clusters.models import App
from clusters.services import apps as app_services
from clusters.services import workloads
from clusters.workloads.spec import SPEC_KEYS
from orgs.api.views import OrgViewSet, actor_of
from orgs.exceptions import ValidationFailed

ACCEPTED = {202: a.AppAccepted}


def _spec_of(data: dict[str, Any]) -> dict[str, Any]:
    # The request's own keys (cluster, name, secrets...) are not the spec's.
    return {key: value for key, value in data.items() if key in SPEC_KEYS}


def _secrets_of(data: dict[str, Any]) -> dict[str, Any]:
    secrets = data.get("secrets")
    if secrets is None:
        return {}
    if not isinstance(secrets, dict):
        raise ValidationFailed.for_field("secrets", "Must be an object {NAME: value}.")
    return secrets


def app_body(app: App) -> dict[str, Any]:
    """An app as the API shows it (with its newest operation)."""
    return dict(a.AppSerializer(app, context={"operations": selectors.last_operations([app])}).data)


def _accepted(actor: Any, requested: app_services.AppRequested) -> Response:
    app = selectors.get_app(actor, requested.app.pk)
    body = {"app": app_body(app), "operation": OperationSerializer(requested.operation).data}
    return Response(body, status=status.HTTP_202_ACCEPTED if requested.created else status.HTTP_200_OK)


class AppViewSet(OrgViewSet):
    """Apps: list (?cluster=, ?namespace=, ?name=, ?status=), get, deploy, update, delete; scale,
    restart, roll back; revisions; pods."""

    serializer_class = a.AppSerializer
    filterset = a.AppFilters

    def get_queryset(self) -> QuerySet[Any]:
        qs = selectors.list_apps(actor_of(self.request))
        filters = self.filters() if self.action == "list" else {}
        if filters.get("cluster"):
            qs = qs.filter(cluster_id=filters["cluster"])
        if filters.get("namespace"):
            qs = qs.filter(namespace=filters["namespace"])
        if filters.get("name"):
            qs = qs.filter(name=filters["name"])
        if filters.get("status"):
            qs = qs.filter(status=filters["status"])
        return qs

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        context = {"operations": selectors.last_operations(page)}
        return self.get_paginated_response(a.AppSerializer(page, many=True, context=context).data)

    def _app(self, request: Request, pk: str) -> App:
        return selectors.get_app(actor_of(request), int(pk))

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(app_body(self._app(request, pk)))

    @extend_schema(
        request=a.AppCreateSerializer,
        responses={202: a.AppAccepted, 200: a.AppAccepted},
        parameters=[IDEMPOTENCY],
    )
    def create(self, request: Request) -> Response:
        """Deploy an app from an image to a cluster; it is rolled out by an operation."""
        actor = actor_of(request)
        data = a.AppCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given = dict(data.validated_data)
        cluster = selectors.get_cluster(actor, given["cluster"])
        requested = app_services.deploy_app(
            actor,
            cluster=cluster,
            name=given.get("name"),
            namespace=given.get("namespace", "default"),
            spec=_spec_of(given),
            secrets=_secrets_of(given),
            idempotency_key=idempotency_key(request),
        )
        return _accepted(actor, requested)

    @extend_schema(request=a.AppUpdateSerializer, responses=ACCEPTED)
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change any field of the app (only those given); a new revision is rolled out."""
        actor = actor_of(request)
        data = a.AppUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given = dict(data.validated_data)
        remove = given.get("remove_secrets") or []
        if not isinstance(remove, list):
            raise ValidationFailed.for_field("remove_secrets", "Must be a list of names.")
        requested = app_services.update_app(
            actor,
            self._app(request, pk),
            changes=_spec_of(given),
            secrets=_secrets_of(given),
            remove_secrets=remove,
        )
        return _accepted(actor, requested)

    @extend_schema(responses={202: a.AppAccepted, 200: a.AppAccepted})
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete the app and everything Flotilla made for it in the cluster (200 with the
        deletion already under way when asked again)."""
        actor = actor_of(request)
        return _accepted(actor, app_services.delete_app(actor, self._app(request, pk)))

    @extend_schema(request=a.AppScaleSerializer, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def scale(self, request: Request, pk: str) -> Response:
        """Set the number of replicas."""
        actor = actor_of(request)
        data = a.AppScaleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        requested = app_services.scale_app(
            actor, self._app(request, pk), replicas=data.validated_data["replicas"]
        )
        return _accepted(actor, requested)

    @extend_schema(request=a.AppRestartSerializer, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def restart(self, request: Request, pk: str) -> Response:
        """A rolling restart of every pod."""
        actor = actor_of(request)
        a.AppRestartSerializer(data=request.data).is_valid(raise_exception=True)
        return _accepted(actor, app_services.restart_app(actor, self._app(request, pk)))

    @extend_schema(request=a.AppRollbackSerializer, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str) -> Response:
        """Go back to an earlier revision (default: the previous one)."""
        actor = actor_of(request)
        data = a.AppRollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        requested = app_services.rollback_app(
            actor, self._app(request, pk), revision=data.validated_data.get("revision")
        )
        return _accepted(actor, requested)

    @extend_schema(responses=a.RevisionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def revisions(self, request: Request, pk: str) -> Response:
        """Every revision, newest first."""
        actor = actor_of(request)
        app = self._app(request, pk)
        revisions = selectors.app_revisions(actor, app)
        return Response(a.RevisionSerializer(revisions, many=True, context={"current": app.revision}).data)

    @extend_schema(responses=a.PodSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def pods(self, request: Request, pk: str) -> Response:
        """The app's pods as the cluster reports them (at most a few seconds old)."""
        actor = actor_of(request)
        return Response(a.PodSerializer(workloads.app_pods(actor, self._app(request, pk)), many=True).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"], url_path="pods/<str:pod>/delete")
    def delete_pod(self, request: Request, pk: str, pod: str) -> Response:
        """Delete one of the app's pods (its controller makes a new one)."""
        actor = actor_of(request)
        app = self._app(request, pk)
        app_services.delete_app_pod(actor, app, pod=pod)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ClusterWorkloadsMixin:
    """The workloads of a cluster (its `workloads`, `workloads/adopt` and `pods/delete` actions)."""

    @extend_schema(responses=a.WorkloadSerializer(many=True), parameters=[a.NAMESPACE_PARAMETER])
    @action(detail=True, methods=["get"], pagination_class=None)
    def workloads(self, request: Request, pk: str) -> Response:
        """Every Deployment, StatefulSet and DaemonSet of the cluster with its pods, Flotilla's or not."""
        actor = actor_of(request)
        cluster = selectors.get_cluster(actor, int(pk))
        namespace = (request.query_params.get("namespace") or "").strip() or None
        found = workloads.cluster_workloads(actor, cluster, namespace=namespace)
        return Response(a.WorkloadSerializer(found, many=True).data)

    @extend_schema(request=a.AdoptSerializer, responses=ACCEPTED)
    @action(detail=True, methods=["post"], url_path="workloads/adopt", url_name="adopt")
    def adopt(self, request: Request, pk: str) -> Response:
        """Make a Deployment of the cluster that Flotilla did not create an app it manages."""
        actor = actor_of(request)
        cluster = selectors.get_cluster(actor, int(pk))
        data = a.AdoptSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        requested = app_services.adopt_workload(
            actor,
            cluster,
            kind=data.validated_data["kind"],
            namespace=data.validated_data["namespace"],
            name=data.validated_data["name"],
        )
        return _accepted(actor, requested)

    @extend_schema(request=a.PodRefSerializer, responses={204: None})
    @action(detail=True, methods=["post"], url_path="pods/delete", url_name="delete-pod")
    def delete_pod(self, request: Request, pk: str) -> Response:
        """Delete a pod of the cluster (its controller, if any, makes a new one)."""
        actor = actor_of(request)
        cluster = selectors.get_cluster(actor, int(pk))
        data = a.PodRefSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        app_services.delete_pod(
            actor, cluster, namespace=data.validated_data["namespace"], name=data.validated_data["name"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
