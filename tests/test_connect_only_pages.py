"""A connect-only integration (Twilio, Mailchimp, Microsoft 365 today: only ``connect`` is implemented) shows what its
connection can do and nothing else: no sync status, no last sync, no schedule settings, no field mappings."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.browser.helpers import open_marketplace, post_form
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.config import Settings
from vrtx_pipelines.registry import get_provider

TWILIO = get_provider("twilio").sandbox_credentials
TABS = re.compile(r'<nav class="tabs"[^>]*>(.*?)</nav>', re.S)


@pytest.fixture
def acme(api: TestClient, settings: Settings) -> str:
    token = make_tenant(settings, "acme")
    open_marketplace(api, token)
    return token


def tab_labels(html: str) -> list[str]:
    found = TABS.search(html)
    assert found, "no tabs"
    return re.findall(r">([^<>]+)</a>", found.group(1))


def test_a_connect_only_integration_shows_only_what_its_connection_can_do(
    api: TestClient, acme: str, settings: Settings
) -> None:
    connected = post_form(api, "/marketplace/twilio/connect", list(TWILIO.items()), page="/marketplace/twilio")
    assert connected.status_code == 303
    details = api.get(connected.headers["location"]).text
    assert "first sync" not in details and "Connected. The credentials were checked" in details
    assert tab_labels(details) == ["Overview", "Settings"]
    assert "Last sync" not in details and "does not sync anything yet" in details
    assert 'name="data" value="purge"' not in details  # nothing was synced, so nothing to purge

    card = re.search(r'<li class="card connected-card">.*?</li>', api.get("/marketplace").text, re.S)
    assert card and "Synced" not in card.group(0) and "/marketplace/twilio/sync" not in card.group(0)
    assert "Connection only" in card.group(0)

    form = api.get("/marketplace/twilio/settings").text
    assert re.findall(r'<(?:input|select|textarea)[^>]* name="([a-z_]+)"', form) == [
        "csrf_token", "default_from_number", "messaging_service_sid",
    ]  # fmt: skip
    assert api.get("/marketplace/twilio/sync").status_code == 404
    assert api.get("/marketplace/twilio/mappings").status_code == 404

    # Saving what is shown leaves what is not (the schedule's stored settings) as it was.
    before = api.get("/api/v1/integrations/twilio/settings", headers=bearer(acme)).json()["settings"]
    shown = {"default_from_number": "+14155552671", "messaging_service_sid": "MG" + "0" * 32}
    saved = post_form(api, "/marketplace/twilio/settings", list(shown.items()))
    assert saved.status_code == 303
    after = api.get("/api/v1/integrations/twilio/settings", headers=bearer(acme)).json()["settings"]
    assert after == {**before, **shown}

    # An optional field left empty is unset, not an empty string checked against its pattern.
    cleared = post_form(
        api, "/marketplace/twilio/settings", [("default_from_number", "+14155552671"), ("messaging_service_sid", "")]
    )
    assert cleared.status_code == 303, cleared.text
    settled = api.get("/api/v1/integrations/twilio/settings", headers=bearer(acme)).json()["settings"]
    assert "messaging_service_sid" not in settled and settled["default_from_number"] == "+14155552671"


def test_an_integration_that_syncs_keeps_every_tab(api: TestClient, acme: str, settings: Settings) -> None:
    connect_xero(settings, "acme")
    html = api.get("/marketplace/xero").text
    assert tab_labels(html) == ["Overview", "Settings", "Sync status", "Field mappings"]
    assert "Last sync" in html
    assert 'name="sync_frequency_minutes"' in api.get("/marketplace/xero/settings").text
