"""The official ``xero-python`` SDK, unchanged, against the Xero sandbox over real HTTP on loopback.

Only the base URLs move: ``AccountingApi``/``IdentityApi`` take ``base_url``, and the token endpoints are
``TokenApi`` class attributes (reference section 1, "SDK"), patched for the refresh and revocation tests.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import HTTPStatusException, NotFoundException, RateLimitException
from xero_python.exceptions.http_status_exceptions import BadRequestException
from xero_python.identity import IdentityApi

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, XeroSandbox, XeroSandboxKnobs, create_app

REDIRECT = "http://localhost:5000/callback"
SCOPES = "openid profile email offline_access accounting.transactions accounting.contacts accounting.settings"
VERIFIER = "sdk-test-verifier-" * 4


class Clock:
    """Starts at real time (the SDK computes expiry with time.time()); tests move it forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Sdk:
    sandbox: XeroSandbox
    knobs: XeroSandboxKnobs
    clock: Clock
    base_url: str
    tenant_id: str
    api_client: ApiClient
    store: dict[str, Any]

    @property
    def accounting(self) -> AccountingApi:
        return AccountingApi(self.api_client, base_url=f"{self.base_url}/api.xro/2.0")

    @property
    def identity(self) -> IdentityApi:
        return IdentityApi(self.api_client, base_url=self.base_url)


def oauth_dance(base_url: str) -> dict[str, Any]:
    """Authorise the demo app as the demo user (consent page, code, PKCE token exchange) with plain HTTP."""
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
    with httpx.Client(base_url=base_url) as http:
        page = http.get(
            "/identity/connect/authorize",
            params={
                "response_type": "code",
                "client_id": DEMO_CLIENT_ID,
                "redirect_uri": REDIRECT,
                "scope": SCOPES,
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
        tenants = [part.split('"')[0] for part in page.text.split('name="tenant_id" value="')[1:]]
        form = [("request_id", request_id), *(("tenant_id", t) for t in tenants), ("decision", "allow")]
        answer = http.post(
            "/identity/connect/authorize/consent",
            content=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        tokens = http.post(
            "/connect/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": VERIFIER,
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
        )
        assert tokens.status_code == 200, tokens.text
        body: dict[str, Any] = tokens.json()
        return body


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sdk]:
    clock = Clock()
    sandbox = XeroSandbox(seed=11, clock=clock)
    tenant_id = sandbox.add_organisation("SDK Trading", contacts=40, invoices=150, payments=30, items=12)
    app = create_app(sandbox)
    with ServedApp(app) as served:
        monkeypatch.setattr(TokenApi, "refresh_token_url", f"{served.base_url}/connect/token")
        monkeypatch.setattr(TokenApi, "revoke_token_url", f"{served.base_url}/connect/revocation")
        token = oauth_dance(served.base_url)
        # What an OAuth library hands the SDK: scope as a list, and when the access token expires.
        token.update(scope=token["scope"].split(), expires_at=time.time() + token["expires_in"])
        store: dict[str, Any] = {"token": token}
        api_client = ApiClient(
            Configuration(oauth2_token=OAuth2Token(client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET)),
            pool_threads=1,
            oauth2_token_getter=lambda: store["token"],
            oauth2_token_saver=lambda new: store.update(token=new),
        )
        yield Sdk(sandbox, app.state.sandbox, clock, served.base_url, tenant_id, api_client, store)


def test_get_connections_lists_the_consented_organisation(sdk: Sdk) -> None:
    (connection,) = sdk.identity.get_connections()

    assert connection.tenant_id == sdk.tenant_id and connection.tenant_type == "ORGANISATION"
    assert connection.tenant_name == "SDK Trading"
    assert isinstance(connection.created_date_utc, datetime) and connection.created_date_utc.tzinfo is not None
    assert abs(connection.created_date_utc.timestamp() - time.time()) < 60


def test_get_invoices_pages_with_line_items_money_and_dates(sdk: Sdk) -> None:
    first = sdk.accounting.get_invoices(sdk.tenant_id, page=1, page_size=100)
    second = sdk.accounting.get_invoices(sdk.tenant_id, page=2, page_size=100)

    assert first.pagination.item_count == 150 and first.pagination.page_count == 2
    assert len(first.invoices) == 100 and len(second.invoices) == 50
    invoice = first.invoices[0]
    assert invoice.invoice_number == "INV-000001" and invoice.type == "ACCREC"
    assert isinstance(invoice.date, date) and isinstance(invoice.due_date, date) and invoice.date <= invoice.due_date
    assert isinstance(invoice.updated_date_utc, datetime) and invoice.updated_date_utc.tzinfo is not None
    assert invoice.currency_code.value == "NZD" and invoice.line_amount_types.value in (
        "Exclusive",
        "Inclusive",
        "NoTax",
    )
    assert len(invoice.line_items) == 3
    for line in invoice.line_items:
        assert isinstance(line.line_amount, Decimal) and line.line_item_id and line.account_code == "200"
    assert sum(line.tax_amount for line in invoice.line_items) == invoice.total_tax
    assert invoice.sub_total + invoice.total_tax == invoice.total
    assert invoice.contact.contact_id and invoice.contact.name

    one = sdk.accounting.get_invoice(sdk.tenant_id, invoice.invoice_id)
    assert one.invoices[0].invoice_id == invoice.invoice_id and len(one.invoices[0].line_items) == 3


def test_get_invoices_filters_with_where_and_if_modified_since(sdk: Sdk) -> None:
    drafts = sdk.accounting.get_invoices(sdk.tenant_id, where='Status=="DRAFT"', page=1)
    assert drafts.invoices and {i.status for i in drafts.invoices} == {"DRAFT"}

    everything = sdk.accounting.get_invoices(sdk.tenant_id, page=1, page_size=1000).invoices
    latest = max(i.updated_date_utc for i in everything)
    assert sdk.accounting.get_invoices(sdk.tenant_id, if_modified_since=latest, page=1).invoices == []
    touched = sdk.sandbox.touch(sdk.tenant_id, "invoices", 3)

    changed = sdk.accounting.get_invoices(sdk.tenant_id, if_modified_since=latest, page=1).invoices

    assert sorted(i.invoice_id for i in changed) == sorted(touched)
    assert all(i.updated_date_utc > latest for i in changed)
    naive_since = datetime(2024, 6, 1)  # the SDK sends it without an offset: read as UTC
    recent = sdk.accounting.get_invoices(sdk.tenant_id, if_modified_since=naive_since, page=1, page_size=1000)
    assert 0 < len(recent.invoices) < 150
    assert all(i.updated_date_utc > naive_since.replace(tzinfo=UTC) for i in recent.invoices)


def test_contacts_payments_items_tax_rates_accounts_and_organisation_parse(sdk: Sdk) -> None:
    contacts = sdk.accounting.get_contacts(sdk.tenant_id, include_archived=True).contacts
    assert len(contacts) == sdk.sandbox.count(sdk.tenant_id, "contacts") == 40
    assert {c.contact_status for c in contacts} <= {"ACTIVE", "ARCHIVED"}
    assert all(c.email_address and c.name and c.phones for c in contacts)

    payments = sdk.accounting.get_payments(sdk.tenant_id, page=1).payments
    assert len(payments) == 30
    payment = payments[0]
    assert isinstance(payment.amount, Decimal) and isinstance(payment.date, date)
    assert payment.invoice.invoice_id and payment.account.code == "090" and payment.status == "AUTHORISED"

    items = sdk.accounting.get_items(sdk.tenant_id).items
    assert len(items) == 12 and all(isinstance(i.sales_details.unit_price, Decimal) for i in items)

    rates = {r.tax_type: r for r in sdk.accounting.get_tax_rates(sdk.tenant_id).tax_rates}
    assert rates["OUTPUT2"].effective_rate == Decimal("15.0") and rates["OUTPUT2"].tax_components[0].name == "GST"

    accounts = {a.code: a for a in sdk.accounting.get_accounts(sdk.tenant_id).accounts}
    assert accounts["200"].name == "Sales" and accounts["200"].type.value == "REVENUE"
    assert accounts["090"].bank_account_type == "BANK"

    (organisation,) = sdk.accounting.get_organisations(sdk.tenant_id).organisations
    assert organisation.name == "SDK Trading" and organisation.organisation_id == sdk.tenant_id
    assert organisation.base_currency.value == "NZD" and isinstance(organisation.created_date_utc, datetime)


def test_expired_access_token_is_refreshed_by_the_sdk_against_the_sandbox(sdk: Sdk) -> None:
    old = dict(sdk.store["token"])
    sdk.clock.offset = 1900  # the sandbox sees the access token expire...
    sdk.store["token"] = {**old, "expires_at": time.time() - 1}  # ...and so does the SDK

    organisations = sdk.accounting.get_organisations(sdk.tenant_id).organisations

    assert organisations[0].organisation_id == sdk.tenant_id
    new = sdk.store["token"]
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert new["scope"] == SCOPES.split()
    assert sdk.sandbox.stats.refresh_requests == 1


def test_429s_raise_rate_limit_exception_once_urllib3_stops_retrying(sdk: Sdk) -> None:
    # xero-python's urllib3 pool retries a 429 that carries Retry-After (as Xero's do) up to three times, sleeping
    # as told: one 429 is absorbed, the fourth in a row reaches the SDK as RateLimitException.
    sdk.knobs.retry_after_s = 0
    sdk.knobs.rate_limit_next = 1
    assert len(sdk.accounting.get_items(sdk.tenant_id).items) == 12
    assert sdk.sandbox.stats.rate_limited_responses == 1

    sdk.knobs.rate_limit_next = 4
    with pytest.raises(RateLimitException) as limited:
        sdk.accounting.get_items(sdk.tenant_id)

    assert limited.value.status == 429 and limited.value.rate_limit == "minute"
    assert limited.value.headers["Retry-After"] == "0" and "X-DayLimit-Remaining" in limited.value.headers
    assert sdk.sandbox.stats.rate_limited_responses == 5 and sdk.knobs.rate_limit_next == 0


def test_not_found_and_bad_request_raise_the_sdks_exceptions(sdk: Sdk) -> None:
    with pytest.raises(NotFoundException):
        sdk.accounting.get_invoice(sdk.tenant_id, "6e1ad3b1-52f9-4c4b-9c53-8f1c5a2b7d10")
    with pytest.raises(BadRequestException) as bad:
        sdk.accounting.get_invoices(sdk.tenant_id, where="NoSuchField==1")
    assert bad.value.error_data["Type"] == "QueryParseException"


def test_revoking_through_the_sdk_ends_access(sdk: Sdk) -> None:
    sdk.api_client.revoke_oauth2_token()

    assert sdk.store["token"]["access_token"] is None
    with pytest.raises(HTTPStatusException) as caught:
        sdk.accounting.get_organisations(sdk.tenant_id)
    assert caught.value.status == 401
