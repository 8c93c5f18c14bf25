"""Opening a portal page of the clusters app writes nothing: no row, no audit entry, no account."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, reverse
from django_tenants.utils import schema_context

from clusters import urls
from clusters.choices import ClusterStatus, ProviderKind
from clusters.models import App, AppRevision, Cluster, Operation, ProviderAccount
from clusters.services import apps as app_services
from clusters.services import clusters as cluster_services
from orgs.audit.models import AuditEntry
from orgs.models import Organization
from tests.clusters.helpers import local_pools, local_provider, owner_actor
from tests.factories import owner_of

pytestmark = pytest.mark.django_db

# Statements that change data; the cache table (catalogues, rate limits) and sessions are not data.
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.I)
_NOT_DATA = ("flotilla_cache", "django_session")
# A kubeconfig is a secret handed out: each download is audited on purpose (docs/permissions.md).
_AUDITED_READS = {"kubeconfig"}


def _writes(queries: list[dict[str, Any]]) -> list[str]:
    return [q["sql"] for q in queries if _WRITE.match(q["sql"]) and not any(t in q["sql"] for t in _NOT_DATA)]


def _rows(org: Organization) -> tuple[int, int]:
    with schema_context(org.schema_name):
        return AuditEntry.objects.count(), ProviderAccount.objects.count()


def _app_pages() -> set[str]:
    """The URL names of one app's pages (their `pk` is the app's)."""
    return {
        p.name
        for p in urls.urlpatterns
        if isinstance(p, URLPattern) and p.name and p.name.startswith("app_") and "pk" in p.pattern.converters
    }


def _paths(org: Organization, cluster: Cluster | None, app: App | None = None) -> list[str]:
    """Every page of clusters.urls that these objects can fill in."""
    paths = []
    with schema_context(org.schema_name):
        pool = cluster.pools.first() if cluster is not None else None
        operation = cluster.operations.first() if cluster is not None else None
    values = {
        "pk": cluster.pk if cluster else None,
        "pool_pk": pool.pk if pool else None,
        "pod": "no-such-pod",
    }
    for pattern in urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name in _AUDITED_READS:
            continue
        names = set(pattern.pattern.converters)
        kwargs: dict[str, Any] = {"org_slug": org.slug}
        if pattern.name and pattern.name.startswith("operation_"):
            kwargs["pk"] = operation.pk if operation else None
        elif pattern.name in _app_pages():
            kwargs.update({n: values[n] for n in names})
            kwargs["pk"] = app.pk if app else None
        else:
            kwargs.update({n: values[n] for n in names})
        if any(kwargs[n] is None for n in names):
            continue
        paths.append(reverse(f"clusters:{pattern.name}", kwargs=kwargs))
    return paths


def _get_all(client: Client, org: Organization, paths: list[str]) -> None:
    before = _rows(org)
    for path in paths:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path, {"provider": "local", "region": "local"})
        assert response.status_code < 500, path
        assert _writes(queries.captured_queries) == [], path
    assert _rows(org) == before


def test_no_page_writes_in_a_new_org(org_a: Organization) -> None:
    client = Client()
    client.force_login(owner_of(org_a).user)
    paths = _paths(org_a, None)
    assert {"/o/alpha/clusters/new/", "/o/alpha/clusters/providers/"} <= set(paths)
    _get_all(client, org_a, paths)
    with schema_context(org_a.schema_name):
        assert not ProviderAccount.objects.exists()


def test_no_page_of_a_cluster_writes(org_a: Organization) -> None:
    provider = local_provider(org_a)
    with schema_context(org_a.schema_name):
        cluster = cluster_services.create_cluster(
            owner_actor(org_a), name="web", provider=provider, pools=local_pools(1)
        ).cluster
    client = Client()
    client.force_login(owner_of(org_a).user)
    paths = _paths(org_a, cluster)
    assert f"/o/alpha/clusters/{cluster.pk}/" in paths
    assert len(paths) == len(urls.urlpatterns) - 1 - len(_app_pages())
    _get_all(client, org_a, paths)


def test_no_page_of_an_app_writes(org_a: Organization) -> None:
    """The apps list, the deploy form, an app's page, its live part, its edit form and a cluster's
    Apps part (the cluster is a Ready row with no control plane: the pages say it cannot be read)."""
    provider = local_provider(org_a)
    with schema_context(org_a.schema_name):
        cluster = Cluster.objects.create(
            name="web",
            provider=provider,
            region="local",
            version="1.31.4",
            status=ClusterStatus.READY,
            external_name="alpha-web",
        )
        app = app_services.deploy_app(
            owner_actor(org_a),
            cluster=cluster,
            name="shop",
            spec={"image": "nginx:1.27", "replicas": 2},
            secrets={"TOKEN": "x"},
        ).app
        app_services.scale_app(owner_actor(org_a), app, replicas=3)
    client = Client()
    client.force_login(owner_of(org_a).user)
    paths = _paths(org_a, cluster, app)
    assert {
        "/o/alpha/clusters/apps/",
        "/o/alpha/clusters/apps/new/",
        f"/o/alpha/clusters/apps/{app.pk}/",
        f"/o/alpha/clusters/apps/{app.pk}/live/",
        f"/o/alpha/clusters/apps/{app.pk}/edit/",
        f"/o/alpha/clusters/{cluster.pk}/apps/",
    } <= set(paths)
    with schema_context(org_a.schema_name):
        before = (App.objects.count(), AppRevision.objects.count(), Operation.objects.count())
    _get_all(client, org_a, paths)
    with schema_context(org_a.schema_name):
        assert (App.objects.count(), AppRevision.objects.count(), Operation.objects.count()) == before


def test_the_create_form_offers_local_and_the_create_makes_it(org_a: Organization) -> None:
    client = Client()
    client.force_login(owner_of(org_a).user)
    page = client.get("/o/alpha/clusters/new/").content.decode()
    assert '<option value="local" selected>local · Local' in page
    with schema_context(org_a.schema_name):
        assert not ProviderAccount.objects.exists()
    version = re.search(r'name="version".*?<option value="([^"]+)"', page, re.S)
    assert version
    response = client.post(
        "/o/alpha/clusters/new/",
        {
            "name": "first",
            "provider": "local",
            "region": "local",
            "version": version.group(1),
            "request_id": "",
            "pools-TOTAL_FORMS": "1",
            "pools-INITIAL_FORMS": "0",
            "pools-MIN_NUM_FORMS": "1",
            "pools-MAX_NUM_FORMS": "20",
            "pools-0-name": "default",
            "pools-0-size": "small",
            "pools-0-count": "1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    with schema_context(org_a.schema_name):
        account = ProviderAccount.objects.get()
        assert account.kind == ProviderKind.LOCAL
        assert Cluster.objects.get(name="first").provider == account
        assert AuditEntry.objects.filter(action="provider.created").count() == 1
