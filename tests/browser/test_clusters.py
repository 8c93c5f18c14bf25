"""A person creates a local cluster from the portal, watches it become Ready without reloading
(live events from the worker, htmx fragments), then deletes it and sees it go away."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, make_org

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live,
    pytest.mark.kube,
    pytest.mark.usefixtures("drop_org_schemas"),
]
# Generous: a real control plane starts on this host; the test waits on the page, not on a clock.
LIFECYCLE_TIMEOUT = 240_000


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(base + "/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_create_watch_ready_then_delete(page: Page, live_flotilla: str, live_worker: object) -> None:
    make_org("fleet")
    sign_in(page, live_flotilla, "owner@fleet.test")
    page.goto(live_flotilla + "/o/fleet/")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Clusters").click()
    expect(page).to_have_url(live_flotilla + "/o/fleet/clusters/")
    page.get_by_role("link", name="Create cluster").click()

    # The org had no provider account: the local one is offered, with its catalogue.
    expect(page.get_by_label("Provider account")).to_contain_text("local")
    page.get_by_label("Name", exact=True).fill("web")
    page.get_by_label("Pool name").fill("general")
    page.get_by_label("Machine size").select_option("small")
    page.get_by_label("Nodes").fill("1")
    page.get_by_role("button", name="Create cluster").click()

    expect(page).to_have_url(re.compile(r"/o/fleet/clusters/\d+/$"))
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    # Anything set on this document survives only if the page is never reloaded.
    page.evaluate("window.flotillaSamePage = true")
    status = page.get_by_test_id("cluster-status")
    expect(status).to_have_text("Ready", timeout=LIFECYCLE_TIMEOUT)
    expect(page.get_by_test_id("cluster-nodes")).to_have_text("1/1", timeout=LIFECYCLE_TIMEOUT)
    expect(page.locator("tr[data-node='general-0']")).to_contain_text("Ready")
    expect(page.get_by_test_id("timeline")).to_contain_text("Create succeeded")
    assert page.evaluate("window.flotillaSamePage") is True
    expect(page.get_by_role("link", name="Download kubeconfig")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete cluster").click()
    expect(page).to_have_url(live_flotilla + "/o/fleet/clusters/")
    row = page.locator("tr[data-cluster='web']")
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    page.evaluate("window.flotillaSamePage = true")
    # Listed as Deleting until the worker has destroyed it, then gone from the live table.
    expect(row).to_have_count(0, timeout=LIFECYCLE_TIMEOUT)
    expect(page.get_by_test_id("clusters-total")).to_have_text("0")
    assert page.evaluate("window.flotillaSamePage") is True
