"""Portal pages of clusters and providers: what each role sees and may do, form errors on their
fields, kubeconfig downloads, isolation between orgs and the list's query budget.

Clusters are created through the services; with the `db` fixture nothing is committed, so no
reconcile task is ever queued and the tests stay fast.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from clusters import kube
from clusters.choices import ClusterStatus, OperationKind, OperationStatus, ProviderKind
from clusters.local import binaries
from clusters.models import Cluster, NodePool, Operation, ProviderAccount
from clusters.services import clusters as cluster_services
from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import Organization, User
from tests.clusters.helpers import local_pools, local_provider, owner_actor, run
from tests.factories import owner_of

pytestmark = pytest.mark.django_db

VERSIONS = sorted(binaries.available_k8s_versions(), key=lambda v: tuple(map(int, v.split("."))))
OLDEST, NEWEST = VERSIONS[0], VERSIONS[-1]


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_cluster(org: Organization, name: str = "web", *counts: int, version: str | None = None) -> Cluster:
    """A cluster asked for through the service (its create operation stays queued)."""
    provider = local_provider(org)
    with schema_context(org.schema_name):
        requested = cluster_services.create_cluster(
            owner_actor(org),
            name=name,
            provider=provider,
            version=version,
            pools=local_pools(*(counts or (1,))),
        )
    return requested.cluster


def settle(org: Organization, cluster: Cluster) -> None:
    """Pretend the reconcile loop finished the cluster's operations (what the worker would do)."""
    with schema_context(org.schema_name):
        Operation.objects.filter(cluster=cluster).update(status=OperationStatus.SUCCEEDED, progress=100)
        Cluster.objects.filter(pk=cluster.pk).update(status=ClusterStatus.READY)


def in_org(org: Organization, fn: Any) -> Any:
    with schema_context(org.schema_name):
        return fn()


def create_form(**overrides: Any) -> dict[str, Any]:
    """A valid create-form submission with one pool (the provider is filled in by the test)."""
    data = {
        "name": "shop",
        "region": "local",
        "version": NEWEST,
        "request_id": "",
        "pools-TOTAL_FORMS": "1",
        "pools-INITIAL_FORMS": "0",
        "pools-MIN_NUM_FORMS": "1",
        "pools-MAX_NUM_FORMS": "10",
        "pools-0-name": "general",
        "pools-0-size": "small",
        "pools-0-count": "2",
        "pools-0-labels": "",
        "pools-0-taints": "",
    }
    data.update(overrides)
    return data


def messages_of(response: Any) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


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
    def test_member_sees_clusters_health_and_actions(self, org_a: Organization, member: Client) -> None:
        make_cluster(org_a, "web", 2, 1)
        page = member.get("/o/alpha/clusters/").content.decode()
        row = re.search(r'<tr data-cluster="web">.*?</tr>', page, re.S)
        assert row, page
        assert 'data-status="pending"' in row.group(0)
        assert "p0 · 2\u00d7 small" in row.group(0) and "p1 · 1\u00d7 small" in row.group(0)
        assert "0/0" in row.group(0)  # nodes ready/total
        assert "<progress" in row.group(0) and "Create" in row.group(0)  # the queued create operation
        assert "Create cluster" in page and "Import cluster" in page
        assert 'hx-trigger="flotilla:cluster.changed from:body' in page
        assert '<a href="/o/alpha/clusters/"' in page and "Providers" in page  # navigation

    def test_viewer_sees_clusters_but_no_create_or_import(self, org_a: Organization, viewer: Client) -> None:
        make_cluster(org_a)
        page = viewer.get("/o/alpha/clusters/").content.decode()
        assert 'data-cluster="web"' in page
        assert "Create cluster" not in page and "Import cluster" not in page

    def test_table_fragment(self, org_a: Organization, viewer: Client) -> None:
        make_cluster(org_a)
        page = viewer.get("/o/alpha/clusters/table/", HTTP_HX_REQUEST="true").content.decode()
        assert 'data-cluster="web"' in page and "<html" not in page

    def test_deleted_clusters_are_not_listed(self, org_a: Organization, owner: Client) -> None:
        cluster = make_cluster(org_a)
        in_org(org_a, lambda: Cluster.objects.filter(pk=cluster.pk).update(deleted_at="2024-01-01T00:00Z"))
        assert 'data-cluster="web"' not in owner.get("/o/alpha/clusters/").content.decode()

    def test_query_budget(
        self, org_a: Organization, owner: Client, django_assert_max_num_queries: Any
    ) -> None:
        make_cluster(org_a, "c0", 1)
        with CaptureQueriesContext(connection) as one:
            assert owner.get("/o/alpha/clusters/").status_code == 200
        for i in range(1, 6):
            make_cluster(org_a, f"c{i}", 1, 1)
        # Six clusters with pools and active operations cost what one does: no query per row.
        with django_assert_max_num_queries(len(one.captured_queries)):
            page = owner.get("/o/alpha/clusters/").content.decode()
        assert all(f'data-cluster="c{i}"' in page for i in range(6))


class TestCreate:
    def test_form_offers_the_local_provider_and_its_catalogue(
        self, org_a: Organization, member: Client
    ) -> None:
        local_provider(org_a)
        page = member.get("/o/alpha/clusters/new/").content.decode()
        assert "local · Local" in page
        assert f'<option value="{NEWEST}"' in page and f'<option value="{OLDEST}"' in page
        assert '<option value="small"' in page and 'value="local"' in page
        assert 'id="pool-row-template"' in page

    def test_member_without_a_provider_account(self, org_a: Organization, member: Client) -> None:
        # Members may create clusters but not connect providers: with no account yet the form
        # offers the local provider (made when they create on it), with its catalogue.
        response = member.get("/o/alpha/clusters/new/")
        assert response.status_code == 200
        page = response.content.decode()
        assert '<option value="local" selected>local · Local' in page
        assert '<option value="small"' in page and f'<option value="{NEWEST}"' in page
        assert "no provider account" not in page and 'class="error"' not in page
        assert in_org(org_a, lambda: ProviderAccount.objects.count()) == 0

    def test_options_fragment_follows_the_provider(self, org_a: Organization, member: Client) -> None:
        provider = local_provider(org_a)
        page = member.get(
            "/o/alpha/clusters/new/options/",
            {**create_form(), "provider": provider.pk, "region": "local", "version": OLDEST},
            HTTP_HX_REQUEST="true",
        ).content.decode()
        assert "<html" not in page and 'name="region"' in page and 'name="pools-0-size"' in page
        assert re.search(rf'<option value="{re.escape(OLDEST)}" selected>', page)
        assert 'class="error"' not in page

    def test_create_redirects_to_the_cluster(self, org_a: Organization, member: Client) -> None:
        provider = local_provider(org_a)
        data = create_form(
            provider=provider.pk,
            **{
                "pools-TOTAL_FORMS": "3",
                "pools-0-labels": "tier=web, team=shop",
                "pools-0-taints": "dedicated=shop:NoSchedule",
                "pools-1-name": "",  # an empty row is ignored
                "pools-1-size": "small",
                "pools-1-count": "1",
                "pools-2-name": "batch",
                "pools-2-size": "large",
                "pools-2-count": "1",
            },
        )
        response = member.post("/o/alpha/clusters/new/", data)
        cluster = in_org(org_a, lambda: Cluster.objects.get(name="shop"))
        assert response.status_code == 302 and response["Location"] == f"/o/alpha/clusters/{cluster.pk}/"
        pools = in_org(org_a, lambda: {p.name: p for p in NodePool.objects.filter(cluster=cluster)})
        assert set(pools) == {"general", "batch"}
        assert pools["general"].labels == {"tier": "web", "team": "shop"}
        assert pools["general"].taints == [{"key": "dedicated", "value": "shop", "effect": "NoSchedule"}]
        assert (pools["batch"].size, pools["batch"].count) == ("large", 1)
        assert cluster.version == NEWEST

    def test_resubmitting_replays_instead_of_failing(self, org_a: Organization, member: Client) -> None:
        data = create_form(provider=local_provider(org_a).pk, request_id="abc123")
        first = member.post("/o/alpha/clusters/new/", data)
        again = member.post("/o/alpha/clusters/new/", data)
        assert first.status_code == again.status_code == 302 and first["Location"] == again["Location"]
        assert in_org(org_a, lambda: Cluster.objects.count()) == 1
        # The same form sent back for another cluster (the back button) is a new request.
        other = member.post("/o/alpha/clusters/new/", {**data, "name": "shop-two"})
        assert other.status_code == 302 and other["Location"] != first["Location"]
        assert in_org(org_a, lambda: Cluster.objects.count()) == 2

    BAD_INPUT = [
        ({"name": "Bad Name"}, "name", "lowercase"),
        ({"pools-0-name": "Bad_Pool"}, "pools-0-name", "lowercase"),
        ({"pools-0-count": "0"}, "pools-0-count", "from 1 to"),
        ({"pools-0-count": "many"}, "pools-0-count", "whole number"),
        ({"pools-0-size": "huge"}, "pools-0-size", "huge"),
        ({"pools-0-labels": "no-equals-sign"}, "pools-0-labels", "key=value"),
        ({"pools-0-labels": "flotilla.io/pool=x"}, "pools-0-labels", "not a label key"),
        ({"pools-0-taints": "gpu=true:Sometimes"}, "pools-0-taints", "effect"),
        ({"version": "0.1.0"}, "version", "0.1.0"),
    ]

    def test_bad_input_is_shown_on_its_field_and_nothing_is_created(
        self, org_a: Organization, member: Client
    ) -> None:
        provider = local_provider(org_a).pk
        # One org for every case: creating orgs is what makes these tests slow.
        for overrides, field, words in self.BAD_INPUT:
            response = member.post("/o/alpha/clusters/new/", create_form(provider=provider, **overrides))
            assert response.status_code == 400, overrides
            page = response.content.decode()
            error = re.search(rf'<p class="error" data-field="{field}">([^<]*)</p>', page)
            assert error, (overrides, page)
            assert words.lower() in error.group(1).lower(), (overrides, error.group(1))
        assert in_org(org_a, lambda: Cluster.objects.count()) == 0

    def test_service_errors_land_on_the_right_pool_row(self, org_a: Organization, member: Client) -> None:
        # The third row is the second pool the service receives: its error goes to the third row.
        data = create_form(
            provider=local_provider(org_a).pk,
            **{
                "pools-TOTAL_FORMS": "3",
                "pools-1-name": "",
                "pools-1-size": "small",
                "pools-1-count": "1",
                "pools-2-name": "extra",
                "pools-2-size": "small",
                "pools-2-count": "1",
                "pools-2-labels": "Bad Key=1",
            },
        )
        page = member.post("/o/alpha/clusters/new/", data).content.decode()
        assert 'data-field="pools-2-labels"' in page and 'data-field="pools-0-labels"' not in page

    def test_duplicate_name_and_quota(self, org_a: Organization, member: Client) -> None:
        make_cluster(org_a, "shop")
        provider = local_provider(org_a).pk
        taken = member.post("/o/alpha/clusters/new/", create_form(provider=provider))
        assert taken.status_code == 409 and 'data-field="name">Taken.' in taken.content.decode()
        over = member.post(
            "/o/alpha/clusters/new/", create_form(provider=provider, name="big", **{"pools-0-count": "60"})
        )
        assert over.status_code == 409 and "Node quota" in over.content.decode()
        assert in_org(org_a, lambda: Cluster.objects.count()) == 1

    def test_viewer_cannot_create(self, org_a: Organization, viewer: Client) -> None:
        provider = local_provider(org_a)
        response = viewer.get("/o/alpha/clusters/new/", follow=True)
        assert "member role" in messages_of(response)
        response = viewer.post("/o/alpha/clusters/new/", create_form(provider=provider.pk))
        assert response.status_code == 403 and "member role or higher" in messages_of(response)
        assert in_org(org_a, lambda: Cluster.objects.count()) == 0


class TestImport:
    def test_malformed(self, org_a: Organization, member: Client) -> None:
        for kubeconfig, words in [
            ("", "Paste a kubeconfig"),
            ("clusters: [unclosed", "not valid YAML"),
            ("kind: Config\ncontexts: []\n", "no contexts"),
        ]:
            response = member.post("/o/alpha/clusters/import/", {"name": "ext", "kubeconfig": kubeconfig})
            assert response.status_code == 400
            assert re.search(rf'data-field="kubeconfig">[^<]*{re.escape(words)}', response.content.decode())
        assert in_org(org_a, lambda: Cluster.objects.count()) == 0

    def test_a_server_inside_the_flotilla_network_is_refused(
        self, org_a: Organization, member: Client
    ) -> None:
        text = yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
        upload = SimpleUploadedFile("config", text.encode())
        response = member.post("/o/alpha/clusters/import/", {"name": "ext", "kubeconfig_file": upload})
        assert response.status_code == 400
        error = re.search(r'data-field="kubeconfig">([^<]*)<', response.content.decode())
        assert error and "a loopback address" in error.group(1)
        assert in_org(org_a, lambda: Cluster.objects.count()) == 0

    def test_wrong_context(self, org_a: Organization, member: Client) -> None:
        text = "kind: Config\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
        response = member.post(
            "/o/alpha/clusters/import/", {"name": "ext", "kubeconfig": text, "context": "b"}
        )
        assert "no context named" in response.content.decode()

    def test_viewer_cannot_import(self, org_a: Organization, viewer: Client) -> None:
        assert viewer.get("/o/alpha/clusters/import/").status_code == 302
        response = viewer.post("/o/alpha/clusters/import/", {"name": "ext", "kubeconfig": "kind: Config"})
        assert response.status_code == 403

    @pytest.mark.kube
    def test_import_a_running_cluster(self, org_a: Organization, owner: Client, local_cluster: Any) -> None:
        port = urlsplit(kube.server_of(local_cluster.kubeconfig)).port
        with override_settings(FLOTILLA_OUTBOUND_ALLOW=[f"127.0.0.1:{port}"]):
            response = owner.post(
                "/o/alpha/clusters/import/", {"name": "ext", "kubeconfig": local_cluster.kubeconfig}
            )
            assert response.status_code == 302, response.content.decode()[:3000]
            cluster = in_org(org_a, lambda: Cluster.objects.select_related("provider").get(name="ext"))
            assert cluster.provider.kind == ProviderKind.EXISTING
            page = owner.get(response["Location"]).content.decode()
            assert "Importing ext" in page and 'data-testid="cluster-status">Pending<' in page
            operation = in_org(org_a, lambda: Operation.objects.get(cluster=cluster))
            assert run(org_a, operation).status == OperationStatus.SUCCEEDED
        page = owner.get(response["Location"]).content.decode()
        assert 'data-testid="cluster-status">Ready<' in page
        # Imported: observed only — no scale, add, remove or upgrade; delete is "Forget".
        assert ">Forget<" in page and "Delete cluster" not in page
        assert 'name="count"' not in page and "Add a pool" not in page and "Upgrade" not in page

    def test_a_failed_import_shows_its_reason(self, org_a: Organization, owner: Client) -> None:
        text = yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
        with override_settings(FLOTILLA_OUTBOUND_ALLOW=["127.0.0.1:9"]):
            response = owner.post("/o/alpha/clusters/import/", {"name": "gone", "kubeconfig": text})
            assert response.status_code == 302
            operation = in_org(org_a, lambda: Operation.objects.get(cluster__name="gone"))
            assert run(org_a, operation).status == OperationStatus.FAILED
        page = owner.get(response["Location"]).content.decode()
        assert 'data-testid="cluster-status">Error<' in page
        assert "https://127.0.0.1:9 is not reachable" in page and ">Forget<" in page


class TestClusterPage:
    def test_member_sees_the_controls(self, org_a: Organization, member: Client) -> None:
        cluster = make_cluster(org_a, "web", 2, 1, version=OLDEST)
        page = member.get(f"/o/alpha/clusters/{cluster.pk}/").content.decode()
        assert 'data-testid="cluster-status">Pending<' in page
        assert 'data-testid="operation-progress"' in page
        assert page.count('name="count"') == 2 and 'name="pool-count"' in page  # scale, add pool
        assert "Add pool" in page and f'<option value="{NEWEST}">' in page  # upgrade targets
        assert f'<option value="{OLDEST}">' not in page  # not the current version
        assert ">Remove<" in page and "data-confirm=" in page
        assert "Delete cluster" not in page  # deleting needs an admin
        assert f"/o/alpha/clusters/{cluster.pk}/live/" in page
        assert f"flotilla:cluster-{cluster.pk}.changed from:body" in page
        assert "Requested by" in page and "requested by owner@alpha.test" in page  # operations, timeline

    def test_only_upgrades_are_offered(self, org_a: Organization, member: Client) -> None:
        cluster = make_cluster(org_a, "top", version=NEWEST)
        page = member.get(f"/o/alpha/clusters/{cluster.pk}/").content.decode()
        assert f'<option value="{OLDEST}">' not in page  # a downgrade is never offered
        assert f"top runs {NEWEST}; the provider offers no newer version to move to." in page

    def test_owner_can_delete(self, org_a: Organization, owner: Client) -> None:
        cluster = make_cluster(org_a)
        page = owner.get(f"/o/alpha/clusters/{cluster.pk}/").content.decode()
        assert "Delete cluster" in page and "data-confirm=" in page

    def test_viewer_sees_no_controls(self, org_a: Organization, viewer: Client) -> None:
        cluster = make_cluster(org_a, "web", 2, 1)
        page = viewer.get(f"/o/alpha/clusters/{cluster.pk}/").content.decode()
        assert 'data-pool="p0"' in page
        for control in ('name="count"', "Add pool", "Upgrade", "Delete cluster", ">Cancel<", "kubeconfig/"):
            assert control not in page, control

    def test_live_fragment(self, org_a: Organization, viewer: Client) -> None:
        cluster = make_cluster(org_a)
        page = viewer.get(f"/o/alpha/clusters/{cluster.pk}/live/", HTTP_HX_REQUEST="true").content.decode()
        assert "<html" not in page and 'data-testid="cluster-status"' in page
        assert 'id="cluster-activity" hx-swap-oob="true"' in page and 'data-testid="timeline"' in page

    def test_live_fragment_of_a_deleted_cluster_moves_to_the_list(
        self, org_a: Organization, viewer: Client
    ) -> None:
        cluster = make_cluster(org_a)
        in_org(org_a, lambda: Cluster.objects.filter(pk=cluster.pk).update(deleted_at="2024-01-01T00:00Z"))
        response = viewer.get(f"/o/alpha/clusters/{cluster.pk}/live/", HTTP_HX_REQUEST="true")
        assert response["HX-Redirect"] == "/o/alpha/clusters/"
        assert viewer.get(f"/o/alpha/clusters/{cluster.pk}/").status_code == 404

    def test_scale_add_remove_upgrade(self, org_a: Organization, member: Client) -> None:
        cluster = make_cluster(org_a, "web", 2, 1, version=OLDEST)
        settle(org_a, cluster)
        pools = in_org(org_a, lambda: {p.name: p for p in NodePool.objects.filter(cluster=cluster)})
        base = f"/o/alpha/clusters/{cluster.pk}"

        response = member.post(f"{base}/pools/{pools['p0'].pk}/scale/", {"count": "3"}, follow=True)
        assert "Scaling p0 from 2 to 3 nodes." in messages_of(response)
        settle(org_a, cluster)
        response = member.post(
            f"{base}/pools/add/",
            {"pool-name": "gpu", "pool-size": "large", "pool-count": "1", "pool-labels": "accel=yes"},
        )
        assert response.status_code == 302
        settle(org_a, cluster)
        member.post(f"{base}/pools/{pools['p1'].pk}/remove/")
        settle(org_a, cluster)
        member.post(f"{base}/upgrade/", {"version": NEWEST})

        def state() -> tuple[dict[str, tuple[int, bool]], str, list[str]]:
            found = {p.name: (p.count, p.removing) for p in NodePool.objects.filter(cluster=cluster)}
            kinds = list(
                Operation.objects.filter(cluster=cluster).order_by("id").values_list("kind", flat=True)
            )
            return found, Cluster.objects.get(pk=cluster.pk).version, kinds

        found, version, kinds = in_org(org_a, state)
        assert found == {"p0": (3, False), "p1": (1, True), "gpu": (1, False)}
        assert version == NEWEST
        assert kinds == [
            OperationKind.CREATE,
            OperationKind.SCALE,
            OperationKind.ADD_POOL,
            OperationKind.REMOVE_POOL,
            OperationKind.UPGRADE,
        ]

    def test_errors_of_actions(self, org_a: Organization, member: Client) -> None:
        cluster = make_cluster(org_a, "web", 1)
        pool = in_org(org_a, lambda: NodePool.objects.get(cluster=cluster))
        base = f"/o/alpha/clusters/{cluster.pk}"
        # The create operation is still queued: another change must wait for it.
        response = member.post(f"{base}/pools/{pool.pk}/scale/", {"count": "2"}, follow=True)
        assert "still queued" in messages_of(response)
        settle(org_a, cluster)
        response = member.post(f"{base}/pools/{pool.pk}/scale/", {"count": "500"}, follow=True)
        assert "from 0 to 100" in messages_of(response)
        response = member.post(f"{base}/pools/{pool.pk}/remove/", follow=True)
        assert "last pool" in messages_of(response)
        # Add-pool errors are shown on the add-pool form.
        taken = member.post(
            f"{base}/pools/add/", {"pool-name": "p0", "pool-size": "small", "pool-count": "1"}
        )
        assert taken.status_code == 409 and 'data-field="pool-name">' in taken.content.decode()
        bad = member.post(
            f"{base}/pools/add/",
            {"pool-name": "x", "pool-size": "small", "pool-count": "1", "pool-taints": "k=v:Never"},
        )
        assert bad.status_code == 400 and 'data-field="pool-taints">' in bad.content.decode()
        assert in_org(org_a, lambda: NodePool.objects.filter(cluster=cluster).count()) == 1

    def test_viewer_is_refused(self, org_a: Organization, viewer: Client) -> None:
        cluster = make_cluster(org_a, "web", 2)
        settle(org_a, cluster)
        pool = in_org(org_a, lambda: NodePool.objects.get(cluster=cluster))
        base = f"/o/alpha/clusters/{cluster.pk}"
        for path, data in [
            (f"{base}/pools/{pool.pk}/scale/", {"count": "5"}),
            (f"{base}/pools/{pool.pk}/remove/", {}),
            (f"{base}/pools/add/", {"pool-name": "x", "pool-size": "small", "pool-count": "1"}),
            (f"{base}/upgrade/", {"version": NEWEST}),
            (f"{base}/delete/", {}),
        ]:
            response = viewer.post(path, data, follow=True)
            assert "role or higher" in messages_of(response), path
        assert in_org(org_a, lambda: Operation.objects.filter(cluster=cluster).count()) == 1
        assert in_org(org_a, lambda: NodePool.objects.get(pk=pool.pk).count) == 2

    def test_member_cannot_delete_but_owner_can(
        self, org_a: Organization, member: Client, owner: Client
    ) -> None:
        cluster = make_cluster(org_a)
        response = member.post(f"/o/alpha/clusters/{cluster.pk}/delete/", follow=True)
        assert "admin role or higher" in messages_of(response)
        response = owner.post(f"/o/alpha/clusters/{cluster.pk}/delete/")
        assert response.status_code == 302 and response["Location"] == "/o/alpha/clusters/"
        operation = in_org(org_a, lambda: Operation.objects.filter(cluster=cluster).order_by("-id").first())
        assert operation.kind == OperationKind.DELETE
        # Deletion superseded the queued create.
        assert (
            in_org(org_a, lambda: Operation.objects.get(cluster=cluster, kind="create").status) == "cancelled"
        )

    def test_cancel_and_retry(self, org_a: Organization, member: Client) -> None:
        cluster = make_cluster(org_a)
        operation = in_org(org_a, lambda: Operation.objects.get(cluster=cluster))
        page = member.get(f"/o/alpha/clusters/{cluster.pk}/").content.decode()
        assert f"/o/alpha/clusters/operations/{operation.pk}/cancel/" in page
        response = member.post(f"/o/alpha/clusters/operations/{operation.pk}/cancel/")
        assert response["Location"] == f"/o/alpha/clusters/{cluster.pk}/"
        assert (
            in_org(org_a, lambda: Operation.objects.get(pk=operation.pk).status) == OperationStatus.CANCELLED
        )
        page = member.get(f"/o/alpha/clusters/{cluster.pk}/").content.decode()
        assert f"/o/alpha/clusters/operations/{operation.pk}/retry/" in page
        member.post(f"/o/alpha/clusters/operations/{operation.pk}/retry/")
        assert in_org(org_a, lambda: Operation.objects.get(pk=operation.pk).status) == OperationStatus.QUEUED

    def test_unknown_cluster_is_404(self, org_a: Organization, owner: Client) -> None:
        assert owner.get("/o/alpha/clusters/999999/").status_code == 404
        assert owner.post("/o/alpha/clusters/999999/delete/").status_code == 404


class TestKubeconfig:
    KUBECONFIG = "apiVersion: v1\nkind: Config\ncurrent-context: x\n"

    def _with_kubeconfig(self, org: Organization) -> Cluster:
        cluster = make_cluster(org)
        settle(org, cluster)

        def store() -> None:
            c = Cluster.objects.get(pk=cluster.pk)
            c.kubeconfig = self.KUBECONFIG
            c.save(update_fields=["kubeconfig"])

        in_org(org, store)
        return cluster

    def test_member_downloads_and_it_is_audited(self, org_a: Organization, member: Client) -> None:
        cluster = self._with_kubeconfig(org_a)
        page = member.get(f"/o/alpha/clusters/{cluster.pk}/").content.decode()
        assert f"/o/alpha/clusters/{cluster.pk}/kubeconfig/" in page
        response = member.get(f"/o/alpha/clusters/{cluster.pk}/kubeconfig/")
        assert response.status_code == 200 and response.content.decode() == self.KUBECONFIG
        assert response["Content-Disposition"] == 'attachment; filename="web.kubeconfig.yaml"'
        assert response["Cache-Control"] == "no-store"
        assert (
            in_org(org_a, lambda: AuditEntry.objects.filter(action="cluster.kubeconfig_downloaded").count())
            == 1
        )

    def test_viewer_is_refused(self, org_a: Organization, viewer: Client) -> None:
        cluster = self._with_kubeconfig(org_a)
        response = viewer.get(f"/o/alpha/clusters/{cluster.pk}/kubeconfig/", follow=True)
        assert self.KUBECONFIG not in response.content.decode()
        assert "member role or higher" in messages_of(response)

    def test_not_yet_provisioned(self, org_a: Organization, member: Client) -> None:
        cluster = make_cluster(org_a)
        response = member.get(f"/o/alpha/clusters/{cluster.pk}/kubeconfig/", follow=True)
        assert "no kubeconfig yet" in messages_of(response)


class TestProviders:
    def test_viewer_sees_accounts_but_no_form(self, org_a: Organization, viewer: Client) -> None:
        make_cluster(org_a)
        page = viewer.get("/o/alpha/clusters/providers/").content.decode()
        row = re.search(r'<tr data-provider="local">.*?</tr>', page, re.S)
        assert row and "<td>1</td>" in row.group(0)
        assert "Connect a provider" not in page and ">Remove<" not in page

    def test_credential_fields_follow_the_kind(self, org_a: Organization, owner: Client) -> None:
        page = owner.get("/o/alpha/clusters/providers/").content.decode()
        assert "Connect a provider" in page and 'hx-get="/o/alpha/clusters/providers/fields/"' in page
        fragment = owner.get("/o/alpha/clusters/providers/fields/", {"kind": "ec2"}).content.decode()
        assert 'type="password" name="cred_secret_access_key"' in fragment
        assert 'type="text" name="cred_region"' in fragment
        fragment = owner.get("/o/alpha/clusters/providers/fields/", {"kind": "gce"}).content.decode()
        assert '<textarea name="cred_service_account_json"' in fragment

    def test_errors_on_fields_and_secrets_not_echoed(self, org_a: Organization, owner: Client) -> None:
        response = owner.post(
            "/o/alpha/clusters/providers/",
            {"name": "aws", "kind": "ec2", "cred_secret_access_key": "SUPER-SECRET-VALUE"},
        )
        page = response.content.decode()
        assert response.status_code == 400
        assert 'data-field="cred_access_key_id">This field is required.' in page
        assert "SUPER-SECRET-VALUE" not in page
        response = owner.post("/o/alpha/clusters/providers/", {"name": "Bad Name", "kind": "local"})
        assert 'data-field="name">' in response.content.decode()
        assert in_org(org_a, lambda: ProviderAccount.objects.count()) == 0

    def test_connect_and_remove(self, org_a: Organization, owner: Client) -> None:
        response = owner.post("/o/alpha/clusters/providers/", {"name": "lab", "kind": "local"})
        assert response.status_code == 302
        account = in_org(org_a, lambda: ProviderAccount.objects.get(name="lab"))
        assert account.validated_at is not None
        response = owner.post(f"/o/alpha/clusters/providers/{account.pk}/delete/", follow=True)
        assert "Removed lab." in messages_of(response)
        assert not in_org(org_a, lambda: ProviderAccount.objects.filter(name="lab").exists())

    def test_account_in_use_is_kept(self, org_a: Organization, owner: Client) -> None:
        make_cluster(org_a)
        account = local_provider(org_a)
        response = owner.post(f"/o/alpha/clusters/providers/{account.pk}/delete/", follow=True)
        assert "delete them first" in messages_of(response)

    def test_member_cannot_connect(self, org_a: Organization, member: Client) -> None:
        response = member.post("/o/alpha/clusters/providers/", {"name": "lab", "kind": "local"})
        assert response.status_code == 403
        assert in_org(org_a, lambda: ProviderAccount.objects.count()) == 0


class TestIsolation:
    def test_other_orgs_cluster_pages_and_actions_are_404(
        self, org_a: Organization, org_b: Organization
    ) -> None:
        cluster = make_cluster(org_a, "secret-cluster", 1)
        pool = in_org(org_a, lambda: NodePool.objects.get(cluster=cluster))
        operation = in_org(org_a, lambda: Operation.objects.get(cluster=cluster))
        account = local_provider(org_a)
        outsider = signed_in(owner_of(org_b).user)
        for slug in ("alpha", "bravo"):
            base = f"/o/{slug}/clusters"
            for path in (
                f"{base}/{cluster.pk}/",
                f"{base}/{cluster.pk}/live/",
                f"{base}/{cluster.pk}/kubeconfig/",
            ):
                assert outsider.get(path).status_code == 404, path
            for path in (
                f"{base}/{cluster.pk}/delete/",
                f"{base}/{cluster.pk}/upgrade/",
                f"{base}/{cluster.pk}/pools/add/",
                f"{base}/{cluster.pk}/pools/{pool.pk}/scale/",
                f"{base}/{cluster.pk}/pools/{pool.pk}/remove/",
                f"{base}/operations/{operation.pk}/cancel/",
                f"{base}/providers/{account.pk}/delete/",
            ):
                assert outsider.post(path, {"count": "9", "version": NEWEST}).status_code == 404, path
        assert "secret-cluster" not in outsider.get("/o/bravo/clusters/").content.decode()
        assert in_org(org_a, lambda: Operation.objects.filter(cluster=cluster).count()) == 1
        assert in_org(org_a, lambda: ProviderAccount.objects.filter(pk=account.pk).exists())

    def test_anonymous_is_sent_to_sign_in(self, org_a: Organization) -> None:
        response = Client().get("/o/alpha/clusters/")
        assert response.status_code == 302 and response["Location"].startswith("/login/")
