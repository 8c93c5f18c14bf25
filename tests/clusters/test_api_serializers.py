"""The clusters API's fast read serializers answer exactly what DRF's generic path would."""

from __future__ import annotations

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from rest_framework import serializers

from clusters import selectors
from clusters.api import serializers as s
from clusters.models import Cluster, Node, NodePool, Operation, ProviderAccount
from orgs.models import Organization
from tests.clusters.helpers import owner_actor


def _generic(serializer: serializers.ModelSerializer, instance: object) -> dict[str, object]:  # type: ignore[type-arg]
    return dict(serializers.ModelSerializer.to_representation(serializer, instance))


@pytest.mark.django_db
def test_fast_paths_equal_the_generic_ones(org_a: Organization) -> None:
    with schema_context(org_a.schema_name):
        account = ProviderAccount.objects.create(name="imported", kind="existing")
        cluster = Cluster.objects.create(
            name="web",
            provider=account,
            region="eu",
            version="1.36.1",
            status="updating",
            external_name="fast-web",
            conditions=[{"type": "Ready", "status": "False", "reason": "Scaling", "message": "2/3"}],
            health_checked_at=timezone.now(),
            deleted_at=None,
        )
        pool = NodePool.objects.create(
            cluster=cluster, name="p0", size="small", count=3, labels={"a": "b"}, taints=[{"key": "k"}]
        )
        Node.objects.create(
            cluster=cluster, pool_name="p0", name="n0", ready=True, observed_at=timezone.now()
        )
        operation = Operation.objects.create(
            cluster=cluster,
            kind="scale",
            status="running",
            params={"pool": "p0"},
            step="Adding nodes",
            progress=40,
            requested_by="owner@example.com",
            started_at=timezone.now(),
        )
        loaded = selectors.get_cluster(owner_actor(org_a), cluster.pk)

        assert s.NodePoolSerializer(pool).data == _generic(s.NodePoolSerializer(), pool)
        assert s.OperationSerializer(operation).data == _generic(s.OperationSerializer(), operation)
        fast = s.ClusterSerializer(loaded).data
        assert fast == _generic(s.ClusterSerializer(), loaded)
        assert fast["active_operation"]["id"] == operation.pk and fast["nodes_total"] == 1
        # Every declared field is answered, and nothing else.
        assert set(fast) == set(s.ClusterSerializer().fields)
        assert set(fast["pools"][0]) == set(s.NodePoolSerializer().fields)
        assert set(fast["active_operation"]) == set(s.OperationSerializer().fields)
