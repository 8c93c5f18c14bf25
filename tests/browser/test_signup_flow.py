"""A person signs up, creates an API token, sees it once, signs out and back in."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from orgs.models import ApiToken

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.usefixtures("drop_org_schemas")]
PASSWORD = "a-long-browser-password-7"


def test_signup_token_signout_signin(page: Page, live_flotilla: str) -> None:
    page.goto(live_flotilla + "/signup/")
    page.get_by_label("Organisation name").fill("Browser Co")
    page.get_by_label("Organisation URL name").fill("browser-co")
    page.get_by_label("Your name").fill("Bea")
    page.get_by_label("Email").fill("bea@browser.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organisation").click()
    expect(page).to_have_url(live_flotilla + "/o/browser-co/")
    expect(page.get_by_role("heading", name="Browser Co")).to_be_visible()
    # The live-events socket of the org connects under the CSP.
    expect(page.locator("body")).to_have_attribute("data-live", "connected")

    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("deploy-bot")
    page.get_by_label("Role").select_option("member")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("new-token-value").inner_text().strip()
    assert re.fullmatch(r"flt_[0-9a-f]{8}_[A-Za-z0-9_-]{40,}", secret)
    response = httpx.get(
        live_flotilla + "/api/v1/orgs/current/", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.json()["slug"] == "browser-co" and response.json()["role"] == "member"

    page.reload()  # the secret is not shown again
    expect(page.get_by_test_id("new-token-value")).to_have_count(0)
    expect(page.locator("tr[data-token='deploy-bot']")).to_contain_text("active")
    assert secret not in page.content()
    assert ApiToken.objects.get(name="deploy-bot").secret_hash not in secret

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login/"))
    page.goto(live_flotilla + "/o/browser-co/tokens/")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    page.get_by_label("Email").fill("bea@browser.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_flotilla + "/o/browser-co/tokens/")
    expect(page.get_by_test_id("whoami")).to_have_text("bea@browser.test")


def test_bad_signup_shows_field_errors(page: Page, live_flotilla: str) -> None:
    page.goto(live_flotilla + "/signup/")
    page.get_by_label("Organisation name").fill("X")
    page.get_by_label("Organisation URL name").fill("Not A Slug")
    page.get_by_label("Email").fill("x@browser.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create organisation").click()
    expect(page.locator("p.error[data-field='slug']")).to_be_visible()
