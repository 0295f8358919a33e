"""The official ``python-quickbooks`` with ``intuit-oauth``, unchanged, against the QuickBooks sandbox over real
HTTP on loopback: connect, query, create and update with SyncToken, change data capture, Faults as the SDK's own
exception types, refresh and revocation.

Only the addresses move (reference section 2, "SDKs"): ``AuthClient``'s environment may be a discovery URL, and
``QuickBooks.api_url_v3`` is an attribute set on the instance. oauthlib is told the loopback http is a test.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the SDK's dependencies warn about their own deprecations on import
    from intuitlib.client import AuthClient
    from intuitlib.enums import Scopes
    from intuitlib.exceptions import AuthClientError
    from quickbooks.cdc import change_data_capture
    from quickbooks.client import QuickBooks
    from quickbooks.exceptions import ObjectNotFoundException, QuickbooksException, ValidationException
    from quickbooks.objects.customer import Customer
    from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
    from quickbooks.objects.invoice import Invoice

from providers.quickbooks.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, QuickBooksSandbox, create_app
from providers.quickbooks.sandbox.records import OFFSET
from providers.sandbox_kit.serve import ServedApp
from tests.flows.harness import consent

REDIRECT = "http://127.0.0.1:9/callback"


@dataclass
class Sdk:
    sandbox: QuickBooksSandbox
    app: object
    realm: str
    auth: AuthClient
    qb: QuickBooks


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sdk]:
    # oauthlib (under python-quickbooks' session) refuses plain http unless told it is a local test.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    sandbox = QuickBooksSandbox(seed=11)
    realm = sandbox.add_company("Ada's Analytical Engines", customers=12, invoices=40, payments=10, items=6)
    app = create_app(sandbox)
    with ServedApp(app) as served:
        auth = AuthClient(
            DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, REDIRECT, f"{served.base_url}/.well-known/openid_configuration/"
        )
        callback = parse_qs(urlsplit(consent(auth.get_authorization_url([Scopes.ACCOUNTING]))).query)
        assert callback["realmId"] == [realm]
        auth.get_bearer_token(callback["code"][0], realm_id=callback["realmId"][0])
        qb = QuickBooks(auth_client=auth, refresh_token=auth.refresh_token, company_id=realm, minorversion=75)
        qb.api_url_v3 = f"{served.base_url}/v3"
        yield Sdk(sandbox, app, realm, auth, qb)


def test_the_sdk_connects_and_queries_with_its_own_statements(sdk: Sdk) -> None:
    customers = Customer.all(max_results=1000, qb=sdk.qb)
    active = [i for i in range(12) if sdk.sandbox.tenants[sdk.realm].record("customers", i)["Active"]]
    assert len(customers) == len(active)
    assert Customer.count(qb=sdk.qb) == len(active)
    named = Customer.filter(DisplayName=customers[0].DisplayName, qb=sdk.qb)
    assert [c.Id for c in named] == [customers[0].Id]
    chosen = Invoice.choose(["1", "2", "3"], qb=sdk.qb)
    assert sorted(invoice.Id for invoice in chosen) == ["1", "2", "3"]
    page = Invoice.where("", order_by="Id", start_position=11, max_results=10, qb=sdk.qb)
    assert [invoice.Id for invoice in page] == [str(n) for n in range(11, 21)]


def test_the_sdk_creates_then_updates_with_the_sync_token_and_a_stale_one_is_refused(sdk: Sdk) -> None:
    customer = Customer()
    customer.DisplayName, customer.GivenName = "Ada Lovelace", "Ada"
    saved = customer.save(qb=sdk.qb, request_id="sdk-create-1")
    assert saved.Id and saved.SyncToken == "0"
    copy = Customer.get(saved.Id, qb=sdk.qb)
    saved.FamilyName = "Lovelace"
    updated = saved.save(qb=sdk.qb)
    assert updated.SyncToken == "1" and Customer.get(saved.Id, qb=sdk.qb).FamilyName == "Lovelace"
    copy.FamilyName = "Byron"  # read before the update: its SyncToken is stale now
    # 5010 and 6240 lie outside the SDK's code ranges: its base QuickbooksException, with the code.
    with pytest.raises(QuickbooksException) as stale:
        copy.save(qb=sdk.qb)
    assert stale.value.error_code == 5010 and "Stale Object Error" in stale.value.message
    with pytest.raises(QuickbooksException) as duplicate:
        again = Customer()
        again.DisplayName = "Ada Lovelace"
        again.save(qb=sdk.qb)
    assert duplicate.value.error_code == 6240


def test_the_sdk_creates_an_invoice_with_lines_and_reads_it_back(sdk: Sdk) -> None:
    invoice = Invoice()
    line = SalesItemLine()
    line.Amount, line.Description = 300, "Analytical engine, two"
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.Qty, line.SalesItemLineDetail.UnitPrice = 2, 150
    invoice.Line = [line]
    invoice.CustomerRef = Customer.get("2", qb=sdk.qb).to_ref()
    saved = invoice.save(qb=sdk.qb)
    read = Invoice.get(saved.Id, qb=sdk.qb)
    assert float(read.TotalAmt) == 300.0 and read.Line[0].SalesItemLineDetail.Qty == 2
    read.delete(qb=sdk.qb)
    with pytest.raises(ObjectNotFoundException):
        Invoice.get(saved.Id, qb=sdk.qb)


def test_change_data_capture_through_the_sdk_lists_changes_and_deletes(sdk: Sdk) -> None:
    since = datetime.now(OFFSET) - timedelta(minutes=5)
    (touched,) = sdk.sandbox.touch(sdk.realm, "customers", 1)
    sdk.sandbox.delete(sdk.realm, "invoices", "5")
    changes = change_data_capture([Customer, Invoice], since.strftime("%Y-%m-%dT%H:%M:%S-07:00"), qb=sdk.qb)
    assert [c.Id for c in changes.Customer] == [touched]
    assert [(i.Id, i.status) for i in changes.Invoice] == [("5", "Deleted")]


def test_faults_reach_the_sdk_as_its_exception_types(sdk: Sdk) -> None:
    with pytest.raises(ValidationException) as parse:
        Customer.where("NoSuchField = 'x'", qb=sdk.qb)
    assert parse.value.error_code == 4000
    with pytest.raises(ObjectNotFoundException):
        Customer.get("999", qb=sdk.qb)
    sdk.app.state.sandbox.fault_in_ok_next = 1  # type: ignore[attr-defined]
    with pytest.raises(QuickbooksException) as inside_200:  # a Fault inside HTTP 200 is still a Fault
        Customer.get("1", qb=sdk.qb)
    assert inside_200.value.error_code == 3200


def test_the_sdk_refreshes_to_a_new_refresh_token_and_revokes(sdk: Sdk) -> None:
    first = sdk.auth.refresh_token
    sdk.auth.refresh()
    assert sdk.auth.refresh_token and sdk.auth.refresh_token != first
    assert sdk.auth.x_refresh_token_expires_in == 100 * 86_400
    assert sdk.auth.revoke(token=sdk.auth.refresh_token)
    with pytest.raises(AuthClientError):
        sdk.auth.refresh()
