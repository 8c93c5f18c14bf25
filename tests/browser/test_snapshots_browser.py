"""A person snapshots a namespace of a real local cluster from its page and watches the snapshot
complete without reloading; then previews a restore of it into the same cluster under another
namespace name, reads the preview, confirms it, and the objects are there under the new name."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django_tenants.utils import schema_context
from kubernetes.client.exceptions import ApiException
from playwright.sync_api import Page, expect

from snapshots.models import Restore, Snapshot
from tests.browser.test_apps_browser import same_page, sign_in
from tests.clusters.app_helpers import cluster_on
from tests.factories import make_org
from tests.local_kube import LocalCluster, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.kube]
# Generous: the worker shares this host's two cores with the cluster's control plane.
JOB_TIMEOUT = 180_000


@pytest.mark.usefixtures("drop_org_schemas")
def test_snapshot_from_the_cluster_page_then_preview_and_restore_under_a_new_namespace(
    page: Page, live_flotilla: str, live_worker: object, local_cluster: LocalCluster, kube_namespace: str
) -> None:
    org = make_org("vault")
    cluster = cluster_on(org, local_cluster, "lab")
    core = local_cluster.core()
    core.create_namespaced_config_map(
        kube_namespace,
        {"metadata": {"name": "settings", "labels": {"app": "web"}}, "data": {"colour": "blue"}},
    )
    core.create_namespaced_secret(
        kube_namespace, {"metadata": {"name": "token"}, "stringData": {"token": "very-secret-value"}}
    )
    copy = f"{kube_namespace}-copy"
    sign_in(page, live_flotilla, "owner@vault.test")

    # The cluster's page: its Snapshots section offers the form.
    page.goto(f"{live_flotilla}/o/vault/clusters/{cluster.pk}/")
    section = page.locator("#cluster-snapshots")
    expect(section.get_by_test_id("snapshots-table")).to_contain_text("No snapshots yet.")
    section.get_by_label("Name", exact=True).fill("lab-first")
    section.get_by_label("Namespaces", exact=True).fill(kube_namespace)
    # The namespace alone: the cluster's own cluster-scoped objects are left out.
    section.get_by_label("Cluster-scoped objects").uncheck()
    section.get_by_role("button", name="Take snapshot").click()

    # The snapshot's page follows it live to Completed, with what it holds.
    expect(page).to_have_url(re.compile(r"/o/vault/snapshots/\d+/$"))
    expect(page.locator(".messages")).to_contain_text("Taking snapshot lab-first of lab")
    same_page(page)
    expect(page.get_by_test_id("snapshot-status")).to_have_text("Completed", timeout=JOB_TIMEOUT)
    expect(page.get_by_test_id("snapshot-kinds")).to_contain_text("ConfigMap")
    expect(page.get_by_test_id("snapshot-kinds")).to_contain_text("Secret")
    assert page.evaluate("window.flotillaSamePage") is True
    with schema_context(org.schema_name):
        snapshot = Snapshot.objects.get(name="lab-first")
        assert snapshot.object_count >= 3 and snapshot.stored_bytes > 0
        assert snapshot.selection["cluster_scoped"] is False
        assert "rbac.authorization.k8s.io/v1/ClusterRole" not in snapshot.kinds

    # The restore form appeared with it: a preview into the same cluster, under another name.
    form = page.locator("#restore-form")
    expect(form.get_by_label("Target cluster").locator("option:checked")).to_have_text("lab")
    form.get_by_label("Namespace map").fill(f"{kube_namespace}={copy}")
    form.get_by_role("button", name="Preview restore").click()

    expect(page).to_have_url(re.compile(r"/o/vault/snapshots/restores/\d+/$"))
    preview_url = page.url
    same_page(page)
    expect(page.get_by_test_id("restore-status")).to_have_text("Completed", timeout=JOB_TIMEOUT)
    planned = page.locator(f"tr[data-item='ConfigMap/{copy}/settings']")
    expect(planned).to_have_attribute("data-action", "create")
    expect(planned).to_have_attribute("data-result", "planned")
    expect(page.get_by_test_id("restore-items")).to_contain_text(f"from {kube_namespace}")
    assert page.evaluate("window.flotillaSamePage") is True
    # Nothing was written by the preview.
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("settings", copy)
    assert missing.value.status == 404

    # Confirmed: the real restore, on its own page, creates the objects.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Restore now").click()
    expect(page).to_have_url(re.compile(r"/o/vault/snapshots/restores/\d+/$"))
    assert page.url != preview_url
    same_page(page)
    expect(page.get_by_test_id("restore-status")).to_have_text("Completed", timeout=JOB_TIMEOUT)
    done = page.locator(f"tr[data-item='ConfigMap/{copy}/settings']")
    expect(done).to_have_attribute("data-result", "done")
    expect(page.get_by_role("link", name=re.compile(r"Its preview, #\d+"))).to_be_visible()
    assert page.evaluate("window.flotillaSamePage") is True

    restored = wait_for(lambda: _config_map(local_cluster, copy), what=f"ConfigMap {copy}/settings")
    assert restored.data == {"colour": "blue"} and restored.metadata.labels.get("app") == "web"
    assert core.read_namespaced_secret("token", copy).data["token"]
    with schema_context(org.schema_name):
        assert Restore.objects.filter(snapshot=snapshot, mode="restore", status="completed").count() == 1
    # The preview's page now links to the restore it became.
    page.goto(preview_url)
    expect(page.get_by_test_id("restore-confirmed")).to_be_visible()
    expect(page.get_by_role("button", name="Restore now")).to_have_count(0)


def _config_map(local: LocalCluster, namespace: str) -> Any:
    """The restored ConfigMap as the API server holds it (None until it is there)."""
    try:
        return local.core().read_namespaced_config_map("settings", namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
