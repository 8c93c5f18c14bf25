"""The staff directory's snapshots and restores: entries kept in step with the org schemas (sync,
rebuild, isolation), the staff lists across orgs (staff only, the same query count for 10 or 100
rows over 2 or 20 orgs), and the tenant admin pages (never a storage credential, a restore's
failed items first).

Snapshots and restores are made as rows here (no storage and no Kubernetes needed): the directory
reads rows, whichever service wrote them.
"""

from __future__ import annotations

import json
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

from clusters.choices import ClusterStatus
from clusters.models import Cluster
from orgs.choices import Role
from orgs.models import Organization
from snapshots.choices import (
    ItemAction,
    ItemResult,
    RestoreMode,
    RestoreStatus,
    SnapshotStatus,
    StorageKind,
)
from snapshots.directory import services as directory
from snapshots.directory.models import RestoreEntry, SnapshotEntry
from snapshots.models import Restore, RestoreItem, Snapshot, StorageLocation
from tests.clusters.helpers import local_provider
from tests.factories import add_member, make_org, make_user, owner_of

pytestmark = pytest.mark.django_db

SNAPSHOTS = "/admin/snapshots_directory/snapshotentry/"
RESTORES = "/admin/snapshots_directory/restoreentry/"
ACCESS_KEY = "AKIAFLOTILLATESTKEY"
SECRET_KEY = "wJalrXUtnFEMI-s3cr3t-storage-key"
SECRET_IN_DIFF = "cGFzc3dvcmQtaW4tZGlmZg"
MIB = 1024 * 1024
SECRET_COLUMNS = ('"snapshots_storagelocation"."credentials"', '"clusters_cluster"."kubeconfig"')


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(make_user("staff@flotilla.test", is_staff=True, is_superuser=True))
    return client


def make_cluster(org: Organization, name: str = "web") -> Cluster:
    provider = local_provider(org)
    with schema_context(org.schema_name):
        return Cluster.objects.create(
            name=name,
            provider=provider,
            version="1.36.1",
            status=ClusterStatus.READY,
            external_name=f"{org.slug}-{name}",
        )


def make_location(org: Organization, name: str = "backups", **fields: Any) -> StorageLocation:
    values: dict[str, Any] = {
        "kind": StorageKind.S3,
        "bucket": f"{org.slug}-snapshots",
        "endpoint": "http://127.0.0.1:9000",
        "region": "eu-west-1",
        "credentials": json.dumps({"key": ACCESS_KEY, "secret": SECRET_KEY}),
        **fields,
    }
    with schema_context(org.schema_name):
        return StorageLocation.objects.create(name=name, **values)


def make_snapshot(
    org: Organization,
    cluster: Cluster | None,
    location: StorageLocation | None,
    name: str = "nightly",
    **fields: Any,
) -> Snapshot:
    values: dict[str, Any] = {
        "cluster": cluster,
        "cluster_name": cluster.name if cluster else "",
        "location": location,
        "status": SnapshotStatus.COMPLETED,
        "object_count": 1234,
        "raw_bytes": 8 * MIB,
        "stored_bytes": 3 * MIB // 2,
        "chunk_count": 3,
        "kubernetes_version": "v1.36.1",
        "provider": "local",
        "created_by": "alice@example.com",
        "completed_at": timezone.now(),
        **fields,
    }
    with schema_context(org.schema_name):
        return Snapshot.objects.create(name=name, **values)


def make_restore(org: Organization, snapshot: Snapshot, target: Cluster, **fields: Any) -> Restore:
    values: dict[str, Any] = {
        "mode": RestoreMode.RESTORE,
        "status": RestoreStatus.COMPLETED,
        "counts": {"created": 10, "updated": 2, "unchanged": 1, "skipped": 3, "conflict": 0, "failed": 0},
        "created_by": "bob@example.com",
        **fields,
    }
    with schema_context(org.schema_name):
        return Restore.objects.create(snapshot=snapshot, target=target, **values)


def snapshot_entry(org: Organization, snapshot: Snapshot) -> SnapshotEntry:
    entry: SnapshotEntry = SnapshotEntry.objects.get(org=org, snapshot_id=snapshot.pk)
    return entry


def restore_entry(org: Organization, restore: Restore) -> RestoreEntry:
    entry: RestoreEntry = RestoreEntry.objects.get(org=org, restore_id=restore.pk)
    return entry


def synced(org: Organization, name: str = "web") -> tuple[Cluster, StorageLocation, Snapshot, Restore]:
    """A cluster, a location, a completed snapshot and a restore of it, all in the directory."""
    cluster = make_cluster(org, name)
    location = make_location(org)
    snapshot = make_snapshot(org, cluster, location, f"{name}-nightly")
    restore = make_restore(org, snapshot, cluster)
    directory.sync_snapshot(org.schema_name, snapshot.pk)
    directory.sync_restore(org.schema_name, restore.pk)
    return cluster, location, snapshot, restore


class TestSync:
    def test_a_snapshot_entry_follows_its_row_to_its_deletion(self, org_a: Organization) -> None:
        cluster = make_cluster(org_a, "prod")
        location = make_location(org_a)
        snapshot = make_snapshot(
            org_a, cluster, location, status=SnapshotStatus.RUNNING, completed_at=None, object_count=0
        )
        directory.sync_snapshot(org_a.schema_name, snapshot.pk)
        entry = snapshot_entry(org_a, snapshot)
        assert (entry.name, entry.uuid, entry.cluster_id, entry.cluster_name) == (
            "nightly",
            snapshot.uuid,
            cluster.pk,
            "prod",
        )
        assert (entry.location_id, entry.location_name, entry.location_kind) == (location.pk, "backups", "s3")
        assert (entry.status, entry.object_count, entry.has_failures, entry.completed_at) == (
            SnapshotStatus.RUNNING,
            0,
            False,
            None,
        )

        # Completed, but a list had to be restarted: a failure staff see, not a failed snapshot.
        with schema_context(org_a.schema_name):
            Snapshot.objects.filter(pk=snapshot.pk).update(
                status=SnapshotStatus.COMPLETED,
                object_count=5000,
                stored_bytes=7 * MIB,
                raw_bytes=40 * MIB,
                chunk_count=9,
                completed_at=timezone.now(),
                conditions=[
                    {"type": "Listed", "status": "True", "reason": "Done", "message": ""},
                    {
                        "type": "Consistent",
                        "status": "False",
                        "reason": "Expired",
                        "message": "the list of configmaps was restarted",
                    },
                ],
            )
        directory.sync_snapshot(org_a.schema_name, snapshot.pk)
        entry = snapshot_entry(org_a, snapshot)
        assert (entry.status, entry.object_count, entry.stored_bytes, entry.raw_bytes, entry.chunk_count) == (
            SnapshotStatus.COMPLETED,
            5000,
            7 * MIB,
            40 * MIB,
            9,
        )
        assert entry.completed_at is not None
        assert entry.warning == "Consistent: the list of configmaps was restarted"
        assert entry.has_failures

        with schema_context(org_a.schema_name):
            Snapshot.objects.filter(pk=snapshot.pk).update(
                status=SnapshotStatus.FAILED, reason="x" * 500, conditions=[]
            )
        directory.sync_snapshot(org_a.schema_name, snapshot.pk)
        entry = snapshot_entry(org_a, snapshot)
        assert (entry.status, entry.reason, entry.warning, entry.has_failures) == (
            SnapshotStatus.FAILED,
            "x" * 200,  # cut to the entry's length
            "",
            True,
        )
        assert SnapshotEntry.objects.listed().filter(pk=entry.pk).exists()

        # Deleted (the row stays for the record): deleted, and no longer listed.
        with schema_context(org_a.schema_name):
            Snapshot.objects.filter(pk=snapshot.pk).update(
                status=SnapshotStatus.DELETED, deleted_at=timezone.now()
            )
        directory.sync_snapshot(org_a.schema_name, snapshot.pk)
        assert snapshot_entry(org_a, snapshot).status == SnapshotStatus.DELETED
        assert snapshot_entry(org_a, snapshot).deleted_at is not None
        assert not SnapshotEntry.objects.listed().filter(org=org_a).exists()

    def test_a_snapshot_gone_from_its_schema_is_deleted(self, org_a: Organization) -> None:
        snapshot = make_snapshot(org_a, make_cluster(org_a), make_location(org_a))
        directory.sync_snapshot(org_a.schema_name, snapshot.pk)
        with schema_context(org_a.schema_name):
            Snapshot.objects.filter(pk=snapshot.pk).delete()
        directory.sync_snapshot(org_a.schema_name, snapshot.pk)
        assert snapshot_entry(org_a, snapshot).status == SnapshotStatus.DELETED

    def test_a_snapshot_outlives_its_cluster_and_location(self, org_a: Organization) -> None:
        cluster = make_cluster(org_a, "gone-soon")
        snapshot = make_snapshot(org_a, cluster, make_location(org_a))
        with schema_context(org_a.schema_name):
            Snapshot.objects.filter(pk=snapshot.pk).update(cluster=None, location=None)
        directory.sync_snapshot(org_a.schema_name, snapshot.pk)
        entry = snapshot_entry(org_a, snapshot)
        assert (entry.cluster_id, entry.cluster_name) == (None, "gone-soon")
        assert (entry.location_id, entry.location_name, entry.location_kind) == (None, "", "")

    def test_a_restore_entry_follows_its_row(self, org_a: Organization) -> None:
        source = make_cluster(org_a, "prod")
        target = make_cluster(org_a, "copy")
        snapshot = make_snapshot(org_a, source, make_location(org_a))
        restore = make_restore(
            org_a, snapshot, target, mode=RestoreMode.PREVIEW, status=RestoreStatus.RUNNING, counts={}
        )
        directory.sync_restore(org_a.schema_name, restore.pk)
        entry = restore_entry(org_a, restore)
        assert (entry.uuid, entry.snapshot_id, entry.snapshot_name, entry.source_cluster_name) == (
            restore.uuid,
            snapshot.pk,
            "nightly",
            "prod",
        )
        assert (entry.target_id, entry.target_name, entry.mode, entry.status) == (
            target.pk,
            "copy",
            RestoreMode.PREVIEW,
            RestoreStatus.RUNNING,
        )
        assert (entry.created, entry.failed, entry.has_failures) == (0, 0, False)

        with schema_context(org_a.schema_name):
            Restore.objects.filter(pk=restore.pk).update(
                status=RestoreStatus.PARTIAL,
                reason="2 objects failed",
                counts={
                    "created": 40,
                    "updated": 3,
                    "unchanged": 5,
                    "skipped": 7,
                    "conflict": 1,
                    "failed": 2,
                },
                completed_at=timezone.now(),
            )
        directory.sync_restore(org_a.schema_name, restore.pk)
        entry = restore_entry(org_a, restore)
        counts = (entry.created, entry.updated, entry.unchanged, entry.skipped, entry.conflict, entry.failed)
        assert counts == (40, 3, 5, 7, 1, 2)
        assert (entry.status, entry.reason, entry.has_failures) == (
            RestoreStatus.PARTIAL,
            "2 objects failed",
            True,
        )
        assert entry.completed_at is not None

        # A conflict alone (a preview that found one) is a failure staff can filter on.
        with schema_context(org_a.schema_name):
            Restore.objects.filter(pk=restore.pk).update(
                status=RestoreStatus.COMPLETED, counts={"created": 1, "conflict": 1}
            )
        directory.sync_restore(org_a.schema_name, restore.pk)
        assert restore_entry(org_a, restore).has_failures
        with schema_context(org_a.schema_name):
            Restore.objects.filter(pk=restore.pk).update(counts={"created": 1})
        directory.sync_restore(org_a.schema_name, restore.pk)
        assert not restore_entry(org_a, restore).has_failures

        # Gone with its target's row: nothing left to open, so no entry.
        with schema_context(org_a.schema_name):
            Restore.objects.filter(pk=restore.pk).delete()
        directory.sync_restore(org_a.schema_name, restore.pk)
        assert not RestoreEntry.objects.filter(org=org_a).exists()

    def test_each_org_has_its_own_entries(self, org_a: Organization, org_b: Organization) -> None:
        _, _, first, first_restore = synced(org_a, "alpha-c")
        _, _, second, second_restore = synced(org_b, "bravo-c")
        # Each schema numbers its own rows: the same ids, two entries each.
        assert (first.pk, first_restore.pk) == (second.pk, second_restore.pk)
        assert SnapshotEntry.objects.filter(snapshot_id=first.pk).count() == 2
        assert RestoreEntry.objects.filter(restore_id=first_restore.pk).count() == 2
        assert snapshot_entry(org_a, first).cluster_name == "alpha-c"
        assert snapshot_entry(org_b, second).cluster_name == "bravo-c"
        with schema_context(org_b.schema_name):
            Snapshot.objects.filter(pk=second.pk).update(status=SnapshotStatus.FAILED)
            Restore.objects.filter(pk=second_restore.pk).update(status=RestoreStatus.FAILED)
        directory.sync_snapshot(org_b.schema_name, second.pk)
        directory.sync_restore(org_b.schema_name, second_restore.pk)
        assert snapshot_entry(org_a, first).status == SnapshotStatus.COMPLETED
        assert restore_entry(org_a, first_restore).status == RestoreStatus.COMPLETED
        assert snapshot_entry(org_b, second).status == SnapshotStatus.FAILED
        assert restore_entry(org_b, second_restore).status == RestoreStatus.FAILED

    def test_an_older_read_never_overwrites_a_newer_one(self, org_a: Organization) -> None:
        from clusters.directory.store import upsert

        _, _, snapshot, _ = synced(org_a)
        stored = snapshot_entry(org_a, snapshot)
        row = {
            f.name: getattr(stored, f.attname) for f in SnapshotEntry._meta.concrete_fields if f.name != "id"
        }
        row["org"] = org_a.pk
        stale = {
            **row,
            "status": SnapshotStatus.RUNNING,
            "observed_at": stored.observed_at - timedelta(seconds=1),
        }
        upsert(SnapshotEntry, [stale], key=("org", "snapshot_id"))
        assert snapshot_entry(org_a, snapshot).status == SnapshotStatus.COMPLETED

    def test_each_sync_is_two_queries(self, org_a: Organization, django_assert_num_queries: Any) -> None:
        cluster = make_cluster(org_a)
        snapshot = make_snapshot(org_a, cluster, make_location(org_a))
        restore = make_restore(org_a, snapshot, cluster)
        with schema_context(org_a.schema_name):
            Snapshot.objects.exists()  # the connection is on the org's search path already
            with django_assert_num_queries(2):
                directory.sync_snapshot(org_a.schema_name, snapshot.pk)
            with django_assert_num_queries(2):
                directory.sync_restore(org_a.schema_name, restore.pk)
        assert snapshot_entry(org_a, snapshot).status == SnapshotStatus.COMPLETED
        assert restore_entry(org_a, restore).status == RestoreStatus.COMPLETED

    def test_rebuild_from_nothing(self, org_a: Organization, org_b: Organization) -> None:
        cluster, location, _, _ = synced(org_a, "alpha-c")
        old = make_snapshot(
            org_a, cluster, location, "old", status=SnapshotStatus.DELETED, deleted_at=timezone.now()
        )
        extra = make_snapshot(org_a, cluster, location, "extra", status=SnapshotStatus.FAILED, reason="boom")
        preview = make_restore(org_a, extra, cluster, mode=RestoreMode.PREVIEW, status=RestoreStatus.FAILED)
        synced(org_b, "bravo-c")
        for org, snapshots, restores in ((org_a, (old, extra), (preview,)), (org_b, (), ())):
            for snapshot in snapshots:
                directory.sync_snapshot(org.schema_name, snapshot.pk)
            for restore in restores:
                directory.sync_restore(org.schema_name, restore.pk)

        def copies() -> tuple[list[Any], list[Any]]:
            skip = {"id", "observed_at", "updated_at"}
            found = []
            for model, key in ((SnapshotEntry, "snapshot_id"), (RestoreEntry, "restore_id")):
                fields = [f.name for f in model._meta.concrete_fields if f.name not in skip]
                found.append(list(model.objects.order_by("org_id", key).values_list(*fields)))
            return found[0], found[1]

        before = copies()
        assert (len(before[0]), len(before[1])) == (4, 3)
        SnapshotEntry.objects.all().delete()
        RestoreEntry.objects.all().delete()
        call_command("rebuild_directory", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert copies() == before
        call_command("rebuild_directory", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert copies() == before  # idempotent

        # Rows no longer in the schema: the snapshot becomes deleted, the restore goes.
        with schema_context(org_a.schema_name):
            Restore.objects.filter(pk=preview.pk).delete()
            Snapshot.objects.filter(pk=extra.pk).delete()
        assert directory.rebuild_snapshots(org_a) == 2 + 1
        assert snapshot_entry(org_a, extra).status == SnapshotStatus.DELETED
        assert not RestoreEntry.objects.filter(org=org_a, restore_id=preview.pk).exists()
        assert sorted(SnapshotEntry.objects.listed().values_list("name", flat=True)) == [
            "alpha-c-nightly",
            "bravo-c-nightly",
        ]


def bulk_entries(orgs: int, per_org: int, start: int = 0) -> None:
    """Organisation rows (no schemas: bulk_create makes none) with snapshot and restore entries:
    the staff lists read only the public schema's entries, which is what is measured."""
    created = Organization.objects.bulk_create(
        Organization(schema_name=f"org_snaps{i}", slug=f"snaps{i}", name=f"Snaps Org {i}")
        for i in range(start, start + orgs)
    )
    now = timezone.now()
    statuses = [
        SnapshotStatus.COMPLETED,
        SnapshotStatus.FAILED,
        SnapshotStatus.RUNNING,
        SnapshotStatus.COMPLETED,
    ]
    restore_statuses = [
        RestoreStatus.COMPLETED,
        RestoreStatus.PARTIAL,
        RestoreStatus.FAILED,
        RestoreStatus.RUNNING,
    ]
    rows = [(i, org, n) for i, org in enumerate(created, start=start) for n in range(per_org)]
    SnapshotEntry.objects.bulk_create(
        SnapshotEntry(
            org=org,
            snapshot_id=n + 1,
            uuid=f"00000000-0000-4000-8000-{i:06d}{n:06d}",
            name=f"snap{i}-{n}",
            cluster_id=1,
            cluster_name=f"c{i}",
            location_id=1,
            location_name="local",
            location_kind=StorageKind.LOCAL,
            status=statuses[n % len(statuses)],
            reason="storage refused" if statuses[n % len(statuses)] == SnapshotStatus.FAILED else "",
            has_failures=statuses[n % len(statuses)] == SnapshotStatus.FAILED,
            object_count=1000 * n,
            stored_bytes=MIB * n,
            raw_bytes=4 * MIB * n,
            created_at=now + timedelta(seconds=i * per_org + n),
            observed_at=now,
            updated_at=now,
        )
        for i, org, n in rows
    )
    RestoreEntry.objects.bulk_create(
        RestoreEntry(
            org=org,
            restore_id=n + 1,
            uuid=f"00000000-0000-4000-9000-{i:06d}{n:06d}",
            snapshot_id=n + 1,
            snapshot_name=f"snap{i}-{n}",
            source_cluster_name=f"c{i}",
            target_id=1,
            target_name=f"c{i}",
            mode=RestoreMode.RESTORE if n % 2 else RestoreMode.PREVIEW,
            status=restore_statuses[n % len(restore_statuses)],
            created=n,
            failed=n % 3,
            has_failures=bool(n % 3),
            created_at=now + timedelta(seconds=i * per_org + n),
            observed_at=now,
            updated_at=now,
        )
        for i, org, n in rows
    )


class TestStaffLists:
    def test_staff_see_both_orgs_with_sizes_and_links(
        self, staff: Client, org_a: Organization, org_b: Organization
    ) -> None:
        alpha, _, alpha_snapshot, alpha_restore = synced(org_a, "alpha-c")
        synced(org_b, "bravo-c")
        page = staff.get(SNAPSHOTS).content.decode()
        assert set(re.findall(r'data-snapshot="([^"]+)"', page)) == {"alpha-c-nightly", "bravo-c-nightly"}
        assert org_a.name in page and org_b.name in page
        assert f"/admin/snapshots/snapshot/{alpha_snapshot.pk}/change/?schema={org_a.schema_name}" in page
        assert f"/admin/clusters/cluster/{alpha.pk}/change/?schema={org_a.schema_name}" in page
        assert f"/admin/orgs/organization/{org_a.pk}/change/" in page
        row = re.search(r'<tr>(?:(?!</tr>).)*data-snapshot="alpha-c-nightly".*?</tr>', page, re.S)
        assert row
        assert "backups (s3)" in row.group(0) and "1234" in row.group(0)
        assert re.search(r">1\.5\s*MB<", row.group(0).replace("\xa0", " "))  # stored, human

        page = staff.get(RESTORES).content.decode()
        assert re.findall(r'data-restore="(\d+)"', page) == [str(alpha_restore.pk)] * 2
        assert f"/admin/snapshots/restore/{alpha_restore.pk}/change/?schema={org_a.schema_name}" in page
        assert org_a.name in page and org_b.name in page
        # Created/updated/skipped/failed.
        assert f'data-counts="{alpha_restore.pk}"' in page and ">10/2/3/0<" in page

        # The link opens the snapshot's page inside its org's schema.
        detail = staff.get(
            f"/admin/snapshots/snapshot/{alpha_snapshot.pk}/change/?schema={org_a.schema_name}"
        )
        assert detail.status_code == 200 and "alpha-c-nightly" in detail.content.decode()

    def test_search_and_filters(self, staff: Client, org_a: Organization, org_b: Organization) -> None:
        cluster, location, _, _ = synced(org_a, "alpha-c")
        failed = make_snapshot(
            org_a, cluster, location, "broken", status=SnapshotStatus.FAILED, reason="no space left"
        )
        local = make_location(org_a, "own", kind=StorageKind.LOCAL, bucket="", credentials="")
        make_snapshot(org_a, cluster, local, "at-home")
        partial = make_restore(
            org_a,
            failed,
            cluster,
            mode=RestoreMode.PREVIEW,
            status=RestoreStatus.PARTIAL,
            reason="1 object failed",
            counts={"created": 1, "failed": 1},
        )
        synced(org_b, "bravo-c")
        directory.rebuild_snapshots(org_a)

        def names(query: str) -> set[str]:
            page = staff.get(f"{SNAPSHOTS}?{query}").content.decode()
            return set(re.findall(r'data-snapshot="([^"]+)"', page))

        def restores(query: str) -> set[str]:
            page = staff.get(f"{RESTORES}?{query}").content.decode()
            found = re.findall(r'data-restore="(\d+)".*?data-org="([^"]+)"', page, re.S)
            return {f"{slug}:{number}" for number, slug in found}

        everything = {"alpha-c-nightly", "broken", "at-home", "bravo-c-nightly"}
        assert names("") == everything
        assert names("q=brok") == {"broken"}
        assert names("q=bravo-c") == {"bravo-c-nightly"}  # the cluster's name, and the org's slug
        assert names(f"q={org_a.name}") == everything - {"bravo-c-nightly"}
        assert names("org=bravo") == {"bravo-c-nightly"}
        assert names("status=failed") == {"broken"}
        assert "no space left" in staff.get(f"{SNAPSHOTS}?status=failed").content.decode()
        assert names("has_failures__exact=1") == {"broken"}
        assert names("has_failures__exact=0") == everything - {"broken"}
        assert names("location_kind__exact=local") == {"at-home"}
        assert names("_facets=True") == everything
        with schema_context(org_a.schema_name):
            Snapshot.objects.filter(name="at-home").update(
                status=SnapshotStatus.DELETED, deleted_at=timezone.now()
            )
        directory.rebuild_snapshots(org_a)
        assert names("") == everything - {"at-home"}  # deleted ones are one click away
        assert names("status=all") == everything
        assert names("status=deleted") == {"at-home"}

        first = f"alpha:{partial.pk - 1}"
        assert restores("") == {first, f"alpha:{partial.pk}", "bravo:1"}
        assert restores("has_failures__exact=1") == {f"alpha:{partial.pk}"}
        assert restores("mode__exact=preview") == {f"alpha:{partial.pk}"}
        assert restores("status__exact=completed") == {first, "bravo:1"}
        assert restores("q=broken") == {f"alpha:{partial.pk}"}  # the snapshot's name
        assert restores("q=bravo") == {"bravo:1"}
        assert restores("org=alpha") == {first, f"alpha:{partial.pk}"}
        assert "1 object failed" in staff.get(f"{RESTORES}?has_failures__exact=1").content.decode()

    def test_read_only(self, staff: Client, org_a: Organization) -> None:
        _, _, snapshot, restore = synced(org_a)
        for url, entry in (
            (SNAPSHOTS, snapshot_entry(org_a, snapshot)),
            (RESTORES, restore_entry(org_a, restore)),
        ):
            assert staff.get(f"{url}add/").status_code == 403
            assert staff.post(f"{url}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
            assert (
                staff.post(f"{url}{entry.pk}/change/", {"name": "other", "status": "failed"}).status_code
                == 403
            )
            assert staff.get(f"{url}{entry.pk}/change/").status_code == 200
        assert snapshot_entry(org_a, snapshot).name == "web-nightly"
        assert restore_entry(org_a, restore).status == RestoreStatus.COMPLETED
        # The tenant pages are read-only too.
        tenant = f"/admin/snapshots/snapshot/{snapshot.pk}/change/?schema={org_a.schema_name}"
        assert staff.post(tenant, {"name": "other"}).status_code == 403
        with schema_context(org_a.schema_name):
            assert Snapshot.objects.get(pk=snapshot.pk).name == "web-nightly"

    def test_staff_only(self, org_a: Organization) -> None:
        synced(org_a)
        org_admin = Client()
        org_admin.force_login(add_member(org_a, Role.ADMIN).user)
        owner = Client()
        owner.force_login(owner_of(org_a).user)
        for client in (Client(), org_admin, owner):
            for url in (SNAPSHOTS, RESTORES):
                response = client.get(url)
                assert response.status_code == 302 and "/admin/login/" in response["Location"]
        plain_staff = Client()
        plain_staff.force_login(make_user("helpdesk@flotilla.test", is_staff=True))
        assert plain_staff.get(SNAPSHOTS).status_code == 403
        assert plain_staff.get(RESTORES).status_code == 403

    def test_the_index_and_the_tenant_lists(self, staff: Client, org_a: Organization) -> None:
        synced(org_a)
        page = staff.get("/admin/").content.decode()
        section = re.search(r'<div class="app-snapshots module directory-section".*?</div>', page, re.S)
        assert section, page
        assert f'href="{SNAPSHOTS}"' in section.group(0) and f'href="{RESTORES}"' in section.group(0)
        assert ">Snapshots</a>" in section.group(0) and ">Restores</a>" in section.group(0)
        assert f'href="{SNAPSHOTS}?status=completed"' in section.group(0) and "Completed: 1" in section.group(
            0
        )
        assert "app-snapshots_directory" not in page  # the entries' own app is not listed twice
        org_page = staff.get("/admin/orgs/organization/").content.decode()
        for model in ("snapshot", "restore", "storagelocation"):
            assert f"/admin/snapshots/{model}/?schema={org_a.schema_name}" in org_page
        # Without an org, the tenant lists lead to the lists across orgs.
        assert staff.get("/admin/snapshots/snapshot/")["Location"] == SNAPSHOTS
        assert staff.get("/admin/snapshots/restore/")["Location"] == RESTORES
        assert staff.get("/admin/snapshots/storagelocation/")["Location"] == "/admin/orgs/organization/"
        tenant = staff.get(f"/admin/snapshots/snapshot/?schema={org_a.schema_name}")
        assert tenant.status_code == 200 and "web-nightly" in tenant.content.decode()

    def test_query_count_is_the_same_for_10_and_100_rows(self, staff: Client) -> None:
        urls = [
            "/admin/",
            SNAPSHOTS,
            f"{SNAPSHOTS}?status=failed&q=snaps",
            f"{SNAPSHOTS}?org=snaps1&has_failures__exact=1",
            f"{SNAPSHOTS}?location_kind__exact=local&_facets=True",
            RESTORES,
            f"{RESTORES}?status__exact=partial&q=snap",
            f"{RESTORES}?org=snaps1&mode__exact=preview&has_failures__exact=1",
        ]

        def measure() -> list[tuple[int, str]]:
            found = []
            for url in urls:
                with CaptureQueriesContext(connection) as queries:
                    response = staff.get(url)
                assert response.status_code == 200, url
                found.append((len(queries), response.content.decode()))
            return found

        bulk_entries(orgs=2, per_org=5)
        small = measure()
        assert len(re.findall(r'data-snapshot="', small[1][1])) == 10
        assert len(re.findall(r'data-restore="', small[5][1])) == 10
        bulk_entries(orgs=18, per_org=5, start=2)
        large = measure()
        assert [count for count, _ in large] == [count for count, _ in small]
        # A page of 50 rows, newest first, each with its own org's name.
        listed = re.findall(
            r'data-snapshot="snap(\d+)-\d+".*?data-org="snaps(\d+)">([^<]+)</a>', large[1][1], re.S
        )
        assert len(listed) == 50
        assert all(entry_org == org and name == f"Snaps Org {org}" for entry_org, org, name in listed)
        assert listed[0][0] == "19"
        # Five an org: two completed, one failed, one running (and one more completed).
        index = large[0][1]
        assert "Completed: 60" in index and "Failed: 20" in index and "Running: 20" in index
        assert "Partially restored: 20" in index


class TestTenantAdmin:
    def test_credentials_never_appear_in_any_page(self, staff: Client, org_a: Organization) -> None:
        cluster, location, snapshot, restore = synced(org_a)
        with schema_context(org_a.schema_name):
            RestoreItem.objects.create(
                restore=restore,
                seq=1,
                api_version="v1",
                kind="Secret",
                namespace="shop",
                name="db",
                action=ItemAction.UPDATE,
                result=ItemResult.DONE,
                diff=[{"path": "data.password", "before": "b2xk", "after": SECRET_IN_DIFF}],
            )
            stored = StorageLocation.objects.get(pk=location.pk)
            assert stored.secret_parts() == {"key": ACCESS_KEY, "secret": SECRET_KEY}  # it is stored
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT credentials FROM snapshots_storagelocation WHERE id = %s", [location.pk]
                )
                (ciphertext,) = cursor.fetchone()
        assert ciphertext and ACCESS_KEY not in ciphertext
        schema = f"schema={org_a.schema_name}"
        filters = quote(schema)
        urls = [
            "/admin/",
            SNAPSHOTS,
            RESTORES,
            f"{SNAPSHOTS}{snapshot_entry(org_a, snapshot).pk}/change/",
            f"{RESTORES}{restore_entry(org_a, restore).pk}/change/",
            f"/admin/snapshots/storagelocation/?{schema}",
            f"/admin/snapshots/storagelocation/{location.pk}/change/?{schema}",
            f"/admin/snapshots/storagelocation/{location.pk}/change/?_changelist_filters={filters}",
            f"/admin/snapshots/storagelocation/{location.pk}/history/?{schema}",
            f"/admin/snapshots/snapshot/?{schema}",
            f"/admin/snapshots/snapshot/{snapshot.pk}/change/?{schema}",
            f"/admin/snapshots/snapshot/{snapshot.pk}/history/?{schema}",
            f"/admin/snapshots/restore/?{schema}",
            f"/admin/snapshots/restore/{restore.pk}/change/?{schema}",
            f"/admin/clusters/cluster/{cluster.pk}/change/?{schema}",
        ]
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                response = staff.get(url)
            assert response.status_code == 200, url
            for secret in (ACCESS_KEY, SECRET_KEY, ciphertext, SECRET_IN_DIFF):
                assert secret.encode() not in response.content, (url, secret)
            # Nor read: no page selects the column (so nothing decrypts it), nor a cluster's kubeconfig.
            read = [q["sql"] for q in queries if any(column in q["sql"] for column in SECRET_COLUMNS)]
            assert not read, (url, read)
        location_page = staff.get(f"/admin/snapshots/storagelocation/{location.pk}/change/?{schema}").content
        page = location_page.decode()
        assert f"{org_a.slug}-snapshots" in page and "eu-west-1" in page
        assert not re.search(r"field-credentials\b", page)  # the column is not on the page at all
        restore_page = staff.get(f"/admin/snapshots/restore/{restore.pk}/change/?{schema}").content.decode()
        assert "field-diff" not in restore_page and "db" in restore_page

    def test_a_restores_page_shows_its_failed_items_first(self, staff: Client, org_a: Organization) -> None:
        from snapshots.admin import REPORT_ITEMS_SHOWN

        cluster, _, snapshot, _ = synced(org_a)
        restore = make_restore(org_a, snapshot, cluster, status=RestoreStatus.PARTIAL)
        total = REPORT_ITEMS_SHOWN + 20
        failed_seqs = {total - 3, total - 1}
        with schema_context(org_a.schema_name):
            RestoreItem.objects.bulk_create(
                RestoreItem(
                    restore=restore,
                    seq=seq,
                    api_version="v1",
                    kind="ConfigMap",
                    namespace="shop",
                    name=f"cm-{seq}",
                    action=ItemAction.CREATE,
                    result=ItemResult.FAILED if seq in failed_seqs else ItemResult.DONE,
                    message="admission webhook denied the request" if seq in failed_seqs else "",
                )
                for seq in range(total)
            )
        page = staff.get(f"/admin/snapshots/restore/{restore.pk}/change/?schema={org_a.schema_name}")
        assert page.status_code == 200
        shown = re.findall(r"cm-(\d+)", page.content.decode())
        names = list(dict.fromkeys(int(seq) for seq in shown))
        assert len(names) == REPORT_ITEMS_SHOWN
        assert names[:2] == sorted(failed_seqs)  # the failed ones first, then in order
        assert names[2:5] == [0, 1, 2]
        assert "admission webhook denied the request" in page.content.decode()

    def test_change_page_needs_an_org(self, staff: Client, org_a: Organization) -> None:
        _, _, snapshot, _ = synced(org_a)
        response = staff.get(f"/admin/snapshots/snapshot/{snapshot.pk}/change/", follow=True)
        assert "Choose an organisation first." in " ".join(str(m) for m in response.context["messages"])


def test_a_third_org_is_listed_too(staff: Client, org_a: Organization, org_b: Organization) -> None:
    """Isolation across more than two orgs: each entry carries its own org, whatever the ids."""
    charlie = make_org("charlie")
    made = [(org, synced(org, f"{org.slug}-c")) for org in (org_a, org_b, charlie)]
    assert len({snapshot.pk for _, (_, _, snapshot, _) in made}) == 1
    assert {(e.org.slug, e.name) for e in SnapshotEntry.objects.select_related("org")} == {
        (org.slug, f"{org.slug}-c-nightly") for org, _ in made
    }
    snapshots = staff.get(SNAPSHOTS).content.decode()
    restores = staff.get(RESTORES).content.decode()
    for org, (_, _, snapshot, restore) in made:
        assert f"/admin/snapshots/snapshot/{snapshot.pk}/change/?schema={org.schema_name}" in snapshots
        assert f"/admin/snapshots/restore/{restore.pk}/change/?schema={org.schema_name}" in restores
