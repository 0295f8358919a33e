"""XeroClient (the kit's ApiClient with Xero's hooks, paging as Xero's streams page) against the Xero sandbox served
over real HTTP on loopback, plus Xero's exact error bodies.

Time is faked in the governor and the retry sleeps, and backoff is not jittered: no test waits for real, and the
backoffs are exact.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from providers.base import RateLimit
from providers.errors import ProviderAuthError, ProviderError, ProviderRateLimited, ProviderUnavailable
from providers.kit.governor import DayBudgetExhausted, RateGovernor
from providers.kit.streams import Stream, stream_pages
from providers.sandbox_kit.serve import ServedApp
from providers.xero.client import XeroClient
from providers.xero.sandbox import XeroSandbox, XeroSandboxKnobs, create_app
from providers.xero.source import CHANGED_SINCE, DEFAULT_PAGE_SIZE
from providers.xero.source import pages as xero_pages
from tests.helpers import FakeTime


@dataclass
class Xero:
    sandbox: XeroSandbox
    tenant_id: str
    token: str
    base_url: str
    knobs: XeroSandboxKnobs
    http: httpx.Client
    time: FakeTime

    def client(
        self,
        *,
        governor: RateGovernor | None = None,
        access_token: Callable[[], str] | None = None,
        on_unauthorized: Callable[[], str] | None = None,
        tenant_id: str | None = None,
    ) -> XeroClient:
        return XeroClient(
            self.http,
            base_url=self.base_url,
            tenant_id=tenant_id or self.tenant_id,
            access_token=access_token or (lambda: self.token),
            on_unauthorized=on_unauthorized,
            governor=governor or self.governor(),
            sleep=self.time.sleep,
            jitter=no_jitter,
        )

    def governor(self, limits: tuple[RateLimit, ...] = ()) -> RateGovernor:
        return RateGovernor(limits, max_concurrent=5, clock=self.time.clock, sleep=self.time.sleep)


def serve(
    sandbox: XeroSandbox, tenant_id: str, fake: FakeTime, knobs: XeroSandboxKnobs | None = None
) -> Iterator[Xero]:
    app = create_app(sandbox, knobs=knobs or XeroSandboxKnobs())
    with ServedApp(app) as served, httpx.Client(timeout=10) as http:
        yield Xero(
            sandbox=sandbox,
            tenant_id=tenant_id,
            token=sandbox.issue_access_token([tenant_id]),
            base_url=served.base_url + "/api.xro/2.0",
            knobs=app.state.sandbox,
            http=http,
            time=fake,
        )


@pytest.fixture
def xero() -> Iterator[Xero]:
    # One fake clock for the sandbox's rate-limit windows, the governor and the retry sleeps.
    fake = FakeTime()
    sandbox = XeroSandbox(seed=42, clock=fake.clock)
    tenant_id = sandbox.add_organisation("Acme", contacts=30, invoices=250, lines_per_invoice=3, payments=40, items=10)
    yield from serve(sandbox, tenant_id, fake)


@pytest.fixture
def exact_multiple() -> Iterator[Xero]:
    """200 invoices: with pageSize 100, exactly two full pages."""
    fake = FakeTime()
    sandbox = XeroSandbox(seed=7, clock=fake.clock)
    tenant_id = sandbox.add_organisation("Exact", contacts=5, invoices=200, lines_per_invoice=1, payments=0, items=1)
    yield from serve(sandbox, tenant_id, fake)


def no_jitter(delay: float) -> float:
    return delay


def iter_pages(
    client: XeroClient,
    endpoint: str,
    key: str,
    *,
    params: Mapping[str, str] | None = None,
    modified_since: datetime | None = None,
    paged: bool = True,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Iterator[list[dict[str, Any]]]:
    """One listing of ``endpoint`` through the kit, declared as Xero's streams are (page numbers read ahead,
    If-Modified-Since); pages are counted under the endpoint's name."""
    paginator = (lambda: xero_pages(page_size)) if paged else None
    stream = Stream(
        endpoint,
        path=endpoint,
        records=key,
        primary_key="",
        paginator=paginator,
        params=params or {},
        cursor=CHANGED_SINCE,
    )
    return stream_pages(client, stream, since=modified_since)


def all_records(client: XeroClient, endpoint: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [record for page in iter_pages(client, endpoint, key, **kwargs) for record in page]


# --- paging ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "key", "entity", "paged", "id_key"),
    [
        ("Contacts", "Contacts", "contacts", True, "ContactID"),
        ("Invoices", "Invoices", "invoices", True, "InvoiceID"),
        ("Payments", "Payments", "payments", True, "PaymentID"),
        ("Items", "Items", "items", False, "ItemID"),
        ("Accounts", "Accounts", "accounts", False, "AccountID"),
        ("TaxRates", "TaxRates", "tax_rates", False, "TaxType"),
    ],
)
def test_full_iteration_returns_every_record_once(
    xero: Xero, endpoint: str, key: str, entity: str, paged: bool, id_key: str
) -> None:
    client = xero.client()
    params = {"includeArchived": "true"} if endpoint == "Contacts" else None

    records = all_records(client, endpoint, key, paged=paged, page_size=100, params=params)

    ids = [record[id_key] for record in records]
    assert len(ids) == len(set(ids)) == xero.sandbox.count(xero.tenant_id, entity)


def test_invoices_page_by_page_stop_after_the_short_last_page(xero: Xero) -> None:
    client = xero.client()

    pages = list(iter_pages(client, "Invoices", "Invoices", page_size=100))

    assert [len(page) for page in pages] == [100, 100, 50]
    assert client.pages["Invoices"] == 3 and client.api_calls == 3
    assert all(len(invoice["LineItems"]) == 3 for page in pages for invoice in page)


def test_exact_multiple_of_page_size_ends_after_the_last_full_page(exact_multiple: Xero) -> None:
    client = exact_multiple.client()

    pages = list(iter_pages(client, "Invoices", "Invoices", page_size=100))

    assert [len(page) for page in pages] == [100, 100]
    # pageCount says two pages: no third call for an empty page.
    assert client.api_calls == client.pages["Invoices"] == 2


def test_if_modified_since_fetches_only_touched_and_created_records(xero: Xero) -> None:
    client = xero.client()
    latest = max(i["UpdatedDateUTC"] for i in all_records(client, "Invoices", "Invoices"))
    xero.sandbox.touch(xero.tenant_id, "invoices", 5)
    xero.sandbox.create(xero.tenant_id, "contacts", 3)

    changed_invoices = all_records(client, "Invoices", "Invoices", modified_since=latest)
    changed_contacts = all_records(client, "Contacts", "Contacts", modified_since=latest)

    assert len(changed_invoices) == 5
    assert len(changed_contacts) == 3
    assert all(i["UpdatedDateUTC"] > latest for i in changed_invoices)


# --- auth --------------------------------------------------------------------------------------------------


def test_expired_token_is_refreshed_once_and_the_call_replayed(xero: Xero) -> None:
    issued: list[str] = []

    def refresh() -> str:
        issued.append(xero.sandbox.issue_access_token([xero.tenant_id]))
        return issued[-1]

    client = xero.client(on_unauthorized=refresh)
    pages = iter_pages(client, "Invoices", "Invoices", page_size=100)
    first_page = next(pages)
    xero.knobs.expire_tokens = True  # every token issued so far expires, as after 30 minutes

    rest = [record for page in pages for record in page]
    items = all_records(client, "Items", "Items", paged=False)

    assert len(first_page) + len(rest) == xero.sandbox.count(xero.tenant_id, "invoices")
    assert len(items) == xero.sandbox.count(xero.tenant_id, "items")
    # One refresh: the new token is kept while access_token() still hands out the expired one.
    assert len(issued) == 1 and client.token_refreshes == 1


def test_a_second_401_after_refresh_is_an_auth_error(xero: Xero) -> None:
    client = xero.client(access_token=lambda: "bad", on_unauthorized=lambda: "still-bad")

    with pytest.raises(ProviderAuthError) as caught:
        all_records(client, "Items", "Items", paged=False)

    assert caught.value.status == 401 and client.token_refreshes == 1


def test_401_without_a_refresher_is_an_auth_error(xero: Xero) -> None:
    with pytest.raises(ProviderAuthError):
        all_records(xero.client(access_token=lambda: "bad"), "Items", "Items", paged=False)


def test_organisation_not_authorised_for_the_token_is_an_auth_error(xero: Xero) -> None:
    other = xero.sandbox.add_organisation("Other Org", contacts=1, invoices=0, payments=0, items=0)

    with pytest.raises(ProviderAuthError) as caught:
        all_records(xero.client(tenant_id=other), "Contacts", "Contacts")

    assert caught.value.status == 403


# --- rate limits and failures --------------------------------------------------------------------------------


def test_429_storm_is_waited_out_through_the_governor_and_every_page_arrives(xero: Xero) -> None:
    xero.knobs.rate_limit_next = 4
    xero.knobs.retry_after_s = 7
    governor = xero.governor()
    client = xero.client(governor=governor)

    records = all_records(client, "Invoices", "Invoices", page_size=100)

    assert len(records) == xero.sandbox.count(xero.tenant_id, "invoices")
    assert client.rate_limited == 4 == governor.stats.rate_limited
    assert governor.stats.retry_after_waited_s == 28
    assert sum(xero.time.sleeps) >= 28  # the governor held the calls for Xero's Retry-After, on the fake clock
    assert client.api_calls == 4 + 3


def test_endless_429s_give_up_with_rate_limited(xero: Xero) -> None:
    xero.knobs.rate_limit_next = 1000
    client = xero.client()

    with pytest.raises(ProviderRateLimited):
        all_records(client, "Items", "Items", paged=False)

    assert client.rate_limited == 10


def test_5xx_on_a_middle_page_is_retried_and_the_pull_completes(xero: Xero) -> None:
    xero.knobs.fail_on_page = 2
    xero.knobs.fail_on_page_status = 503
    xero.knobs.fail_on_page_times = 2
    client = xero.client()

    records = all_records(client, "Invoices", "Invoices", page_size=100)

    ids = {record["InvoiceID"] for record in records}
    assert len(records) == len(ids) == xero.sandbox.count(xero.tenant_id, "invoices")
    assert client.retries == 2 and xero.time.sleeps == [0.5, 1.0]  # exponential backoff, on the fake clock
    assert client.pages["Invoices"] == 3


def test_persistent_5xx_becomes_provider_unavailable(xero: Xero) -> None:
    xero.knobs.fail_on_page = 1
    xero.knobs.fail_on_page_status = 500
    xero.knobs.fail_on_page_times = 100
    client = xero.client()

    with pytest.raises(ProviderUnavailable) as caught:
        all_records(client, "Invoices", "Invoices", page_size=100)

    assert caught.value.status == 500 and client.api_calls == 4


def test_spent_day_budget_stops_with_day_budget_exhausted_without_another_call(xero: Xero) -> None:
    xero.knobs.day_limit = 2
    client = xero.client()
    pages = iter_pages(client, "Invoices", "Invoices", page_size=50)

    # The second answer says the day is spent (X-DayLimit-Remaining: 0): its page still arrives...
    assert [len(next(pages)), len(next(pages))] == [50, 50]
    # ...and the third call is refused here, not sent to be answered 429.
    with pytest.raises(DayBudgetExhausted):
        next(pages)
    with pytest.raises(DayBudgetExhausted):
        client.get("Organisation")

    assert client.api_calls == 2 and xero.sandbox.stats.api_calls == 2


def test_day_limit_429_from_xero_raises_day_budget_exhausted(xero: Xero) -> None:
    xero.knobs.day_limit = 1
    other = xero.client()  # another process of this connection spent the budget
    assert all_records(other, "Items", "Items", paged=False)

    with pytest.raises(DayBudgetExhausted) as caught:
        all_records(xero.client(), "Contacts", "Contacts")

    assert caught.value.retry_after is not None and caught.value.retry_after > 0


def test_governor_paces_calls_under_a_small_minute_limit(xero: Xero) -> None:
    xero.knobs.minute_limit = 2  # the sandbox enforces it too, on the same fake clock
    governor = xero.governor((RateLimit(2, 60, "tenant"),))
    client = xero.client(governor=governor)

    records = all_records(client, "Invoices", "Invoices", page_size=50)

    assert len(records) == xero.sandbox.count(xero.tenant_id, "invoices")
    # Five pages, two calls a minute: the third and fifth calls waited for the window to roll.
    assert client.api_calls == 5 and client.rate_limited == 0
    assert governor.stats.waits == 2 and xero.time.sleeps == [60.0, 60.0]
    assert xero.sandbox.stats.rate_limited_responses == 0


def test_minute_budget_from_headers_paces_without_a_single_429(xero: Xero) -> None:
    xero.knobs.minute_limit = 2
    governor = xero.governor()  # no paced windows: only X-MinLimit-Remaining says when to stop
    client = xero.client(governor=governor)

    records = all_records(client, "Invoices", "Invoices", page_size=50)

    assert len(records) == xero.sandbox.count(xero.tenant_id, "invoices")
    assert client.rate_limited == 0 and xero.sandbox.stats.rate_limited_responses == 0
    assert governor.stats.waits == 2 and sum(xero.time.sleeps) >= 120


def test_transport_errors_are_retried_then_unavailable() -> None:
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(str(request.url))
        raise httpx.ConnectError("connection refused", request=request)

    fake = FakeTime()
    with httpx.Client(transport=httpx.MockTransport(refuse)) as http:
        client = XeroClient(
            http,
            base_url="https://api.xero.com/api.xro/2.0",
            tenant_id="t",
            access_token=lambda: "token",
            governor=RateGovernor(clock=fake.clock, sleep=fake.sleep),
            sleep=fake.sleep,
            jitter=no_jitter,
        )
        with pytest.raises(ProviderUnavailable, match="ConnectError"):
            client.get("Organisation")

    assert len(attempts) == 4 and fake.sleeps == [0.5, 1.0, 2.0]


# --- Xero's error bodies, exactly as documented --------------------------------------------------------------


@dataclass
class Canned:
    client: XeroClient
    governor: RateGovernor
    requests: list[httpx.Request]


def canned(status: int, body: Any, headers: dict[str, str] | None = None) -> Canned:
    """A client whose every call gets the same answer (no network at all)."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body, headers=headers)

    fake = FakeTime()
    governor = RateGovernor(clock=fake.clock, sleep=fake.sleep)
    client = XeroClient(
        httpx.Client(transport=httpx.MockTransport(answer)),
        base_url="https://api.xero.com/api.xro/2.0/",
        tenant_id="tenant-1",
        access_token=lambda: "token-1",
        governor=governor,
        sleep=fake.sleep,
    )
    return Canned(client, governor, seen)


def test_validation_exception_carries_xeros_messages() -> None:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [
            {"Name": "Foobar", "ValidationErrors": [{"Message": "Please enter a unique Name."}]},
            {"Name": "Foobar", "ValidationErrors": [{"Message": "Please enter a unique Name."}, {"Message": "Bad"}]},
        ],
    }
    with pytest.raises(ProviderError) as caught:
        canned(400, body).client.get("Accounts")

    assert type(caught.value) is ProviderError
    assert caught.value.message == "Please enter a unique Name.; Bad"
    assert (caught.value.status, caught.value.provider_code) == (400, "ValidationException")


def test_not_found_is_a_provider_error_with_status_404() -> None:
    body = {
        "ErrorNumber": 404,
        "Type": "NotFoundException",
        "Message": "The resource you're looking for cannot be found",
    }

    with pytest.raises(ProviderError) as caught:
        canned(404, body).client.get("Invoices/00000000-0000-0000-0000-000000000000")

    assert type(caught.value) is ProviderError and caught.value.status == 404
    assert caught.value.message == "The resource you're looking for cannot be found"


def test_forbidden_is_an_auth_error() -> None:
    body = {"Type": None, "Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"}

    with pytest.raises(ProviderAuthError) as caught:
        canned(403, body).client.get("Contacts")

    assert caught.value.status == 403 and "AuthenticationUnsuccessful" in caught.value.message


def test_day_limit_429_raises_at_once_without_waiting() -> None:
    xero = canned(429, {}, {"Retry-After": "3600", "X-Rate-Limit-Problem": "day"})

    with pytest.raises(DayBudgetExhausted) as caught:
        xero.client.get("Contacts")

    assert caught.value.retry_after == 3600 and len(xero.requests) == 1


def test_every_call_sends_token_tenant_accept_and_if_modified_since_and_feeds_the_governor() -> None:
    xero = canned(
        200,
        {"Invoices": [{"InvoiceID": "a"}], "pagination": {"page": 1, "pageSize": 1000, "pageCount": 1}},
        {"X-MinLimit-Remaining": "0", "X-DayLimit-Remaining": "4000"},
    )
    since = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

    pages = list(
        iter_pages(xero.client, "Invoices", "Invoices", params={"order": "UpdatedDateUTC ASC"}, modified_since=since)
    )

    assert pages == [[{"InvoiceID": "a"}]]
    (request,) = xero.requests
    assert request.headers["Authorization"] == "Bearer token-1"
    assert request.headers["xero-tenant-id"] == "tenant-1"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["If-Modified-Since"] == "2024-01-02T03:04:05.678+00:00"
    assert request.url.path == "/api.xro/2.0/Invoices"
    assert dict(request.url.params) == {"order": "UpdatedDateUTC ASC", "page": "1", "pageSize": "1000"}
    # X-MinLimit-Remaining: 0 pauses the governor: the next call waits.
    xero.client.get("Organisation")
    assert xero.governor.stats.waits == 1


def test_an_answer_without_the_expected_list_is_an_error_not_an_empty_pull() -> None:
    xero = canned(200, {"Id": "x", "Status": "OK", "Invoice": []})

    with pytest.raises(ProviderError, match="no Invoices list"):
        list(iter_pages(xero.client, "Invoices", "Invoices"))


def test_a_2xx_that_is_not_json_is_an_error() -> None:
    client = XeroClient(
        httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, text="<Response/>"))),
        base_url="https://api.xero.com/api.xro/2.0",
        tenant_id="t",
        access_token=lambda: "token",
        governor=RateGovernor(),
    )

    with pytest.raises(ProviderError, match="without a JSON object"):
        client.get("Invoices")


def test_without_a_pagination_block_a_short_page_is_the_last() -> None:
    pages = {"1": [{"ContactID": "a"}, {"ContactID": "b"}], "2": [{"ContactID": "c"}]}
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["page"])
        return httpx.Response(200, json={"Contacts": pages.get(request.url.params["page"], [])})

    client = XeroClient(
        httpx.Client(transport=httpx.MockTransport(answer)),
        base_url="https://api.xero.com/api.xro/2.0",
        tenant_id="t",
        access_token=lambda: "token",
        governor=RateGovernor(),
    )

    assert list(iter_pages(client, "Contacts", "Contacts", page_size=2)) == [pages["1"], pages["2"]]
    assert asked == ["1", "2"]


def _paged_client(answer: Callable[[httpx.Request], httpx.Response]) -> XeroClient:
    return XeroClient(
        httpx.Client(transport=httpx.MockTransport(answer)),
        base_url="https://api.xero.com/api.xro/2.0",
        tenant_id="t",
        access_token=lambda: "token",
        governor=RateGovernor(),
    )


def _invoices_page(page: int, page_count: int, ids: list[str]) -> httpx.Response:
    pagination = {"page": page, "pageSize": 2, "pageCount": page_count, "itemCount": len(ids)}
    return httpx.Response(200, json={"pagination": pagination, "Invoices": [{"InvoiceID": i} for i in ids]})


def test_a_page_xero_said_exists_is_asked_for_before_the_pull_reads_the_one_before() -> None:
    asked: list[int] = []
    third_asked = threading.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        asked.append(page)
        if page == 3:
            third_asked.set()
        return _invoices_page(page, 3, {1: ["a", "b"], 2: ["c", "d"], 3: ["e"]}[page])

    pages = iter_pages(_paged_client(answer), "Invoices", "Invoices", page_size=2)
    assert next(pages) == [{"InvoiceID": "a"}, {"InvoiceID": "b"}]
    assert next(pages) == [{"InvoiceID": "c"}, {"InvoiceID": "d"}]
    # Page 3 is on its way while the pull still holds page 2 (page 1 alone told nothing of the total).
    assert third_asked.wait(timeout=5)
    assert list(pages) == [[{"InvoiceID": "e"}]]
    assert asked == [1, 2, 3]


def test_a_page_asked_for_ahead_ends_the_pull_when_the_total_shrank_meanwhile() -> None:
    # Page 1 says three pages; by page 2 a record is gone and Xero says two: page 3, already asked for, is empty.
    answers = {1: (3, ["a", "b"]), 2: (2, ["c", "d"]), 3: (2, [])}
    asked: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        asked.append(page)
        return _invoices_page(page, *answers[page])

    client = _paged_client(answer)

    assert [[r["InvoiceID"] for r in page] for page in iter_pages(client, "Invoices", "Invoices", page_size=2)] == [
        ["a", "b"],
        ["c", "d"],
    ]
    assert asked == [1, 2, 3]
    assert client.api_calls == 3


def test_pages_added_while_paging_are_read_to_the_new_end() -> None:
    # Page 1 says two pages; records changed meanwhile move to the end (oldest change first): page 2 says three.
    answers = {1: (2, ["a", "b"]), 2: (3, ["c", "d"]), 3: (3, ["a"])}
    asked: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        asked.append(page)
        return _invoices_page(page, *answers[page])

    pages = list(iter_pages(_paged_client(answer), "Invoices", "Invoices", page_size=2))

    assert [[r["InvoiceID"] for r in page] for page in pages] == [["a", "b"], ["c", "d"], ["a"]]
    assert asked == [1, 2, 3]


def test_an_error_on_a_page_asked_for_ahead_reaches_the_pull_after_the_pages_before_it() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        if page == 3:
            return httpx.Response(404, json={"Type": "NotFound", "Message": "gone"})
        return _invoices_page(page, 3, {1: ["a", "b"], 2: ["c", "d"]}[page])

    pages = iter_pages(_paged_client(answer), "Invoices", "Invoices", page_size=2)

    assert len(next(pages)) == 2 and len(next(pages)) == 2
    with pytest.raises(ProviderError) as raised:
        next(pages)
    assert raised.value.status == 404
