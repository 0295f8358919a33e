"""A tenant admin's journey through the marketplace in a real browser: browse and search, connect the Xero
sandbox through its real OAuth consent page, change a setting (bad, then good), sync and see the log row, add a
mapping and preview it, white label at phone width. Each page is saved as a screenshot at desktop and phone width."""
# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance
from playwright.sync_api import Browser, Page, expect

from providers.sandbox_kit.serve import ServedApp
from tests.browser.conftest import DESKTOP, PHONE
from tests.helpers import bearer, make_tenant
from tests.test_synclog import evaluate_sensors, latest_run
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def shoot(page: Page, folder: Path, name: str) -> None:
    """The current page at desktop and at phone width; the page stays at desktop width."""
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        # Written whole under a name of its own, then renamed: a parallel worker may shoot the same page.
        target = folder / f"{name}-{label}.png"
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_bytes(page.screenshot(full_page=True))
        partial.replace(target)
    page.set_viewport_size(DESKTOP)


def open_marketplace(page: Page, server: ServedApp, token: str, path: str = "/marketplace") -> None:
    """What the CRM does: ask for a signed link with the tenant's token and open it in the admin's browser."""
    answer = httpx.post(
        f"{server.base_url}/api/v1/marketplace/sessions", json={"path": path}, headers=bearer(token), timeout=10
    )
    assert answer.status_code == 201, answer.text
    page.goto(answer.json()["url"])
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def test_an_admin_browses_connects_xero_configures_and_syncs_it(
    page: Page,
    served: tuple[ServedApp, Settings],
    settings: Settings,
    instance: DagsterInstance,
    xero: Any,
    artifacts: Path,
) -> None:
    server, _ = served
    token = make_tenant(settings, "acme", "Acme Ltd")
    open_marketplace(page, server, token)

    # Browse and search: the client-side filter narrows as one types; Enter asks the server.
    expect(page.get_by_role("heading", name="Connected (0)")).to_be_visible()
    expect(page.locator('[data-slug="hubspot"]').get_by_text("Coming soon")).to_be_visible()
    shoot(page, artifacts, "marketplace")
    search = page.get_by_label("Search integrations")
    search.fill("xero")
    expect(page.locator('[data-slug="stripe"]')).to_be_hidden()
    expect(page.locator('[data-slug="xero"]')).to_be_visible()
    expect(page.locator("#search-count")).to_have_text("1 integration")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"/marketplace\?q=xero$"))
    expect(page.locator('[data-slug="stripe"]')).to_have_count(0)

    # Details, then connect through the Xero sandbox's real consent page.
    page.locator('[data-slug="xero"]').get_by_role("link", name="Connect Xero").click()
    expect(page.get_by_role("heading", name="Xero", exact=True)).to_be_visible()
    expect(page.get_by_text("Available now")).to_be_visible()
    shoot(page, artifacts, "details")
    page.get_by_role("button", name="Connect Xero").click()
    expect(page.get_by_role("button", name="Allow access")).to_be_visible()
    shoot(page, artifacts, "xero-consent")
    page.get_by_role("button", name="Allow access").click()
    expect(page).to_have_url(re.compile(r"/marketplace/xero/connected$"))
    expect(page.get_by_role("heading", name="Xero is connected")).to_be_visible()
    expect(page.get_by_text("Acme Trading")).to_be_visible()
    shoot(page, artifacts, "connected")

    # A bad setting is refused beside its field with the value kept; a good one is saved.
    page.get_by_role("link", name="Review settings").click()
    frequency = page.get_by_label("Sync frequency (minutes)")
    expect(frequency).to_have_value("60")
    frequency.fill("2")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#error-sync_frequency_minutes")).to_have_text("2 is less than the minimum of 5")
    expect(page.get_by_label("Sync frequency (minutes)")).to_have_value("2")
    expect(page.get_by_label("Sync frequency (minutes)")).to_have_attribute("aria-invalid", "true")
    shoot(page, artifacts, "settings-error")
    page.get_by_label("Sync frequency (minutes)").fill("30")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_label("Sync frequency (minutes)")).to_have_value("30")
    shoot(page, artifacts, "settings")

    # Sync now: this server has no Dagster webserver to launch through, and the page says what to do.
    page.get_by_role("link", name="Sync status").click()
    expect(page.get_by_text("Nothing has been synced yet.")).to_be_visible()
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_role("alert")).to_contain_text("the service that runs syncs is not reachable right now")
    shoot(page, artifacts, "sync-unreachable")

    # A pull run (the same Dagster assets, in this process) and the sync-log sensor: the row appears.
    sync_now(settings, "xero", "acme", ["contacts"], instance=instance)
    evaluate_sensors(instance, latest_run(instance))
    page.goto(f"{server.base_url}/marketplace/xero/sync")
    row = page.locator("tr.log-row").first
    expect(row).to_contain_text("contacts")
    expect(row).to_contain_text("success")
    expect(page.locator("tr.log-row")).to_have_count(1)
    page.get_by_label("Result").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No sync log entries match these filters.")).to_be_visible()
    page.get_by_label("Result").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr.log-row")).to_have_count(1)
    shoot(page, artifacts, "sync")

    # A mapping, previewed on the contact just synced, then saved.
    page.get_by_role("link", name="Field mappings").click()
    expect(page.get_by_text("No mappings yet")).to_be_visible()
    page.get_by_label("CRM field").fill("custom_fields.xero_name")
    page.get_by_label("Xero field").fill("Name")
    page.get_by_label("Direction").select_option("pull")
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Into the CRM")
    expect(preview.locator("table")).to_contain_text("xero_name")
    shoot(page, artifacts, "mappings-preview")
    page.get_by_role("button", name="Save mapping").click()
    expect(page.get_by_text("Mappings saved (version 1).")).to_be_visible()
    expect(page.locator("tr.mapping-row")).to_have_count(1)
    shoot(page, artifacts, "mappings")

    # A lookup: its table is edited in the page, and its options show once Lookup is the transform.
    page.get_by_label("CRM field").fill("custom_fields.state")
    page.get_by_label("Xero field").fill("ContactStatus")
    page.get_by_label("Direction").select_option("pull")
    expect(page.get_by_label("Value 1", exact=True)).to_be_hidden()
    page.get_by_label("Transform", exact=True).select_option("lookup")
    page.get_by_label("Value 1", exact=True).fill("ACTIVE")
    page.get_by_label("Replacement 1", exact=True).fill("live")
    page.get_by_label("Value 2", exact=True).fill("ARCHIVED")
    page.get_by_label("Replacement 2", exact=True).fill("gone")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview table")).to_contain_text("custom_fields.state")
    expect(page.locator("#preview")).not_to_contain_text("{'")
    shoot(page, artifacts, "mappings-lookup-preview")
    page.get_by_role("button", name="Save mapping").click()
    expect(page.locator("tr.mapping-row")).to_have_count(2)
    expect(page.locator("tr.mapping-row").nth(1)).to_contain_text("Lookup (2 values)")

    page.goto(f"{server.base_url}/marketplace")
    connected = page.get_by_role("heading", name="Connected (1)")
    expect(connected).to_be_visible()
    expect(page.locator(".connected-card")).to_contain_text(re.compile(r"Synced (just now|\d+s ago)"))
    shoot(page, artifacts, "marketplace-connected")


def test_a_white_labelled_marketplace_is_usable_by_keyboard_at_phone_width(
    page: Page, served: tuple[ServedApp, Settings], settings: Settings, artifacts: Path
) -> None:
    server, _ = served
    token = make_tenant(settings, "acme", "Acme Ltd")
    branding = {
        "name": "Acme Portal",
        "colours": {"primary": "#ffd700", "accent": "#ff7f50"},
        "hide_vrtx_branding": True,
    }
    saved = httpx.put(f"{server.base_url}/api/v1/tenant/branding", json=branding, headers=bearer(token), timeout=10)
    assert saved.status_code == 200, saved.text
    page.set_viewport_size(PHONE)
    open_marketplace(page, server, token, "/marketplace/stripe")

    expect(page.locator(".brand-name")).to_have_text("Acme Portal")
    expect(page.locator("body")).not_to_contain_text("VRTX")
    # The gold brand colour is darkened where it is text, and buttons get dark labels: both stay readable.
    link_colour = page.locator(".crumbs a").evaluate("a => getComputedStyle(a).color")
    assert link_colour != "rgb(255, 215, 0)"
    button = page.get_by_role("button", name="Connect Stripe")
    assert button.evaluate("b => getComputedStyle(b).color") == "rgb(17, 24, 39)"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "the page scrolls sideways at phone width"

    # Keyboard only: skip link, then Tab to the key field, type, Enter submits; the error is announced.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Secret key").focus()
    page.keyboard.type("sk_test_wrong")
    page.keyboard.press("Enter")
    expect(page.locator("#error-secret_key")).to_contain_text("not in the expected format")
    expect(page.get_by_label("Secret key")).to_have_attribute("aria-invalid", "true")
    shoot(page, artifacts, "connect-api-key-error")
