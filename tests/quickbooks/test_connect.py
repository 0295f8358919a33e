"""Connecting QuickBooks over OAuth against the sandbox: the company is the callback's realmId, named by
companyinfo; a realmId the grant does not reach connects nothing; refreshed tokens are stored as they come back;
disconnecting revokes at Intuit."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.flows.harness import consent
from tests.helpers import bearer, make_tenant
from tests.quickbooks.conftest import Qbo
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.call_ledger import DatabaseLedger
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.connect.oauth import access_token
from vrtx_pipelines.credentials.stored import read_credentials
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope


def callback(api: TestClient, token: str) -> dict[str, str]:
    url = api.get("/api/v1/integrations/quickbooks/oauth/url", headers=bearer(token)).json()["url"]
    assert urlsplit(url).path == "/connect/oauth2" and "com.intuit.quickbooks.accounting" in url
    return {k: v[0] for k, v in parse_qs(urlsplit(consent(url)).query).items()}


def stored(settings: Settings) -> list[TenantIntegration]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = list(session.scalars(select(TenantIntegration)))
        session.expunge_all()
        return rows


def test_the_company_is_the_callbacks_realm_id_named_by_companyinfo(
    api: TestClient, settings: Settings, qbo: Qbo
) -> None:
    token = make_tenant(settings, "acme")
    params = callback(api, token)
    assert params["realmId"] == qbo.realm
    done = api.get(f"/api/v1/integrations/quickbooks/oauth/callback?{urlencode(params)}")
    assert done.status_code == 200, done.text
    account = done.json()["account"]
    assert (account["external_account_id"], account["external_account_name"]) == (qbo.realm, "Acme Trading")


def test_a_realm_id_the_grant_does_not_reach_connects_nothing(api: TestClient, settings: Settings, qbo: Qbo) -> None:
    other = qbo.sandbox.add_company("Someone Else's Books", user_email="someone@else.example")
    token = make_tenant(settings, "acme")
    params = {**callback(api, token), "realmId": other}  # changed on its way back through the browser
    done = api.get(f"/api/v1/integrations/quickbooks/oauth/callback?{urlencode(params)}")
    assert done.status_code in (400, 401, 403), done.text
    assert done.json()["error"]["code"] == "provider_auth_failed"
    assert all(row.status != "connected" for row in stored(settings))


def test_a_refresh_stores_the_new_refresh_token_intuit_answers(api: TestClient, settings: Settings, qbo: Qbo) -> None:
    token = make_tenant(settings, "acme")
    api.get(f"/api/v1/integrations/quickbooks/oauth/callback?{urlencode(callback(api, token))}")
    (row,) = stored(settings)
    vault = vault_from_settings(settings)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        before = read_credentials(vault, session.get_one(TenantIntegration, row.id), "quickbooks")["refresh_token"]
        ctx = ConnectionContext(session=session, vault=vault, settings=settings)
        access_token(ctx, row.id, force=True)
        after = read_credentials(vault, session.get_one(TenantIntegration, row.id), "quickbooks")["refresh_token"]
    assert after and after != before
    assert qbo.sandbox.stats.refresh_requests == 1


def test_disconnecting_revokes_the_grant_at_intuit(api: TestClient, settings: Settings, qbo: Qbo) -> None:
    token = make_tenant(settings, "acme")
    api.get(f"/api/v1/integrations/quickbooks/oauth/callback?{urlencode(callback(api, token))}")
    assert not any(grant.revoked for grant in qbo.sandbox.oauth.grants.values())
    answer = api.delete("/api/v1/integrations/quickbooks/disconnect", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    assert [grant.revoked for grant in qbo.sandbox.oauth.grants.values()] == [True]


def test_the_discoverys_calls_count_in_the_companys_budget_the_first_sync_paces_under(
    api: TestClient, settings: Settings, qbo: Qbo
) -> None:
    token = make_tenant(settings, "acme")
    done = api.get(f"/api/v1/integrations/quickbooks/oauth/callback?{urlencode(callback(api, token))}")
    assert done.status_code == 200, done.text
    metered = qbo.sandbox.stats[qbo.realm].api_calls
    assert metered >= 1  # companyinfo
    seen = DatabaseLedger(engine_for(settings.sqlalchemy_url), "quickbooks", qbo.realm).elsewhere(time.time() - 60)
    assert len(seen) == metered
    other = DatabaseLedger(engine_for(settings.sqlalchemy_url), "quickbooks", "another-realm")
    assert other.elsewhere(time.time() - 60) == []
