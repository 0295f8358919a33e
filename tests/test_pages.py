"""The marketplace pages through the real API app: sessions, browse and search, connect (API key and OAuth
through the Xero sandbox), settings, sync status, branding, CSRF and tenant isolation; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.pages import session as page_sessions
from providers.sandbox_kit.serve import free_port
from tests.browser.helpers import consent, csrf_of, open_marketplace, post_form, session_link
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import IntegrationSyncLog
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.registry import get_provider

STRIPE_KEY = get_provider("stripe").sandbox_credentials["secret_key"]


@pytest.fixture
def acme(api: TestClient, settings: Settings) -> str:
    """Tenant ``acme`` with its marketplace open in ``api``'s cookie jar; returns its API token."""
    token = make_tenant(settings, "acme", "Acme Ltd")
    open_marketplace(api, token)
    return token


def other_browser(api: TestClient) -> TestClient:
    return TestClient(api.app, raise_server_exceptions=False)


def connect_stripe(api: TestClient, key: str = STRIPE_KEY) -> Any:
    return post_form(api, "/marketplace/stripe/connect", [("secret_key", key)], page="/marketplace/stripe")


# --- sessions --------------------------------------------------------------------------------------------


def test_a_session_link_sets_an_httponly_cookie_and_redirects_to_the_clean_url(
    api: TestClient, settings: Settings
) -> None:
    token = make_tenant(settings, "acme")
    link = session_link(api, token, "/marketplace/xero")
    opened = api.get(link, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/marketplace/xero"
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert token not in cookie
    page = api.get("/marketplace")
    assert page.status_code == 200 and "Connected (0)" in page.text


def test_pages_are_embeddable_by_the_configured_origins_only(api: TestClient, acme: str) -> None:
    page = api.get("/marketplace")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'self' http://localhost:*" in policy and "script-src 'self'" in policy
    assert "x-frame-options" not in page.headers


def test_the_session_api_needs_the_tenants_token(api: TestClient, settings: Settings) -> None:
    assert api.post("/api/v1/marketplace/sessions").status_code == 401
    token = make_tenant(settings, "acme")
    bad = api.post("/api/v1/marketplace/sessions", json={"path": "https://evil.example/"}, headers=bearer(token))
    assert bad.status_code == 422


def test_pages_refuse_a_missing_tampered_expired_or_other_purpose_session(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    make_tenant(settings, "beta")
    assert api.get("/marketplace").status_code == 401
    assert "expired" in api.get("/marketplace").text

    link = session_link(api, token)
    grant = link.split("session=", 1)[1]
    forged = grant.replace("acme.", "beta.", 1)  # the same signature for another tenant
    assert api.get(f"/marketplace?session={forged}", follow_redirects=False).status_code == 401

    vault = vault_from_settings(settings)
    expired, _ = page_sessions._issue(vault, page_sessions.LINK_PURPOSE, "acme", 0, -1)
    assert api.get(f"/marketplace?session={expired}", follow_redirects=False).status_code == 401

    # A link is not a session cookie, and a session cookie is not a link.
    api.cookies.set(page_sessions.COOKIE, grant)
    assert api.get("/marketplace").status_code == 401
    cookie, _ = page_sessions._issue(vault, page_sessions.SESSION_PURPOSE, "acme", 0, 60)
    assert api.get(f"/marketplace?session={cookie}", follow_redirects=False).status_code == 401
    api.cookies.set(page_sessions.COOKIE, cookie)
    assert api.get("/marketplace").status_code == 200


def test_a_form_posted_without_the_sessions_csrf_token_changes_nothing(api: TestClient, acme: str) -> None:
    for token in ("", "k1.forged"):
        response = api.post(
            "/marketplace/stripe/connect",
            content=f"csrf_token={token}&secret_key={STRIPE_KEY}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 403 and "Reload the page" in response.text
    assert "Connected (0)" in api.get("/marketplace").text


# --- browse ---------------------------------------------------------------------------------------------------


def test_the_marketplace_groups_the_catalog_and_marks_what_cannot_be_connected(api: TestClient, acme: str) -> None:
    html = api.get("/marketplace").text
    for heading in ("Accounting", "Payments", "Automation"):
        assert f">{heading}</h2>" in html
    assert 'href="/marketplace/xero"' in html and 'href="/marketplace/stripe"' in html
    # Sage is on the roadmap: shown, "Coming soon", and not a link.
    sage = re.search(r'data-slug="sage".*?</li>', html, re.S)
    assert sage and "Coming soon" in sage.group(0) and "href" not in sage.group(0)


def test_search_on_the_server_narrows_the_catalog(api: TestClient, acme: str) -> None:
    html = api.get("/marketplace", params={"q": "accounting xero"}).text
    assert 'data-slug="xero"' in html and 'data-slug="stripe"' not in html
    assert "No integration matches" in api.get("/marketplace", params={"q": "nothing-like-this"}).text


def test_details_show_description_and_capabilities_available_and_on_the_roadmap(api: TestClient, acme: str) -> None:
    html = api.get("/marketplace/mailchimp").text
    assert "Email marketing: contact sync and campaigns" in html
    assert "Available now" in html and "On the roadmap" in html and "Bring campaigns into the CRM" in html
    assert 'name="api_key"' in html and 'type="password"' in html
    assert api.get("/marketplace/nope").status_code == 404


# --- connect ----------------------------------------------------------------------------------------------


def test_an_api_key_form_shows_errors_beside_the_field_and_connects_a_good_key(api: TestClient, acme: str) -> None:
    malformed = connect_stripe(api, "not-a-key")
    assert malformed.status_code == 422
    assert 'id="error-secret_key"' in malformed.text and "not in the expected format" in malformed.text
    assert "not-a-key" not in malformed.text  # credentials are never echoed back

    rejected = connect_stripe(api, "sk_test_" + "0" * 24)
    assert rejected.status_code == 400 and "did not accept these credentials" in rejected.text

    connected = connect_stripe(api)
    assert connected.status_code == 303 and connected.headers["location"] == "/marketplace/stripe?notice=connected"
    html = api.get("/marketplace").text
    assert "Connected (1)" in html and "Synced never" in html  # Stripe syncs: never yet, its first sync queued
    assert STRIPE_KEY not in api.get("/marketplace/stripe?notice=connected").text


def test_oauth_connect_goes_through_the_providers_consent_and_back_to_the_connected_page(
    api: TestClient, acme: str, settings: Settings
) -> None:
    started = post_form(api, "/marketplace/xero/connect", [], page="/marketplace/xero")
    assert started.status_code == 303
    authorize = started.headers["location"]
    assert authorize.startswith(settings.provider_base_urls["xero"]) and "code_challenge=" in authorize

    back = api.get(consent(authorize), follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/marketplace/xero/connected"
    page = api.get("/marketplace/xero/connected")
    assert page.status_code == 200 and "Xero is connected" in page.text and "Acme Trading" in page.text
    assert "Connected (1)" in api.get("/marketplace").text


def test_a_refused_consent_comes_back_to_a_page_that_says_so(api: TestClient, acme: str) -> None:
    started = post_form(api, "/marketplace/xero/connect", [], page="/marketplace/xero")
    back = api.get(consent(started.headers["location"], decision="deny"), follow_redirects=False)
    assert back.status_code == 303
    assert back.headers["location"] == "/marketplace/xero/connected?error=oauth_denied&reason=access_denied"
    page = api.get(back.headers["location"])
    assert page.status_code == 400 and "was not authorised at Xero (access_denied)" in page.text
    assert "Connected (0)" in api.get("/marketplace").text


def test_the_oauth_callback_still_answers_api_callers_in_json(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    url = api.get("/api/v1/integrations/xero/oauth/url", headers=bearer(token)).json()["url"]
    answer = api.get(consent(url, decision="deny"))
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "oauth_denied"


def test_disconnect_asks_what_to_do_with_the_data_and_purges_when_told(
    api: TestClient, acme: str, settings: Settings
) -> None:
    connect_xero(settings, "acme")
    assert 'value="purge"' in api.get("/marketplace/xero").text
    kept = post_form(api, "/marketplace/xero/disconnect", [("data", "purge")], page="/marketplace/xero")
    assert kept.status_code == 303 and kept.headers["location"] == "/marketplace/xero?notice=purged"
    assert "Connected (0)" in api.get("/marketplace").text


# --- settings -----------------------------------------------------------------------------------------------


def settings_form(values: dict[str, Any], slug: str = "xero") -> list[tuple[str, str]]:
    """The form a browser posts for these settings (unticked boxes send nothing)."""
    properties = get_provider(slug).config_schema["properties"]
    pairs: list[tuple[str, str]] = []
    for name, value in values.items():
        spec = properties[name]
        if spec["type"] == "boolean":
            pairs += [(name, "true")] if value else []
        elif spec["type"] == "array" and "enum" in spec.get("items", {}):
            pairs += [(name, item) for item in value]
        elif spec["type"] in ("object", "array"):
            pairs.append((name, json.dumps(value)))
        else:
            pairs.append((name, str(value)))
    return pairs


def test_the_settings_form_follows_the_config_schema(api: TestClient, acme: str, settings: Settings) -> None:
    connect_xero(settings, "acme")
    html = api.get("/marketplace/xero/settings").text
    assert re.search(r'type="number"\s+value="60"\s+min="5" max="1440"', html)  # integer with bounds
    assert 'name="sync_enabled" value="true" checked' in html  # boolean
    assert '<option value="DRAFT" selected>' in html  # enum -> select
    assert 'name="entities" value="invoices" checked' in html  # array of enum -> checkboxes
    assert '<label for="f-default_sales_account_code">Default sales account code' in html


def test_bad_settings_are_shown_beside_their_fields_with_the_values_kept(
    api: TestClient, acme: str, settings: Settings
) -> None:
    connect_xero(settings, "acme")
    current = api.get("/api/v1/integrations/xero/settings", headers=bearer(acme)).json()["settings"]
    changes = {"sync_frequency_minutes": 2, "entities": ["invoices"], "default_sales_account_code": "not valid!"}
    form = settings_form({**current, **changes})
    bad = post_form(api, "/marketplace/xero/settings", form)
    assert bad.status_code == 422 and "2 settings need fixing" in bad.text
    assert re.search(r'id="error-sync_frequency_minutes">2 is less than the minimum of 5', bad.text)
    assert re.search(r'id="error-default_sales_account_code">Not in the expected format', bad.text)
    assert 'value="not valid!"' in bad.text and 'value="2"' in bad.text
    assert 'name="entities" value="contacts"' in bad.text and 'name="entities" value="contacts" checked' not in bad.text

    unreadable = post_form(api, "/marketplace/xero/settings", [("sync_frequency_minutes", "often")])
    assert unreadable.status_code == 422 and "Enter a whole number from 5 to 1440" in unreadable.text

    fixed = {**current, **changes, "sync_frequency_minutes": 15, "default_sales_account_code": "400"}
    good = post_form(api, "/marketplace/xero/settings", settings_form(fixed))
    assert good.status_code == 303
    saved = api.get(good.headers["location"])
    assert "Settings saved." in saved.text
    stored = api.get("/api/v1/integrations/xero/settings", headers=bearer(acme)).json()["settings"]
    assert stored["sync_frequency_minutes"] == 15 and stored["entities"] == ["invoices"]
    assert stored["default_sales_account_code"] == "400"


# --- sync status -------------------------------------------------------------------------------------------


def add_logs(settings: Settings, tenant: str, count: int) -> None:
    base = datetime.now(UTC) - timedelta(hours=2)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection = get_connection(session, tenant, "xero")
        assert connection is not None
        connection.last_sync_at = base + timedelta(minutes=count)
        for n in range(count):
            session.add(
                IntegrationSyncLog(
                    tenant_integration_id=connection.id,
                    run_id=f"run-{n}",
                    entity_type="invoices" if n % 2 else "contacts",
                    direction="pull",
                    sync_type="incremental",
                    status="failed" if n == 3 else "success",
                    error_message="Xero answered 503 Service Unavailable" if n == 3 else None,
                    counts={"rows_loaded": 100 + n},
                    created_at=base + timedelta(minutes=n),
                )
            )


def test_sync_status_shows_last_and_next_sync_entity_counts_and_a_paged_filtered_log(
    api: TestClient, acme: str, settings: Settings
) -> None:
    connect_xero(settings, "acme")
    add_logs(settings, "acme", 25)
    html = api.get("/marketplace/xero/sync").text
    assert "Last sync</dt><dd>1h ago" in html and "Next sync</dt><dd>within a minute" in html
    assert html.count('class="log-row"') == 20 and "Older entries" in html
    assert ">124</td>" in html  # the newest row's count
    older = re.search(r'href="(\?cursor=[^"]+)">Older entries', html)
    assert older
    second = api.get("/marketplace/xero/sync" + older.group(1).replace("&amp;", "&")).text
    assert second.count('class="log-row"') == 5 and "Newest" in second

    failed = api.get("/marketplace/xero/sync", params={"status": "failed"}).text
    assert failed.count('class="log-row"') == 1 and "Xero answered 503 Service Unavailable" in failed
    contacts = api.get("/marketplace/xero/sync", params={"entity": "contacts", "direction": "pull"}).text
    assert contacts.count('class="log-row"') == 13


def test_sync_now_explains_what_to_do_when_the_sync_service_is_unreachable(
    api: TestClient, acme: str, settings: Settings
) -> None:
    connect_xero(settings, "acme")
    api.app.state.settings = settings.model_copy(update={"dagster_port": free_port()})  # type: ignore[attr-defined]
    response = post_form(api, "/marketplace/xero/sync", [], page="/marketplace/xero/sync")
    assert response.status_code == 303
    page = api.get(response.headers["location"])
    assert "the service that runs syncs is not reachable right now. Try again in a minute" in page.text


def test_an_expired_connection_offers_reconnect(api: TestClient, acme: str, settings: Settings) -> None:
    connect_xero(settings, "acme")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection = get_connection(session, "acme", "xero")
        assert connection is not None
        connection.status, connection.last_error = "expired", "Xero refused the refresh: invalid_grant"
    html = api.get("/marketplace/xero/sync").text
    assert "Reconnect needed" in html and "Reconnect Xero" in html and ">Sync now<" not in html
    assert "Reconnect to resume syncing" in html


# --- tenants -----------------------------------------------------------------------------------------------


def test_a_tenants_session_never_shows_or_changes_another_tenants_connections(
    api: TestClient, acme: str, settings: Settings
) -> None:
    beta_token = make_tenant(settings, "beta", "Beta Co")
    beta = other_browser(api)
    open_marketplace(beta, beta_token)
    connect_stripe(beta)
    connect_xero(settings, "beta")
    add_logs(settings, "beta", 3)

    html = api.get("/marketplace").text
    assert "Connected (0)" in html and "Acme Ltd" in html and "Beta Co" not in html
    assert api.get("/marketplace/xero/sync").status_code == 404
    assert api.get("/marketplace/stripe/settings").status_code == 404
    # acme's CSRF token is no good in beta's session, and acme's disconnect cannot reach beta's connection.
    refused = beta.post(
        "/marketplace/stripe/disconnect",
        content=f"csrf_token={csrf_of(api.get('/marketplace/stripe').text)}&data=purge",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 403
    mine = post_form(api, "/marketplace/stripe/disconnect", [("data", "purge")], page="/marketplace/stripe")
    assert mine.status_code == 409 and "not connected" in mine.text
    assert "Connected (2)" in beta.get("/marketplace").text


# --- white label ----------------------------------------------------------------------------------------------


def test_branding_is_validated(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    for body in (
        {"colours": {"primary": "blue"}},
        {"logo_url": "http://insecure.example/logo.png"},
        {"logo_url": "data:image/svg+xml;base64,PHN2Zy8+"},
        {"logo_url": "data:image/png;base64," + "A" * 100_000},
        {"favicon": "x"},
    ):
        response = api.put("/api/v1/tenant/branding", json=body, headers=bearer(token))
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "validation_failed"


def test_the_pages_wear_the_tenants_brand_and_can_hide_vrtx(api: TestClient, acme: str) -> None:
    assert "Powered by VRTX" in api.get("/marketplace").text
    body = {
        "name": "Acme Portal",
        "logo_url": "https://cdn.acme.example/logo.png",
        "colours": {"primary": "#FFD700", "background": "#ffffff"},
        "hide_vrtx_branding": True,
    }
    saved = api.put("/api/v1/tenant/branding", json=body, headers=bearer(acme))
    assert saved.status_code == 200 and saved.json()["colours"]["primary"] == "#ffd700"
    html = api.get("/marketplace").text
    assert "Acme Portal" in html and 'src="https://cdn.acme.example/logo.png"' in html
    assert "VRTX" not in html
    css = api.get("/marketplace/theme.css").text
    assert "--brand: " in css and "--brand-contrast: #111827" in css  # dark text on a gold button
    assert "--brand-text: #ffd700" not in css  # gold text on white would be unreadable: darkened


# --- field mappings -----------------------------------------------------------------------------------------


def test_the_mapping_editor_adds_edits_and_deletes_mappings_and_refuses_bad_ones_beside_the_field(
    api: TestClient, acme: str, settings: Settings
) -> None:
    connect_xero(settings, "acme")
    page = "/marketplace/xero/mappings?entity=contacts"
    assert "No mappings yet" in api.get(page).text
    add = [("entity", "contacts"), ("index", ""), ("direction", "pull"), ("transform", "direct"), ("expression", "")]
    saved = post_form(
        api,
        "/marketplace/xero/mappings",
        [*add, ("vrtx_field", "custom_fields.account_no"), ("external_field", "AccountNumber"), ("action", "save")],
        page=page,
    )
    assert saved.status_code == 303
    html = api.get(saved.headers["location"]).text
    assert "Mappings saved (version 1)" in html and html.count('class="mapping-row"') == 1
    stored = api.get("/api/v1/integrations/xero/mappings?entity=contacts", headers=bearer(acme)).json()
    assert stored["entities"]["contacts"]["mappings"][0]["external_field"] == "AccountNumber"

    bad = post_form(
        api,
        "/marketplace/xero/mappings",
        [("entity", "contacts"), ("index", "0"), ("vrtx_field", "custom_fields.account_no"),
         ("external_field", "AccountNumber"), ("direction", "pull"), ("transform", "formula"),
         ("expression", "concat(FirstName, "), ("action", "save")],
        page=page,
    )  # fmt: skip
    assert bad.status_code == 422 and 'class="field-error"' in bad.text and 'value="concat(FirstName,"' in bad.text
    assert (
        api.get("/api/v1/integrations/xero/mappings?entity=contacts", headers=bearer(acme)).json()["entities"][
            "contacts"
        ]["version"]
        == 1
    )

    gone = post_form(api, "/marketplace/xero/mappings", [("entity", "contacts"), ("index", "0"), ("action", "delete")])
    assert gone.status_code == 303 and "No mappings yet" in api.get(gone.headers["location"]).text
