"""Each org gets a share of the host's local control planes (FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG):
one tenant cannot take every FLOTILLA_LOCAL_MAX_CLUSTERS slot. Operations are only queued here."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from clusters.models import Cluster, ProviderAccount
from clusters.services import clusters as cluster_services
from orgs.exceptions import QuotaExceeded
from orgs.models import Organization
from tests.api_checks import assert_error
from tests.clusters.helpers import local_pools, local_provider, owner_actor

pytestmark = pytest.mark.django_db
BASE = "/api/v1/clusters/"


def _create(org: Organization, name: str, provider: ProviderAccount | None = None) -> Cluster:
    with schema_context(org.schema_name):
        return cluster_services.create_cluster(
            owner_actor(org), name=name, provider=provider or local_provider(org), pools=local_pools(1)
        ).cluster


def _count(org: Organization) -> int:
    with schema_context(org.schema_name):
        return Cluster.objects.filter(deleted_at__isnull=True).count()


@override_settings(FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG=2)
def test_an_org_has_at_most_its_share_of_local_clusters(org_a: Organization, org_b: Organization) -> None:
    _create(org_a, "one")
    second = _create(org_a, "two")
    with pytest.raises(QuotaExceeded) as refused:
        _create(org_a, "three")
    assert "at most 2 local clusters" in refused.value.message
    assert "FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG" in refused.value.message
    assert refused.value.fields == {"provider": ["Local cluster limit (2) reached."]}
    assert _count(org_a) == 2  # nothing half-made
    # The share is per org: another org still has its own.
    _create(org_b, "three")
    # A deleted cluster gives its slot back.
    with schema_context(org_a.schema_name):
        Cluster.objects.filter(pk=second.pk).update(deleted_at=timezone.now())
    _create(org_a, "three")
    assert _count(org_a) == 2


@override_settings(FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG=2)
def test_simulated_cloud_clusters_count_and_real_cloud_ones_do_not(org_a: Organization) -> None:
    with schema_context(org_a.schema_name):
        simulated = ProviderAccount.objects.create(
            name="sim", kind="digitalocean", settings={"bootstrap": "local"}
        )
        real = ProviderAccount.objects.create(name="real", kind="digitalocean", settings={})
    _create(org_a, "local-one")
    with schema_context(org_a.schema_name):
        Cluster.objects.create(name="sim-one", provider=simulated, version="1.36.1", external_name="sim-1")
        Cluster.objects.create(name="real-one", provider=real, version="1.36.1", external_name="real-1")
    # Two on the host already (one local, one simulated): the real cloud cluster does not count.
    with pytest.raises(QuotaExceeded, match="at most 2 local clusters"):
        _create(org_a, "local-two")


@override_settings(FLOTILLA_LOCAL_MAX_CLUSTERS_PER_ORG=1)
def test_the_api_refuses_with_409_naming_the_limit(client_a: APIClient, org_a: Organization) -> None:
    pools = [{"name": "p", "size": "small", "count": 1}]
    assert client_a.post(BASE, {"name": "web", "pools": pools}, format="json").status_code == 202
    error = assert_error(
        client_a.post(BASE, {"name": "api", "pools": pools}, format="json"),
        409,
        code="quota_exceeded",
        field="provider",
    )
    assert "at most 1 local clusters" in error["message"]
    assert _count(org_a) == 1
