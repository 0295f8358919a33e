"""Xero webhooks: the sandbox sends signed events on every change (API writes and test helpers) to a real receiver on
loopback, retries failed deliveries, runs Xero's intent-to-receive; ``WEBHOOKS`` verifies and parses them."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.base import WebhookProof
from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import XeroSandbox, create_app
from providers.xero.webhooks import WEBHOOKS, parse, sign, verify
from vrtx_pipelines.webhooks.inbox import event_identity

KEY = "webhook-key-" + "k" * 52


@dataclass
class Receiver:
    """A webhook endpoint that checks signatures with ``WEBHOOKS.verify`` and can fail its first N deliveries."""

    fail_first: int = 0
    always_ok: bool = False
    chatty: bool = False  # refuses with a JSON body and a cookie, which Xero's rules forbid
    bodies: list[bytes] = field(default_factory=list)
    signatures_ok: list[bool] = field(default_factory=list)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            good = WEBHOOKS.verify(body, {k.lower(): v for k, v in request.headers.items()}, WebhookProof(KEY))
            with self.lock:
                self.calls += 1
                if self.calls <= self.fail_first:
                    return Response(status_code=503)
                self.signatures_ok.append(good)
                if good:
                    self.bodies.append(body)
            if self.chatty and not good:
                answer = JSONResponse({"error": "bad signature"}, status_code=401)
                answer.set_cookie("session", "s1")
                return answer
            return Response(status_code=200 if good or self.always_ok else 401)

        return app

    def events(self) -> list[dict[str, str]]:
        return [event for body in self.bodies for event in json.loads(body)["events"]]


@pytest.fixture
def xero() -> Iterator[tuple[XeroSandbox, str, httpx.Client]]:
    sandbox = XeroSandbox(seed=3)
    tenant_id = sandbox.add_organisation("Hooked Ltd", contacts=10, invoices=20, payments=5, items=3)
    with ServedApp(create_app(sandbox)) as served, httpx.Client(base_url=served.base_url, timeout=10) as http:
        http.headers.update(
            {
                "Authorization": f"Bearer {sandbox.issue_access_token([tenant_id])}",
                "xero-tenant-id": tenant_id,
                "Accept": "application/json",
            }
        )
        yield sandbox, tenant_id, http
    sandbox.webhooks.close()


def serve(receiver: Receiver) -> ServedApp:
    return ServedApp(receiver.app())


def test_api_writes_send_signed_create_and_update_events(xero: tuple[XeroSandbox, str, httpx.Client]) -> None:
    sandbox, tenant_id, http = xero
    receiver = Receiver()
    with serve(receiver) as endpoint:
        sandbox.subscribe_webhooks(f"{endpoint.base_url}/hook", KEY)
        created = http.put("/api.xro/2.0/Contacts", json={"Contacts": [{"Name": "Webhook Co"}]}).json()
        contact_id = created["Contacts"][0]["ContactID"]
        http.post(f"/api.xro/2.0/Contacts/{contact_id}", json={"Contacts": [{"EmailAddress": "a@b.example.com"}]})
        assert sandbox.flush_webhooks()

    events = receiver.events()
    assert all(receiver.signatures_ok) and receiver.signatures_ok
    assert [(e["eventCategory"], e["eventType"], e["resourceId"]) for e in events] == [
        ("CONTACT", "CREATE", contact_id),
        ("CONTACT", "UPDATE", contact_id),
    ]
    first = events[0]
    assert first["tenantId"] == tenant_id and first["tenantType"] == "ORGANISATION"
    assert first["resourceUrl"] == f"https://api.xero.com/api.xro/2.0/Contacts/{contact_id}"
    payload = json.loads(receiver.bodies[0])
    assert payload["firstEventSequence"] >= 1 and payload["entropy"]


def test_simulated_edits_and_payments_send_invoice_events(xero: tuple[XeroSandbox, str, httpx.Client]) -> None:
    sandbox, tenant_id, _ = xero
    receiver = Receiver()
    with serve(receiver) as endpoint:
        sandbox.subscribe_webhooks(f"{endpoint.base_url}/hook", KEY, tenants=[tenant_id])
        other = sandbox.add_organisation("Not Subscribed Ltd", contacts=3, invoices=3, payments=0, items=1)
        touched = sandbox.touch(tenant_id, "invoices", 2)
        sandbox.create(tenant_id, "payments", 1)
        sandbox.touch(tenant_id, "items", 1)  # items raise no events in Xero
        sandbox.touch(other, "contacts", 1)
        assert sandbox.flush_webhooks()

    events = receiver.events()
    assert {e["tenantId"] for e in events} == {tenant_id}
    assert {e["eventCategory"] for e in events} == {"INVOICE"}
    assert set(touched) <= {e["resourceId"] for e in events if e["eventType"] == "UPDATE"}
    assert len(events) >= 3  # the two touched invoices and the one the payment paid


def test_failed_deliveries_are_retried_then_counted_never_raised(xero: tuple[XeroSandbox, str, httpx.Client]) -> None:
    sandbox, tenant_id, http = xero
    sandbox.webhooks.backoff_s = 0.01
    flaky = Receiver(fail_first=2)
    with serve(flaky) as endpoint:
        subscription = sandbox.subscribe_webhooks(f"{endpoint.base_url}/hook", KEY)
        sandbox.touch(tenant_id, "contacts", 1)
        assert sandbox.flush_webhooks()
        sandbox.unsubscribe_webhooks(subscription)
    assert flaky.calls == 3 and len(flaky.events()) == 1 and subscription.delivered == 1

    dead = sandbox.subscribe_webhooks("http://127.0.0.1:9/hook", KEY)  # nothing listens on the discard port
    answer = http.put("/api.xro/2.0/Contacts", json={"Contacts": [{"Name": "Still Saved"}]})
    assert answer.status_code == 200
    assert sandbox.flush_webhooks()
    assert dead.failed == 1 and sandbox.webhooks.stats.failed >= 1


def test_intent_to_receive_passes_only_an_endpoint_that_checks_signatures_and_answers_bare() -> None:
    with serve(Receiver()) as good, serve(Receiver(always_ok=True)) as careless, serve(Receiver(chatty=True)) as chatty:
        passed = XeroSandbox.intent_to_receive(f"{good.base_url}/hook", KEY)
        failed = XeroSandbox.intent_to_receive(f"{careless.base_url}/hook", KEY)
        talkative = XeroSandbox.intent_to_receive(f"{chatty.base_url}/hook", KEY)

    assert passed.passed and passed.signed_status == 200 and passed.forged_status == 401
    assert passed.bare_answers and passed.slowest_s < 5
    assert not failed.passed and failed.forged_status == 200
    assert not talkative.passed and talkative.forged_status == 401 and not talkative.bare_answers


# --- WEBHOOKS.verify / parse ---------------------------------------------------------------------------------


def body_of(*events: dict[str, str]) -> bytes:
    payload = {"events": list(events), "firstEventSequence": 1, "lastEventSequence": len(events), "entropy": "ABC"}
    return json.dumps(payload).encode()


EVENT = {
    "resourceUrl": "https://api.xero.com/api.xro/2.0/Invoices/0b6a9a5e-1f6b-4b5e-9d1e-6f7a8b9c0d1e",
    "resourceId": "0b6a9a5e-1f6b-4b5e-9d1e-6f7a8b9c0d1e",
    "eventDateUtc": "2026-06-21T01:15:39.902",
    "eventType": "UPDATE",
    "eventCategory": "INVOICE",
    "tenantId": "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f",
    "tenantType": "ORGANISATION",
}


def test_verify_accepts_the_right_signature_only() -> None:
    body = body_of(EVENT)
    good = sign(body, KEY)

    assert verify(body, {"x-xero-signature": good}, KEY)
    assert not verify(body + b" ", {"x-xero-signature": good}, KEY)  # the raw bytes are what is signed
    assert not verify(body, {"x-xero-signature": sign(body, "another-key")}, KEY)
    assert not verify(body, {}, KEY)
    assert not verify(body, {"x-xero-signature": "not base64!"}, KEY)
    assert not verify(body, {"x-xero-signature": base64.b64encode(b"short").decode()}, KEY)
    assert not verify(body, {"x-xero-signature": good}, "")


def test_parse_gives_what_identifies_an_event_pull_entities_and_event_times() -> None:
    contact_event = {**EVENT, "eventCategory": "CONTACT", "eventType": "CREATE"}
    (invoice, contact) = parse(body_of(EVENT, contact_event))
    (again,) = parse(body_of({**EVENT, "eventDateUtc": EVENT["eventDateUtc"] + "Z"}))

    assert invoice.event_id is None  # Xero sends none: the core dedupes on what the event is about
    assert event_identity(invoice) == event_identity(again) != event_identity(contact)
    assert (invoice.entity, invoice.event_type) == ("invoices", "invoice.update")
    assert (contact.entity, contact.event_type) == ("contacts", "contact.create")
    assert invoice.external_id == EVENT["resourceId"] and invoice.external_tenant_id == EVENT["tenantId"]
    assert invoice.occurred_at == datetime(2026, 6, 21, 1, 15, 39, 902000, tzinfo=UTC)
    assert parse(body_of()) == []  # intent to receive
    assert parse(body_of({**EVENT, "eventCategory": "CREDITNOTE"}))[0].entity is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"events": {}}',
        body_of({**EVENT, "resourceId": ""}),
        body_of({**EVENT, "eventDateUtc": "soon"}),
    ],
)
def test_parse_refuses_malformed_bodies(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse(body)


def test_sandbox_signatures_verify_with_the_provider_verifier(xero: tuple[XeroSandbox, str, httpx.Client]) -> None:
    sandbox, tenant_id, _ = xero
    receiver = Receiver()
    with serve(receiver) as endpoint:
        sandbox.subscribe_webhooks(f"{endpoint.base_url}/hook", KEY)
        (contact_id,) = sandbox.create(tenant_id, "contacts", 1)
        assert sandbox.flush_webhooks()
    (event,) = [e for body in receiver.bodies for e in parse(body)]
    assert event.external_id == contact_id and event.entity == "contacts" and event.event_type == "contact.create"
    assert abs((datetime.now(UTC) - event.occurred_at).total_seconds()) < WEBHOOKS.tolerance_s  # type: ignore[operator]
