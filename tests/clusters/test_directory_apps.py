"""The staff directory's apps: entries kept in step with the org schemas (sync, rebuild, isolation),
the staff list across orgs (staff only, a fixed query count), the tenant app admin page (never a
secret value), and apps' operations kept apart from a cluster's "active operation".

Clusters and apps are made as rows here (no local Kubernetes binaries needed): the directory reads
rows, whichever service wrote them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from clusters.choices import (
    AppKind,
    AppOperationKind,
    AppStatus,
    ClusterStatus,
    OperationKind,
    OperationStatus,
    RevisionKind,
)
from clusters.directory import services as directory
from clusters.directory.models import AppEntry, ClusterEntry, OperationEntry
from clusters.directory.store import upsert
from clusters.models import App, AppRevision, Cluster, Operation
from clusters.services import apps as app_services
from clusters.services.app_events import app_changed
from orgs.choices import Role
from orgs.models import Organization
from tests.clusters.helpers import local_provider, owner_actor
from tests.factories import add_member, make_org, make_user, owner_of

pytestmark = pytest.mark.django_db

APPS = "/admin/directory/appentry/"
OPERATIONS = "/admin/directory/operationentry/"
SECRET = "s3cr3t-value"


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(make_user("staff@flotilla.test", is_staff=True, is_superuser=True))
    return client


def make_cluster(org: Organization, name: str = "web") -> Cluster:
    """A Ready cluster row with its create operation finished (what a provisioned one leaves)."""
    provider = local_provider(org)
    with schema_context(org.schema_name):
        cluster = Cluster.objects.create(
            name=name,
            provider=provider,
            version="1.36.1",
            status=ClusterStatus.READY,
            external_name=f"{org.slug}-{name}",
        )
        Operation.objects.create(
            cluster=cluster,
            subject_type="cluster",
            subject_id=cluster.pk,
            kind=OperationKind.CREATE,
            status=OperationStatus.SUCCEEDED,
            progress=100,
            finished_at=timezone.now(),
        )
    directory.sync_cluster(org.schema_name, cluster.pk)
    return cluster


def make_app(org: Organization, cluster: Cluster, name: str = "api", **fields: Any) -> App:
    """An app row, as the apps services leave one after its first rollout."""
    values: dict[str, Any] = {
        "namespace": "default",
        "spec": {"image": "nginx:1.27", "replicas": 2, "secret_keys": ["TOKEN"]},
        "selector": {"flotilla.dev/app": name},
        "status": AppStatus.AVAILABLE,
        "revision": 1,
        "desired_replicas": 2,
        "updated_replicas": 2,
        "ready_replicas": 2,
        "available_replicas": 2,
        **fields,
    }
    with schema_context(org.schema_name):
        return App.objects.create(cluster=cluster, name=name, **values)


def app_operation(
    org: Organization, app: App, kind: str = AppOperationKind.ROLLOUT, **fields: Any
) -> Operation:
    """A rollout (or deletion) of an app: it runs against the app's cluster, its subject is the app."""
    with schema_context(org.schema_name):
        return Operation.objects.create(
            cluster_id=app.cluster_id, subject_type="app", subject_id=app.pk, kind=kind, **fields
        )


def entry_of(org: Organization, app: App) -> AppEntry:
    entry: AppEntry = AppEntry.objects.get(org=org, app_id=app.pk)
    return entry


def cluster_entry(org: Organization, cluster: Cluster) -> ClusterEntry:
    entry: ClusterEntry = ClusterEntry.objects.get(org=org, cluster_id=cluster.pk)
    return entry


class TestSync:
    def test_sync_follows_the_row_to_its_deletion(self, org_a: Organization) -> None:
        cluster = make_cluster(org_a, "prod")
        app = make_app(org_a, cluster, "api", status=AppStatus.DEPLOYING, status_reason="1 of 2 updated")
        directory.sync_app(org_a.schema_name, app.pk)
        entry = entry_of(org_a, app)
        assert (entry.name, entry.namespace, entry.cluster_id, entry.cluster_name) == (
            "api",
            "default",
            cluster.pk,
            "prod",
        )
        assert (entry.image, entry.kind, entry.status, entry.status_reason) == (
            "nginx:1.27",
            AppKind.DEPLOYMENT,
            AppStatus.DEPLOYING,
            "1 of 2 updated",
        )
        assert (entry.revision, entry.desired_replicas, entry.ready_replicas, entry.adopted) == (
            1,
            2,
            2,
            False,
        )
        assert AppEntry.objects.listed().filter(pk=entry.pk).exists()

        with schema_context(org_a.schema_name):
            App.objects.filter(pk=app.pk).update(
                status=AppStatus.DEGRADED,
                status_reason="x" * 500,
                spec={"image": "nginx:1.28", "replicas": 3},
                revision=2,
                desired_replicas=3,
                ready_replicas=1,
                available_replicas=1,
            )
        directory.sync_app(org_a.schema_name, app.pk)
        entry = entry_of(org_a, app)
        assert (entry.status, entry.image, entry.revision) == (AppStatus.DEGRADED, "nginx:1.28", 2)
        assert (entry.desired_replicas, entry.ready_replicas, entry.available_replicas) == (3, 1, 1)
        assert entry.status_reason == "x" * 200  # cut to the entry's length

        # Deleted (the row stays for the record): deleted, and no longer listed.
        with schema_context(org_a.schema_name):
            App.objects.filter(pk=app.pk).update(status=AppStatus.DELETED, deleted_at=timezone.now())
        directory.sync_app(org_a.schema_name, app.pk)
        assert entry_of(org_a, app).status == AppStatus.DELETED
        assert entry_of(org_a, app).deleted_at is not None
        assert not AppEntry.objects.listed().filter(org=org_a).exists()

    def test_an_app_gone_from_its_schema_is_deleted(self, org_a: Organization) -> None:
        cluster = make_cluster(org_a)
        app = make_app(org_a, cluster)
        directory.sync_app(org_a.schema_name, app.pk)
        with schema_context(org_a.schema_name):
            App.objects.filter(pk=app.pk).delete()
        directory.sync_app(org_a.schema_name, app.pk)
        assert entry_of(org_a, app).status == AppStatus.DELETED

    def test_a_cluster_gone_takes_its_apps_entries(self, org_a: Organization) -> None:
        cluster = make_cluster(org_a)
        app = make_app(org_a, cluster)
        directory.sync_app(org_a.schema_name, app.pk)
        with schema_context(org_a.schema_name):
            Operation.objects.filter(cluster=cluster).delete()
            Cluster.objects.filter(pk=cluster.pk).delete()  # cascades to its apps
        directory.sync_cluster(org_a.schema_name, cluster.pk)
        assert cluster_entry(org_a, cluster).status == ClusterStatus.DELETED
        assert entry_of(org_a, app).status == AppStatus.DELETED

    def test_app_changed_syncs_after_commit(
        self, org_a: Organization, django_capture_on_commit_callbacks: Any
    ) -> None:
        cluster = make_cluster(org_a)
        app = make_app(org_a, cluster)
        rollout = app_operation(org_a, app, status=OperationStatus.RUNNING, step="Rolling out")
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            app_changed(org_a.schema_name, app, operation=rollout)
        assert not AppEntry.objects.exists()  # nothing before the commit
        for callback in callbacks:
            callback()
        assert entry_of(org_a, app).status == AppStatus.AVAILABLE
        op_entry = OperationEntry.objects.get(org=org_a, operation_id=rollout.pk)
        assert (op_entry.kind, op_entry.status, op_entry.get_kind_display()) == (
            "app_rollout",
            "running",
            "Roll out an app",
        )

    def test_a_deploy_through_the_service_reaches_the_directory(
        self, org_a: Organization, django_capture_on_commit_callbacks: Any
    ) -> None:
        cluster = make_cluster(org_a, "prod")
        with django_capture_on_commit_callbacks(execute=True), schema_context(org_a.schema_name):
            requested = app_services.deploy_app(
                owner_actor(org_a),
                cluster=Cluster.objects.get(pk=cluster.pk),
                name="shop",
                spec={"image": "nginx:1.27", "replicas": 2},
                secrets={"TOKEN": SECRET},
            )
        entry = entry_of(org_a, requested.app)
        found = (entry.name, entry.cluster_name, entry.image, entry.revision)
        assert found == ("shop", "prod", "nginx:1.27", 1)
        assert entry.status in (AppStatus.PENDING, AppStatus.DEPLOYING)
        rollout = OperationEntry.objects.get(org=org_a, operation_id=requested.operation.pk)
        assert (rollout.kind, rollout.status) == (AppOperationKind.ROLLOUT, OperationStatus.QUEUED)
        # The rollout runs against the cluster, but is not the cluster's own operation.
        assert cluster_entry(org_a, cluster).active_operation_id is None

    def test_each_org_has_its_own_entries(self, org_a: Organization, org_b: Organization) -> None:
        first = make_app(org_a, make_cluster(org_a, "alpha-c"), "api")
        second = make_app(org_b, make_cluster(org_b, "bravo-c"), "api", spec={"image": "redis:7"})
        # Each schema numbers its own rows: the same ids, two entries.
        assert first.pk == second.pk
        directory.sync_app(org_a.schema_name, first.pk)
        directory.sync_app(org_b.schema_name, second.pk)
        assert AppEntry.objects.filter(app_id=first.pk).count() == 2
        assert (entry_of(org_a, first).cluster_name, entry_of(org_a, first).image) == (
            "alpha-c",
            "nginx:1.27",
        )
        assert (entry_of(org_b, second).cluster_name, entry_of(org_b, second).image) == ("bravo-c", "redis:7")
        # A change in one org's schema moves only that org's entry.
        with schema_context(org_b.schema_name):
            App.objects.filter(pk=second.pk).update(status=AppStatus.FAILED)
        directory.sync_app(org_b.schema_name, second.pk)
        assert entry_of(org_a, first).status == AppStatus.AVAILABLE
        assert entry_of(org_b, second).status == AppStatus.FAILED

    def test_an_older_read_never_overwrites_a_newer_one(self, org_a: Organization) -> None:
        app = make_app(org_a, make_cluster(org_a))
        directory.sync_app(org_a.schema_name, app.pk)
        stored = entry_of(org_a, app)
        row = {f.name: getattr(stored, f.attname) for f in AppEntry._meta.concrete_fields if f.name != "id"}
        row["org"] = org_a.pk
        stale = {
            **row,
            "status": AppStatus.DEPLOYING,
            "observed_at": stored.observed_at - timedelta(seconds=1),
        }
        upsert(AppEntry, [stale], key=("org", "app_id"))
        assert entry_of(org_a, app).status == AppStatus.AVAILABLE

    def test_sync_app_is_two_queries(self, org_a: Organization, django_assert_num_queries: Any) -> None:
        app = make_app(org_a, make_cluster(org_a))
        with schema_context(org_a.schema_name):
            App.objects.exists()  # the connection is on the org's search path already
            with django_assert_num_queries(2):
                directory.sync_app(org_a.schema_name, app.pk)
        assert entry_of(org_a, app).status == AppStatus.AVAILABLE

    def test_rebuild_from_nothing(self, org_a: Organization, org_b: Organization) -> None:
        alpha = make_cluster(org_a, "alpha-c")
        make_app(org_a, alpha, "api")
        make_app(org_a, alpha, "worker", adopted=True, spec={"image": "busybox:1.36"})
        old = make_app(org_a, alpha, "old", status=AppStatus.DELETED, deleted_at=timezone.now())
        make_app(org_b, make_cluster(org_b, "bravo-c"), "db")
        for org in (org_a, org_b):
            with schema_context(org.schema_name):
                ids = list(App.objects.values_list("pk", flat=True))
            for app_id in ids:
                directory.sync_app(org.schema_name, app_id)

        def snapshot() -> list[Any]:
            skip = {"id", "observed_at", "updated_at"}
            fields = [f.name for f in AppEntry._meta.concrete_fields if f.name not in skip]
            return list(AppEntry.objects.order_by("org_id", "app_id").values_list(*fields))

        before = snapshot()
        assert len(before) == 4
        AppEntry.objects.all().delete()
        call_command("rebuild_directory", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert snapshot() == before
        call_command("rebuild_directory", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert snapshot() == before  # idempotent
        assert entry_of(org_a, old).status == AppStatus.DELETED

        # An entry whose app is no longer in the schema becomes deleted on the next rebuild.
        with schema_context(org_a.schema_name):
            gone = App.objects.get(name="worker")
            App.objects.filter(pk=gone.pk).delete()
        assert directory.rebuild_apps(org_a) == 2
        assert entry_of(org_a, gone).status == AppStatus.DELETED
        assert sorted(AppEntry.objects.listed().values_list("name", flat=True)) == ["api", "db"]


class TestClusterActiveOperation:
    def test_app_operations_never_become_the_clusters_active_one(self, org_a: Organization) -> None:
        cluster = make_cluster(org_a)
        app = make_app(org_a, cluster)
        rollout = app_operation(org_a, app, status=OperationStatus.RUNNING)
        directory.sync_operation(org_a.schema_name, rollout.pk)
        directory.sync_cluster(org_a.schema_name, cluster.pk)
        assert cluster_entry(org_a, cluster).active_operation_id is None
        # Its own entry is there all the same (the operations list shows it).
        assert OperationEntry.objects.get(org=org_a, operation_id=rollout.pk).status == "running"
        directory.rebuild_org(org_a)
        assert cluster_entry(org_a, cluster).active_operation_id is None

    def test_the_clusters_own_operation_stays_active_behind_newer_rollouts(self, org_a: Organization) -> None:
        cluster = make_cluster(org_a)
        app = make_app(org_a, cluster)
        with schema_context(org_a.schema_name):
            upgrade = Operation.objects.create(
                cluster=cluster, subject_type="cluster", subject_id=cluster.pk, kind=OperationKind.UPGRADE
            )
        directory.sync_operation(org_a.schema_name, upgrade.pk)
        assert cluster_entry(org_a, cluster).active_operation_id == upgrade.pk
        # More app operations than a cluster sync refreshes, all newer than the upgrade.
        rollouts = [
            app_operation(org_a, app, status=OperationStatus.QUEUED)
            for _ in range(directory.RECENT_OPERATIONS + 1)
        ]
        for rollout in rollouts:
            directory.sync_operation(org_a.schema_name, rollout.pk)
        assert cluster_entry(org_a, cluster).active_operation_id == upgrade.pk
        directory.sync_cluster(org_a.schema_name, cluster.pk)
        entry = cluster_entry(org_a, cluster)
        assert (entry.active_operation_id, entry.active_operation_kind, entry.active_operation_status) == (
            upgrade.pk,
            OperationKind.UPGRADE,
            OperationStatus.QUEUED,
        )
        # A rollout that finishes does not clear the cluster's operation either.
        with schema_context(org_a.schema_name):
            Operation.objects.filter(pk=rollouts[0].pk).update(status=OperationStatus.SUCCEEDED)
        directory.sync_operation(org_a.schema_name, rollouts[0].pk)
        assert cluster_entry(org_a, cluster).active_operation_id == upgrade.pk
        ClusterEntry.objects.all().delete()
        directory.rebuild_org(org_a)
        assert cluster_entry(org_a, cluster).active_operation_id == upgrade.pk
        # Once the upgrade ends the cluster has none, whatever its apps are doing.
        with schema_context(org_a.schema_name):
            Operation.objects.filter(pk=upgrade.pk).update(status=OperationStatus.SUCCEEDED)
        directory.sync_operation(org_a.schema_name, upgrade.pk)
        assert cluster_entry(org_a, cluster).active_operation_id is None
        directory.sync_cluster(org_a.schema_name, cluster.pk)
        assert cluster_entry(org_a, cluster).active_operation_id is None

    def test_the_operations_list_names_app_kinds(self, staff: Client, org_a: Organization) -> None:
        app = make_app(org_a, make_cluster(org_a, "prod"))
        deletion = app_operation(
            org_a, app, AppOperationKind.DELETE, status=OperationStatus.FAILED, error="boom"
        )
        directory.sync_operation(org_a.schema_name, deletion.pk)
        page = staff.get(OPERATIONS).content.decode()
        assert re.findall(r'data-operation="(\d+)"', page) == [str(deletion.pk)]
        row = re.search(rf'<tr>(?:(?!</tr>).)*data-operation="{deletion.pk}".*?</tr>', page, re.S)
        assert row and "Delete an app" in row.group(0) and "app_delete" not in row.group(0)
        filtered = staff.get(f"{OPERATIONS}?kind__exact=app_delete").content.decode()
        assert f'data-operation="{deletion.pk}"' in filtered
        # The org's own list of operations names it the same way (the engine's label).
        tenant = staff.get(f"/admin/clusters/operation/?schema={org_a.schema_name}").content.decode()
        assert "Delete an app" in tenant and "Create" in tenant


def _synced_apps(org: Organization, cluster: Cluster, *names: str) -> list[App]:
    apps = [make_app(org, cluster, name) for name in names]
    for app in apps:
        directory.sync_app(org.schema_name, app.pk)
    return apps


def bulk_app_entries(orgs: int, apps_per_org: int, start: int = 0) -> None:
    """Organisation rows (no schemas: bulk_create makes none) with app entries: the staff list
    reads only the public schema's entries, which is what is measured."""
    created = Organization.objects.bulk_create(
        Organization(schema_name=f"org_apps{i}", slug=f"apps{i}", name=f"Apps Org {i}")
        for i in range(start, start + orgs)
    )
    now = timezone.now()
    statuses = [AppStatus.AVAILABLE, AppStatus.DEGRADED, AppStatus.FAILED, AppStatus.DEPLOYING]
    AppEntry.objects.bulk_create(
        AppEntry(
            org=org,
            app_id=n + 1,
            cluster_id=1,
            cluster_name=f"c{i}",
            namespace="default",
            name=f"app{i}-{n}",
            image="nginx:1.27",
            kind=AppKind.DEPLOYMENT,
            status=statuses[n % len(statuses)],
            status_reason="readiness check failing" if n % 2 else "",
            revision=n,
            desired_replicas=2,
            ready_replicas=n % 3,
            available_replicas=n % 3,
            created_at=now,
            observed_at=now,
            updated_at=now + timedelta(seconds=i * apps_per_org + n),
        )
        for i, org in enumerate(created, start=start)
        for n in range(apps_per_org)
    )


class TestStaffList:
    def test_every_app_across_orgs_with_links(
        self, staff: Client, org_a: Organization, org_b: Organization
    ) -> None:
        alpha = make_cluster(org_a, "alpha-c")
        (api,) = _synced_apps(org_a, alpha, "alpha-api")
        _synced_apps(org_b, make_cluster(org_b, "bravo-c"), "bravo-db")
        response = staff.get(APPS)
        assert response.status_code == 200
        page = response.content.decode()
        assert set(re.findall(r'data-app="([^"]+)"', page)) == {"alpha-api", "bravo-db"}
        assert org_a.name in page and org_b.name in page
        assert f"/admin/clusters/app/{api.pk}/change/?schema={org_a.schema_name}" in page
        assert f"/admin/clusters/cluster/{alpha.pk}/change/?schema={org_a.schema_name}" in page
        assert f"/admin/orgs/organization/{org_a.pk}/change/" in page
        assert "nginx:1.27" in page and "2/2" in page
        # The link opens the app's page inside its org's schema.
        detail = staff.get(f"/admin/clusters/app/{api.pk}/change/?schema={org_a.schema_name}")
        assert detail.status_code == 200 and "alpha-api" in detail.content.decode()

    def test_read_only(self, staff: Client, org_a: Organization) -> None:
        (app,) = _synced_apps(org_a, make_cluster(org_a), "api")
        entry = entry_of(org_a, app)
        assert staff.get(f"{APPS}add/").status_code == 403
        assert staff.post(f"{APPS}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
        assert staff.post(f"{APPS}{entry.pk}/change/", {"name": "other"}).status_code == 403
        assert entry_of(org_a, app).name == "api"

    def test_search_and_filters(self, staff: Client, org_a: Organization, org_b: Organization) -> None:
        _synced_apps(org_a, make_cluster(org_a, "alpha-c"), "web", "api")
        (db,) = _synced_apps(org_b, make_cluster(org_b, "bravo-c"), "db")
        with schema_context(org_b.schema_name):
            App.objects.filter(pk=db.pk).update(status=AppStatus.FAILED, status_reason="ImagePullBackOff")
        directory.sync_app(org_b.schema_name, db.pk)

        def names(query: str) -> set[str]:
            page = staff.get(f"{APPS}?{query}").content.decode()
            return set(re.findall(r'data-app="([^"]+)"', page))

        assert names("") == {"web", "api", "db"}
        assert names("q=we") == {"web"}
        assert names("q=bravo-c") == {"db"}  # the cluster's name
        assert names("q=bravo") == {"db"}  # the org's slug
        assert names(f"q={org_a.name}") == {"web", "api"}
        assert names("org=alpha") == {"web", "api"}
        assert names("status=failed") == {"db"}
        assert "ImagePullBackOff" in staff.get(f"{APPS}?status=failed").content.decode()
        assert names("kind__exact=deployment") == {"web", "api", "db"}
        assert names("kind__exact=statefulset") == set()
        assert names("_facets=True") == {"web", "api", "db"}
        with schema_context(org_a.schema_name):
            App.objects.filter(name="web").update(status=AppStatus.DELETED, deleted_at=timezone.now())
            web = App.objects.get(name="web")
        directory.sync_app(org_a.schema_name, web.pk)
        assert names("") == {"api", "db"}  # deleted ones are one click away
        assert names("status=all") == {"web", "api", "db"}
        assert names("status=deleted") == {"web"}

    def test_the_index_and_the_orgs_links(self, staff: Client, org_a: Organization) -> None:
        cluster = make_cluster(org_a)
        _synced_apps(org_a, cluster, "web", "api")
        page = staff.get("/admin/").content.decode()
        section = re.search(r'<div class="app-clusters module directory-section".*?</div>', page, re.S)
        assert section, page
        assert f'href="{APPS}"' in section.group(0)
        assert f'href="{APPS}?status=available"' in section.group(0) and "Available: 2" in section.group(0)
        org_page = staff.get("/admin/orgs/organization/").content.decode()
        assert f"/admin/clusters/app/?schema={org_a.schema_name}" in org_page
        tenant_list = staff.get(f"/admin/clusters/app/?schema={org_a.schema_name}")
        assert tenant_list.status_code == 200
        assert "web" in tenant_list.content.decode() and "api" in tenant_list.content.decode()
        # Without an org, the tenant list leads to the list across orgs.
        assert staff.get("/admin/clusters/app/")["Location"] == APPS

    def test_staff_only(self, org_a: Organization) -> None:
        _synced_apps(org_a, make_cluster(org_a), "api")
        org_admin = Client()
        org_admin.force_login(add_member(org_a, Role.ADMIN).user)
        owner = Client()
        owner.force_login(owner_of(org_a).user)
        for client in (Client(), org_admin, owner):
            response = client.get(APPS)
            assert response.status_code == 302 and "/admin/login/" in response["Location"]
        plain_staff = Client()
        plain_staff.force_login(make_user("helpdesk@flotilla.test", is_staff=True))
        assert plain_staff.get(APPS).status_code == 403

    def test_query_count_is_the_same_for_10_and_100_apps(self, staff: Client) -> None:
        urls = [
            "/admin/",
            APPS,
            f"{APPS}?status=failed&q=apps",
            f"{APPS}?org=apps1",
            f"{APPS}?kind__exact=deployment",
        ]

        def measure() -> list[tuple[int, str]]:
            found = []
            for url in urls:
                with CaptureQueriesContext(connection) as queries:
                    response = staff.get(url)
                assert response.status_code == 200
                found.append((len(queries), response.content.decode()))
            return found

        bulk_app_entries(orgs=2, apps_per_org=5)
        small = measure()
        assert len(re.findall(r'data-app="', small[1][1])) == 10
        bulk_app_entries(orgs=18, apps_per_org=5, start=2)
        large = measure()
        assert [count for count, _ in large] == [count for count, _ in small]
        # A page of 50 rows, newest first, each with its own org's name.
        listed = re.findall(r'data-app="app(\d+)-\d+".*?data-org="apps(\d+)">([^<]+)</a>', large[1][1], re.S)
        assert len(listed) == 50
        assert all(app_org == org and name == f"Apps Org {org}" for app_org, org, name in listed)
        assert listed[0][0] == "19"
        # Five apps an org: two available, one each degraded, failed, deploying.
        assert "Available: 40" in large[0][1] and "Failed: 20" in large[0][1]


class TestTenantAppAdmin:
    def test_no_page_shows_a_secret_value(self, staff: Client, org_a: Organization) -> None:
        cluster = make_cluster(org_a, "prod")
        app = make_app(org_a, cluster, "api", secrets=f'{{"TOKEN":"{SECRET}"}}', secrets_revision=1)
        with schema_context(org_a.schema_name):
            AppRevision.objects.create(
                app=app,
                number=1,
                kind=RevisionKind.DEPLOY,
                spec=app.spec,
                secrets=f'{{"TOKEN":"{SECRET}"}}',
                secrets_revision=1,
                changes=["image: nginx:1.25 → nginx:1.27", "secret TOKEN added"],
                created_by="alice@example.com",
            )
            assert App.objects.get(pk=app.pk).secret_values() == {"TOKEN": SECRET}  # it is stored
        directory.sync_app(org_a.schema_name, app.pk)
        filters = quote(f"schema={org_a.schema_name}")
        pages = [
            staff.get(f"/admin/clusters/app/{app.pk}/change/?schema={org_a.schema_name}"),
            staff.get(f"/admin/clusters/app/{app.pk}/change/?_changelist_filters={filters}"),
            staff.get(f"/admin/clusters/app/?schema={org_a.schema_name}"),
            staff.get(f"/admin/clusters/app/{app.pk}/history/?schema={org_a.schema_name}"),
            staff.get(APPS),
            staff.get(f"{APPS}{entry_of(org_a, app).pk}/change/"),
        ]
        for response in pages:
            assert response.status_code == 200
            assert SECRET.encode() not in response.content
        detail = pages[0].content.decode()
        # The revision is there, with what changed and who asked; the secret's name only.
        assert "secret TOKEN added" in detail and "alice@example.com" in detail
        assert "nginx:1.27" in detail
        assert not re.search(r"field-secrets\b", detail)  # the column is not on the page at all

    def test_change_page_needs_an_org(self, staff: Client, org_a: Organization) -> None:
        app = make_app(org_a, make_cluster(org_a))
        response = staff.get(f"/admin/clusters/app/{app.pk}/change/", follow=True)
        assert "Choose an organisation first." in " ".join(str(m) for m in response.context["messages"])

    def test_read_only(self, staff: Client, org_a: Organization) -> None:
        app = make_app(org_a, make_cluster(org_a))
        url = f"/admin/clusters/app/{app.pk}/change/?schema={org_a.schema_name}"
        assert staff.post(url, {"name": "other", "replicas": 9}).status_code == 403
        with schema_context(org_a.schema_name):
            assert App.objects.get(pk=app.pk).name == "api"


def test_a_third_org_is_listed_too(staff: Client, org_a: Organization, org_b: Organization) -> None:
    """Isolation across more than two orgs: each entry carries its own org, whatever the ids."""
    charlie = make_org("charlie")
    orgs = (org_a, org_b, charlie)
    made: list[tuple[Organization, App]] = []
    for org in orgs:
        (app,) = _synced_apps(org, make_cluster(org, f"{org.slug}-c"), f"{org.slug}-app")
        made.append((org, app))
    assert len({app.pk for _, app in made}) == 1
    assert {(e.org.slug, e.name) for e in AppEntry.objects.select_related("org")} == {
        (org.slug, f"{org.slug}-app") for org in orgs
    }
    page = staff.get(APPS).content.decode()
    for org, app in made:
        assert f"/admin/clusters/app/{app.pk}/change/?schema={org.schema_name}" in page
