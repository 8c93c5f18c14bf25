"""Portal pages of snapshots, restores and storage locations: what each role sees and may do, the
forms' errors on their inputs, isolation between orgs and the lists' query budgets.

Snapshots and restores are asked for through the services; with the `db` fixture nothing is
committed, so no operation ever reaches a worker: the states a job would leave (completed, a
report with diffs) are written on the rows here. Storage locations are checked against the org's
real local directory (under the test settings' FLOTILLA_SNAPSHOT_DIR).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from clusters.choices import ClusterStatus
from clusters.models import Cluster, NodePool, Operation
from orgs.choices import Role
from orgs.models import Organization, User
from snapshots.choices import ItemAction, ItemResult, RestoreMode, RestoreStatus, SnapshotStatus, StorageKind
from snapshots.models import Restore, RestoreItem, Snapshot, StorageLocation
from snapshots.services import restores as restore_services
from tests.clusters.helpers import local_provider, owner_actor
from tests.factories import owner_of

pytestmark = pytest.mark.django_db
SECRET = "s3cr3t-storage-key-never-shown"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def in_org(org: Organization, fn: Any) -> Any:
    with schema_context(org.schema_name):
        return fn()


def ready_cluster(org: Organization, name: str = "prod") -> Cluster:
    """A Ready local cluster's row (no control plane runs: nothing here calls it)."""
    provider = local_provider(org)
    with schema_context(org.schema_name):
        cluster = Cluster.objects.create(
            name=name,
            provider=provider,
            region="local",
            version="1.31.4",
            status=ClusterStatus.READY,
            external_name=f"{org.slug}-{name}",
        )
        NodePool.objects.create(cluster=cluster, name="p0", size="small", count=1)
        return cluster


def location(org: Organization, name: str = "local", **fields: Any) -> StorageLocation:
    with schema_context(org.schema_name):
        values = {"kind": StorageKind.LOCAL, "is_default": not StorageLocation.objects.exists(), **fields}
        return StorageLocation.objects.create(name=name, **values)


def completed(org: Organization, cluster: Cluster, name: str = "nightly", **fields: Any) -> Snapshot:
    """A snapshot as the snapshot job leaves it once complete."""
    with schema_context(org.schema_name):
        where = StorageLocation.objects.filter(is_default=True).first() or location(org)
        values: dict[str, Any] = {
            "cluster": cluster,
            "cluster_name": cluster.name,
            "location": where,
            "status": SnapshotStatus.COMPLETED,
            "object_count": 1234,
            "raw_bytes": 5_000_000,
            "stored_bytes": 1_572_864,
            "chunk_count": 3,
            "kinds": {"v1/ConfigMap": 1200, "apps/v1/Deployment": 34},
            "kubernetes_version": "1.31.4",
            "provider": "local",
            "region": "local",
            "format_version": 1,
            "completed_at": timezone.now(),
            **fields,
        }
        return Snapshot.objects.create(name=name, **values)


def preview_of(org: Organization, snapshot: Snapshot, target: Cluster, **options: Any) -> Restore:
    """A preview started through the service (its operation stays queued)."""
    with schema_context(org.schema_name):
        return restore_services.start_restore(
            owner_actor(org), snapshot, target, mode=RestoreMode.PREVIEW, options=options or None
        ).restore


def finish(org: Organization, restore: Restore, items: int = 3) -> Restore:
    """The restore (or preview) as its job leaves it, with a report of `items` objects."""
    with schema_context(org.schema_name):
        planned = restore.mode == RestoreMode.PREVIEW
        for seq in range(items):
            RestoreItem.objects.create(
                restore=restore,
                seq=seq,
                api_version="v1",
                kind="ConfigMap",
                namespace="shop-copy",
                source_namespace="shop",
                name=f"cm-{seq}",
                action=ItemAction.UPDATE
                if seq % 3 == 1
                else ItemAction.CREATE
                if seq % 3 == 0
                else ItemAction.CONFLICT,
                result=ItemResult.PLANNED if planned else ItemResult.DONE,
                message="field is immutable" if seq % 3 == 2 else "",
                diff=[
                    {"path": "data.colour", "before": "blue", "after": "green"},
                    {"path": "metadata.labels", "before": None, "after": {"tier": "web"}},
                ]
                if seq % 3 == 1
                else [],
            )
        Restore.objects.filter(pk=restore.pk).update(
            status=RestoreStatus.COMPLETED,
            counts={"created": (items + 2) // 3, "updated": (items + 1) // 3, "conflict": items // 3},
            completed_at=timezone.now(),
        )
        Operation.objects.filter(subject_type="restore", subject_id=restore.pk).update(
            status="succeeded", progress=100
        )
        return Restore.objects.get(pk=restore.pk)


def messages_of(response: Any) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


def field_errors(page: str) -> dict[str, list[str]]:
    """The errors the page shows under each input (data-field names the input)."""
    found: dict[str, list[str]] = {}
    for field, text in re.findall(r'<p class="error" data-field="([^"]+)">(.*?)</p>', page, re.S):
        found.setdefault(field, []).append(text)
    return found


def snapshot_form(location_pk: int | str = "", **overrides: str) -> dict[str, str]:
    data = {
        "name": "before-upgrade",
        "location": str(location_pk),
        "include_namespaces": "shop, team-*",
        "exclude_namespaces": "kube-*",
        "include_kinds": "ConfigMap, apps/Deployment",
        "exclude_kinds": "",
        "label_selector": "app=web,tier!=db",
        "cluster_scoped": "on",
        "request_id": "",
    }
    data.update(overrides)
    return data


def restore_form(target: Cluster, **overrides: str) -> dict[str, str]:
    data = {
        "target": str(target.pk),
        "namespace_map": "shop=shop-copy\n",
        "storage_class_map": "fast=standard",
        "existing": "update",
        "include_namespaces": "shop",
        "exclude_namespaces": "",
        "include_kinds": "",
        "exclude_kinds": "Event",
        "label_selector": "",
        "cluster_scoped": "on",
        "request_id": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def owner(org_a: Organization) -> Client:
    return signed_in(owner_of(org_a).user)


@pytest.fixture
def member(org_a: Organization, member_factory: Any) -> Client:
    return signed_in(member_factory(org_a, Role.MEMBER).user)


@pytest.fixture
def viewer(org_a: Organization, member_factory: Any) -> Client:
    return signed_in(member_factory(org_a, Role.VIEWER).user)


class TestList:
    def test_member_sees_snapshots_across_clusters(self, org_a: Organization, member: Client) -> None:
        prod, stage = ready_cluster(org_a, "prod"), ready_cluster(org_a, "stage")
        completed(org_a, prod, "prod-nightly")
        completed(org_a, stage, "stage-nightly", object_count=77, stored_bytes=2048)
        page = member.get("/o/alpha/snapshots/").content.decode()
        row = re.search(r'<tr data-snapshot="stage-nightly">.*?</tr>', page, re.S)
        assert row, page
        for shown in (">stage<", 'data-status="completed"', ">77<", "2.0\xa0KB", ">local<"):
            assert shown in row.group(0), shown
        assert "1.5\xa0MB" in page and '<tr data-snapshot="prod-nightly">' in page
        assert "flotilla:snapshot.changed from:body" in page
        assert re.search(r'<nav class="sidenav".*?href="/o/alpha/snapshots/"[^>]*>Snapshots</a>', page, re.S)

    def test_filter_by_cluster_and_the_table_fragment(self, org_a: Organization, viewer: Client) -> None:
        prod, stage = ready_cluster(org_a, "prod"), ready_cluster(org_a, "stage")
        completed(org_a, prod, "prod-nightly")
        completed(org_a, stage, "stage-nightly")
        page = viewer.get("/o/alpha/snapshots/", {"cluster": stage.pk}).content.decode()
        assert 'data-snapshot="stage-nightly"' in page and 'data-snapshot="prod-nightly"' not in page
        assert f'hx-get="/o/alpha/snapshots/table/?cluster={stage.pk}"' in page
        part = viewer.get(
            "/o/alpha/snapshots/table/", {"cluster": prod.pk}, HTTP_HX_REQUEST="true"
        ).content.decode()
        assert "<html" not in part and 'data-snapshot="prod-nightly"' in part and "stage-nightly" not in part

    def test_a_snapshot_outlives_its_cluster_and_deleted_ones_are_not_listed(
        self, org_a: Organization, viewer: Client
    ) -> None:
        prod = ready_cluster(org_a)
        kept = completed(org_a, prod, "kept")
        completed(org_a, prod, "gone", status=SnapshotStatus.DELETED, deleted_at=timezone.now())
        in_org(
            org_a,
            lambda: Cluster.objects.filter(pk=prod.pk).update(deleted_at=timezone.now(), status="deleted"),
        )
        page = viewer.get("/o/alpha/snapshots/").content.decode()
        assert 'data-snapshot="kept"' in page and 'data-snapshot="gone"' not in page
        kept_row = re.search(r'<tr data-snapshot="kept">.*?</tr>', page, re.S)
        assert kept_row and 'prod <span class="muted">(deleted)</span>' in kept_row.group(0)
        assert f"/o/alpha/clusters/{prod.pk}/" not in kept_row.group(0)
        assert viewer.get(f"/o/alpha/snapshots/{kept.pk}/").status_code == 200

    def test_query_budget_is_the_same_for_5_and_50_snapshots(
        self, org_a: Organization, owner: Client
    ) -> None:
        clusters = [ready_cluster(org_a, "prod"), ready_cluster(org_a, "stage")]
        location(org_a)

        def add(first: int, count: int) -> None:
            for i in range(first, first + count):
                cluster = clusters[i % 2]
                running = i % 3 == 0
                snapshot = completed(
                    org_a,
                    cluster,
                    f"snap-{i}",
                    status=SnapshotStatus.RUNNING if running else SnapshotStatus.COMPLETED,
                )
                Operation.objects.create(
                    cluster=cluster,
                    subject_type="snapshot",
                    subject_id=snapshot.pk,
                    kind="snapshot",
                    status="running" if running else "succeeded",
                    step="Listing configmaps",
                )

        def count_queries() -> tuple[int, str]:
            with CaptureQueriesContext(connection) as queries:
                response = owner.get("/o/alpha/snapshots/")
            assert response.status_code == 200
            return len(queries.captured_queries), response.content.decode()

        in_org(org_a, lambda: add(0, 5))
        few, page = count_queries()
        assert page.count("<tr data-snapshot=") == 5
        in_org(org_a, lambda: add(5, 45))
        many, page = count_queries()
        assert page.count("<tr data-snapshot=") == 50 and "Listing configmaps" in page
        assert many == few
        # Past 50, a page at a time (with the same queries).
        in_org(org_a, lambda: add(50, 7))
        paged, page = count_queries()
        assert page.count("<tr data-snapshot=") == 50 and "Page 1 of 2 (57 snapshots)" in page
        assert paged == few
        assert owner.get("/o/alpha/snapshots/", {"page": 2}).content.decode().count("<tr data-snapshot=") == 7


class TestClusterSection:
    def test_the_cluster_page_loads_its_snapshots_section(self, org_a: Organization, member: Client) -> None:
        prod, stage = ready_cluster(org_a, "prod"), ready_cluster(org_a, "stage")
        completed(org_a, prod, "prod-nightly")
        completed(org_a, stage, "stage-nightly")
        where = location(org_a, "s3-archive", kind=StorageKind.S3, bucket="b", is_default=False)
        page = member.get(f"/o/alpha/clusters/{prod.pk}/").content.decode()
        assert f'hx-get="/o/alpha/snapshots/clusters/{prod.pk}/"' in page
        part = member.get(f"/o/alpha/snapshots/clusters/{prod.pk}/", HTTP_HX_REQUEST="true").content.decode()
        assert "<html" not in part
        assert 'data-snapshot="prod-nightly"' in part and "stage-nightly" not in part
        assert f'action="/o/alpha/snapshots/clusters/{prod.pk}/new/"' in part and "Take snapshot" in part
        # Every location is offered, the default one chosen.
        assert f'<option value="{where.pk}">s3-archive (S3-compatible)</option>' in part
        assert re.search(r'<option value="\d+" selected>local \(Local directory\)</option>', part)
        table = member.get(f"/o/alpha/snapshots/clusters/{prod.pk}/table/").content.decode()
        assert 'data-snapshot="prod-nightly"' in table and "Take snapshot" not in table

    def test_viewer_sees_no_form(self, org_a: Organization, viewer: Client) -> None:
        prod = ready_cluster(org_a)
        completed(org_a, prod, "prod-nightly")
        part = viewer.get(f"/o/alpha/snapshots/clusters/{prod.pk}/").content.decode()
        assert 'data-snapshot="prod-nightly"' in part and "Take snapshot" not in part

    def test_a_cluster_not_running_offers_no_form(self, org_a: Organization, member: Client) -> None:
        prod = ready_cluster(org_a)
        in_org(org_a, lambda: Cluster.objects.filter(pk=prod.pk).update(status=ClusterStatus.PROVISIONING))
        part = member.get(f"/o/alpha/snapshots/clusters/{prod.pk}/").content.decode()
        assert "No snapshots yet." in part and "Take snapshot" not in part


class TestCreate:
    def test_take_a_snapshot_with_a_selection(self, org_a: Organization, member: Client) -> None:
        prod = ready_cluster(org_a)
        where = location(org_a)
        page = member.get(f"/o/alpha/snapshots/clusters/{prod.pk}/new/").content.decode()
        assert (
            "Snapshot of prod" in page and 'name="include_namespaces"' in page and 'name="request_id"' in page
        )
        response = member.post(f"/o/alpha/snapshots/clusters/{prod.pk}/new/", snapshot_form(where.pk))
        snapshot = in_org(org_a, lambda: Snapshot.objects.get(name="before-upgrade"))
        assert response.status_code == 302 and response["Location"] == f"/o/alpha/snapshots/{snapshot.pk}/"
        assert snapshot.selection == {
            "include_namespaces": ["shop", "team-*"],
            "exclude_namespaces": ["kube-*"],
            "include_kinds": ["ConfigMap", "apps/Deployment"],
            "exclude_kinds": [],
            "label_selector": "app=web,tier!=db",
            "cluster_scoped": True,
        }
        assert snapshot.location_id == where.pk and snapshot.status == SnapshotStatus.PENDING
        assert (
            in_org(
                org_a,
                lambda: Operation.objects.filter(subject_type="snapshot", subject_id=snapshot.pk).count(),
            )
            == 1
        )
        page = member.get(response["Location"]).content.decode()
        assert (
            "Taking snapshot before-upgrade of prod" in page
            and 'data-testid="snapshot-status">Pending<' in page
        )
        assert "include_namespaces: shop, team-*" in page

    def test_a_name_is_made_and_the_default_location_used(self, org_a: Organization, member: Client) -> None:
        prod = ready_cluster(org_a)
        form = snapshot_form(
            name="", include_namespaces="", exclude_namespaces="", include_kinds="", label_selector=""
        )
        form.pop("cluster_scoped")
        response = member.post(f"/o/alpha/snapshots/clusters/{prod.pk}/new/", form)
        assert response.status_code == 302
        snapshot = in_org(org_a, lambda: Snapshot.objects.select_related("location").get())
        assert snapshot.name.startswith("prod-") and snapshot.location is not None
        assert snapshot.location.name == "local" and snapshot.selection["cluster_scoped"] is False

    def test_a_double_submit_takes_one_snapshot(self, org_a: Organization, member: Client) -> None:
        prod = ready_cluster(org_a)
        form = snapshot_form(request_id="same-form-twice")
        first = member.post(f"/o/alpha/snapshots/clusters/{prod.pk}/new/", form)
        second = member.post(f"/o/alpha/snapshots/clusters/{prod.pk}/new/", form)
        assert first["Location"] == second["Location"]
        assert in_org(org_a, lambda: Snapshot.objects.count()) == 1

    def test_bad_inputs_are_shown_on_their_inputs_and_nothing_is_created(
        self, org_a: Organization, member: Client
    ) -> None:
        prod = ready_cluster(org_a)
        form = snapshot_form(name="Not A Name", include_namespaces="shop, BAD_NS!")
        response = member.post(f"/o/alpha/snapshots/clusters/{prod.pk}/new/", form)
        assert response.status_code == 400
        errors = field_errors(response.content.decode())
        assert set(errors) == {"name", "include_namespaces"}, errors
        assert errors["include_namespaces"][0].startswith("&#x27;BAD_NS!&#x27; is not a namespace name")
        # What was typed is shown again.
        assert 'value="shop, BAD_NS!"' in response.content.decode()
        response = member.post(
            f"/o/alpha/snapshots/clusters/{prod.pk}/new/", snapshot_form(include_kinds="ConfigMap, a/b/c/d")
        )
        errors = field_errors(response.content.decode())
        assert list(errors) == ["include_kinds"] and errors["include_kinds"][0].startswith(
            "&#x27;a/b/c/d&#x27;: "
        )
        assert in_org(org_a, lambda: (Snapshot.objects.count(), Operation.objects.count())) == (0, 0)
        response = member.post(
            f"/o/alpha/snapshots/clusters/{prod.pk}/new/", snapshot_form(label_selector="app in (")
        )
        assert response.status_code == 400 and "label_selector" in field_errors(response.content.decode())
        assert in_org(org_a, lambda: Snapshot.objects.count()) == 0

    def test_a_taken_name_and_a_cluster_not_running(self, org_a: Organization, member: Client) -> None:
        prod = ready_cluster(org_a)
        completed(org_a, prod, "before-upgrade")
        response = member.post(f"/o/alpha/snapshots/clusters/{prod.pk}/new/", snapshot_form())
        assert response.status_code == 409 and field_errors(response.content.decode()) == {"name": ["Taken."]}
        in_org(org_a, lambda: Cluster.objects.filter(pk=prod.pk).update(status=ClusterStatus.PROVISIONING))
        response = member.post(f"/o/alpha/snapshots/clusters/{prod.pk}/new/", snapshot_form(name="other"))
        assert (
            response.status_code == 409 and "can be snapshotted once it is Ready" in response.content.decode()
        )
        assert in_org(org_a, lambda: Snapshot.objects.count()) == 1

    def test_viewer_cannot_take_one(self, org_a: Organization, viewer: Client) -> None:
        prod = ready_cluster(org_a)
        response = viewer.post(f"/o/alpha/snapshots/clusters/{prod.pk}/new/", snapshot_form())
        assert response.status_code == 403 and "member role or higher" in messages_of(response)
        assert in_org(org_a, lambda: Snapshot.objects.count()) == 0
        assert (
            viewer.get(f"/o/alpha/snapshots/clusters/{prod.pk}/new/")["Location"]
            == f"/o/alpha/clusters/{prod.pk}/"
        )


class TestSnapshotPage:
    def test_member_sees_what_it_holds_and_the_restore_form(
        self, org_a: Organization, member: Client
    ) -> None:
        prod, stage = ready_cluster(org_a, "prod"), ready_cluster(org_a, "stage")
        snapshot = completed(
            org_a,
            prod,
            conditions=[
                {"type": "Consistent", "status": "False", "reason": "Resumed", "message": "listed twice"}
            ],
            kinds={"v1/ConfigMap": 1200, "apps/v1/Deployment": 34, "v1/Event": 0, "batch/v1/Job": 0},
        )
        page = member.get(f"/o/alpha/snapshots/{snapshot.pk}/").content.decode()
        assert 'data-testid="snapshot-status">Completed<' in page
        for shown in (
            "<code>v1/ConfigMap</code></td><td>1200<",
            "4.8\xa0MB",
            "1.5\xa0MB stored, 3 chunks",
            "1.31.4",
        ):
            assert shown in page, shown
        assert "Consistent" in page and "listed twice" in page
        # Kinds listed with no objects are counted, not shown.
        assert 'data-kind="v1/Event"' not in page and "2 other kinds listed, with no objects." in page
        assert f'action="/o/alpha/snapshots/{snapshot.pk}/restore/"' in page and "Preview restore" in page
        # The target defaults to the snapshot's own cluster; every running cluster is offered.
        assert (
            f'<option value="{prod.pk}" selected>prod</option>' in page
            and f'<option value="{stage.pk}">' in page
        )
        # Deleting needs an admin.
        assert "Delete snapshot" not in page
        assert "flotilla:snapshot.changed from:body" in page and "flotilla:restore.changed from:body" in page

    def test_viewer_sees_no_controls(self, org_a: Organization, viewer: Client) -> None:
        snapshot = completed(org_a, ready_cluster(org_a))
        page = viewer.get(f"/o/alpha/snapshots/{snapshot.pk}/").content.decode()
        assert 'data-testid="snapshot-status">Completed<' in page
        assert (
            "Preview restore" not in page
            and 'id="restore-form"' not in page
            and 'id="snapshot-delete"' not in page
        )

    def test_a_running_snapshot_shows_its_progress_and_no_restore(
        self, org_a: Organization, owner: Client
    ) -> None:
        prod = ready_cluster(org_a)
        snapshot = completed(org_a, prod, status=SnapshotStatus.RUNNING, completed_at=None)
        in_org(
            org_a,
            lambda: Operation.objects.create(
                cluster=prod,
                subject_type="snapshot",
                subject_id=snapshot.pk,
                kind="snapshot",
                status="running",
                step="12,000 objects, 3.1 MB written (4 of 40 resources)",
                progress=12,
            ),
        )
        page = owner.get(f"/o/alpha/snapshots/{snapshot.pk}/").content.decode()
        assert 'data-testid="operation-progress"' in page and '<progress max="100" value="12"' in page
        assert "12,000 objects, 3.1 MB written" in page and 'data-testid="snapshot-settling"' in page
        assert "Preview restore" not in page and "Delete snapshot" not in page
        part = owner.get(f"/o/alpha/snapshots/{snapshot.pk}/live/", HTTP_HX_REQUEST="true").content.decode()
        assert "<html" not in part and "12,000 objects" in part

    def test_live_fragment_of_an_unknown_snapshot_moves_to_the_list(
        self, org_a: Organization, viewer: Client
    ) -> None:
        response = viewer.get("/o/alpha/snapshots/999999/live/", HTTP_HX_REQUEST="true")
        assert response["HX-Redirect"] == "/o/alpha/snapshots/"
        assert viewer.get("/o/alpha/snapshots/999999/live/").status_code == 404
        assert viewer.get("/o/alpha/snapshots/999999/").status_code == 404

    def test_delete_needs_the_name_typed_and_an_admin(
        self, org_a: Organization, owner: Client, member: Client
    ) -> None:
        snapshot = completed(org_a, ready_cluster(org_a))
        page = owner.get(f"/o/alpha/snapshots/{snapshot.pk}/").content.decode()
        assert "Delete snapshot" in page
        response = owner.post(
            f"/o/alpha/snapshots/{snapshot.pk}/delete/", {"confirm_name": "wrong"}, follow=True
        )
        assert "Type the snapshot's name, nightly, to delete it." in messages_of(response)
        assert in_org(org_a, lambda: Snapshot.objects.get(pk=snapshot.pk).status) == SnapshotStatus.COMPLETED
        response = member.post(f"/o/alpha/snapshots/{snapshot.pk}/delete/", {"confirm_name": "nightly"})
        assert response.status_code == 403 and "admin role or higher" in messages_of(response)
        response = owner.post(
            f"/o/alpha/snapshots/{snapshot.pk}/delete/", {"confirm_name": "nightly"}, follow=True
        )
        assert "Deleting snapshot nightly: its files are removed from local." in messages_of(response)
        assert in_org(org_a, lambda: Snapshot.objects.get(pk=snapshot.pk).status) == SnapshotStatus.DELETING


class TestRestoreForm:
    def test_the_form_starts_a_preview(self, org_a: Organization, member: Client) -> None:
        prod, stage = ready_cluster(org_a, "prod"), ready_cluster(org_a, "stage")
        snapshot = completed(org_a, prod)
        response = member.post(f"/o/alpha/snapshots/{snapshot.pk}/restore/", restore_form(stage))
        restore = in_org(org_a, lambda: Restore.objects.get())
        assert (
            response.status_code == 302
            and response["Location"] == f"/o/alpha/snapshots/restores/{restore.pk}/"
        )
        assert restore.mode == RestoreMode.PREVIEW and restore.target_id == stage.pk
        assert restore.options["namespace_map"] == {"shop": "shop-copy"}
        assert restore.options["storage_class_map"] == {"fast": "standard"}
        assert restore.options["existing"] == "update" and restore.options["include_namespaces"] == ["shop"]
        assert restore.options["exclude_kinds"] == ["Event"]
        page = member.get(response["Location"]).content.decode()
        assert "nothing is changed until you confirm it" in page and "<code>shop=shop-copy</code>" in page
        assert "Restore now" not in page  # not completed yet

    def test_the_form_page_and_its_errors(self, org_a: Organization, member: Client) -> None:
        prod = ready_cluster(org_a)
        snapshot = completed(org_a, prod)
        assert "Preview restore" in member.get(f"/o/alpha/snapshots/{snapshot.pk}/restore/").content.decode()
        bad = restore_form(prod, namespace_map="shop=shop-copy\nno equals sign here", include_kinds="a/b/c/d")
        response = member.post(f"/o/alpha/snapshots/{snapshot.pk}/restore/", bad)
        assert response.status_code == 400
        errors = field_errors(response.content.decode())
        assert errors["namespace_map"] == ["Line 2: write one FROM=TO per line."], errors
        # The service's errors are placed on the inputs too.
        bad = restore_form(
            prod, namespace_map="shop=Not_A_Namespace", include_kinds="a/b/c/d", storage_class_map=""
        )
        response = member.post(f"/o/alpha/snapshots/{snapshot.pk}/restore/", bad)
        assert response.status_code == 400
        errors = field_errors(response.content.decode())
        assert set(errors) >= {"namespace_map", "include_kinds"}, errors
        assert "Not_A_Namespace" in errors["namespace_map"][0]
        # Another org's (or an unknown) cluster is not a target.
        response = member.post(
            f"/o/alpha/snapshots/{snapshot.pk}/restore/", {**restore_form(prod), "target": "999999"}
        )
        assert response.status_code == 400 and "target" in field_errors(response.content.decode())
        assert in_org(org_a, lambda: (Restore.objects.count(), Operation.objects.count())) == (0, 0)

    def test_only_a_completed_snapshot_is_restored(self, org_a: Organization, member: Client) -> None:
        prod = ready_cluster(org_a)
        snapshot = completed(org_a, prod, status=SnapshotStatus.FAILED, reason="storage refused")
        assert "Preview restore" not in member.get(f"/o/alpha/snapshots/{snapshot.pk}/").content.decode()
        response = member.post(f"/o/alpha/snapshots/{snapshot.pk}/restore/", restore_form(prod))
        assert response.status_code == 409 and "only a completed snapshot can be restored" in messages_of(
            response
        )
        assert in_org(org_a, lambda: Restore.objects.count()) == 0

    def test_viewer_cannot_restore(self, org_a: Organization, viewer: Client) -> None:
        prod = ready_cluster(org_a)
        snapshot = completed(org_a, prod)
        response = viewer.post(f"/o/alpha/snapshots/{snapshot.pk}/restore/", restore_form(prod))
        assert response.status_code == 403 and "member role or higher" in messages_of(response)
        assert in_org(org_a, lambda: Restore.objects.count()) == 0


class TestRestorePage:
    def test_a_completed_preview_shows_its_report_and_restore_now(
        self, org_a: Organization, member: Client
    ) -> None:
        prod = ready_cluster(org_a)
        preview = finish(
            org_a, preview_of(org_a, completed(org_a, prod), prod, namespace_map={"shop": "shop-copy"})
        )
        page = member.get(f"/o/alpha/snapshots/restores/{preview.pk}/").content.decode()
        assert 'data-testid="restore-status">Completed<' in page and "Restore now" in page
        assert "nothing was changed in prod" in page
        assert re.search(r'data-count="created"><dt>to create</dt><dd>1<', page)
        conflict = re.search(r'<tr data-item="ConfigMap/shop-copy/cm-2".*?</tr>', page, re.S)
        assert conflict and "field is immutable" in conflict.group(0) and "from shop" in conflict.group(0)
        update = re.search(r'<tr data-item="ConfigMap/shop-copy/cm-1".*?</tr>', page, re.S)
        assert update, page
        assert "<code>data.colour</code>: <code>blue</code> → <code>green</code>" in update.group(0)
        assert (
            "<code>metadata.labels</code>: <code>—</code> → <code>{&quot;tier&quot;:&quot;web&quot;}</code>"
            in (update.group(0))
        )
        assert "flotilla:restore.changed from:body" in page

        response = member.post(f"/o/alpha/snapshots/restores/{preview.pk}/confirm/")
        restore = in_org(org_a, lambda: Restore.objects.get(preview_id=preview.pk))
        assert response["Location"] == f"/o/alpha/snapshots/restores/{restore.pk}/"
        assert restore.mode == RestoreMode.RESTORE and restore.options == preview.options
        # A second click gets the same restore; the preview now links to it.
        again = member.post(f"/o/alpha/snapshots/restores/{preview.pk}/confirm/")
        assert again["Location"] == response["Location"]
        assert in_org(org_a, lambda: Restore.objects.filter(mode=RestoreMode.RESTORE).count()) == 1
        page = member.get(f"/o/alpha/snapshots/restores/{preview.pk}/").content.decode()
        assert "Restore now" not in page and f"Restored as #{restore.pk}" in page
        page = member.get(response["Location"]).content.decode()
        assert f"Its preview, #{preview.pk}" in page and "Restore now" not in page
        assert '<div data-count="created"><dt>created</dt><dd>0<' in page

    def test_filters_and_pages_of_the_report(self, org_a: Organization, viewer: Client) -> None:
        prod = ready_cluster(org_a)
        preview = finish(org_a, preview_of(org_a, completed(org_a, prod), prod), items=250)
        base = f"/o/alpha/snapshots/restores/{preview.pk}/"
        page = viewer.get(base).content.decode()
        assert page.count("<tr data-item=") == 100 and "Page 1 of 3 (250 objects)" in page
        # Viewers see the report, never the button.
        assert "Restore now" not in page
        page = viewer.get(base, {"action": "conflict"}).content.decode()
        assert page.count("<tr data-item=") == 83 and page.count('data-action="conflict"') >= 83
        part = viewer.get(f"{base}items/", {"action": "update"}, HTTP_HX_REQUEST="true").content.decode()
        assert (
            "<html" not in part
            and part.count("<tr data-item=") == 83
            and 'data-testid="items-pager"' not in part
        )
        assert f'hx-get="{base}items/?action=update"' in part
        part = viewer.get(f"{base}items/", {"page": 3}).content.decode()
        assert part.count("<tr data-item=") == 50 and f'hx-get="{base}items/?page=3"' in part
        empty = viewer.get(f"{base}items/", {"result": "failed"}).content.decode()
        assert "No object matches." in empty

    def test_query_budget_of_the_report(self, org_a: Organization, owner: Client) -> None:
        prod = ready_cluster(org_a)
        few_items = finish(org_a, preview_of(org_a, completed(org_a, prod, "a"), prod), items=5)
        many_items = finish(org_a, preview_of(org_a, completed(org_a, prod, "b"), prod), items=50)

        def count(restore: Restore) -> int:
            with CaptureQueriesContext(connection) as queries:
                assert owner.get(f"/o/alpha/snapshots/restores/{restore.pk}/").status_code == 200
            return len(queries.captured_queries)

        assert count(few_items) == count(many_items)

    def test_viewer_cannot_confirm(self, org_a: Organization, viewer: Client) -> None:
        prod = ready_cluster(org_a)
        preview = finish(org_a, preview_of(org_a, completed(org_a, prod), prod))
        response = viewer.post(f"/o/alpha/snapshots/restores/{preview.pk}/confirm/")
        assert response.status_code == 403 and "member role or higher" in messages_of(response)
        assert in_org(org_a, lambda: Restore.objects.count()) == 1

    def test_a_preview_still_running_cannot_be_confirmed(self, org_a: Organization, member: Client) -> None:
        prod = ready_cluster(org_a)
        preview = preview_of(org_a, completed(org_a, prod), prod)
        response = member.post(f"/o/alpha/snapshots/restores/{preview.pk}/confirm/", follow=True)
        assert "confirm it once it has completed" in messages_of(response)
        assert in_org(org_a, lambda: Restore.objects.count()) == 1


class TestLocations:
    def test_viewer_sees_the_list_without_controls(self, org_a: Organization, viewer: Client) -> None:
        prod = ready_cluster(org_a)
        completed(org_a, prod)  # makes the default local location, holding one snapshot
        location(
            org_a,
            "archive",
            kind=StorageKind.S3,
            bucket="backups",
            endpoint="http://127.0.0.1:9000",
            region="eu-west-1",
            credentials=f'{{"key": "AKIA", "secret": "{SECRET}"}}',
            checked_at=timezone.now(),
            check_error="Connection refused",
        )
        page = viewer.get("/o/alpha/snapshots/locations/").content.decode()
        archive = re.search(r'<tr data-location="archive">.*?</tr>', page, re.S)
        assert archive, page
        for shown in (
            "<code>backups</code>",
            "http://127.0.0.1:9000",
            "eu-west-1",
            "Connection refused",
            "credentials stored",
        ):
            assert shown in archive.group(0), shown
        local = re.search(r'<tr data-location="local">.*?</tr>', page, re.S)
        assert local and 'data-testid="default-location"' in local.group(0) and "<td>1</td>" in local.group(0)
        assert SECRET not in page and "AKIA" not in page
        assert "Add a location" not in page and "Make default" not in page and ">Delete<" not in page
        # The org's settings link here.
        assert 'href="/o/alpha/snapshots/locations/"' in viewer.get("/o/alpha/settings/").content.decode()

    def test_add_a_local_location_check_it_make_it_default_and_delete_it(
        self, org_a: Organization, owner: Client
    ) -> None:
        location(org_a, "first")
        assert "Add a location" in owner.get("/o/alpha/snapshots/locations/").content.decode()
        assert owner.get("/o/alpha/snapshots/locations/new/").status_code == 200
        response = owner.post(
            "/o/alpha/snapshots/locations/new/", {"name": "second", "kind": "local"}, follow=True
        )
        assert "Added storage location second: a test write succeeded." in messages_of(response)
        second = in_org(org_a, lambda: StorageLocation.objects.get(name="second"))
        assert second.checked_at is not None and not second.is_default
        response = owner.post(f"/o/alpha/snapshots/locations/{second.pk}/check/", follow=True)
        assert "Storage location second answers" in messages_of(response)
        response = owner.post(f"/o/alpha/snapshots/locations/{second.pk}/default/", follow=True)
        assert "New snapshots go to second" in messages_of(response)
        assert in_org(
            org_a,
            lambda: list(StorageLocation.objects.filter(is_default=True).values_list("name", flat=True)),
        ) == ["second"]
        response = owner.post(f"/o/alpha/snapshots/locations/{second.pk}/delete/", follow=True)
        assert "Removed storage location second" in messages_of(response)
        assert not in_org(org_a, lambda: StorageLocation.objects.filter(name="second").exists())

    def test_bad_input_shows_errors_and_saves_nothing(self, org_a: Organization, owner: Client) -> None:
        response = owner.post(
            "/o/alpha/snapshots/locations/new/", {"name": "Bad Name", "kind": "local", "bucket": "b"}
        )
        assert response.status_code == 400
        errors = field_errors(response.content.decode())
        assert set(errors) >= {"name", "bucket"}, errors
        # An S3 location the storage refuses: its reason is shown, the secret never again.
        form = {
            "name": "archive",
            "kind": "s3",
            "bucket": "backups",
            "endpoint": "http://127.0.0.1:9",
            "region": "us-east-1",
            "key": "AKIAEXAMPLE",
            "secret": SECRET,
        }
        response = owner.post("/o/alpha/snapshots/locations/new/", form)
        page = response.content.decode()
        assert response.status_code == 400
        assert "a loopback address" in field_errors(page)["endpoint"][0], page
        assert SECRET not in page and 'value="AKIAEXAMPLE"' in page
        response = owner.post("/o/alpha/snapshots/locations/new/", {**form, "options": "not a pair"})
        assert field_errors(response.content.decode())["options"] == [
            "Line 1: write one NAME=VALUE per line."
        ]
        assert not in_org(org_a, lambda: StorageLocation.objects.exists())

    def test_a_location_holding_snapshots_is_not_deleted(self, org_a: Organization, owner: Client) -> None:
        snapshot = completed(org_a, ready_cluster(org_a))
        assert snapshot.location is not None
        response = owner.post(f"/o/alpha/snapshots/locations/{snapshot.location.pk}/delete/", follow=True)
        assert "Storage location local still holds snapshots: delete them first." in messages_of(response)
        assert in_org(org_a, lambda: StorageLocation.objects.filter(pk=snapshot.location.pk).exists())

    def test_members_and_viewers_cannot_change_them(
        self, org_a: Organization, member: Client, viewer: Client
    ) -> None:
        where = location(org_a, "first")
        location(org_a, "second", is_default=False)
        for client in (member, viewer):
            for path, data in [
                ("/o/alpha/snapshots/locations/new/", {"name": "third", "kind": "local"}),
                (f"/o/alpha/snapshots/locations/{where.pk}/delete/", {}),
                (f"/o/alpha/snapshots/locations/{where.pk + 1}/default/", {}),
            ]:
                response = client.post(path, data)
                assert response.status_code == 403, path
                assert "admin role or higher" in messages_of(response), path
            assert (
                client.get("/o/alpha/snapshots/locations/new/")["Location"] == "/o/alpha/snapshots/locations/"
            )
        assert in_org(org_a, lambda: sorted(StorageLocation.objects.values_list("name", "is_default"))) == [
            ("first", True),
            ("second", False),
        ]
        # Checking is reading: a viewer may ask for it (the service allows every role).
        response = viewer.post(f"/o/alpha/snapshots/locations/{where.pk}/check/", follow=True)
        assert "Storage location first answers" in messages_of(response)


class TestIsolation:
    def test_other_orgs_pages_and_actions_are_404(self, org_a: Organization, org_b: Organization) -> None:
        prod = ready_cluster(org_a)
        snapshot = completed(org_a, prod, "secret-snap")
        preview = finish(org_a, preview_of(org_a, snapshot, prod))
        where = snapshot.location
        assert where is not None
        outsider = signed_in(owner_of(org_b).user)
        for slug in ("alpha", "bravo"):
            base = f"/o/{slug}/snapshots"
            for path in (
                f"{base}/{snapshot.pk}/",
                f"{base}/{snapshot.pk}/live/",
                f"{base}/{snapshot.pk}/restores/",
                f"{base}/{snapshot.pk}/restore/",
                f"{base}/restores/{preview.pk}/",
                f"{base}/restores/{preview.pk}/live/",
                f"{base}/restores/{preview.pk}/items/",
                f"{base}/clusters/{prod.pk}/",
                f"{base}/clusters/{prod.pk}/table/",
                f"{base}/clusters/{prod.pk}/new/",
            ):
                assert outsider.get(path).status_code == 404, path
            for path in (
                f"{base}/{snapshot.pk}/delete/",
                f"{base}/{snapshot.pk}/restore/",
                f"{base}/restores/{preview.pk}/confirm/",
                f"{base}/clusters/{prod.pk}/new/",
                f"{base}/locations/{where.pk}/check/",
                f"{base}/locations/{where.pk}/default/",
                f"{base}/locations/{where.pk}/delete/",
            ):
                data = {
                    "confirm_name": "secret-snap",
                    "target": str(prod.pk),
                    "existing": "skip",
                    "name": "x",
                }
                assert outsider.post(path, data).status_code == 404, path
        for path in ("/o/bravo/snapshots/", "/o/bravo/snapshots/locations/"):
            page = outsider.get(path).content.decode()
            assert "secret-snap" not in page and f'data-location="{where.name}"' not in page
        assert in_org(
            org_a, lambda: (Snapshot.objects.get(pk=snapshot.pk).status, Restore.objects.count())
        ) == (
            SnapshotStatus.COMPLETED,
            1,
        )
        assert in_org(org_a, lambda: StorageLocation.objects.filter(pk=where.pk).exists())
