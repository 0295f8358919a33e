"""Events delivered to the tenant's callback: a real HTTP receiver on loopback, signed bodies, retries with
backoff, redelivery, safe claiming by concurrent workers, and tenants kept apart."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import build_sensor_context
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import bearer, make_tenant
from vrtx_pipelines.config import Environment, Settings, reset_settings_cache
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import OutboundEvent, utcnow
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.events.delivery import DeliveryPolicy, deliver_due_events, verify_signature
from vrtx_pipelines.events.record import EventType, record_event
from vrtx_pipelines.orchestration.events import event_delivery_sensor


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The receiver below listens on loopback: these tests allow private callbacks explicitly, as `vrtx dev` does
    (tests/test_outbound_guard.py covers the refusals)."""
    monkeypatch.setenv("VRTX_ALLOW_PRIVATE_CALLBACKS", "true")  # for the sensor, which reads its own settings
    reset_settings_cache()
    return settings.model_copy(update={"allow_private_callbacks": True})


@dataclass
class Receiver:
    """The CRM's endpoint: answers with the scripted statuses in turn (then 200), keeps what it got."""

    script: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = state.script.pop(0) if state.script else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/vrtx/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def set_callback(api: TestClient, token: str, url: str) -> str:
    response = api.put("/api/v1/events/callback", json={"url": url}, headers=bearer(token))
    assert response.status_code == 200, response.text
    secret: str = response.json()["secret"]
    return secret


def add_event(settings: Settings, tenant: str, event_type: EventType = EventType.SYNC_COMPLETED) -> int:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        event = record_event(session, tenant, event_type, "xero", {"run_id": "r1", "entities": {"contacts": {}}})
        session.flush()
        return event.id


def event_row(settings: Settings, event_id: int) -> OutboundEvent:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return session.get_one(OutboundEvent, event_id)


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def deliver(settings: Settings, clock: Clock, policy: DeliveryPolicy | None = None) -> None:
    deliver_due_events(
        vault_from_settings(settings), engine=engine_for(settings.sqlalchemy_url), policy=policy, now=clock
    )


def test_an_event_refused_twice_is_delivered_on_the_third_attempt_signed_for_the_receiver_to_verify(
    api: TestClient, settings: Settings, receiver: Receiver
) -> None:
    token = make_tenant(settings, "acme")
    secret = set_callback(api, token, receiver.url)
    event_id = add_event(settings, "acme")
    receiver.script = [500, 503]
    clock = Clock()

    deliver(settings, clock)
    first = event_row(settings, event_id)
    assert (first.status, first.attempts, first.last_status_code) == ("retrying", 1, 500)
    assert first.next_attempt_at is not None and first.next_attempt_at > clock.now
    deliver(settings, clock)  # not due yet: nothing is sent
    assert len(receiver.received) == 1
    clock.now = first.next_attempt_at
    deliver(settings, clock)
    second = event_row(settings, event_id)
    assert (second.status, second.attempts, second.last_status_code) == ("retrying", 2, 503)
    assert second.next_attempt_at is not None
    assert second.next_attempt_at - clock.now >= timedelta(seconds=DeliveryPolicy().base_delay_s)  # backs off
    clock.now = second.next_attempt_at
    deliver(settings, clock)

    done = event_row(settings, event_id)
    assert (done.status, done.attempts, done.last_status_code, done.last_error) == ("delivered", 3, 200, None)
    assert len(receiver.received) == 3
    for headers, body in receiver.received:
        assert headers["x-vrtx-event-id"] == str(event_id)
        assert headers["x-vrtx-signature"].startswith(f"t={headers['x-vrtx-timestamp']},v1=")
        assert verify_signature(secret, headers["x-vrtx-signature"], body)
        assert not verify_signature("whsec_not_the_secret_at_all", headers["x-vrtx-signature"], body)
        assert not verify_signature(secret, headers["x-vrtx-signature"], body.replace(b"r1", b"r2"))
        payload = json.loads(body)
        assert payload["id"] == event_id and payload["type"] == "sync.completed"
        assert payload["integration"] == "xero" and payload["data"]["run_id"] == "r1" and payload["created_at"]

    listed = api.get("/api/v1/events", headers=bearer(token)).json()["events"]
    assert listed[0]["id"] == event_id
    assert listed[0]["delivery"] | {"delivered_at": None} == {
        "status": "delivered",
        "attempts": 3,
        "next_attempt_at": None,
        "delivered_at": None,
        "last_error": None,
        "last_status_code": 200,
    }

    again = api.post(f"/api/v1/events/{event_id}/redeliver", headers=bearer(token))
    assert again.status_code == 202 and again.json()["delivery"]["status"] == "pending"
    deliver(settings, clock)
    assert len(receiver.received) == 4 and event_row(settings, event_id).status == "delivered"


def test_delivery_gives_up_after_the_last_attempt_and_says_why(
    api: TestClient, settings: Settings, receiver: Receiver
) -> None:
    token = make_tenant(settings, "acme")
    set_callback(api, token, receiver.url)
    event_id = add_event(settings, "acme")
    receiver.script = [500] * 10
    clock, policy = Clock(), DeliveryPolicy(max_attempts=3)
    for _ in range(3):
        deliver(settings, clock, policy)
        row = event_row(settings, event_id)
        clock.now = row.next_attempt_at or clock.now
    failed = event_row(settings, event_id)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 3, None)
    assert failed.last_error == "the callback answered HTTP 500"
    deliver(settings, clock, policy)
    assert len(receiver.received) == 3


def test_an_unreachable_callback_is_retried_with_an_error_that_does_not_leak_the_url(
    api: TestClient, settings: Settings
) -> None:
    token = make_tenant(settings, "acme")
    set_callback(api, token, "http://127.0.0.1:9/hook?key=s3cr3t")  # the discard port: nothing listens
    event_id = add_event(settings, "acme")
    deliver(settings, Clock())
    row = event_row(settings, event_id)
    assert row.status == "retrying" and row.last_status_code is None
    assert row.last_error and "could not reach" in row.last_error and "s3cr3t" not in row.last_error


def test_events_of_a_tenant_without_a_callback_are_stored_and_visible_but_not_sent(
    api: TestClient, settings: Settings
) -> None:
    token = make_tenant(settings, "acme")
    event_id = add_event(settings, "acme")
    deliver(settings, Clock())
    listed = api.get("/api/v1/events", headers=bearer(token)).json()["events"]
    assert [(e["id"], e["delivery"]["status"], e["delivery"]["attempts"]) for e in listed] == [(event_id, "stored", 0)]
    refused = api.post(f"/api/v1/events/{event_id}/redeliver", headers=bearer(token))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_callback"


def test_a_tenant_never_sees_nor_redelivers_another_tenants_events(
    api: TestClient, settings: Settings, receiver: Receiver
) -> None:
    acme, globex = make_tenant(settings, "acme"), make_tenant(settings, "globex")
    set_callback(api, acme, receiver.url)
    set_callback(api, globex, receiver.url)
    acme_event = add_event(settings, "acme")
    globex_event = add_event(settings, "globex", EventType.SYNC_FAILED)
    assert [e["id"] for e in api.get("/api/v1/events", headers=bearer(globex)).json()["events"]] == [globex_event]
    stolen = api.post(f"/api/v1/events/{acme_event}/redeliver", headers=bearer(globex))
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/events/callback", headers=bearer(globex)).json() == {
        "url": receiver.url,
        "configured": True,
        "secret": None,
    }


def test_events_page_newest_first_and_filter_by_type_and_status(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    ids = [add_event(settings, "acme", EventType.SYNC_COMPLETED) for _ in range(5)]
    failed = add_event(settings, "acme", EventType.SYNC_FAILED)
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/events", params=params, headers=bearer(token)).json()
        seen += [e["id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted([*ids, failed], reverse=True)
    only = api.get("/api/v1/events", params={"type": "sync.failed"}, headers=bearer(token)).json()["events"]
    assert [e["id"] for e in only] == [failed]
    pending = api.get("/api/v1/events", params={"status": "pending"}, headers=bearer(token)).json()["events"]
    assert len(pending) == 6
    bad = api.get("/api/v1/events", params={"cursor": "nope"}, headers=bearer(token))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"


def test_a_callback_url_must_be_http_without_credentials_and_https_in_production(
    api: TestClient, settings: Settings
) -> None:
    token = make_tenant(settings, "acme")
    for url in ("ftp://crm.example/hook", "not a url", "https://user:pw@crm.example/hook"):
        response = api.put("/api/v1/events/callback", json={"url": url}, headers=bearer(token))
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_failed", url
    given = api.put(
        "/api/v1/events/callback",
        json={"url": "http://crm.example/hook", "secret": "whsec_chosen_by_the_crm"},
        headers=bearer(token),
    )
    assert given.status_code == 200 and given.json()["secret"] is None  # a secret given is never echoed
    api.app.state.settings = settings.model_copy(update={"env": Environment.PRODUCTION})  # type: ignore[attr-defined]
    plain = api.put("/api/v1/events/callback", json={"url": "http://crm.example/hook"}, headers=bearer(token))
    assert plain.status_code == 422
    local = api.put("/api/v1/events/callback", json={"url": "http://127.0.0.1:8080/hook"}, headers=bearer(token))
    assert local.status_code == 200 and local.json()["secret"].startswith("whsec_")
    assert api.delete("/api/v1/events/callback", headers=bearer(token)).status_code == 204
    assert api.get("/api/v1/events/callback", headers=bearer(token)).json()["configured"] is False


def test_two_workers_delivering_at_once_send_every_event_exactly_once(
    api: TestClient, settings: Settings, receiver: Receiver
) -> None:
    token = make_tenant(settings, "acme")
    set_callback(api, token, receiver.url)
    ids = [add_event(settings, "acme") for _ in range(60)]
    clock, policy = Clock(), DeliveryPolicy(batch=7, workers=4)
    workers = [threading.Thread(target=deliver, args=(settings, clock, policy)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    delivered = sorted(int(headers["x-vrtx-event-id"]) for headers, _ in receiver.received)
    assert delivered == ids
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        assert set(session.scalars(select(OutboundEvent.status))) == {"delivered"}


@pytest.mark.dagster
def test_the_delivery_sensor_delivers_due_events_in_its_tick(
    api: TestClient, settings: Settings, receiver: Receiver
) -> None:
    token = make_tenant(settings, "acme")
    set_callback(api, token, receiver.url)
    event_id = add_event(settings, "acme")
    result = event_delivery_sensor(build_sensor_context())
    assert "delivered=1" in str(result)
    assert event_row(settings, event_id).status == "delivered" and len(receiver.received) == 1
