"""Connecting Xero over OAuth, against the Xero sandbox over real HTTP: state, PKCE, organisations,
single-flight refresh with rotation, expiry and revocation."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import callback_path, connect_xero
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.consent import _ConsentForm
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.connect.oauth import ConnectionExpired, access_token
from vrtx_pipelines.credentials.stored import read_credentials, store_credentials
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import OutboundEvent, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope

Xero = tuple[XeroSandbox, ServedApp, str]


def consent(url: str, *, decision: str = "allow", organisations: list[str] | None = None) -> str:
    """Play the user on the sandbox's consent page; returns where it redirects the browser."""
    page = httpx.get(url)
    assert page.status_code == 200, page.text
    form = _ConsentForm()
    form.feed(page.text)
    assert form.action
    chosen = form.organisations if organisations is None else organisations
    data = [*form.fields, *(("tenant_id", o) for o in chosen), ("decision", decision)]
    answer = httpx.post(
        urljoin(str(page.url), form.action),
        content=urlencode(data),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["location"]


def authorise(api: TestClient, token: str) -> str:
    response = api.get("/api/v1/integrations/xero/oauth/url", headers=bearer(token))
    assert response.status_code == 200, response.text
    return str(response.json()["url"])


def connection_row(settings: Settings, tenant_id: str) -> TenantIntegration:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant_id)).one()


def test_connect_flow_stores_encrypted_tokens_and_the_organisation(
    api: TestClient, settings: Settings, xero: Xero
) -> None:
    _sandbox, _served, org = xero
    token = make_tenant(settings, "acme")
    url = authorise(api, token)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert "offline_access" in query["scope"][0].split()
    location = consent(url)
    assert location.startswith(f"{settings.public_url}/api/v1/integrations/xero/oauth/callback?")
    done = api.get(callback_path(location))
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "connected"
    assert body["account"]["external_account_id"] == org
    assert body["account"]["external_account_name"] == "Acme Trading"
    row = connection_row(settings, "acme")
    assert row.credentials is not None and "access_token" not in str(row.credentials)
    tokens = read_credentials(vault_from_settings(settings), row, "xero")
    assert tokens["refresh_token"] and tokens["expires_at"] > time.time() + 1500
    assert tokens["access_token"] not in done.text
    assert api.get("/api/v1/integrations/xero/status", headers=bearer(token)).json()["status"] == "connected"
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        assert [e.event_type for e in session.scalars(select(OutboundEvent))] == ["integration.connected"]


def test_a_state_is_single_use_and_cannot_be_forged(api: TestClient, settings: Settings, xero: Xero) -> None:
    token = make_tenant(settings, "acme")
    location = consent(authorise(api, token))
    assert api.get(callback_path(location)).status_code == 200
    replay = api.get(callback_path(location))
    assert replay.status_code == 400
    assert replay.json()["error"]["code"] == "oauth_state_invalid"
    parts = urlsplit(consent(authorise(api, token)))
    params = parse_qs(parts.query)
    nonce, expires, signature = params["state"][0].split(".", 2)
    forged = {"code": params["code"][0], "state": f"{nonce}.{int(expires) + 3600}.{signature}"}
    response = api.get(f"{parts.path}?{urlencode(forged)}")
    assert response.status_code == 400 and response.json()["error"]["code"] == "oauth_state_invalid"
    garbage = api.get(f"{parts.path}?code=x&state=nothing")
    assert garbage.json()["error"]["code"] == "oauth_state_invalid"


def test_a_state_is_accepted_once_even_when_its_first_callback_fails(
    api: TestClient, settings: Settings, xero: Xero
) -> None:
    """The burn is committed before the token exchange: a callback failing after it (here Xero refuses a wrong
    code) cannot roll it back, so the state cannot be tried again with another code."""
    token = make_tenant(settings, "acme")
    parts = urlsplit(consent(authorise(api, token)))
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    failed = api.get(f"{parts.path}?{urlencode({**params, 'code': 'not-the-code'})}")
    assert failed.status_code == 400 and failed.json()["error"]["code"] != "oauth_state_invalid", failed.text
    for _ in range(2):
        again = api.get(f"{parts.path}?{urlencode(params)}")
        assert again.status_code == 400 and again.json()["error"]["code"] == "oauth_state_invalid"
    assert api.get("/api/v1/integrations/xero/status", headers=bearer(token)).status_code == 404


def test_a_denied_consent_is_reported_and_nothing_is_connected(api: TestClient, settings: Settings, xero: Xero) -> None:
    token = make_tenant(settings, "acme")
    response = api.get(callback_path(consent(authorise(api, token), decision="deny")))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "oauth_denied"
    assert api.get("/api/v1/integrations/xero/status", headers=bearer(token)).status_code == 404


def test_several_organisations_wait_for_the_tenant_to_choose(api: TestClient, settings: Settings, xero: Xero) -> None:
    sandbox, _served, first = xero
    second = sandbox.add_organisation("Acme Holdings", contacts=3, invoices=3, payments=1, items=1)
    token = make_tenant(settings, "acme")
    body = api.get(callback_path(consent(authorise(api, token)))).json()
    assert body["status"] == "pending"
    assert {o["id"] for o in body["organisations"]} == {first, second}
    wrong = api.put("/api/v1/integrations/xero/organisation", json={"organisation_id": "nope"}, headers=bearer(token))
    assert wrong.status_code == 422
    chosen = api.put("/api/v1/integrations/xero/organisation", json={"organisation_id": second}, headers=bearer(token))
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["status"] == "connected"
    assert chosen.json()["account"]["external_account_id"] == second


def test_oauth_connect_is_refused_without_a_configured_app(
    api: TestClient, settings: Settings, xero: Xero, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_tenant(settings, "acme")
    settings.oauth_clients.clear()
    response = api.get("/api/v1/integrations/xero/oauth/url", headers=bearer(token))
    assert response.status_code == 409
    assert "VRTX_OAUTH_CLIENTS" in response.json()["error"]["message"]


def _expire_access_token(settings: Settings, tenant_id: str) -> str:
    """Make the stored access token look expired; returns the refresh token it had."""
    vault = vault_from_settings(settings)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.scalars(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant_id)).one()
        tokens = read_credentials(vault, row, "xero")
        store_credentials(vault, row, "xero", {**tokens, "expires_at": time.time() - 10})
        return str(tokens["refresh_token"])


def test_a_revoked_grant_expires_the_connection_with_an_event(api: TestClient, settings: Settings, xero: Xero) -> None:
    make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    row = connection_row(settings, "acme")
    refresh = _expire_access_token(settings, "acme")
    from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    revoked = httpx.post(
        f"{xero[1].base_url}/connect/revocation",
        data={"token": refresh},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
    )
    assert revoked.status_code == 200
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        with pytest.raises(ConnectionExpired):
            access_token(ctx, row.id)
    after = connection_row(settings, "acme")
    assert after.status == "expired" and "invalid_grant" in (after.last_error or "")
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        events = [e.event_type for e in session.scalars(select(OutboundEvent).order_by(OutboundEvent.id))]
    assert events[-1] == "integration.expired"


def test_disconnect_revokes_the_grant_at_xero(api: TestClient, settings: Settings, xero: Xero) -> None:
    _sandbox, served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    tokens = read_credentials(vault_from_settings(settings), connection_row(settings, "acme"), "xero")
    gone = api.delete("/api/v1/integrations/xero/disconnect", headers=bearer(token))
    assert gone.status_code == 200 and gone.json()["status"] == "disconnected"
    still = httpx.get(
        f"{served.base_url}/api.xro/2.0/Organisation",
        headers={"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": org},
    )
    assert still.status_code in (401, 403)


def test_tenant_discovery_receives_the_callbacks_query_and_the_whole_token_answer(
    api: TestClient, settings: Settings, xero: Xero
) -> None:
    """QuickBooks names the company in the callback (``realmId``), Stripe Connect in the token answer: discovery
    is handed both, beside the access token."""
    import dataclasses

    from providers.base import Grant
    from vrtx_pipelines.connect.oauth import complete_authorization
    from vrtx_pipelines.registry import get_provider

    xero_provider = get_provider("xero")
    discover_xero = xero_provider.discover_tenants
    assert discover_xero is not None
    seen: list[Grant] = []

    def discover(client: httpx.Client, url: Any, grant: Grant) -> Any:
        seen.append(grant)
        return discover_xero(client, url, grant)

    token = make_tenant(settings, "acme")
    params = {k: v[0] for k, v in parse_qs(urlsplit(consent(authorise(api, token))).query).items()}
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        result = complete_authorization(
            ctx, dataclasses.replace(xero_provider, discover_tenants=discover), {**params, "realmId": "9130"}
        )
    assert result.connection.status == "connected"
    (grant,) = seen
    assert grant.callback["realmId"] == "9130" and grant.callback["code"] == params["code"]
    assert grant.token["access_token"] == grant.access_token and grant.token["refresh_token"]
