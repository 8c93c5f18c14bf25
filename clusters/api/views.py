"""API views of the clusters app: parse, call a selector or service, serialise. Nothing else.

Writes answer 202 with the operation that carries them out (a task status resource to poll);
creates accept an `Idempotency-Key` header so a client that retries gets the same cluster.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from clusters import selectors
from clusters.api import serializers as s
from clusters.api.app_views import ClusterWorkloadsMixin
from clusters.api.headers import IDEMPOTENCY, idempotency_key
from clusters.models import Cluster, Operation, ProviderAccount
from clusters.providers import catalogue
from clusters.providers.base import Region, Size
from clusters.providers.registry import driver_classes
from clusters.services import clusters as cluster_services
from clusters.services import providers as provider_services
from orgs.api.views import OrgViewSet, actor_of
from orgs.exceptions import NotFound

STATUS_RESOURCE = {202: s.OperationSerializer}
# The kubeconfig download is a YAML document; its top level, as a client reads it.
KUBECONFIG = {
    "type": "object",
    "description": "A kubeconfig (kind Config) with the cluster's API address and admin credentials.",
    "properties": {
        "apiVersion": {"type": "string", "enum": ["v1"]},
        "kind": {"type": "string", "enum": ["Config"]},
        "clusters": {"type": "array", "items": {"type": "object"}},
        "contexts": {"type": "array", "items": {"type": "object"}},
        "users": {"type": "array", "items": {"type": "object"}},
        "current-context": {"type": "string"},
    },
    "required": ["apiVersion", "clusters", "contexts", "users"],
}


def _accepted(cluster: Cluster, operation: Operation, *, created: bool = True) -> Response:
    actor_cluster = cluster
    body = {
        "cluster": s.ClusterSerializer(actor_cluster).data,
        "operation": s.OperationSerializer(operation).data,
    }
    return Response(body, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


def _catalogue_body(regions: list[Region], sizes: list[Size], versions: list[str]) -> dict[str, Any]:
    return {
        "regions": [asdict(r) for r in regions],
        "sizes": [asdict(z) for z in sizes],
        "versions": versions,
    }


def _operation(operation: Operation) -> Response:
    return Response(s.OperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


class ProviderAccountViewSet(OrgViewSet):
    """Provider accounts: list, get, connect (validated), rotate credentials, remove; catalogues."""

    serializer_class = s.ProviderAccountSerializer

    def get_queryset(self) -> QuerySet[Any]:
        return selectors.list_provider_accounts(actor_of(self.request))

    def retrieve(self, request: Request, pk: str) -> Response:
        account = selectors.get_provider_account(actor_of(request), int(pk))
        return Response(s.ProviderAccountSerializer(account).data)

    @extend_schema(request=s.ProviderAccountCreateSerializer, responses={201: s.ProviderAccountSerializer})
    def create(self, request: Request) -> Response:
        data = s.ProviderAccountCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = provider_services.create_provider_account(
            actor_of(request),
            name=data.validated_data["name"],
            kind=data.validated_data["kind"],
            fields=data.validated_data["fields"],
        )
        return Response(s.ProviderAccountSerializer(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ProviderCredentialsSerializer, responses=s.ProviderAccountSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        actor = actor_of(request)
        account = selectors.get_provider_account(actor, int(pk))
        data = s.ProviderCredentialsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = provider_services.update_provider_credentials(
            actor, account, fields=data.validated_data["fields"]
        )
        return Response(s.ProviderAccountSerializer(account).data)

    def destroy(self, request: Request, pk: str) -> Response:
        actor = actor_of(request)
        provider_services.delete_provider_account(actor, selectors.get_provider_account(actor, int(pk)))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("region", str, description="Region whose sizes to list")],
        responses=s.CatalogueSerializer,
    )
    @action(detail=True, methods=["get"])
    def catalogue(self, request: Request, pk: str) -> Response:
        """Regions, sizes (of ?region=, default the first) and Kubernetes versions of the provider.

        Read from the provider at most once per FLOTILLA_CATALOGUE_TTL seconds; `refresh-catalogue`
        reads it again at once."""
        account = selectors.get_provider_account(actor_of(request), int(pk))
        region = request.query_params.get("region") or ""
        regions = catalogue.regions(account)
        region = region or (regions[0].id if regions else "")
        sizes = catalogue.sizes(account, region) if region else []
        return Response(_catalogue_body(regions, sizes, catalogue.versions(account)))

    @extend_schema(
        parameters=[OpenApiParameter("region", str, description="Region whose sizes to list")],
        request=None,
        responses=s.CatalogueSerializer,
    )
    @action(detail=True, methods=["post"], url_path="refresh-catalogue")
    def refresh_catalogue(self, request: Request, pk: str) -> Response:
        """Read the provider's catalogue again now (past the cache) and answer it, as `catalogue`."""
        actor = actor_of(request)
        account = selectors.get_provider_account(actor, int(pk))
        fresh = provider_services.refresh_provider_catalogue(
            actor, account, region=request.query_params.get("region") or ""
        )
        return Response(_catalogue_body(fresh.regions, fresh.sizes, fresh.versions))

    @extend_schema(responses=s.ProviderKindSerializer(many=True))
    @action(detail=False, methods=["get"], pagination_class=None)
    def kinds(self, request: Request) -> Response:
        """The kinds of provider, the capabilities each declares and the fields each needs."""
        selectors.list_provider_accounts(actor_of(request))  # permission check
        return Response(
            [
                {
                    "kind": kind,
                    "label": cls.label,
                    "provisions": cls.provisions,
                    "capabilities": list(cls.capabilities),
                    "fields": [asdict(f) for f in cls.credential_fields],
                }
                for kind, cls in driver_classes().items()
            ]
        )


class ClusterViewSet(ClusterWorkloadsMixin, OrgViewSet):
    """Clusters: list (?name=, ?status=), get, create, import, delete; pools, nodes, upgrade, kubeconfig."""

    serializer_class = s.ClusterSerializer
    filterset = s.ClusterFilters

    def get_queryset(self) -> QuerySet[Any]:
        qs = selectors.list_clusters(actor_of(self.request))
        filters = self.filters() if self.action == "list" else {}
        if filters.get("name"):
            qs = qs.filter(name=filters["name"])
        if filters.get("status"):
            qs = qs.filter(status=filters["status"])
        return qs

    def _cluster(self, request: Request, pk: str) -> Cluster:
        return selectors.get_cluster(actor_of(request), int(pk))

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.ClusterSerializer(self._cluster(request, pk)).data)

    @extend_schema(
        request=s.ClusterCreateSerializer,
        responses={202: s.ClusterAccepted, 200: s.ClusterAccepted},
        parameters=[IDEMPOTENCY],
    )
    def create(self, request: Request) -> Response:
        actor = actor_of(request)
        data = s.ClusterCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        provider = _provider(actor, data.validated_data["provider"])
        requested = cluster_services.create_cluster(
            actor,
            name=data.validated_data["name"],
            provider=provider,
            region=data.validated_data["region"],
            version=data.validated_data["version"] or None,
            pools=[dict(p) for p in data.validated_data["pools"]],
            idempotency_key=idempotency_key(request),
        )
        cluster = selectors.get_cluster(actor, requested.cluster.pk)
        return _accepted(cluster, requested.operation, created=requested.created)

    @extend_schema(
        request=s.ClusterImportSerializer,
        responses={202: s.ClusterAccepted, 200: s.ClusterAccepted},
        parameters=[IDEMPOTENCY],
    )
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_(self, request: Request) -> Response:
        """Import a running cluster by kubeconfig.

        The kubeconfig's shape and the outbound policy for its server are checked here (400 naming
        `kubeconfig`, nothing saved); the import operation reaches the cluster from a worker and
        leaves it ready, or in error with the reason.
        """
        actor = actor_of(request)
        data = s.ClusterImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        requested = cluster_services.import_cluster(
            actor,
            name=data.validated_data["name"],
            kubeconfig=data.validated_data["kubeconfig"],
            context=data.validated_data["context"] or None,
            idempotency_key=idempotency_key(request),
        )
        cluster = selectors.get_cluster(actor, requested.cluster.pk)
        return _accepted(cluster, requested.operation, created=requested.created)

    @extend_schema(responses=STATUS_RESOURCE)
    def destroy(self, request: Request, pk: str) -> Response:
        actor = actor_of(request)
        return _operation(cluster_services.delete_cluster(actor, self._cluster(request, pk)))

    @extend_schema(request=s.UpgradeSerializer, responses=STATUS_RESOURCE)
    @action(detail=True, methods=["post"])
    def upgrade(self, request: Request, pk: str) -> Response:
        """Move the cluster to another Kubernetes version."""
        actor = actor_of(request)
        data = s.UpgradeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cluster = self._cluster(request, pk)
        return _operation(
            cluster_services.upgrade_cluster(actor, cluster, version=data.validated_data["version"])
        )

    @extend_schema(responses={(200, "application/yaml"): KUBECONFIG})
    @action(detail=True, methods=["get"])
    def kubeconfig(self, request: Request, pk: str) -> HttpResponse:
        """The admin kubeconfig (members and up; every download is audited)."""
        cluster = self._cluster(request, pk)
        text = cluster_services.download_kubeconfig(actor_of(request), cluster)
        response = HttpResponse(text, content_type="application/yaml")
        response["Content-Disposition"] = f'attachment; filename="{cluster.name}.kubeconfig.yaml"'
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(responses=s.NodeSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def nodes(self, request: Request, pk: str) -> Response:
        """Nodes as last observed."""
        actor = actor_of(request)
        nodes = selectors.list_nodes(actor, self._cluster(request, pk))
        return Response(s.NodeSerializer(nodes, many=True).data)

    @extend_schema(responses=s.ClusterEventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def events(self, request: Request, pk: str) -> Response:
        """The newest 100 lines of the cluster's timeline."""
        actor = actor_of(request)
        events = selectors.cluster_events(actor, self._cluster(request, pk))
        return Response(s.ClusterEventSerializer(events, many=True).data)

    @extend_schema(methods=["GET"], responses=s.NodePoolSerializer(many=True))
    @extend_schema(methods=["POST"], request=s.PoolInputSerializer, responses=STATUS_RESOURCE)
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def pools(self, request: Request, pk: str) -> Response:
        """List the pools, or add one."""
        actor = actor_of(request)
        cluster = self._cluster(request, pk)
        if request.method == "GET":
            return Response(s.NodePoolSerializer(cluster.pools.all(), many=True).data)
        data = s.PoolInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _operation(cluster_services.add_node_pool(actor, cluster, pool=dict(data.validated_data)))

    @extend_schema(methods=["PATCH"], request=s.ScaleSerializer, responses=STATUS_RESOURCE)
    @extend_schema(methods=["DELETE"], responses=STATUS_RESOURCE)
    @action(detail=True, methods=["patch", "delete"], url_path="pools/<int:pool_id>")
    def pool(self, request: Request, pk: str, pool_id: str) -> Response:
        """Scale a pool (PATCH {"count": n}) or remove it (DELETE)."""
        actor = actor_of(request)
        cluster = self._cluster(request, pk)
        pool = selectors.get_pool(actor, cluster, int(pool_id))
        if request.method == "DELETE":
            return _operation(cluster_services.remove_node_pool(actor, cluster, pool))
        data = s.ScaleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _operation(
            cluster_services.scale_node_pool(actor, cluster, pool, count=data.validated_data["count"])
        )


class OperationViewSet(OrgViewSet):
    """Operations (task status resources): list (?cluster=, ?active=), get, cancel, retry."""

    serializer_class = s.OperationSerializer
    filterset = s.OperationFilters

    def get_queryset(self) -> QuerySet[Any]:
        actor = actor_of(self.request)
        qs = selectors.list_operations(actor)
        filters = self.filters() if self.action == "list" else {}
        if filters.get("cluster"):
            qs = qs.filter(cluster_id=filters["cluster"])
        if filters.get("active"):
            qs = qs.filter(status__in=["queued", "running"])
        return qs

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.OperationSerializer(selectors.get_operation(actor_of(request), int(pk))).data)

    @extend_schema(request=None, responses=s.OperationSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """Cancel: a queued operation at once, a running one after its current step."""
        actor = actor_of(request)
        operation = cluster_services.cancel_operation(actor, selectors.get_operation(actor, int(pk)))
        return Response(s.OperationSerializer(operation).data)

    @extend_schema(request=None, responses=STATUS_RESOURCE)
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        """Run a failed or cancelled operation again."""
        actor = actor_of(request)
        return _operation(cluster_services.retry_operation(actor, selectors.get_operation(actor, int(pk))))


def _provider(actor: Any, ref: str) -> ProviderAccount:
    """A provider account by name or id; the org's local one when none is named."""
    if not ref:
        return provider_services.ensure_local_provider(actor)
    accounts = selectors.list_provider_accounts(actor)
    account = accounts.filter(pk=int(ref)).first() if ref.isdigit() else accounts.filter(name=ref).first()
    if account is None:
        raise NotFound(f"No provider account {ref!r}.")
    return account
