"""Batched pushes through real Dagster and the Xero sandbox over real HTTP: contact creates go to Xero 50 to a
``PUT Contacts?summarizeErrors=false``, each push ends on its own element's answer, a batch's membership is fixed
before its call (a resend after a crash or a 429 is the same call under the same idempotency key), and Xero's
webhooks echoing the created contacts are skipped without a call to Xero."""

# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance, RunRequest, build_sensor_context
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.sandbox_kit.serve import ServedApp
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, records, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect import http as connect_http
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import EntityLink, PushOutbox, TenantIntegration, WebhookInbox, utcnow
from vrtx_pipelines.db.session import engine_for, session_factory, session_scope
from vrtx_pipelines.orchestration.pushes import push_job, push_sensor
from vrtx_pipelines.push import send
from vrtx_pipelines.push.outbox import claim, due_batches
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.webhooks import dispatch
from vrtx_pipelines.webhooks.apply import DagsterReporter, WebhookApplier
from vrtx_pipelines.webhooks.dispatch import ALREADY_CURRENT, Batch
from vrtx_pipelines.webhooks.launch import ImmediateDispatcher
from vrtx_pipelines.webhooks.worker import WebhookWorker

pytestmark = pytest.mark.dagster
XERO = get_provider("xero")
JOB = push_job(XERO)
SENSOR = push_sensor(XERO, JOB)


@dataclass(frozen=True)
class Write:
    """A write the platform sent to Xero, as it went over the wire."""

    method: str
    path: str
    query: str
    idempotency_key: str | None
    body: bytes

    @property
    def names(self) -> list[str]:
        return [element["Name"] for element in json.loads(self.body)["Contacts"]]


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[Write]:
    """Every write the push runs send, recorded by an event hook on the HTTP client they use."""
    sent: list[Write] = []
    real = connect_http.provider_client

    def record(request: httpx.Request) -> None:
        if request.method != "GET" and "/api.xro/" in request.url.path:
            key = request.headers.get("Idempotency-Key")
            sent.append(Write(request.method, request.url.path, request.url.query.decode(), key, request.content))

    def recording_client(settings: Settings) -> httpx.Client:
        client = real(settings)
        client.event_hooks["request"].append(record)
        return client

    monkeypatch.setattr(send, "provider_client", recording_client)
    return sent


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Any) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def queue(api: TestClient, token: str, names: list[str], prefix: str = "crm") -> list[int]:
    ids = []
    for n, name in enumerate(names):
        response = api.post(
            "/api/v1/integrations/xero/push/contact",
            json={"operation": "create", "data": {"id": f"{prefix}-{n}", "name": name}},
            headers={**bearer(token), "Idempotency-Key": f"{prefix}-key-{n}"},
        )
        assert response.status_code == 202, response.text
        ids.append(int(response.json()["id"]))
    return ids


def state(api: TestClient, token: str, push_id: int) -> dict[str, Any]:
    response = api.get(f"/api/v1/integrations/xero/push/{push_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def tick(instance: DagsterInstance) -> list[RunRequest]:
    return list(SENSOR.evaluate_tick(build_sensor_context(instance=instance)).run_requests or [])


def drain(instance: DagsterInstance) -> int:
    """What the daemon does, until nothing is due: tick the sensor and run every batch it asks for."""
    runs = 0
    while requests := tick(instance):
        for request in requests:
            assert JOB.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags).success
            runs += 1
    return runs


def outbox(settings: Settings) -> list[PushOutbox]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = list(session.scalars(select(PushOutbox).order_by(PushOutbox.id)))
        session.expunge_all()
        return rows


def api_calls(xero: Any) -> int:
    sandbox, _served, org = xero
    return int(sandbox.stats[org].api_calls)


def test_contact_creates_go_to_xero_fifty_to_a_call_and_each_is_linked_to_the_contact_it_made(
    api: TestClient, settings: Settings, xero: Any, instance: DagsterInstance, acme: str, writes: list[Write]
) -> None:
    sandbox, _served, org = xero
    before, calls_before = sandbox.count(org, "contacts"), api_calls(xero)
    names = [f"Burst Customer {n:03d}" for n in range(120)]
    pushed = queue(api, acme, names)

    assert drain(instance) == 1  # the sensor hands a run 100 pushes; the run takes every one due when it starts

    assert [(w.method, w.path, w.query, len(w.names)) for w in writes] == [
        ("PUT", "/api.xro/2.0/Contacts", "summarizeErrors=false", 50),
        ("PUT", "/api.xro/2.0/Contacts", "summarizeErrors=false", 50),
        ("PUT", "/api.xro/2.0/Contacts", "summarizeErrors=false", 20),
    ]
    assert [name for w in writes for name in w.names] == names  # in the order the CRM queued them
    assert len({w.idempotency_key for w in writes}) == 3
    assert api_calls(xero) - calls_before == 3  # counted at Xero: three calls for 120 contacts
    assert sandbox.count(org, "contacts") == before + 120
    done = [state(api, acme, push_id) for push_id in pushed]
    assert {p["status"] for p in done} == {"done"} and {p["provider_status"] for p in done} == {200}
    assert len({p["external_id"] for p in done}) == 120 and all(p["remote_version"] for p in done)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        links = {link.vrtx_id: link.external_id for link in session.scalars(select(EntityLink))}
    assert links == {f"crm-{n}": p["external_id"] for n, p in enumerate(done)}
    pulled = {r["external_id"]: r["data"]["name"] for r in records(api, acme, "contacts")["records"]}
    assert [pulled[p["external_id"]] for p in done] == names
    assert [len({r.batch_key for r in outbox(settings)[i : i + 50]}) for i in (0, 50, 100)] == [1, 1, 1]


def test_pushes_queued_while_a_run_sends_go_out_with_that_run_not_a_run_of_their_own(
    api: TestClient,
    settings: Settings,
    instance: DagsterInstance,
    acme: str,
    writes: list[Write],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue(api, acme, [f"First Wave {n}" for n in range(3)], prefix="first")
    (request,) = tick(instance)
    later: list[int] = []
    recording = send.provider_client

    def crm_pushes_more(request: httpx.Request) -> None:
        if request.method == "PUT" and not later:  # while the first write is in flight
            later.extend(queue(api, acme, [f"Second Wave {n}" for n in range(4)], prefix="second"))

    def client(settings: Settings) -> httpx.Client:
        http = recording(settings)
        http.event_hooks["request"].append(crm_pushes_more)
        return http

    monkeypatch.setattr(send, "provider_client", client)
    result = JOB.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)

    assert result.success and len(later) == 4
    assert [len(w.names) for w in writes] == [3, 4]  # the second wave is one more batch of the same run
    rows = outbox(settings)
    assert {(r.status, r.run_id) for r in rows} == {("done", result.run_id)} and len(rows) == 7
    assert tick(instance) == []


def test_an_element_xero_refuses_fails_only_its_own_push_in_xeros_words(
    api: TestClient, settings: Settings, xero: Any, instance: DagsterInstance, acme: str, writes: list[Write]
) -> None:
    sandbox, served, org = xero
    token = sandbox.issue_access_token([org])
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": org, "Accept": "application/json"}
    taken = httpx.get(f"{served.base_url}/api.xro/2.0/Contacts", headers=headers).json()["Contacts"][0]["Name"]
    before = sandbox.count(org, "contacts")
    first, clash, last = queue(api, acme, ["Fresh Start Ltd", taken, "Fresh Finish Ltd"])

    drain(instance)

    assert len(writes) == 1 and writes[0].names == ["Fresh Start Ltd", taken, "Fresh Finish Ltd"]
    assert [state(api, acme, i)["status"] for i in (first, clash, last)] == ["done", "failed", "done"]
    refused = state(api, acme, clash)
    assert refused["error"] == (
        f"The contact name {taken} is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    )
    assert refused["provider_status"] == 200 and refused["external_id"] is None and refused["attempts"] == 1
    assert sandbox.count(org, "contacts") == before + 2
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        assert sorted(link.vrtx_id for link in session.scalars(select(EntityLink))) == ["crm-0", "crm-2"]
    assert tick(instance) == []  # nothing is retried: the refusal is final


def test_a_crash_after_the_call_resends_the_same_members_under_the_same_key_and_creates_nothing_twice(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
    writes: list[Write],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox, _served, org = xero
    before = sandbox.count(org, "contacts")
    pushed = queue(api, acme, [f"Crash Batch {n}" for n in range(7)])
    # Xero answers the batch, and the run dies while recording the outcomes: none of them is committed.
    recorded = send.record_written

    def dies(*args: Any, **kwargs: Any) -> None:
        raise SystemError("the run process died")

    monkeypatch.setattr(send, "record_written", dies)
    (request,) = tick(instance)
    crashed = JOB.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False
    )
    assert not crashed.success
    assert sandbox.count(org, "contacts") == before + 7  # Xero made them
    rows = outbox(settings)
    assert {r.status for r in rows} == {"running"} and len({r.batch_key for r in rows}) == 1
    assert all(r.external_id is None for r in rows)

    monkeypatch.setattr(send, "record_written", recorded)
    assert drain(instance) == 1  # the sensor returns the dead run's pushes to the outbox and runs them again

    first, resent = writes
    assert resent.idempotency_key == first.idempotency_key and resent.body == first.body
    assert sandbox.count(org, "contacts") == before + 7  # Xero replayed its answer: nothing was created twice
    done = [state(api, acme, push_id) for push_id in pushed]
    assert {p["status"] for p in done} == {"done"} and len({p["external_id"] for p in done}) == 7
    assert [p["attempts"] for p in done] == [2] * 7


def test_a_429_for_the_whole_batch_retries_every_member_together_as_the_same_call(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
    writes: list[Write],
) -> None:
    sandbox, served, org = xero
    before = sandbox.count(org, "contacts")
    pushed = queue(api, acme, [f"Limited Ltd {n}" for n in range(5)])
    knobs = served.app.state.sandbox
    knobs.rate_limit_next, knobs.retry_after_s = 1, 600  # longer than a run waits in-call: retried later

    assert drain(instance) == 1

    waiting = [state(api, acme, push_id) for push_id in pushed]
    assert {(p["status"], p["provider_status"], p["attempts"]) for p in waiting} == {("pending", 429, 1)}
    assert len({p["next_attempt_at"] for p in waiting}) == 1  # due together
    assert sandbox.count(org, "contacts") == before
    # Only the first member is due (as if the others' clocks ran late): the run still takes the whole batch.
    later = utcnow() + timedelta(hours=1)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = list(session.scalars(select(PushOutbox).order_by(PushOutbox.id)))
        rows[0].next_attempt_at = utcnow() - timedelta(seconds=1)
        for row in rows[1:]:
            row.next_attempt_at = later
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        (batch,) = due_batches(session, "xero", utcnow(), batch_size=1)
    assert batch.push_ids == tuple(pushed)

    assert drain(instance) == 1

    first, again = writes
    assert again.idempotency_key == first.idempotency_key and again.body == first.body
    assert {state(api, acme, push_id)["status"] for push_id in pushed} == {"done"}
    assert sandbox.count(org, "contacts") == before + 5


class _NoLaunches:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def launch(self, batch: Batch) -> str:
        self.batches.append(batch)
        return "never"


def test_xeros_webhooks_for_the_batched_creates_are_skipped_without_a_call_to_xero(
    api: TestClient, settings: Settings, xero: Any, instance: DagsterInstance, acme: str
) -> None:
    sandbox, _served, org = xero
    key = "acme-webhook-key-" + "b" * 40
    answer = api.put("/api/v1/integrations/xero/webhook", json={"secret": key}, headers=bearer(acme))
    assert answer.status_code == 200, answer.text
    with ServedApp(api.app) as served_api:
        subscription = sandbox.subscribe_webhooks(f"{served_api.base_url}/api/v1/webhooks/xero/acme", key, [org])
        pushed = queue(api, acme, [f"Echo Batch {n}" for n in range(6)])
        drain(instance)
        assert {state(api, acme, push_id)["status"] for push_id in pushed} == {"done"}
        assert sandbox.flush_webhooks()  # Xero's CREATE events for the six contacts
        sandbox.unsubscribe_webhooks(subscription)
    created = {state(api, acme, push_id)["external_id"] for push_id in pushed}
    calls = api_calls(xero)

    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    applier = WebhookApplier(
        sessions, vault_from_settings(settings), settings, reporter=DagsterReporter(from_environment=False)
    )
    launcher = _NoLaunches()
    dispatcher = ImmediateDispatcher(sessions, launcher, applier=applier)
    try:
        with session_scope(engine_for(settings.sqlalchemy_url)) as session:
            connection_id = session.scalars(select(TenantIntegration.id)).one()
        assert dispatcher.dispatch(XERO, connection_id) == []
    finally:
        dispatcher.close()

    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        events = [(r.payload["external_id"], r.status, r.error_message) for r in session.scalars(select(WebhookInbox))]
    assert sorted(events) == sorted((external_id, "skipped", ALREADY_CURRENT) for external_id in created)
    assert launcher.batches == [] and api_calls(xero) == calls  # no fetch, no pull: not one call to Xero


@dataclass
class ImmediatePath:
    """The webhook worker's path (claim, fetch by id, launch), with the launches recorded. Its loop is not started:
    ``worker.wait_idle()`` polls once, so the test decides when events are claimed."""

    worker: WebhookWorker
    launcher: _NoLaunches
    connection_id: int

    @property
    def dispatcher(self) -> ImmediateDispatcher:
        return self.worker.dispatcher


@pytest.fixture
def immediate(api: TestClient, settings: Settings, acme: str) -> Iterator[ImmediatePath]:
    sessions = session_factory(engine_for(settings.sqlalchemy_url))
    applier = WebhookApplier(
        sessions, vault_from_settings(settings), settings, reporter=DagsterReporter(from_environment=False)
    )
    launcher = _NoLaunches()
    dispatcher = ImmediateDispatcher(sessions, launcher, applier=applier)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection_id = session.scalars(select(TenantIntegration.id)).one()
    try:
        yield ImmediatePath(WebhookWorker(sessions, dispatcher), launcher, connection_id)
    finally:
        dispatcher.close()


def before_the_answer_is_read(monkeypatch: pytest.MonkeyPatch, action: Callable[[httpx.Response], None]) -> None:
    """Run ``action`` once, when Xero's answer to the first batched write arrives and before the run reads it:
    whatever Xero's webhooks deliver then finds the pushes unrecorded."""
    real = send.provider_client
    done: list[bool] = []

    def hook(response: httpx.Response) -> None:
        if response.request.method == "PUT" and not done:
            done.append(True)
            action(response)

    def client(settings: Settings) -> httpx.Client:
        http = real(settings)
        http.event_hooks["response"].append(hook)
        return http

    monkeypatch.setattr(send, "provider_client", client)


def subscribed(api: TestClient, token: str, sandbox: Any, org: str, served_api: ServedApp) -> Any:
    key = "acme-webhook-key-" + "r" * 40
    answer = api.put("/api/v1/integrations/xero/webhook", json={"secret": key}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return sandbox.subscribe_webhooks(f"{served_api.base_url}/api/v1/webhooks/xero/acme", key, [org])


def test_an_echo_that_arrives_before_its_push_is_recorded_is_skipped_once_it_is_without_a_call_to_xero(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
    immediate: ImmediatePath,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox, _served, org = xero
    delivered: list[bool] = []
    before_the_answer_is_read(
        monkeypatch, lambda _answer: delivered.append(sandbox.flush_webhooks() and immediate.worker.wait_idle())
    )
    with ServedApp(api.app) as served_api:
        subscription = subscribed(api, acme, sandbox, org, served_api)
        pushed = queue(api, acme, [f"Race Batch {n}" for n in range(4)])
        calls = api_calls(xero)
        drain(instance)
        sandbox.unsubscribe_webhooks(subscription)
    assert delivered == [True]  # Xero's four CREATE events came in while the run held the answer unread
    assert {state(api, acme, push_id)["status"] for push_id in pushed} == {"done"}
    assert immediate.dispatcher.dispatch(XERO, immediate.connection_id) == []  # the next claim (the sensor's too)

    created = {state(api, acme, push_id)["external_id"] for push_id in pushed}
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        events = [(r.payload["external_id"], r.status, r.error_message) for r in session.scalars(select(WebhookInbox))]
    assert sorted(events) == sorted((external_id, "skipped", ALREADY_CURRENT) for external_id in created)
    assert immediate.launcher.batches == [] and api_calls(xero) == calls + 1  # the PUT alone: no fetch, no pull


def test_a_change_made_in_xero_after_our_write_is_fetched_even_when_it_arrives_with_the_echoes(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
    immediate: ImmediatePath,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox, _served, org = xero
    edited: list[str] = []

    def edit_in_xero(answer: httpx.Response) -> None:
        # Someone edits the first contact we created in Xero right after our write, before the run records it.
        first = json.loads(answer.read())["Contacts"][0]
        written_ms = int(first["UpdatedDateUTC"].removeprefix("/Date(").split("+")[0])
        while time.time() * 1000 < written_ms + 1:  # a later millisecond than our write, as any real edit is
            time.sleep(0.001)
        edited.extend(sandbox.touch(org, "contacts", first["ContactID"]))
        sandbox.flush_webhooks()
        immediate.worker.wait_idle()

    before_the_answer_is_read(monkeypatch, edit_in_xero)
    with ServedApp(api.app) as served_api:
        subscription = subscribed(api, acme, sandbox, org, served_api)
        pushed = queue(api, acme, [f"Busy Batch {n}" for n in range(3)])
        drain(instance)
        sandbox.unsubscribe_webhooks(subscription)
    calls = api_calls(xero)
    assert immediate.dispatcher.dispatch(XERO, immediate.connection_id) == ["never"]  # once the pushes settled

    created = [state(api, acme, push_id)["external_id"] for push_id in pushed]
    assert edited == created[:1]
    [batch] = immediate.launcher.batches
    assert [event.external_id for event in batch.events] == edited  # the edit; the three echoes are skipped
    assert api_calls(xero) == calls + 1  # Xero's edit fetched by id
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        skipped = [r.payload["external_id"] for r in session.scalars(select(WebhookInbox)) if r.status == "skipped"]
    assert sorted(skipped) == sorted(created)


def test_events_of_an_entity_being_pushed_wait_for_the_push_and_never_longer_than_the_echo_hold(
    api: TestClient, settings: Settings, xero: Any, acme: str
) -> None:
    _sandbox, _served, org = xero
    api.app.state.push_launcher = None  # type: ignore[attr-defined]
    queue(api, acme, ["In Flight Ltd"])
    now = utcnow()

    def event(n: int, entity: str, received: timedelta) -> dict[str, Any]:
        payload = {"event_type": "x.update", "entity": entity, "entities": [entity], "external_id": f"ext-{n}",
                   "external_tenant_id": org, "occurred_at": now.isoformat(), "data": {}}  # fmt: skip
        return {"provider_event_id": f"event-{n}", "event_type": "x.update", "payload": payload,
                "status": "received", "received_at": now - received}  # fmt: skip

    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection_id = session.scalars(select(TenantIntegration.id)).one()
        (push_id,) = session.scalars(select(PushOutbox.id))
        assert [row.id for row in claim(session, connection_id, [push_id], "run-1")] == [push_id]  # in flight
        hold = timedelta(seconds=dispatch.ECHO_HOLD_S)
        for n, (entity, received) in enumerate(
            [("contacts", timedelta(0)), ("contacts", hold + timedelta(seconds=1)), ("invoices", timedelta(0))]
        ):
            session.add(WebhookInbox(tenant_integration_id=connection_id, **event(n, entity, received)))
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        [batch] = dispatch.claim_batches(session, XERO)
    assert sorted(e.external_id or "" for e in batch.events) == ["ext-1", "ext-2"]  # the fresh contact event waits

    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.get_one(PushOutbox, push_id)
        row.status = "done"  # the push is recorded: nothing is held any more
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        [batch] = dispatch.claim_batches(session, XERO)
    assert [e.external_id for e in batch.events] == ["ext-0"]
