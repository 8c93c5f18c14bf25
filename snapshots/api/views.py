"""API views of storage locations, snapshots and restores: parse, call the services, serialise.

Snapshots and restores answer 202 with the object and its operation (poll
/api/v1/clusters/operations/{id}/ or the object itself); creates accept an `Idempotency-Key`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clusters import selectors as cluster_selectors
from clusters.api.headers import IDEMPOTENCY, idempotency_key
from orgs.api.views import OrgViewSet, actor_of
from snapshots import selectors
from snapshots.api import serializers as s
from snapshots.models import Restore, Snapshot
from snapshots.services import locations as location_services
from snapshots.services import restores as restore_services
from snapshots.services import snapshots as snapshot_services


def _with_operations(objects: Iterable[Snapshot | Restore]) -> list[Any]:
    """Each object with its newest operation (one query for a page)."""
    listed = list(objects)
    found = selectors.operations_by_subject([getattr(o, "last_operation_id", None) for o in listed])
    for obj in listed:
        obj.operation = found.get(obj.pk)  # type: ignore[union-attr]
    return listed


def snapshot_body(actor: Any, snapshot_id: int) -> dict[str, Any]:
    """A snapshot as the API shows it (with its newest operation)."""
    snapshot = _with_operations([selectors.get_snapshot(actor, snapshot_id)])[0]
    return dict(s.SnapshotSerializer(snapshot).data)


def restore_body(actor: Any, restore_id: int) -> dict[str, Any]:
    """A restore as the API shows it (with its newest operation)."""
    restore = _with_operations([selectors.get_restore(actor, restore_id)])[0]
    return dict(s.RestoreSerializer(restore).data)


class LocationViewSet(OrgViewSet):
    """Storage locations: list, get, add, change, delete, check again."""

    serializer_class = s.LocationSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.list_locations(actor_of(self.request))

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.LocationSerializer(selectors.get_location(actor_of(request), int(pk))).data)

    @extend_schema(request=s.LocationWriteSerializer, responses={201: s.LocationSerializer})
    def create(self, request: Request) -> Response:
        """Add a location; it is checked with a small write and delete before it is saved."""
        actor = actor_of(request)
        data = s.LocationWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        made = location_services.create_location(actor, dict(data.validated_data))
        return Response(
            s.LocationSerializer(selectors.get_location(actor, made.pk)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=s.LocationWriteSerializer, responses=s.LocationSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change a location (a change of where it connects is checked before it is saved)."""
        actor = actor_of(request)
        data = s.LocationWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        location_services.update_location(
            actor, selectors.get_location(actor, int(pk)), dict(data.validated_data)
        )
        return Response(s.LocationSerializer(selectors.get_location(actor, int(pk))).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        """Remove a location that holds no snapshot (409 while it does)."""
        actor = actor_of(request)
        location_services.delete_location(actor, selectors.get_location(actor, int(pk)))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=s.LocationSerializer)
    @action(detail=True, methods=["post"])
    def check(self, request: Request, pk: str) -> Response:
        """Check the location again; `check_error` says why it failed (200 either way)."""
        actor = actor_of(request)
        location_services.check_location(actor, selectors.get_location(actor, int(pk)))
        return Response(s.LocationSerializer(selectors.get_location(actor, int(pk))).data)


class SnapshotViewSet(OrgViewSet):
    """Snapshots: list (?cluster=, ?status=, ?name=, ?location=), get, take, delete."""

    serializer_class = s.SnapshotSerializer
    filterset = s.SnapshotFilters

    def get_queryset(self) -> QuerySet[Any]:
        qs = selectors.list_snapshots(actor_of(self.request))
        filters = self.filters() if self.action == "list" else {}
        for key, column in (
            ("cluster", "cluster_id"),
            ("status", "status"),
            ("name", "name"),
            ("location", "location_id"),
        ):
            if filters.get(key):
                qs = qs.filter(**{column: filters[key]})
        return qs

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        return self.get_paginated_response(s.SnapshotSerializer(_with_operations(page), many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(snapshot_body(actor_of(request), int(pk)))

    @extend_schema(
        request=s.SnapshotCreateSerializer,
        responses={202: s.SnapshotSerializer, 200: s.SnapshotSerializer},
        parameters=[IDEMPOTENCY],
    )
    def create(self, request: Request) -> Response:
        """Take a snapshot of a cluster (or a selection of it) on the operations engine."""
        actor = actor_of(request)
        data = s.SnapshotCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given = dict(data.validated_data)
        cluster = cluster_selectors.get_cluster(actor, given["cluster"])
        location = selectors.get_location(actor, given["location"]) if given.get("location") else None
        requested = snapshot_services.create_snapshot(
            actor,
            cluster,
            name=given.get("name", ""),
            location=location,
            selection=given.get("selection"),
            idempotency_key=idempotency_key(request),
        )
        return Response(
            snapshot_body(actor, requested.snapshot.pk),
            status=status.HTTP_202_ACCEPTED if requested.created else status.HTTP_200_OK,
        )

    @extend_schema(responses={202: s.SnapshotSerializer, 200: s.SnapshotSerializer})
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete the snapshot's objects from its storage (200 when already being deleted)."""
        actor = actor_of(request)
        requested = snapshot_services.delete_snapshot(actor, selectors.get_snapshot(actor, int(pk)))
        return Response(
            snapshot_body(actor, requested.snapshot.pk),
            status=status.HTTP_202_ACCEPTED if requested.created else status.HTTP_200_OK,
        )


class RestoreViewSet(OrgViewSet):
    """Restores and previews: list (?snapshot=, ?target=, ?status=, ?mode=), get, start, the
    per-object report, and confirming a preview."""

    serializer_class = s.RestoreSerializer
    filterset = s.RestoreFilters

    def get_queryset(self) -> QuerySet[Any]:
        qs = selectors.list_restores(actor_of(self.request))
        filters = self.filters() if self.action == "list" else {}
        for key, column in (
            ("snapshot", "snapshot_id"),
            ("target", "target_id"),
            ("status", "status"),
            ("mode", "mode"),
        ):
            if filters.get(key):
                qs = qs.filter(**{column: filters[key]})
        return qs

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []
        return self.get_paginated_response(s.RestoreSerializer(_with_operations(page), many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(restore_body(actor_of(request), int(pk)))

    @extend_schema(
        request=s.RestoreCreateSerializer,
        responses={202: s.RestoreSerializer, 200: s.RestoreSerializer},
        parameters=[IDEMPOTENCY],
    )
    def create(self, request: Request) -> Response:
        """Restore a completed snapshot into one of the org's clusters, or preview it (`mode`)."""
        actor = actor_of(request)
        data = s.RestoreCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given = dict(data.validated_data)
        snapshot = selectors.get_snapshot(actor, given["snapshot"], include_deleted=False)
        target = cluster_selectors.get_cluster(actor, given["target"])
        requested = restore_services.start_restore(
            actor,
            snapshot,
            target,
            mode=given.get("mode", "restore"),
            options=given.get("options"),
            idempotency_key=idempotency_key(request),
        )
        return Response(
            restore_body(actor, requested.restore.pk),
            status=status.HTTP_202_ACCEPTED if requested.created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=None, responses={202: s.RestoreSerializer, 200: s.RestoreSerializer}, parameters=[IDEMPOTENCY]
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str) -> Response:
        """Start the restore a completed preview showed (same snapshot, target and options)."""
        actor = actor_of(request)
        requested = restore_services.confirm_preview(
            actor, selectors.get_restore(actor, int(pk)), idempotency_key=idempotency_key(request)
        )
        return Response(
            restore_body(actor, requested.restore.pk),
            status=status.HTTP_202_ACCEPTED if requested.created else status.HTTP_200_OK,
        )

    @extend_schema(responses=s.RestoreItemSerializer(many=True), parameters=[s.RestoreItemFilters])
    @action(detail=True, methods=["get"])
    def items(self, request: Request, pk: str) -> Response:
        """The per-object report, in restore order (?result=, ?action=, ?kind=, ?namespace=)."""
        actor = actor_of(request)
        data = s.RestoreItemFilters(data=request.query_params.dict())
        data.is_valid(raise_exception=True)
        qs = selectors.restore_items(actor, selectors.get_restore(actor, int(pk)))
        for key, value in data.validated_data.items():
            if value:
                qs = qs.filter(**{key: value})
        page = self.paginate_queryset(qs) or []
        return self.get_paginated_response(s.RestoreItemSerializer(page, many=True).data)
