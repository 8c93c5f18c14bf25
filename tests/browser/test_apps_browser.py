"""A person deploys an app from the portal to a real local cluster, watches it become Available
and its pods appear without reloading, scales it, changes its image, rolls it back, then deletes
it; the Deployment, Service and Secret are then gone from the cluster's API server too."""

from __future__ import annotations

import re

import pytest
import yaml
from django_tenants.utils import schema_context
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from playwright.sync_api import Locator, Page, expect

from clusters.choices import ClusterStatus
from clusters.models import App, Cluster
from clusters.services.providers import ensure_local_provider
from orgs.models import Organization
from tests.factories import PASSWORD, actor_for, make_org, owner_of

pytestmark = [pytest.mark.browser, pytest.mark.live]
# Generous: a real control plane starts on this host; the test waits on the page, not on a clock.
LIFECYCLE_TIMEOUT = 240_000
ROLLOUT_TIMEOUT = 120_000


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(base + "/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def running_pods(page: Page) -> Locator:
    """The pods table's rows of pods not being deleted."""
    return page.locator("table.pods tr[data-pod]:not([data-deleting])")


def same_page(page: Page) -> None:
    """Mark this document: the mark survives only if the page is never reloaded."""
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    page.evaluate("window.flotillaSamePage = true")


def api_of(org: Organization, cluster_name: str) -> k8s.ApiClient:
    """A Kubernetes client of the org's cluster, from the kubeconfig Flotilla keeps for it."""
    with schema_context(org.schema_name):
        kubeconfig = Cluster.objects.get(name=cluster_name, deleted_at__isnull=True).kubeconfig_text()
    return k8s_config.new_client_from_config_dict(yaml.safe_load(kubeconfig))


@pytest.mark.kube
@pytest.mark.usefixtures("drop_org_schemas")
def test_deploy_watch_scale_update_roll_back_delete(
    page: Page, live_flotilla: str, live_worker: object
) -> None:
    org = make_org("fleet")
    sign_in(page, live_flotilla, "owner@fleet.test")

    # A local cluster, made from the portal.
    page.goto(live_flotilla + "/o/fleet/clusters/new/")
    page.get_by_label("Name", exact=True).fill("lab")
    page.get_by_label("Pool name").fill("general")
    page.get_by_label("Machine size").select_option("small")
    page.get_by_label("Nodes").fill("1")
    page.get_by_role("button", name="Create cluster").click()
    expect(page).to_have_url(re.compile(r"/o/fleet/clusters/\d+/$"))
    expect(page.get_by_test_id("cluster-status")).to_have_text("Ready", timeout=LIFECYCLE_TIMEOUT)

    # Its Apps part follows the cluster: once Ready, it offers to deploy there.
    page.locator("#cluster-apps").get_by_role("link", name="Deploy an app").click()
    expect(page).to_have_url(re.compile(r"/o/fleet/clusters/apps/new/\?cluster=\d+$"))
    expect(page.get_by_label("Cluster")).to_have_value(re.compile(r"\d+"))
    expect(page.get_by_label("Cluster").locator("option:checked")).to_have_text("lab")
    expect(page.get_by_label("Namespace")).to_have_value("default")
    page.get_by_label("Name", exact=True).fill("shop")
    page.get_by_label("Image").fill("nginx:1.27")
    page.get_by_label("Replicas").fill("2")
    page.get_by_label("Ports").fill("80")
    page.get_by_label("Environment").fill("MODE=demo")
    page.get_by_label("Secret variables").fill("TOKEN=very-secret")
    page.get_by_role("button", name="Deploy").click()

    # The app's page: the rollout is followed live, to Available, with its pods.
    expect(page).to_have_url(re.compile(r"/o/fleet/clusters/apps/\d+/$"))
    same_page(page)
    expect(page.get_by_test_id("app-status")).to_have_text("Available", timeout=ROLLOUT_TIMEOUT)
    expect(running_pods(page)).to_have_count(2, timeout=ROLLOUT_TIMEOUT)
    expect(page.get_by_test_id("app-replicas")).to_contain_text("2/2")
    expect(page.locator("tr[data-secret='TOKEN']")).to_be_visible()
    assert "very-secret" not in page.content()
    assert page.evaluate("window.flotillaSamePage") is True

    # Scale to 3: a third pod, without reloading.
    page.locator("#scale-replicas").fill("3")
    page.locator("#app-scale").get_by_role("button", name="Scale").click()
    expect(page.locator(".messages")).to_contain_text("Scaling shop from 2 to 3 replicas.")
    same_page(page)
    expect(running_pods(page)).to_have_count(3, timeout=ROLLOUT_TIMEOUT)
    expect(page.get_by_test_id("app-status")).to_have_text("Available", timeout=ROLLOUT_TIMEOUT)
    expect(page.get_by_test_id("app-replicas")).to_contain_text("3/3")
    expect(page.locator("tr[data-revision='2']")).to_contain_text("replicas: 2 → 3")
    assert page.evaluate("window.flotillaSamePage") is True

    # A new image: revision 3, rolled out live.
    page.get_by_label("Image").fill("nginx:1.28")
    page.locator("#app-image").get_by_role("button", name="Update").click()
    expect(page.locator(".messages")).to_contain_text("image: nginx:1.27 → nginx:1.28")
    same_page(page)
    expect(page.get_by_test_id("app-image")).to_have_text("nginx:1.28")
    expect(page.get_by_test_id("app-status")).to_have_text("Available", timeout=ROLLOUT_TIMEOUT)
    expect(running_pods(page)).to_have_count(3, timeout=ROLLOUT_TIMEOUT)

    # Roll back to the first revision: the first image and two replicas again, as revision 4.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr[data-revision='1']").get_by_role("button", name="Roll back").click()
    expect(page.locator(".messages")).to_contain_text("Rolling shop back to revision 1")
    same_page(page)
    expect(page.get_by_test_id("app-image")).to_have_text("nginx:1.27")
    current = page.locator("tr[data-revision='4'][aria-current='true']")
    expect(current).to_contain_text("rolled back to revision 1")
    expect(running_pods(page)).to_have_count(2, timeout=ROLLOUT_TIMEOUT)
    expect(page.get_by_test_id("app-status")).to_have_text("Available", timeout=ROLLOUT_TIMEOUT)
    assert page.evaluate("window.flotillaSamePage") is True

    apps = k8s.AppsV1Api(api_of(org, "lab"))
    deployments = apps.list_namespaced_deployment("default").items
    assert [d.metadata.name for d in deployments] == ["shop"]
    assert deployments[0].spec.template.spec.containers[0].image == "nginx:1.27"
    assert deployments[0].spec.replicas == 2

    # Delete, confirmed by typing the name: listed until the worker has removed it, then gone.
    page.locator("#confirm-name").fill("shop")
    page.get_by_role("button", name="Delete app").click()
    expect(page).to_have_url(live_flotilla + "/o/fleet/clusters/apps/")
    expect(page.locator(".messages")).to_contain_text("Deleting shop")
    same_page(page)
    expect(page.locator("tr[data-app='shop']")).to_have_count(0, timeout=ROLLOUT_TIMEOUT)
    assert page.evaluate("window.flotillaSamePage") is True

    with schema_context(org.schema_name):
        assert App.objects.get(name="shop").status == "deleted"
    api = api_of(org, "lab")
    assert not [d.metadata.name for d in k8s.AppsV1Api(api).list_namespaced_deployment("default").items]
    core = k8s.CoreV1Api(api)
    assert "shop" not in {s.metadata.name for s in core.list_namespaced_service("default").items}
    assert "shop-secrets" not in {s.metadata.name for s in core.list_namespaced_secret("default").items}


@pytest.mark.usefixtures("drop_org_schemas")
def test_the_deploy_form_shows_errors_next_to_inputs(page: Page, live_flotilla: str) -> None:
    """No cluster is called: the form's errors come from the services' checks alone."""
    org = make_org("yard")
    with schema_context(org.schema_name):
        provider = ensure_local_provider(actor_for(owner_of(org)))
        for name in ("blue", "green"):
            Cluster.objects.create(
                name=name,
                provider=provider,
                region="local",
                version="1.31.4",
                status=ClusterStatus.READY,
                external_name=f"yard-{name}",
            )
    sign_in(page, live_flotilla, "owner@yard.test")
    page.goto(live_flotilla + "/o/yard/")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Apps").click()
    expect(page).to_have_url(live_flotilla + "/o/yard/clusters/apps/")
    expect(page.get_by_test_id("apps-table")).to_contain_text("No apps yet.")
    # The cluster filter sends itself when changed.
    page.get_by_label("Cluster").select_option(label="green")
    expect(page).to_have_url(re.compile(r"/o/yard/clusters/apps/\?cluster=\d+$"))
    page.get_by_role("link", name="Deploy an app").click()
    expect(page.get_by_label("Cluster").locator("option:checked")).to_have_text("green")

    page.get_by_label("Name", exact=True).fill("shop")
    page.get_by_label("Image").fill("nginx:1.27")
    page.get_by_label("Ports").fill("80, 70000")
    page.get_by_label("Environment").fill("GOOD=1\n2BAD=x")
    page.get_by_label("Secret variables").fill("TOKEN=hidden-value")
    page.get_by_label("CPU request").fill("a lot")
    page.get_by_label("Readiness check").fill("http:/healthz")
    page.get_by_role("button", name="Deploy").click()

    def error_of(field: str) -> Locator:
        return page.locator(f".field.has-error p.error[data-field='{field}']")

    expect(error_of("ports")).to_contain_text("Port 2")
    expect(error_of("env")).to_contain_text("Line 2 (2BAD)")
    expect(error_of("cpu_request")).to_be_visible()
    expect(error_of("readiness")).to_be_visible()
    expect(page.get_by_label("Ports")).to_have_value("80, 70000")
    expect(page.get_by_label("Secret variables")).to_have_value("")
    assert "hidden-value" not in page.content()
    with schema_context(org.schema_name):
        assert not App.objects.exists()
