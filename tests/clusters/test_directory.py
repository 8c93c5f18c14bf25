"""The staff directory: public-schema entries kept in step by the services, rebuilt from nothing,
and the staff lists across orgs (index section, search, filters, actions, a fixed query count
whatever the number of orgs, staff only).

With the `db` fixture nothing commits, so the after-commit syncs run only where a test captures
the on-commit callbacks and executes them (what a real commit does).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from clusters.choices import ClusterStatus, OperationKind, OperationStatus, ProviderKind
from clusters.directory import services as directory
from clusters.directory.models import ClusterEntry, OperationEntry
from clusters.directory.store import upsert
from clusters.models import Cluster, NodePool, Operation
from clusters.services import clusters as cluster_services
from orgs.actors import Actor
from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import Organization
from orgs.services.organizations import delete_organization
from tests.clusters.helpers import owner_actor, run
from tests.clusters.test_views import make_cluster, settle
from tests.factories import add_member, make_user, owner_of

pytestmark = pytest.mark.django_db

CLUSTERS = "/admin/directory/clusterentry/"
OPERATIONS = "/admin/directory/operationentry/"


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """Run `fn` and then its after-commit callbacks (the syncs, the enqueue), as a commit would."""

    def call(fn: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return fn()

    return call


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(make_user("staff@flotilla.test", is_staff=True, is_superuser=True))
    return client


def entry_of(org: Organization, cluster: Cluster) -> ClusterEntry:
    entry: ClusterEntry = ClusterEntry.objects.get(org=org, cluster_id=cluster.pk)
    return entry


def operation_of(org: Organization, cluster: Cluster) -> Operation:
    with schema_context(org.schema_name):
        return Operation.objects.filter(cluster=cluster).order_by("-id").first()  # type: ignore[return-value]


def finish(org: Organization, cluster: Cluster) -> None:
    """What the worker would leave after the operations ran: succeeded, cluster Ready, synced."""
    settle(org, cluster)
    directory.sync_cluster(org.schema_name, cluster.pk)


class TestSync:
    def test_create_scale_delete_through_the_services(self, org_a: Organization, committed: Any) -> None:
        cluster = committed(lambda: make_cluster(org_a, "web", 2, 1))
        entry = entry_of(org_a, cluster)
        create = operation_of(org_a, cluster)
        assert (entry.name, entry.status, entry.provider_kind, entry.nodes_desired) == (
            "web",
            ClusterStatus.PENDING,
            ProviderKind.LOCAL,
            3,
        )
        assert entry.provider_name and entry.version == cluster.version
        assert (entry.active_operation_id, entry.active_operation_kind, entry.active_operation_status) == (
            create.pk,
            OperationKind.CREATE,
            OperationStatus.QUEUED,
        )
        op_entry = OperationEntry.objects.get(org=org_a, operation_id=create.pk)
        assert (op_entry.cluster_name, op_entry.kind, op_entry.status) == ("web", "create", "queued")

        finish(org_a, cluster)
        assert entry_of(org_a, cluster).status == ClusterStatus.READY
        assert entry_of(org_a, cluster).active_operation_id is None

        def scale() -> Operation:
            with schema_context(org_a.schema_name):
                pool = NodePool.objects.get(cluster=cluster, name="p0")
                return cluster_services.scale_node_pool(owner_actor(org_a), cluster, pool, count=5)

        scaling = committed(scale)
        entry = entry_of(org_a, cluster)
        assert entry.nodes_desired == 6
        assert (entry.active_operation_id, entry.active_operation_kind) == (scaling.pk, OperationKind.SCALE)
        # The create operation's entry followed it to the end; staff no longer list it.
        assert OperationEntry.objects.get(org=org_a, operation_id=create.pk).status == "succeeded"
        assert not OperationEntry.objects.listed().filter(operation_id=create.pk, org=org_a).exists()

        def delete() -> Operation:
            with schema_context(org_a.schema_name):
                return cluster_services.delete_cluster(owner_actor(org_a), Cluster.objects.get(pk=cluster.pk))

        deletion = committed(delete)
        # The queued scale was superseded (cancelled) by the deletion, which is now the active one.
        assert OperationEntry.objects.get(org=org_a, operation_id=scaling.pk).status == "cancelled"
        assert entry_of(org_a, cluster).active_operation_id == deletion.pk
        with schema_context(org_a.schema_name):
            Operation.objects.filter(pk=deletion.pk).update(
                status=OperationStatus.SUCCEEDED, finished_at=timezone.now()
            )
            Cluster.objects.filter(pk=cluster.pk).update(
                status=ClusterStatus.DELETED, deleted_at=timezone.now()
            )
        directory.sync_operation(org_a.schema_name, deletion.pk)
        directory.sync_cluster(org_a.schema_name, cluster.pk)
        entry = entry_of(org_a, cluster)
        assert (entry.status, entry.active_operation_id) == (ClusterStatus.DELETED, None)

    def test_the_reconcile_loop_keeps_it_in_step(self, org_a: Organization, committed: Any) -> None:
        # Deleting a never-provisioned local cluster runs to the end in the loop without a
        # control plane: the loop's own cluster_changed calls are what update the entries.
        cluster = committed(lambda: make_cluster(org_a, "web"))

        def delete() -> Operation:
            with schema_context(org_a.schema_name):
                return cluster_services.delete_cluster(owner_actor(org_a), Cluster.objects.get(pk=cluster.pk))

        deletion = committed(delete)
        assert entry_of(org_a, cluster).active_operation_id == deletion.pk
        assert committed(lambda: run(org_a, deletion)).status == OperationStatus.SUCCEEDED
        entry = entry_of(org_a, cluster)
        assert (entry.status, entry.active_operation_id) == (ClusterStatus.DELETED, None)
        assert OperationEntry.objects.get(org=org_a, operation_id=deletion.pk).status == "succeeded"
        assert not OperationEntry.objects.listed().filter(org=org_a).exists()

    def test_a_cluster_gone_from_its_schema_is_deleted(self, org_a: Organization, committed: Any) -> None:
        cluster = committed(lambda: make_cluster(org_a))
        with schema_context(org_a.schema_name):
            Cluster.objects.filter(pk=cluster.pk).delete()
        directory.sync_cluster(org_a.schema_name, cluster.pk)
        assert entry_of(org_a, cluster).status == ClusterStatus.DELETED

    def test_each_org_has_its_own_entries(
        self, org_a: Organization, org_b: Organization, committed: Any
    ) -> None:
        first = committed(lambda: make_cluster(org_a, "web"))
        second = committed(lambda: make_cluster(org_b, "web"))
        # Each schema numbers its own rows: the same ids, two entries.
        assert first.pk == second.pk
        assert ClusterEntry.objects.filter(cluster_id=first.pk).count() == 2
        finish(org_b, second)
        assert entry_of(org_a, first).status == ClusterStatus.PENDING
        assert entry_of(org_b, second).status == ClusterStatus.READY

    def test_an_orgs_entries_go_with_it(
        self, org_a: Organization, org_b: Organization, committed: Any
    ) -> None:
        committed(lambda: make_cluster(org_a))
        committed(lambda: make_cluster(org_b))
        staff_user = make_user("staff@flotilla.test", is_staff=True, is_superuser=True)
        # The test's one transaction still holds deferred foreign-key checks on the rows it wrote,
        # which PostgreSQL will not drop a table under; a real deletion has none pending.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        delete_organization(Actor.staff(staff_user, org_a), org_a)
        assert set(ClusterEntry.objects.values_list("org__slug", flat=True)) == {"bravo"}
        assert set(OperationEntry.objects.values_list("org__slug", flat=True)) == {"bravo"}

    def test_an_older_read_never_overwrites_a_newer_one(self, org_a: Organization, committed: Any) -> None:
        cluster = committed(lambda: make_cluster(org_a, "web"))
        stored = entry_of(org_a, cluster)
        row = {
            field.name: getattr(stored, field.attname)
            for field in ClusterEntry._meta.concrete_fields
            if field.name != "id"
        }
        row["org"] = org_a.pk
        upsert(
            ClusterEntry,
            [{**row, "name": "stale", "observed_at": stored.observed_at - timedelta(seconds=1)}],
            key=("org", "cluster_id"),
        )
        assert entry_of(org_a, cluster).name == "web"
        upsert(
            ClusterEntry,
            [{**row, "name": "newer", "observed_at": stored.observed_at + timedelta(seconds=1)}],
            key=("org", "cluster_id"),
        )
        assert entry_of(org_a, cluster).name == "newer"

    def test_a_late_sync_of_a_running_operation_does_not_revive_it(
        self, org_a: Organization, committed: Any
    ) -> None:
        cluster = committed(lambda: make_cluster(org_a))
        operation = operation_of(org_a, cluster)
        with schema_context(org_a.schema_name):
            Operation.objects.filter(pk=operation.pk).update(status=OperationStatus.SUCCEEDED)
        directory.sync_operation(org_a.schema_name, operation.pk)
        assert entry_of(org_a, cluster).active_operation_id is None
        # A sync that read the operation while it was still queued arrives last: ignored.
        upsert(
            OperationEntry,
            [
                {
                    **{
                        f.name: getattr(
                            OperationEntry.objects.get(operation_id=operation.pk, org=org_a), f.attname
                        )
                        for f in OperationEntry._meta.concrete_fields
                        if f.name != "id"
                    },
                    "org": org_a.pk,
                    "status": OperationStatus.QUEUED,
                    "observed_at": timezone.now() - timedelta(minutes=5),
                }
            ],
            key=("org", "operation_id"),
        )
        assert OperationEntry.objects.get(org=org_a, operation_id=operation.pk).status == "succeeded"

    def test_sync_operation_is_three_queries(
        self, org_a: Organization, committed: Any, django_assert_num_queries: Any
    ) -> None:
        cluster = committed(lambda: make_cluster(org_a))
        operation = operation_of(org_a, cluster)
        # Where the engine calls it: in the org's schema (elsewhere, two search_path switches more).
        with schema_context(org_a.schema_name):
            Operation.objects.exists()  # the connection is on the org's search path already
            with django_assert_num_queries(3):
                directory.sync_operation(org_a.schema_name, operation.pk)
        assert OperationEntry.objects.get(org=org_a, operation_id=operation.pk).status == "queued"

    def test_rebuild_from_nothing(self, org_a: Organization, org_b: Organization, committed: Any) -> None:
        committed(lambda: make_cluster(org_a, "web", 2))
        gone = committed(lambda: make_cluster(org_a, "old"))
        committed(lambda: make_cluster(org_b, "db", 1, 1))
        with schema_context(org_a.schema_name):
            Cluster.objects.filter(pk=gone.pk).update(status=ClusterStatus.DELETED, deleted_at=timezone.now())
        directory.sync_cluster(org_a.schema_name, gone.pk)

        def snapshot() -> tuple[list[Any], list[Any]]:
            skip = {"id", "observed_at", "operation_observed_at", "updated_at"}
            clusters = [f.name for f in ClusterEntry._meta.concrete_fields if f.name not in skip]
            operations = [f.name for f in OperationEntry._meta.concrete_fields if f.name not in skip]
            return (
                list(ClusterEntry.objects.order_by("org_id", "cluster_id").values_list(*clusters)),
                list(OperationEntry.objects.order_by("org_id", "operation_id").values_list(*operations)),
            )

        before = snapshot()
        assert len(before[0]) == 3 and len(before[1]) == 3
        ClusterEntry.objects.all().delete()
        OperationEntry.objects.all().delete()
        call_command("rebuild_directory", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert snapshot() == before
        # Idempotent: a second run changes nothing.
        call_command("rebuild_directory", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert snapshot() == before


def bulk_orgs(count: int, start: int = 0) -> list[Organization]:
    """Organisation rows with directory entries, without schemas.

    Real Organization rows, but created with bulk_create, which (like `auto_create_schema =
    False`) makes no schema: two hundred schemas would take minutes, and the staff lists read
    only the public schema's entries, which is the point under test.
    """
    orgs: list[Organization] = Organization.objects.bulk_create(
        Organization(schema_name=f"org_bulk{i}", slug=f"bulk{i}", name=f"Bulk Org {i}")
        for i in range(start, start + count)
    )
    now = timezone.now()
    ClusterEntry.objects.bulk_create(
        ClusterEntry(
            org=org,
            cluster_id=1,
            name=f"c{i}",
            status=ClusterStatus.READY if i % 2 else ClusterStatus.PROVISIONING,
            provider_kind=ProviderKind.LOCAL,
            provider_name="local",
            version="1.36.1",
            nodes_ready=1,
            nodes_total=1,
            nodes_desired=1,
            active_operation_id=None if i % 2 else 1,
            active_operation_kind="" if i % 2 else OperationKind.CREATE,
            active_operation_status="" if i % 2 else OperationStatus.RUNNING,
            created_at=now,
            observed_at=now,
            updated_at=now + timedelta(seconds=i),
        )
        for i, org in enumerate(orgs, start=start)
    )
    OperationEntry.objects.bulk_create(
        OperationEntry(
            org=org,
            operation_id=1,
            cluster_id=1,
            cluster_name=f"c{i}",
            kind=OperationKind.CREATE,
            status=OperationStatus.FAILED if i % 2 else OperationStatus.RUNNING,
            error="boom" if i % 2 else "",
            created_at=now + timedelta(seconds=i),
            observed_at=now,
            updated_at=now,
        )
        for i, org in enumerate(orgs, start=start)
    )
    return orgs


class TestStaffLists:
    def test_index_links_the_lists_with_counts(
        self, staff: Client, org_a: Organization, committed: Any
    ) -> None:
        committed(lambda: make_cluster(org_a, "web"))
        committed(lambda: make_cluster(org_a, "db"))
        page = staff.get("/admin/").content.decode()
        assert "Not available for global schema" not in page
        section = re.search(r'<div class="app-clusters module directory-section".*?</div>', page, re.S)
        assert section, page
        assert f'href="{CLUSTERS}"' in section.group(0) and f'href="{OPERATIONS}"' in section.group(0)
        assert f'href="{CLUSTERS}?status=pending"' in section.group(0)
        assert "Pending: 2" in section.group(0) and "Queued: 2" in section.group(0)

    def test_every_cluster_across_orgs_with_org_names_and_links(
        self, staff: Client, org_a: Organization, org_b: Organization, committed: Any
    ) -> None:
        alpha = committed(lambda: make_cluster(org_a, "alpha-web"))
        committed(lambda: make_cluster(org_b, "bravo-db"))
        page = staff.get(CLUSTERS).content.decode()
        assert "alpha-web" in page and "bravo-db" in page
        assert org_a.name in page and org_b.name in page
        assert f"/admin/clusters/cluster/{alpha.pk}/change/?schema={org_a.schema_name}" in page
        assert f"/admin/orgs/organization/{org_a.pk}/change/" in page
        # The link leads to the cluster's admin page inside its org's schema.
        detail = staff.get(f"/admin/clusters/cluster/{alpha.pk}/change/?schema={org_a.schema_name}")
        assert detail.status_code == 200 and "alpha-web" in detail.content.decode()

    def test_search_and_filters(
        self, staff: Client, org_a: Organization, org_b: Organization, committed: Any
    ) -> None:
        web = committed(lambda: make_cluster(org_a, "web"))
        committed(lambda: make_cluster(org_b, "db"))
        finish(org_a, web)

        def names(query: str) -> set[str]:
            page = staff.get(f"{CLUSTERS}?{query}").content.decode()
            return set(re.findall(r'data-cluster="([^"]+)"', page))

        assert names("") == {"web", "db"}
        assert names("q=we") == {"web"}
        assert names("q=bravo") == {"db"}  # the org's slug
        assert names(f"q={org_a.name}") == {"web"}  # the org's name
        assert names("org=bravo") == {"db"}
        assert names("status=ready") == {"web"}
        assert names("active=yes") == {"db"} and names("active=no") == {"web"}
        assert names("provider_kind__exact=local") == {"web", "db"}
        assert names("provider_kind__exact=ec2") == set()
        assert names("_facets=True") == {"web", "db"}  # the admin's "show counts"
        assert staff.get(f"{OPERATIONS}?_facets=True").status_code == 200
        with schema_context(org_a.schema_name):
            Cluster.objects.filter(pk=web.pk).update(status=ClusterStatus.DELETED, deleted_at=timezone.now())
        directory.sync_cluster(org_a.schema_name, web.pk)
        assert names("") == {"db"}  # live clusters by default
        assert names("status=all") == {"web", "db"}

    def test_operations_list_unfinished_and_failed_only(
        self, staff: Client, org_a: Organization, org_b: Organization, committed: Any
    ) -> None:
        web = committed(lambda: make_cluster(org_a, "web"))
        db = committed(lambda: make_cluster(org_b, "db"))
        finish(org_a, web)
        failing = operation_of(org_b, db)
        with schema_context(org_b.schema_name):
            Operation.objects.filter(pk=failing.pk).update(status=OperationStatus.FAILED, error="no capacity")
        directory.sync_operation(org_b.schema_name, failing.pk)
        page = staff.get(OPERATIONS).content.decode()
        assert re.findall(r'data-operation="(\d+)"', page) == [str(failing.pk)]
        assert "no capacity" in page and org_b.name in page
        assert f"/admin/clusters/operation/{failing.pk}/change/?schema={org_b.schema_name}" in page
        assert "db" in staff.get(f"{OPERATIONS}?q=db").content.decode()
        assert 'data-operation="' not in staff.get(f"{OPERATIONS}?status=running").content.decode()

    def test_query_count_is_the_same_for_10_and_200_orgs(self, staff: Client) -> None:
        def measure() -> list[tuple[int, str]]:
            found = []
            for url in (
                "/admin/",
                CLUSTERS,
                OPERATIONS,
                f"{CLUSTERS}?active=yes&q=bulk",
                f"{OPERATIONS}?status=failed",
            ):
                with CaptureQueriesContext(connection) as queries:
                    response = staff.get(url)
                assert response.status_code == 200
                found.append((len(queries), response.content.decode()))
            return found

        bulk_orgs(10)
        small = measure()
        assert all(f"Bulk Org {i}" in small[1][1] for i in range(10))
        bulk_orgs(190, start=10)
        large = measure()
        assert [count for count, _ in large] == [count for count, _ in small]
        # A page of 50 rows, newest first, each with its org's name.
        listed = re.findall(r'data-org="(bulk\d+)">([^<]+)</a>', large[1][1])
        assert len(listed) == 50
        assert all(name == f"Bulk Org {slug[4:]}" for slug, name in listed)
        assert "Bulk Org 199" in large[1][1]
        assert "Ready: 100" in large[0][1] and "Failed: 100" in large[0][1]

    def test_staff_only(self, org_a: Organization, committed: Any) -> None:
        committed(lambda: make_cluster(org_a))
        org_admin = Client()
        org_admin.force_login(add_member(org_a, Role.ADMIN).user)
        owner = Client()
        owner.force_login(owner_of(org_a).user)
        for client in (Client(), org_admin, owner):
            for url in (CLUSTERS, OPERATIONS):
                response = client.get(url)
                assert response.status_code == 302 and "/admin/login/" in response["Location"]
        # Staff without the directory's view permission are refused too.
        plain_staff = Client()
        plain_staff.force_login(make_user("helpdesk@flotilla.test", is_staff=True))
        assert plain_staff.get(CLUSTERS).status_code == 403

    def test_old_overview_urls_lead_to_the_lists(self, staff: Client) -> None:
        for old, new in (("/admin/clusters/cluster/", CLUSTERS), ("/admin/clusters/operation/", OPERATIONS)):
            response = staff.get(old)
            assert response.status_code == 302 and response["Location"] == new


class TestStaffActions:
    def _post(self, staff: Client, committed: Any, action: str, entries: list[OperationEntry]) -> str:
        response = committed(
            lambda: staff.post(
                OPERATIONS, {"action": action, "_selected_action": [e.pk for e in entries]}, follow=True
            )
        )
        return " ".join(str(m) for m in response.context["messages"])

    def test_cancel_and_retry_in_the_operations_org_audited(
        self, staff: Client, org_a: Organization, org_b: Organization, committed: Any
    ) -> None:
        alpha = committed(lambda: make_cluster(org_a, "web"))
        bravo = committed(lambda: make_cluster(org_b, "web"))
        op_a, op_b = operation_of(org_a, alpha), operation_of(org_b, bravo)
        assert op_a.pk == op_b.pk  # same id in two schemas: the action must pick the right one
        entry_b = OperationEntry.objects.get(org=org_b, operation_id=op_b.pk)

        assert "Cancelled 1 operation(s)." in self._post(staff, committed, "cancel", [entry_b])
        assert operation_of(org_b, bravo).status == OperationStatus.CANCELLED
        assert operation_of(org_a, alpha).status == OperationStatus.QUEUED
        # The entry followed (on commit) and the cancelled operation leaves the list.
        assert OperationEntry.objects.get(pk=entry_b.pk).status == OperationStatus.CANCELLED
        assert entry_of(org_b, bravo).active_operation_id is None

        with schema_context(org_a.schema_name):
            Operation.objects.filter(pk=op_a.pk).update(status=OperationStatus.FAILED, error="boom")
        directory.sync_operation(org_a.schema_name, op_a.pk)
        entry_a = OperationEntry.objects.get(org=org_a, operation_id=op_a.pk)
        assert "Retry queued for 1 operation(s)." in self._post(staff, committed, "retry", [entry_a])
        assert operation_of(org_a, alpha).status == OperationStatus.QUEUED
        assert OperationEntry.objects.get(pk=entry_a.pk).status == OperationStatus.QUEUED
        assert entry_of(org_a, alpha).active_operation_id == op_a.pk

        for org, action in ((org_a, "operation.retried"), (org_b, "operation.cancelled")):
            with schema_context(org.schema_name):
                rows = list(
                    AuditEntry.objects.filter(action__startswith="operation.").values_list(
                        "action", "actor_label", "source"
                    )
                )
            assert rows == [(action, "staff@flotilla.test", "admin")]

    def test_a_refusal_is_shown(self, staff: Client, org_a: Organization, committed: Any) -> None:
        cluster = committed(lambda: make_cluster(org_a))
        entry = OperationEntry.objects.get(org=org_a, operation_id=operation_of(org_a, cluster).pk)
        assert "Only failed or cancelled operations are retried" in self._post(
            staff, committed, "retry", [entry]
        )
        assert operation_of(org_a, cluster).status == OperationStatus.QUEUED
