"""Portal pages of apps: what each role sees and may do, the deploy and edit forms' errors on their
inputs, the actions, isolation between orgs and the list's query budget.

Apps are deployed through the services; with the `db` fixture nothing is committed, so no rollout
is ever queued to a worker and no cluster is called (pages that read pods show why they cannot).
The pods, a cluster's workloads, deleting a pod and adopting a workload are tested on the
session's real local cluster, its operations run in the test as the worker runs them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from clusters.choices import AppStatus, ClusterStatus, OperationStatus
from clusters.models import App, AppRevision, Cluster, NodePool, Operation
from clusters.services import apps as app_services
from orgs.audit.models import AuditEntry
from orgs.choices import Role
from orgs.models import Organization, User
from tests.clusters.app_helpers import cluster_on
from tests.clusters.helpers import local_provider, owner_actor, run
from tests.factories import owner_of
from tests.local_kube import LocalCluster, wait_for

pytestmark = pytest.mark.django_db
SECRET_VALUE = "s3cr3t-value-never-shown"


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def in_org(org: Organization, fn: Any) -> Any:
    with schema_context(org.schema_name):
        return fn()


def ready_cluster(org: Organization, name: str = "prod") -> Cluster:
    """A Ready local cluster the services take apps on (its row only: no control plane runs, and
    the Kubernetes binaries are not needed)."""
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


def deployed(org: Organization, cluster: Cluster, name: str = "web", **spec: Any) -> App:
    """An app deployed through the service (its rollout stays queued)."""
    with schema_context(org.schema_name):
        return app_services.deploy_app(
            owner_actor(org),
            cluster=cluster,
            name=name,
            spec={"image": "nginx:1.27", "replicas": 2, "env": {"MODE": "prod"}, **spec},
            secrets={"TOKEN": SECRET_VALUE},
        ).app


def deploy_form(cluster: Cluster, **overrides: str) -> dict[str, str]:
    """A valid deploy-form submission."""
    data = {
        "cluster": str(cluster.pk),
        "namespace": "default",
        "name": "shop",
        "image": "nginx:1.27",
        "replicas": "2",
        "ports": "80, 53/udp, metrics=9090",
        "env": "LOG_LEVEL=info\nGREETING=hello = world\n",
        "secrets": f"API_TOKEN={SECRET_VALUE}",
        "cpu_request": "250m",
        "cpu_limit": "1",
        "memory_request": "128Mi",
        "memory_limit": "",
        "readiness": "http:/healthz:80",
        "liveness": "",
        "progress_deadline": "600",
        "request_id": "",
    }
    data.update(overrides)
    return data


def messages_of(response: Any) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


def field_errors(page: str) -> dict[str, list[str]]:
    """The errors the page shows under each input (data-field names the input)."""
    found: dict[str, list[str]] = {}
    for field, text in re.findall(r'<p class="error" data-field="([^"]+)">(.*?)</p>', page, re.S):
        found.setdefault(field, []).append(text)
    return found


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
    def test_member_sees_apps_across_clusters(self, org_a: Organization, member: Client) -> None:
        prod, stage = ready_cluster(org_a, "prod"), ready_cluster(org_a, "stage")
        deployed(org_a, prod, "web")
        deployed(org_a, stage, "api", image="ghcr.io/acme/api:2.0", replicas=3)
        page = member.get("/o/alpha/clusters/apps/").content.decode()
        row = re.search(r'<tr data-app="api">.*?</tr>', page, re.S)
        assert row, page
        for shown in (">stage<", "ghcr.io/acme/api:2.0", "0/3", 'data-status="deploying"', "Queued", ">1<"):
            assert shown in row.group(0), shown
        assert '<tr data-app="web">' in page and "Deploy an app" in page
        assert "flotilla:app.changed from:body" in page
        # The section is in the navigation.
        assert re.search(r'<nav class="sidenav".*?href="/o/alpha/clusters/apps/"[^>]*>Apps</a>', page, re.S)

    def test_filter_by_cluster(self, org_a: Organization, viewer: Client) -> None:
        prod, stage = ready_cluster(org_a, "prod"), ready_cluster(org_a, "stage")
        deployed(org_a, prod, "web")
        deployed(org_a, stage, "api")
        page = viewer.get(f"/o/alpha/clusters/apps/?cluster={stage.pk}").content.decode()
        assert '<tr data-app="api">' in page and '<tr data-app="web">' not in page
        assert f'<option value="{stage.pk}" selected>stage</option>' in page
        table = viewer.get(f"/o/alpha/clusters/apps/table/?cluster={prod.pk}").content.decode()
        assert "<html" not in table and '<tr data-app="web">' in table and 'data-app="api"' not in table

    def test_viewer_sees_apps_but_no_deploy(self, org_a: Organization, viewer: Client) -> None:
        deployed(org_a, ready_cluster(org_a))
        page = viewer.get("/o/alpha/clusters/apps/").content.decode()
        assert '<tr data-app="web">' in page and "Deploy an app" not in page

    def test_deleted_apps_are_not_listed(self, org_a: Organization, owner: Client) -> None:
        app = deployed(org_a, ready_cluster(org_a))
        in_org(
            org_a,
            lambda: App.objects.filter(pk=app.pk).update(
                status=AppStatus.DELETED, deleted_at="2024-01-01T00:00Z"
            ),
        )
        assert 'data-app="web"' not in owner.get("/o/alpha/clusters/apps/").content.decode()

    def test_query_budget_is_the_same_for_3_and_30_apps(self, org_a: Organization, owner: Client) -> None:
        clusters = [ready_cluster(org_a, "prod"), ready_cluster(org_a, "stage")]

        def add(first: int, count: int) -> None:
            for i in range(first, first + count):
                cluster = clusters[i % 2]
                app = App.objects.create(
                    cluster=cluster,
                    name=f"app{i}",
                    spec={"image": f"nginx:1.{i}", "replicas": 2},
                    selector={"flotilla.dev/app": f"app{i}"},
                    status=AppStatus.AVAILABLE if i % 3 else AppStatus.DEPLOYING,
                    revision=1,
                    desired_replicas=2,
                    ready_replicas=i % 3,
                )
                Operation.objects.create(
                    cluster=cluster,
                    subject_type="app",
                    subject_id=app.pk,
                    kind="app_rollout",
                    step="Applying",
                )

        def count_queries() -> tuple[int, str]:
            with CaptureQueriesContext(connection) as queries:
                response = owner.get("/o/alpha/clusters/apps/")
            assert response.status_code == 200
            return len(queries.captured_queries), response.content.decode()

        in_org(org_a, lambda: add(0, 3))
        few, page = count_queries()
        assert page.count("<tr data-app=") == 3
        in_org(org_a, lambda: add(3, 27))
        many, page = count_queries()
        assert page.count("<tr data-app=") == 30 and "Applying" in page
        assert many == few
        # Past a page, a page at a time (with the same queries).
        in_org(org_a, lambda: add(30, 80))
        paged, page = count_queries()
        assert page.count("<tr data-app=") == 100 and "Page 1 of 2 (110 apps)" in page
        assert paged == few
        second = owner.get("/o/alpha/clusters/apps/", {"page": 2}).content.decode()
        assert second.count("<tr data-app=") == 10


class TestDeployForm:
    def test_form_offers_running_clusters_only(self, org_a: Organization, member: Client) -> None:
        prod = ready_cluster(org_a, "prod")
        pending = ready_cluster(org_a, "later")
        in_org(org_a, lambda: Cluster.objects.filter(pk=pending.pk).update(status=ClusterStatus.PROVISIONING))
        page = member.get(f"/o/alpha/clusters/apps/new/?cluster={prod.pk}").content.decode()
        assert f'<option value="{prod.pk}" selected>prod</option>' in page
        assert ">later<" not in page
        assert 'name="namespace" value="default"' in page and 'name="progress_deadline" value="600"' in page

    def test_without_a_running_cluster(self, org_a: Organization, member: Client) -> None:
        page = member.get("/o/alpha/clusters/apps/new/").content.decode()
        assert "No cluster of this organisation is running" in page and 'name="image"' not in page

    def test_deploy_redirects_to_the_app(self, org_a: Organization, member: Client) -> None:
        cluster = ready_cluster(org_a)
        response = member.post("/o/alpha/clusters/apps/new/", deploy_form(cluster))
        assert response.status_code == 302, response.content.decode()[:3000]
        app = in_org(org_a, lambda: App.objects.get(name="shop"))
        assert response["Location"] == f"/o/alpha/clusters/apps/{app.pk}/"
        assert app.spec["image"] == "nginx:1.27" and app.spec["replicas"] == 2
        assert app.spec["ports"] == [
            {"port": 80, "protocol": "TCP", "name": ""},
            {"port": 53, "protocol": "UDP", "name": ""},
            {"port": 9090, "protocol": "TCP", "name": "metrics"},
        ]
        assert app.spec["env"] == [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "GREETING", "value": "hello = world"},
        ]
        assert app.spec["secret_keys"] == ["API_TOKEN"]
        assert app.secret_values() == {"API_TOKEN": SECRET_VALUE}
        assert app.spec["resources"]["cpu_request"] == "250m" and app.spec["readiness"]["path"] == "/healthz"
        assert (
            in_org(org_a, lambda: Operation.objects.filter(subject_type="app", subject_id=app.pk).count())
            == 1
        )
        page = member.get(response["Location"]).content.decode()
        assert "Deploying shop" in page and SECRET_VALUE not in page

    def test_a_double_submit_deploys_once(self, org_a: Organization, member: Client) -> None:
        cluster = ready_cluster(org_a)
        form = deploy_form(cluster, request_id="abc123")
        first = member.post("/o/alpha/clusters/apps/new/", form)
        again = member.post("/o/alpha/clusters/apps/new/", form)
        assert first.status_code == again.status_code == 302 and first["Location"] == again["Location"]
        assert in_org(org_a, lambda: App.objects.count()) == 1

    def test_bad_inputs_are_shown_on_their_inputs_and_nothing_is_created(
        self, org_a: Organization, member: Client
    ) -> None:
        cluster = ready_cluster(org_a)
        response = member.post(
            "/o/alpha/clusters/apps/new/",
            deploy_form(
                cluster,
                image="nginx:1.27 latest",
                ports="80, 99999, web=abc",
                env="GOOD=1\n1BAD=x\n",
                cpu_request="lots",
                memory_request="2Gi",
                memory_limit="1Gi",
                readiness="http:healthz:80",
            ),
        )
        assert response.status_code == 400
        page = response.content.decode()
        errors = field_errors(page)
        assert set(errors) >= {"image", "ports", "env", "cpu_request", "memory_request", "readiness"}, errors
        assert any(text.startswith("Port 2") for text in errors["ports"]), errors["ports"]
        assert any(text.startswith("Port 3") for text in errors["ports"]), errors["ports"]
        assert any(text.startswith("Line 2 (1BAD)") for text in errors["env"]), errors["env"]
        assert in_org(
            org_a, lambda: (App.objects.count(), Operation.objects.filter(subject_type="app").count())
        ) == (
            0,
            0,
        )
        # The other inputs are kept; the secret values are not shown again.
        assert 'value="80, 99999, web=abc"' in page and SECRET_VALUE not in page

    def test_shape_errors_of_the_form_itself(self, org_a: Organization, member: Client) -> None:
        cluster = ready_cluster(org_a)
        response = member.post(
            "/o/alpha/clusters/apps/new/",
            deploy_form(cluster, env="GOOD=1\njust words\n", secrets="TOKEN", replicas="-1"),
        )
        assert response.status_code == 400
        errors = field_errors(response.content.decode())
        assert errors["env"] == ["Line 2: write one KEY=VALUE per line."]
        assert errors["secrets"] == ["Line 1: write one KEY=VALUE per line."]
        assert "replicas" in errors
        # The name and namespace are checked by the service before the spec.
        response = member.post(
            "/o/alpha/clusters/apps/new/", deploy_form(cluster, name="Shop_1", namespace="-ns")
        )
        assert response.status_code == 400
        errors = field_errors(response.content.decode())
        assert "DNS-1035" in errors["name"][0] and "namespace" in errors
        assert in_org(org_a, lambda: App.objects.count()) == 0

    def test_a_secret_named_like_a_variable_and_a_taken_name(
        self, org_a: Organization, member: Client
    ) -> None:
        cluster = ready_cluster(org_a)
        deployed(org_a, cluster, "shop")
        response = member.post(
            "/o/alpha/clusters/apps/new/",
            deploy_form(cluster, name="shop", namespace="default"),
        )
        assert response.status_code == 409
        assert field_errors(response.content.decode())["name"] == ["Taken in this namespace."]
        response = member.post(
            "/o/alpha/clusters/apps/new/",
            deploy_form(cluster, name="other", env="API_TOKEN=plain", secrets="API_TOKEN=hidden"),
        )
        assert response.status_code == 400
        assert "env" in field_errors(response.content.decode())
        response = member.post(
            "/o/alpha/clusters/apps/new/", deploy_form(cluster, name="other", secrets="1BAD=tucked-away")
        )
        assert response.status_code == 400
        errors = field_errors(response.content.decode())
        assert errors["secrets"][0].startswith("1BAD: "), errors
        assert "tucked-away" not in response.content.decode()
        assert in_org(org_a, lambda: App.objects.count()) == 1

    def test_viewer_cannot_deploy(self, org_a: Organization, viewer: Client) -> None:
        cluster = ready_cluster(org_a)
        response = viewer.get("/o/alpha/clusters/apps/new/", follow=True)
        assert "member role or higher" in messages_of(response)
        response = viewer.post("/o/alpha/clusters/apps/new/", deploy_form(cluster))
        assert response.status_code == 403
        assert in_org(org_a, lambda: App.objects.count()) == 0


class TestAppPage:
    def test_member_sees_the_spec_and_actions(self, org_a: Organization, member: Client) -> None:
        app = deployed(org_a, ready_cluster(org_a), ports=[80], readiness="tcp:80")
        page = member.get(f"/o/alpha/clusters/apps/{app.pk}/").content.decode()
        assert 'data-testid="app-status">Deploying<' in page
        assert 'data-testid="operation-progress"' in page
        assert 'data-testid="app-image">nginx:1.27<' in page and "<code>tcp:80</code>" in page
        assert "<code>MODE</code>" in page and "<code>prod</code>" in page
        assert 'data-secret="TOKEN"' in page and SECRET_VALUE not in page
        for control in ('name="replicas"', ">Restart<", ">Edit<", 'name="image"', 'name="confirm_name"'):
            assert control in page, control
        assert f"flotilla:app-{app.pk}.changed from:body" in page
        assert 'data-revision="1" aria-current="true"' in page and "deployed nginx:1.27" in page
        assert "deploy of revision 1 requested" in page  # the timeline
        # The cluster cannot be reached here: the pods part says so instead of failing the page.
        assert 'data-testid="pods-error"' in page

    def test_viewer_sees_no_controls(self, org_a: Organization, viewer: Client) -> None:
        app = deployed(org_a, ready_cluster(org_a))
        with schema_context(org_a.schema_name):
            app_services.scale_app(owner_actor(org_a), app, replicas=3)
        page = viewer.get(f"/o/alpha/clusters/apps/{app.pk}/").content.decode()
        assert 'data-revision="1"' in page
        for control in (
            'name="replicas"',
            ">Restart<",
            ">Edit<",
            'name="image"',
            "confirm_name",
            "Roll back",
        ):
            assert control not in page, control

    def test_live_fragment(self, org_a: Organization, viewer: Client) -> None:
        app = deployed(org_a, ready_cluster(org_a))
        page = viewer.get(f"/o/alpha/clusters/apps/{app.pk}/live/", HTTP_HX_REQUEST="true").content.decode()
        assert "<html" not in page and 'data-testid="app-status"' in page
        assert 'id="app-activity" hx-swap-oob="true"' in page and 'data-testid="revisions"' in page

    def test_live_fragment_of_an_unknown_app_moves_to_the_list(
        self, org_a: Organization, viewer: Client
    ) -> None:
        response = viewer.get("/o/alpha/clusters/apps/999/live/", HTTP_HX_REQUEST="true")
        assert response["HX-Redirect"] == "/o/alpha/clusters/apps/"
        assert viewer.get("/o/alpha/clusters/apps/999/").status_code == 404

    def test_scale_restart_update_and_roll_back(self, org_a: Organization, member: Client) -> None:
        app = deployed(org_a, ready_cluster(org_a))
        base = f"/o/alpha/clusters/apps/{app.pk}"
        response = member.post(f"{base}/scale/", {"replicas": "3"}, follow=True)
        assert "Scaling web from 2 to 3 replicas." in messages_of(response)
        response = member.post(f"{base}/restart/", follow=True)
        assert "Restarting web" in messages_of(response)
        response = member.post(f"{base}/edit/", {"image": "nginx:1.28"}, follow=True)
        assert "nginx:1.27 → nginx:1.28" in messages_of(response)
        response = member.post(f"{base}/rollback/", {"revision": "1"}, follow=True)
        assert "Rolling web back to revision 1" in messages_of(response)
        page = response.content.decode()
        assert 'data-revision="5" aria-current="true"' in page and "rolled back to revision 1" in page

        def state() -> tuple[list[str], dict[str, Any]]:
            kinds = list(
                AppRevision.objects.filter(app=app).order_by("number").values_list("kind", flat=True)
            )
            return kinds, App.objects.get(pk=app.pk).spec

        kinds, spec = in_org(org_a, state)
        assert kinds == ["deploy", "scale", "restart", "update", "rollback"]
        assert spec["image"] == "nginx:1.27" and spec["replicas"] == 2

    def test_errors_of_actions(self, org_a: Organization, member: Client) -> None:
        app = deployed(org_a, ready_cluster(org_a))
        base = f"/o/alpha/clusters/apps/{app.pk}"
        response = member.post(f"{base}/scale/", {"replicas": "5000"}, follow=True)
        assert "replicas" in messages_of(response)
        response = member.post(f"{base}/scale/", {"replicas": "2"}, follow=True)
        assert "already runs 2 replicas" in messages_of(response)
        response = member.post(f"{base}/rollback/", {"revision": "1"}, follow=True)
        assert "is the current one" in messages_of(response)
        response = member.post(f"{base}/edit/", {"image": "Not An Image"}, follow=False)
        assert response.status_code == 400 and "image" in field_errors(response.content.decode())
        assert in_org(org_a, lambda: AppRevision.objects.filter(app=app).count()) == 1

    def test_edit_page(self, org_a: Organization, member: Client) -> None:
        app = deployed(org_a, ready_cluster(org_a), ports=[80, {"port": 53, "protocol": "UDP"}])
        base = f"/o/alpha/clusters/apps/{app.pk}"
        page = member.get(f"{base}/edit/").content.decode()
        assert 'value="80, 53/udp"' in page and "MODE=prod" in page and SECRET_VALUE not in page
        assert "<code>TOKEN</code>" in page
        form = {
            "image": "nginx:1.27",
            "replicas": "2",
            "ports": "80, 53/udp",
            "env": "MODE=prod\nEXTRA=1",
            "secrets": "OTHER=x",
            "remove_secrets": "TOKEN",
            "cpu_request": "",
            "cpu_limit": "",
            "memory_request": "",
            "memory_limit": "",
            "readiness": "",
            "liveness": "",
            "progress_deadline": "600",
        }
        bad = member.post(
            f"{base}/edit/", {**form, "cpu_request": "2", "cpu_limit": "1", "env": "MODE=prod\n-x y=1"}
        )
        assert bad.status_code == 400
        errors = field_errors(bad.content.decode())
        assert "cpu_request" in errors and any(e.startswith("Line 2 (-x y)") for e in errors["env"]), errors
        assert "OTHER=x" not in bad.content.decode()
        response = member.post(f"{base}/edit/", form, follow=True)
        assert "env EXTRA added" in messages_of(response)
        app = in_org(org_a, lambda: App.objects.get(pk=app.pk))
        assert app.secret_keys == ["OTHER"] and app.revision == 2

    def test_delete_needs_the_name_typed(self, org_a: Organization, member: Client) -> None:
        app = deployed(org_a, ready_cluster(org_a))
        response = member.post(
            f"/o/alpha/clusters/apps/{app.pk}/delete/", {"confirm_name": "wbe"}, follow=True
        )
        assert "Type the app's name, web, to delete it." in messages_of(response)
        assert in_org(org_a, lambda: App.objects.get(pk=app.pk).status) == AppStatus.DEPLOYING
        response = member.post(f"/o/alpha/clusters/apps/{app.pk}/delete/", {"confirm_name": "web"})
        assert response.status_code == 302 and response["Location"] == "/o/alpha/clusters/apps/"
        assert in_org(org_a, lambda: App.objects.get(pk=app.pk).status) == AppStatus.DELETING
        page = member.get(f"/o/alpha/clusters/apps/{app.pk}/").content.decode()
        assert 'data-testid="app-status">Deleting<' in page and 'name="replicas"' not in page

    def test_viewer_is_refused(self, org_a: Organization, viewer: Client) -> None:
        app = deployed(org_a, ready_cluster(org_a))
        base = f"/o/alpha/clusters/apps/{app.pk}"
        for path, data in [
            (f"{base}/scale/", {"replicas": "5"}),
            (f"{base}/restart/", {}),
            (f"{base}/rollback/", {"revision": "1"}),
            (f"{base}/edit/", {"image": "nginx:1.28"}),
            (f"{base}/delete/", {"confirm_name": "web"}),
            (f"{base}/pods/web-abc/delete/", {}),
            (f"/o/alpha/clusters/{app.cluster_id}/workloads/adopt/", {"namespace": "default", "name": "x"}),
        ]:
            response = viewer.post(path, data)
            assert response.status_code == 403, path
            assert "role or higher" in messages_of(response), path
        assert in_org(
            org_a, lambda: (App.objects.get(pk=app.pk).revision, App.objects.get(pk=app.pk).status)
        ) == (
            1,
            AppStatus.DEPLOYING,
        )
        assert viewer.get(f"{base}/edit/", follow=True).status_code == 200


class TestClusterPage:
    def test_the_apps_part_of_a_cluster(self, org_a: Organization, member: Client) -> None:
        cluster = ready_cluster(org_a)
        deployed(org_a, cluster, "web")
        page = member.get(f"/o/alpha/clusters/{cluster.pk}/").content.decode()
        assert f'hx-get="/o/alpha/clusters/{cluster.pk}/apps/"' in page
        assert f"flotilla:cluster-{cluster.pk}.apps-changed from:body" in page
        part = member.get(f"/o/alpha/clusters/{cluster.pk}/apps/", HTTP_HX_REQUEST="true").content.decode()
        assert "<html" not in part and '<tr data-app="web">' in part
        assert f"/o/alpha/clusters/apps/new/?cluster={cluster.pk}" in part
        # The local cluster is not running here: the workloads part says why.
        assert 'data-testid="workloads-error"' in part

    def test_a_cluster_not_running_yet(self, org_a: Organization, viewer: Client) -> None:
        cluster = ready_cluster(org_a)
        in_org(org_a, lambda: Cluster.objects.filter(pk=cluster.pk).update(status=ClusterStatus.PROVISIONING))
        part = viewer.get(f"/o/alpha/clusters/{cluster.pk}/apps/").content.decode()
        assert "Workloads are listed once the cluster is running." in part and "Deploy an app" not in part


class TestIsolation:
    def test_other_orgs_app_pages_and_actions_are_404(self, org_a: Organization, org_b: Organization) -> None:
        cluster = ready_cluster(org_a)
        app = deployed(org_a, cluster, "secret-app")
        outsider = signed_in(owner_of(org_b).user)
        audited = in_org(org_a, lambda: AuditEntry.objects.count())
        for slug in ("alpha", "bravo"):
            base = f"/o/{slug}/clusters"
            for path in (
                f"{base}/apps/{app.pk}/",
                f"{base}/apps/{app.pk}/live/",
                f"{base}/apps/{app.pk}/edit/",
                f"{base}/{cluster.pk}/apps/",
            ):
                assert outsider.get(path).status_code == 404, path
            for path in (
                f"{base}/apps/{app.pk}/scale/",
                f"{base}/apps/{app.pk}/restart/",
                f"{base}/apps/{app.pk}/rollback/",
                f"{base}/apps/{app.pk}/edit/",
                f"{base}/apps/{app.pk}/delete/",
                f"{base}/apps/{app.pk}/pods/secret-app-1/delete/",
                f"{base}/{cluster.pk}/workloads/adopt/",
            ):
                data = {"replicas": "9", "revision": "1", "image": "x:1", "confirm_name": "secret-app"}
                assert (
                    outsider.post(path, {**data, "namespace": "default", "name": "x"}).status_code == 404
                ), path
        assert "secret-app" not in outsider.get("/o/bravo/clusters/apps/").content.decode()
        assert in_org(org_a, lambda: (App.objects.get(pk=app.pk).revision, AuditEntry.objects.count())) == (
            1,
            audited,
        )


@pytest.mark.kube
class TestOnARealCluster:
    def test_pods_workloads_delete_a_pod_and_adopt(
        self,
        org_a: Organization,
        member: Client,
        viewer: Client,
        local_cluster: LocalCluster,
        kube_namespace: str,
    ) -> None:
        cluster = cluster_on(org_a, local_cluster)
        with schema_context(org_a.schema_name):
            requested = app_services.deploy_app(
                owner_actor(org_a),
                cluster=cluster,
                name="web",
                namespace=kube_namespace,
                spec={"image": "nginx:1.27", "replicas": 2, "ports": [80]},
            )
        assert run(org_a, requested.operation).status == OperationStatus.SUCCEEDED
        app = requested.app
        # Someone else's Deployment in the same cluster: listed, and adoptable.
        local_cluster.apps().create_namespaced_deployment(
            kube_namespace,
            {
                "metadata": {"name": "legacy"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"run": "legacy"}},
                    "template": {
                        "metadata": {"labels": {"run": "legacy"}},
                        "spec": {"containers": [{"name": "legacy", "image": "redis:7"}]},
                    },
                },
            },
        )

        page = member.get(f"/o/alpha/clusters/apps/{app.pk}/").content.decode()
        assert 'data-testid="app-status">Available<' in page and 'data-testid="pods-error"' not in page
        pods = re.findall(r'<tr data-pod="(web-[^"]+)"', page)
        assert len(pods) == 2, page
        assert page.count('data-confirm="Delete pod ') == 2
        # Settled: the page waits for the app's events instead of looking again.
        assert 'data-testid="app-settling"' not in page
        # A viewer sees the same pods and workloads, without a button.
        seen = viewer.get(f"/o/alpha/clusters/apps/{app.pk}/").content.decode()
        assert re.findall(r'<tr data-pod="(web-[^"]+)"', seen) == pods and "Delete pod" not in seen

        response = member.post(f"/o/alpha/clusters/apps/{app.pk}/pods/{pods[0]}/delete/", follow=True)
        assert f"Deleted pod {pods[0]}" in messages_of(response)
        wait_for(
            lambda: all(
                p.metadata.name != pods[0] or p.metadata.deletion_timestamp
                for p in local_cluster.core().list_namespaced_pod(kube_namespace).items
            ),
            what="the pod to be deleted",
        )
        response = member.post(f"/o/alpha/clusters/apps/{app.pk}/pods/not-its-pod/delete/", follow=True)
        assert "has no pod 'not-its-pod'" in messages_of(response)

        part = member.get(f"/o/alpha/clusters/{cluster.pk}/apps/").content.decode()
        mine = re.search(rf'<tr data-workload="Deployment/{kube_namespace}/web">.*?</tr>', part, re.S)
        theirs = re.search(rf'<tr data-workload="Deployment/{kube_namespace}/legacy">.*?</tr>', part, re.S)
        assert mine and theirs, part
        assert "Flotilla: web" in mine.group(0) and ">Adopt<" not in mine.group(0)
        assert ">Adopt<" in theirs.group(0) and "redis:7" in theirs.group(0)
        seen = viewer.get(f"/o/alpha/clusters/{cluster.pk}/apps/").content.decode()
        assert f'data-workload="Deployment/{kube_namespace}/legacy"' in seen and ">Adopt<" not in seen

        response = member.post(
            f"/o/alpha/clusters/{cluster.pk}/workloads/adopt/",
            {"kind": "Deployment", "namespace": kube_namespace, "name": "legacy"},
        )
        assert response.status_code == 302, messages_of(response)
        adopted = in_org(org_a, lambda: App.objects.get(name="legacy"))
        assert adopted.adopted and response["Location"] == f"/o/alpha/clusters/apps/{adopted.pk}/"
        again = member.post(
            f"/o/alpha/clusters/{cluster.pk}/workloads/adopt/",
            {"kind": "Deployment", "namespace": kube_namespace, "name": "legacy"},
            follow=True,
        )
        assert "already an app" in messages_of(again)
