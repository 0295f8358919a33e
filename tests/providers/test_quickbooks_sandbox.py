"""The QuickBooks sandbox's own wire rules, over real HTTP on loopback: what python-quickbooks does not exercise
(tests/providers/test_quickbooks_sdk.py covers what it does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from providers.quickbooks.sandbox import QuickBooksKnobs, QuickBooksSandbox, create_app
from providers.quickbooks.sandbox.records import OFFSET
from providers.quickbooks.webhooks import SIGNATURE_HEADER, parse, sign, verify
from providers.sandbox_kit.clock import ManualClock
from providers.sandbox_kit.serve import ServedApp


@dataclass
class Qbo:
    sandbox: QuickBooksSandbox
    knobs: QuickBooksKnobs
    clock: ManualClock
    base_url: str
    realm: str
    token: str
    http: httpx.Client

    def call(self, method: str, path: str, *, realm: str | None = None, **kwargs: Any) -> httpx.Response:
        params = {"minorversion": "75", **kwargs.pop("params", {})}
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json", **kwargs.pop("headers", {})}
        url = f"{self.base_url}/v3/company/{realm or self.realm}/{path}"
        return self.http.request(method, url, params=params, headers=headers, **kwargs)

    def query(self, statement: str) -> httpx.Response:
        return self.call("GET", "query", params={"query": statement})


@pytest.fixture
def qbo() -> Iterator[Qbo]:
    clock = ManualClock(datetime(2027, 3, 1, tzinfo=OFFSET).timestamp())
    sandbox = QuickBooksSandbox(seed=5, clock=clock)
    realm = sandbox.add_company("Acme Trading", customers=20, invoices=2500, payments=30, items=5)
    knobs = QuickBooksKnobs()
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    with ServedApp(create_app(sandbox, knobs=knobs)) as served, httpx.Client(limits=limits) as http:
        yield Qbo(sandbox, knobs, clock, served.base_url, realm, sandbox.issue_access_token([realm]), http)


def test_query_pages_by_startposition_and_maxresults_up_to_1000(qbo: Qbo) -> None:
    seen: list[str] = []
    start = 1
    while True:
        body = qbo.query(f"SELECT * FROM Invoice ORDERBY Id STARTPOSITION {start} MAXRESULTS 1000").json()  # noqa: S608
        rows = body["QueryResponse"].get("Invoice", [])
        seen += [row["Id"] for row in rows]
        if len(rows) < 1000:
            break
        start += 1000
    assert seen == [str(n) for n in range(1, 2501)]
    assert qbo.query("SELECT COUNT(*) FROM Invoice").json()["QueryResponse"] == {"totalCount": 2500}
    empty = qbo.query("SELECT * FROM Invoice STARTPOSITION 3001 MAXRESULTS 10").json()
    assert empty["QueryResponse"] == {}  # the entity's key is left out of an empty answer
    too_many = qbo.query("SELECT * FROM Invoice MAXRESULTS 1001")
    assert too_many.status_code == 400 and too_many.json()["Fault"]["type"] == "ValidationFault"


def test_inactive_customers_are_listed_only_when_the_query_names_active(qbo: Qbo) -> None:
    qbo.sandbox.deactivate(qbo.realm, "customers", "3")
    default = qbo.query("SELECT * FROM Customer MAXRESULTS 1000").json()["QueryResponse"]["Customer"]
    everyone = qbo.query("SELECT * FROM Customer WHERE Active IN (true, false) MAXRESULTS 1000").json()
    assert "3" not in {c["Id"] for c in default}
    assert {c["Id"] for c in everyone["QueryResponse"]["Customer"]} == {str(n) for n in range(1, 21)}


def test_change_data_capture_lists_changes_and_deletes_and_looks_back_30_days_at_most(qbo: Qbo) -> None:
    since = datetime.fromtimestamp(qbo.clock(), OFFSET).isoformat()
    qbo.clock.advance(60)
    (touched,) = qbo.sandbox.touch(qbo.realm, "customers", 1)
    qbo.sandbox.delete(qbo.realm, "invoices", "7")
    answer = qbo.call("GET", "cdc", params={"entities": "Customer,Invoice", "changedSince": since}).json()
    customers, invoices = answer["CDCResponse"][0]["QueryResponse"]
    assert [c["Id"] for c in customers["Customer"]] == [touched]
    assert invoices["Invoice"] == [
        {"domain": "QBO", "status": "Deleted", "Id": "7", "MetaData": invoices["Invoice"][0]["MetaData"]}
    ]
    assert qbo.query("SELECT * FROM Invoice WHERE Id IN ('7')").json()["QueryResponse"] == {}
    old = (datetime.fromtimestamp(qbo.clock(), OFFSET) - timedelta(days=31)).isoformat()
    refused = qbo.call("GET", "cdc", params={"entities": "Customer", "changedSince": old})
    assert refused.status_code == 400 and refused.json()["Fault"]["Error"][0]["code"] == "4001"


def test_writes_need_the_current_sync_token_and_a_requestid_writes_once(qbo: Qbo) -> None:
    customer = qbo.call("GET", "customer/2").json()["Customer"]
    body = {"Id": "2", "SyncToken": customer["SyncToken"], "sparse": True, "Notes": "first"}
    first = qbo.call("POST", "customer", json=body, params={"requestid": "r-1"})
    again = qbo.call("POST", "customer", json=body, params={"requestid": "r-1"})
    assert first.status_code == again.status_code == 200 and first.json()["Customer"] == again.json()["Customer"]
    assert first.json()["Customer"]["SyncToken"] == str(int(customer["SyncToken"]) + 1)
    stale = qbo.call("POST", "customer", json={**body, "Notes": "second"})
    assert stale.status_code == 400 and stale.json()["Fault"]["Error"][0]["code"] == "5010"
    created = qbo.call(
        "POST", "invoice", params={"requestid": "r-2"},
        json={"CustomerRef": {"value": "2"}, "Line": [{"Amount": 20, "DetailType": "SalesItemLineDetail",
              "SalesItemLineDetail": {"Qty": 2, "UnitPrice": 10, "TaxCodeRef": {"value": "TAX"}}}]},
    )  # fmt: skip
    assert created.json()["Invoice"]["TotalAmt"] == 21.6  # 8% on a TAX line
    before = qbo.sandbox.count(qbo.realm, "invoices")
    replay = qbo.call("POST", "invoice", params={"requestid": "r-2"}, content=created.request.content,
                      headers={"Content-Type": "application/json"})  # fmt: skip
    assert replay.json()["Invoice"]["Id"] == created.json()["Invoice"]["Id"]
    assert qbo.sandbox.count(qbo.realm, "invoices") == before


def test_every_call_needs_minorversion_75_and_a_token_reaching_the_realm(qbo: Qbo) -> None:
    old = qbo.call("GET", "customer/1", params={"minorversion": "65"})
    assert old.status_code == 400 and old.json()["Fault"]["type"] == "ValidationFault"
    other = qbo.sandbox.add_company("Someone Else")
    assert qbo.call("GET", "customer/1", realm=other).status_code == 403
    answer = qbo.call("GET", "customer/1")
    assert answer.status_code == 200 and answer.headers["intuit_tid"]
    expired = httpx.get(f"{qbo.base_url}/v3/company/{qbo.realm}/customer/1", params={"minorversion": "75"},
                        headers={"Authorization": "Bearer expired"})  # fmt: skip
    assert expired.status_code == 401 and expired.json()["fault"]["error"][0]["code"] == "3200"


def test_the_501st_call_in_a_minute_is_throttled_with_fault_003001(qbo: Qbo) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: qbo.call("GET", "customer/1").status_code, range(500)))
    assert statuses.count(200) == 500
    throttled = qbo.call("GET", "customer/1")
    assert throttled.status_code == 429
    assert throttled.json()["Fault"]["Error"][0]["Message"].startswith("message=ThrottleExceeded; errorCode=003001")
    qbo.clock.advance(60)
    assert qbo.call("GET", "customer/1").status_code == 200


def test_the_11th_call_in_flight_is_throttled(qbo: Qbo) -> None:
    qbo.knobs.latency_s = 0.5
    with ThreadPoolExecutor(max_workers=11) as pool:
        statuses = list(pool.map(lambda _: qbo.call("GET", "customer/1").status_code, range(11)))
    assert sorted(statuses) == [200] * 10 + [429]


@pytest.mark.parametrize("shape", ["legacy", "cloudevents"])
def test_every_change_is_sent_signed_with_intuit_signature_in_either_shape(qbo: Qbo, shape: str) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []
    app = FastAPI()

    @app.post("/hook")
    async def receive(request: Request) -> Response:
        received.append((await request.body(), dict(request.headers)))
        return Response(status_code=200)

    qbo.sandbox.webhook_format = shape
    with ServedApp(app) as hook:
        qbo.sandbox.subscribe_webhooks(f"{hook.base_url}/hook", "verifier-token")
        (changed,) = qbo.sandbox.touch(qbo.realm, "customers", 1)
        assert qbo.sandbox.flush_webhooks(10)
    (body, headers) = received[0]
    assert verify(body, headers, "verifier-token") and headers[SIGNATURE_HEADER] == sign(body, "verifier-token")
    assert not verify(body, headers, "another-token")
    payload = json.loads(body)
    assert isinstance(payload, list) == (shape == "cloudevents")
    (event,) = parse(body)
    assert (event.entity, event.external_id, event.external_tenant_id) == ("contacts", changed, qbo.realm)
    assert event.event_type == "customer.update"
