"""Stripe's pull quirks through the real Dagster assets: incremental by events (deletes included), the 30-day event
retention, zero-decimal money, and Connect OAuth with Stripe-Account."""

from __future__ import annotations

import logging
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.clock import DAY_S
from providers.stripe.mappers import major, minor, mrr, to_invoice, to_subscription
from providers.stripe.sandbox import DEMO_ACCOUNT_ID, DEMO_CONNECTED_ACCOUNT_ID, DEMO_SECRET_KEY, StripeSandbox
from providers.stripe.sandbox.objects import StripeSizes
from tests.flows.harness import consent
from tests.helpers import bearer, make_tenant
from tests.stripe.conftest import Stripe, connect_with_key, records, sync
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import IntegrationSyncLog
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.records.canonical import SubscriptionItem
from vrtx_pipelines.synclog.mirror import mirror_run
from vrtx_pipelines.warehouse import pipeline_for

pytestmark = pytest.mark.dagster
KEY = {"Authorization": f"Bearer {DEMO_SECRET_KEY}"}


def warehouse(settings: Settings, sql: str, tenant: str = "acme") -> list[tuple[object, ...]]:
    with pipeline_for(settings, "stripe", tenant).sql_client() as client:
        return [tuple(row) for row in client.execute_sql(sql)]


def test_events_incremental_applies_each_objects_newest_event_and_deletes_what_stripe_deleted(
    api: TestClient, settings: Settings, stripe: Stripe, instance: DagsterInstance
) -> None:
    token = make_tenant(settings, "acme")
    connect_with_key(api, token)
    first = sync(settings, instance, ["customers", "products"])
    assert first["customers"]["rows_loaded"] == stripe.sandbox.count(DEMO_ACCOUNT_ID, "customers")
    listed = httpx.get(f"{stripe.served.base_url}/v1/customers", params={"limit": 3}, headers=KEY).json()["data"]
    kept, gone = listed[0]["id"], listed[1]["id"]
    base = stripe.served.base_url
    httpx.post(f"{base}/v1/customers/{kept}", data={"email": "first@example.com"}, headers=KEY)
    httpx.post(f"{base}/v1/customers/{kept}", data={"email": "second@example.com"}, headers=KEY)
    assert httpx.delete(f"{base}/v1/customers/{gone}", headers=KEY).status_code == 200
    second = sync(settings, instance, ["customers", "products"])
    assert second["customers"]["rows_loaded"] == 2 and second["products"]["rows_loaded"] == 0  # events, not lists
    assert warehouse(settings, f"SELECT email FROM customers WHERE id = '{kept}'") == [("second@example.com",)]  # noqa: S608
    assert warehouse(settings, f"SELECT count(*) FROM customers WHERE id = '{gone}'") == [(0,)]  # noqa: S608
    canonical = records(api, token, "customers")
    assert canonical[kept]["data"]["email"] == "second@example.com" and not canonical[kept]["deleted"]
    assert canonical[gone]["deleted"] is True
    assert sync(settings, instance, ["customers"])["customers"]["rows_loaded"] == 0  # nothing happened since


def test_an_event_position_older_than_stripes_30_days_means_a_full_sync_and_the_sync_log_says_so(
    api: TestClient, settings: Settings, stripe: Stripe, instance: DagsterInstance, caplog: pytest.LogCaptureFixture
) -> None:
    token = make_tenant(settings, "acme")
    connect_with_key(api, token)
    now = stripe.clock.now
    stripe.clock.now = now - 31 * DAY_S  # the first sync happened 31 days ago, just after a change
    httpx.post(f"{stripe.served.base_url}/v1/customers", data={"name": "Month old"}, headers=KEY)
    sync(settings, instance, ["customers"])
    stripe.clock.now = now
    httpx.post(f"{stripe.served.base_url}/v1/customers", data={"name": "New today"}, headers=KEY)
    with caplog.at_level(logging.WARNING, logger="vrtx.providers.stripe"):
        again = sync(settings, instance, ["customers"])
    assert again["customers"]["rows_loaded"] == stripe.sandbox.count(DEMO_ACCOUNT_ID, "customers")  # listed in full
    assert any("older than Stripe keeps events" in r.getMessage() for r in caplog.records)
    (run,) = instance.get_runs(limit=1)
    mirror_run(instance, run, succeeded=True)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.scalars(select(IntegrationSyncLog).where(IntegrationSyncLog.run_id == run.run_id)).one()
        assert row.sync_type == "full" and row.request_data is not None
        assert "Stripe keeps events for 30 days" in row.request_data["full_sync_reason"]
    names = {r["data"]["name"] for r in records(api, token, "customers").values()}
    assert {"Month old", "New today"} <= names


def test_a_full_sync_after_stripes_30_days_marks_deleted_the_customers_deleted_meanwhile(
    api: TestClient, settings: Settings, stripe: Stripe, instance: DagsterInstance
) -> None:
    token = make_tenant(settings, "acme")
    connect_with_key(api, token)
    now = stripe.clock.now
    stripe.clock.now = now - 31 * DAY_S
    doomed = httpx.post(f"{stripe.served.base_url}/v1/customers", data={"name": "Leaving"}, headers=KEY).json()["id"]
    sync(settings, instance, ["customers"])
    stripe.clock.now = now
    deleted = httpx.delete(f"{stripe.served.base_url}/v1/customers/{doomed}", headers=KEY)
    assert deleted.status_code == 200, deleted.text
    before = records(api, token, "customers")
    assert before[doomed]["deleted"] is False

    again = sync(settings, instance, ["customers"])  # its event position is past Stripe's 30 days: listed in full

    assert again["customers"]["changed"] == 1
    after = records(api, token, "customers")
    assert after[doomed]["deleted"] is True and after[doomed]["data"]["deleted"] is True
    assert {k for k, r in after.items() if not r["deleted"]} == set(before) - {doomed}


def test_a_key_revoked_at_stripe_fails_the_pull_and_marks_the_connection_error(
    api: TestClient, settings: Settings, stripe: Stripe, instance: DagsterInstance
) -> None:
    token = make_tenant(settings, "acme")
    connect_with_key(api, token)
    del stripe.sandbox.keys[DEMO_SECRET_KEY]  # rolled in the Dashboard: Stripe answers 401 from now on

    with pytest.raises(IntegrationError, match="Invalid API Key"):
        sync(settings, instance, ["customers"])

    status = api.get("/api/v1/integrations/stripe/status", headers=bearer(token)).json()
    assert status["status"] == "error"  # a key connection: a new key is needed (a grant would be "expired")
    assert "Invalid API Key" in status["last_error"] and DEMO_SECRET_KEY not in status["last_error"]


def test_zero_decimal_currencies_have_no_minor_unit_and_money_stays_exact() -> None:
    sandbox = StripeSandbox(seed=9)
    yen = sandbox.add_account(
        "Tokyo Tea", currency="jpy", sizes=StripeSizes(customers=4, invoices=3, payments=1, refunds=1)
    )
    pounds = sandbox.add_account(
        "Leeds Tea", currency="gbp", sizes=StripeSizes(customers=4, invoices=3, payments=1, refunds=1)
    )
    for account, exponent in ((yen, 0), (pounds, 2)):
        raw = sandbox.tenants[account].record("invoices", 0)
        raw = {**raw, "lines": raw["lines"]["data"]}
        invoice = to_invoice(raw)
        assert invoice.total == Decimal(raw["total"]).scaleb(-exponent) and invoice.currency == raw["currency"].upper()
        assert sum((line.line_amount or 0 for line in invoice.lines), Decimal(0)) == invoice.total
    assert major(1999, "jpy") == Decimal(1999) and major(1999, "gbp") == Decimal("19.99")
    assert minor(Decimal("19.99"), "gbp") == 1999 and minor(Decimal(1999), "JPY") == 1999
    with pytest.raises(ValueError, match="more decimals"):
        minor(Decimal("19.5"), "jpy")
    yearly = SubscriptionItem(price_id="price_y", unit_amount=12_000, quantity=1, interval="year")
    monthly = SubscriptionItem(price_id="price_m", unit_amount=999, quantity=3, interval="month")
    assert mrr([yearly, monthly]) == 1_000 + 2_997
    subscription = sandbox.tenants[yen].record("subscriptions", 0)
    (item,) = subscription["items"]["data"]
    mapped = to_subscription({**subscription, "items": [item]})
    assert mapped.currency == "JPY" and mapped.items[0].unit_amount == item["price"]["unit_amount"]
    assert mapped.mrr == mrr(mapped.items) > 0


def test_connect_oauth_pulls_the_connected_account_with_stripe_account_and_disconnect_deauthorizes(
    api: TestClient, settings: Settings, stripe: Stripe, instance: DagsterInstance
) -> None:
    token = make_tenant(settings, "acme")
    url = api.get("/api/v1/integrations/stripe/oauth/url", headers=bearer(token)).json()["url"]
    callback = urlsplit(consent(url))
    answer = api.get(f"{callback.path}?{callback.query}")
    assert answer.status_code in (200, 201), answer.text
    status = api.get("/api/v1/integrations/stripe/status", headers=bearer(token)).json()
    assert status["status"] == "connected" and status["account"]["external_account_id"] == DEMO_CONNECTED_ACCOUNT_ID
    sync(settings, instance, ["customers"])
    theirs = {c["id"] for c in stripe.sandbox.tenants[DEMO_CONNECTED_ACCOUNT_ID].listing(
        "customers", {"limit": "100"}, "/v1/customers")["data"]}  # fmt: skip
    assert set(records(api, token, "customers")) == theirs
    assert stripe.sandbox.oauth.connected(DEMO_ACCOUNT_ID, DEMO_CONNECTED_ACCOUNT_ID)
    gone = api.delete("/api/v1/integrations/stripe/disconnect", headers=bearer(token))
    assert gone.status_code == 200, gone.text
    assert not stripe.sandbox.oauth.connected(DEMO_ACCOUNT_ID, DEMO_CONNECTED_ACCOUNT_ID)


def test_the_settings_page_shows_the_account_and_its_mode_for_a_key_or_an_oauth_connection() -> None:
    from api.pages.marketplace import _account

    key = {"external_account_name": "Vrtx Demo Coffee Roasters", "details": {"livemode": False, "mode": "test"}}
    oauth = {"external_account_id": "acct_1", "external_account_name": "Harbour Bikes",
             "organisations": [{"id": "acct_1", "name": "Harbour Bikes", "kind": "live account"}]}  # fmt: skip
    assert _account(key) == "Vrtx Demo Coffee Roasters (test mode)"
    assert _account(oauth) == "Harbour Bikes (live mode)"
    assert _account({"external_account_name": "Acme Ltd"}) == "Acme Ltd"  # providers without modes
