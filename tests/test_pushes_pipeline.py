"""Pushes end to end through real Dagster: the API queues, the push sensor batches, the push job sends to the Xero
sandbox over real HTTP, and each row ends done or failed with what Xero said."""

# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from dagster import DagsterInstance, RunRequest, build_sensor_context
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.base import PushRequest
from providers.kit.governor import RateGovernor
from providers.schema import defaults_from_schema
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import base_urls, connect_xero, oauth_clients, records, xero  # noqa: F401 -- fixtures
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.connect.http import provider_client
from vrtx_pipelines.connect.provider_connection import provider_connection
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import EntityLink, OutboundEvent, PushOutbox, TenantIntegration, utcnow
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.definitions import defs
from vrtx_pipelines.orchestration.pushes import push_job, push_sensor
from vrtx_pipelines.push.outbox import claim
from vrtx_pipelines.push.send import provider_idempotency_key
from vrtx_pipelines.registry import get_provider

pytestmark = pytest.mark.dagster
XERO = get_provider("xero")
JOB = push_job(XERO)
SENSOR = push_sensor(XERO, JOB)


@pytest.fixture
def acme(api: TestClient, settings: Settings, xero: Any) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    return token


def contact(vrtx_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": vrtx_id, "name": name, "email": f"{vrtx_id}@example.com", **extra}


def push(api: TestClient, token: str, entity: str, operation: str, data: dict[str, Any], key: str) -> dict[str, Any]:
    response = api.post(
        f"/api/v1/integrations/xero/push/{entity}",
        json={"operation": operation, "data": data},
        headers={**bearer(token), "Idempotency-Key": key},
    )
    assert response.status_code in (200, 202), response.text
    return response.json()  # type: ignore[no-any-return]


def state(api: TestClient, token: str, push_id: int) -> dict[str, Any]:
    response = api.get(f"/api/v1/integrations/xero/push/{push_id}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def tick(instance: DagsterInstance) -> list[RunRequest]:
    result = SENSOR.evaluate_tick(build_sensor_context(instance=instance))
    return list(result.run_requests or [])


def run(instance: DagsterInstance, request: RunRequest) -> str:
    result = JOB.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
    assert result.success
    return result.run_id


def drain(instance: DagsterInstance) -> list[str]:
    """What the daemon does: tick the sensor and run every batch it asks for."""
    return [run(instance, request) for request in tick(instance)]


def events(settings: Settings, tenant_id: str, event_type: str) -> list[dict[str, Any]]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        rows = session.scalars(
            select(OutboundEvent)
            .where(OutboundEvent.tenant_id == tenant_id, OutboundEvent.event_type == event_type)
            .order_by(OutboundEvent.id)
        )
        return [dict(row.payload) for row in rows]


def test_the_code_location_has_a_push_job_and_sensor_for_xero() -> None:
    assert defs.resolve_job_def("xero_push") is not None
    assert defs.resolve_sensor_def("xero_push_sensor") is not None


def test_a_pushed_contact_is_created_once_linked_and_readable_as_a_record(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
) -> None:
    sandbox, _served, org = xero
    before = sandbox.count(org, "contacts")
    queued = push(api, acme, "contact", "create", contact("crm-1", "Ada Lovelace Ltd"), "k-1")
    replay = push(api, acme, "contact", "create", contact("crm-1", "Ada Lovelace Ltd"), "k-1")
    assert replay["id"] == queued["id"]

    (request,) = tick(instance)
    assert request.tags["vrtx/kind"] == "push" and request.tags["vrtx/trigger"] == "push"
    assert request.tags["vrtx/push-connection"] == "xero:acme"
    result = JOB.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
    run_id = result.run_id
    (output,) = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}  # type: ignore[union-attr]
    assert metadata["counts"] == {"contact": {"done": 1, "failed": 0, "retrying": 0}}
    assert metadata["push_ids"] == [queued["id"]] and metadata["pushes_done"] == 1
    assert "Ada Lovelace" not in repr(metadata)  # no payloads in run metadata

    done = state(api, acme, queued["id"])
    assert done["status"] == "done" and done["attempts"] == 1 and done["error"] is None
    assert done["external_id"] and done["remote_version"] and done["run_id"] == run_id
    assert sandbox.count(org, "contacts") == before + 1
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        link = session.scalar(select(EntityLink).where(EntityLink.vrtx_id == "crm-1"))
        assert link is not None and link.external_id == done["external_id"] and link.entity_type == "contacts"
        assert link.remote_version and link.last_synced_at
    pulled = {r["external_id"]: r["data"] for r in records(api, acme, "contacts")["records"]}
    assert pulled[done["external_id"]]["name"] == "Ada Lovelace Ltd"
    (finished,) = events(settings, "acme", "push.finished")
    assert finished["push_id"] == queued["id"] and finished["status"] == "done"
    assert finished["external_id"] == done["external_id"]
    assert tick(instance) == []  # nothing left: the batch never runs twice


def test_an_update_is_sent_to_the_record_the_create_linked(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
) -> None:
    sandbox, _served, org = xero
    created = push(api, acme, "contact", "create", contact("crm-1", "Babbage & Co"), "k-1")
    drain(instance)
    count = sandbox.count(org, "contacts")
    updated = push(api, acme, "contact", "update", contact("crm-1", "Babbage and Sons"), "k-2")
    drain(instance)
    first, second = state(api, acme, created["id"]), state(api, acme, updated["id"])
    assert second["status"] == "done", second
    assert second["external_id"] == first["external_id"]
    assert sandbox.count(org, "contacts") == count
    pulled = {r["external_id"]: r["data"] for r in records(api, acme, "contacts")["records"]}
    assert pulled[first["external_id"]]["name"] == "Babbage and Sons"


def test_an_invoice_pushed_with_its_new_contact_references_the_contact_xero_created(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
) -> None:
    person = push(api, acme, "contact", "create", contact("crm-7", "Grace Hopper Pty"), "c-7")
    invoice = {
        "id": "crm-inv-7",
        "contact_id": "crm-7",
        "issue_date": "2026-03-02",
        "due_date": "2026-04-01",
        "currency": "NZD",
        "lines": [{"description": "Compiler consulting", "quantity": "2", "unit_amount": "150.00"}],
    }
    bill = push(api, acme, "invoice", "create", invoice, "i-7")
    (request,) = tick(instance)  # one batch for the connection, in order
    run(instance, request)
    contact_id = state(api, acme, person["id"])["external_id"]
    sent = state(api, acme, bill["id"])
    assert sent["status"] == "done", sent
    pulled = {r["external_id"]: r["data"] for r in records(api, acme, "invoices")["records"]}
    assert pulled[sent["external_id"]]["contact_id"] == contact_id


def test_xero_refusing_a_push_fails_it_at_once_with_xeros_own_message(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
) -> None:
    first = push(api, acme, "contact", "create", contact("crm-1", "Duplicate Name Ltd"), "k-1")
    twin = push(api, acme, "contact", "create", contact("crm-2", "Duplicate Name Ltd"), "k-2")
    drain(instance)
    assert state(api, acme, first["id"])["status"] == "done"
    failed = state(api, acme, twin["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["provider_status"] == 200  # one PUT of both: Xero saved the first and refused its element alone
    assert "Duplicate Name Ltd" in failed["error"] and "unique" in failed["error"]
    assert failed["finished_at"] and failed["next_attempt_at"] is None
    outcomes = {e["push_id"]: e["status"] for e in events(settings, "acme", "push.finished")}
    assert outcomes[twin["id"]] == "failed"
    assert tick(instance) == []


def test_an_update_of_a_record_never_linked_fails_with_a_clear_message(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
) -> None:
    orphan = push(api, acme, "contact", "update", contact("crm-404", "Nobody Ltd"), "k-1")
    drain(instance)
    failed = state(api, acme, orphan["id"])
    assert failed["status"] == "failed"
    assert "not linked" in failed["error"] and "crm-404" in failed["error"]


def test_a_5xx_is_retried_after_a_backoff_and_ends_with_one_contact_in_xero(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
) -> None:
    sandbox, served, org = xero
    before = sandbox.count(org, "contacts")
    queued = push(api, acme, "contact", "create", contact("crm-1", "Flaky Network Ltd"), "k-1")
    served.app.state.sandbox.fail_on_write, served.app.state.sandbox.fail_on_write_status = 1, 503
    served.app.state.sandbox.fail_on_write_times = 10
    (request,) = tick(instance)
    run(instance, request)
    waiting = state(api, acme, queued["id"])
    assert waiting["status"] == "pending" and waiting["attempts"] == 1
    assert waiting["provider_status"] == 503 and waiting["error"]
    assert waiting["next_attempt_at"] is not None
    assert tick(instance) == []  # not due yet: the backoff holds it back
    served.app.state.sandbox.fail_on_write_times = 0
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:  # the backoff has passed
        session.get_one(PushOutbox, queued["id"]).next_attempt_at = utcnow() - timedelta(seconds=1)
    (retry,) = tick(instance)
    assert retry.run_key != request.run_key
    run(instance, retry)
    done = state(api, acme, queued["id"])
    assert done["status"] == "done" and done["attempts"] == 2
    assert sandbox.count(org, "contacts") == before + 1


def test_an_update_queued_behind_a_retrying_create_waits_for_it(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
) -> None:
    _sandbox, served, _org = xero
    created = push(api, acme, "contact", "create", contact("crm-1", "Patient Ltd"), "k-1")
    updated = push(api, acme, "contact", "update", contact("crm-1", "Patient Holdings Ltd"), "k-2")
    served.app.state.sandbox.fail_on_write, served.app.state.sandbox.fail_on_write_times = 1, 10
    drain(instance)
    assert state(api, acme, created["id"])["status"] == "pending"
    waiting = state(api, acme, updated["id"])
    assert waiting["status"] == "pending" and waiting["attempts"] == 0  # never sent, no attempt spent
    served.app.state.sandbox.fail_on_write_times = 0
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        for row in session.scalars(select(PushOutbox)):
            row.next_attempt_at = utcnow() - timedelta(seconds=1)
    drain(instance)
    first, second = state(api, acme, created["id"]), state(api, acme, updated["id"])
    assert first["status"] == second["status"] == "done"
    assert first["external_id"] == second["external_id"]


def test_a_run_that_died_mid_batch_is_resumed_without_sending_anything_twice(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
    acme: str,
) -> None:
    sandbox, _served, org = xero
    before = sandbox.count(org, "contacts")
    queued = [push(api, acme, "contact", "create", contact(f"crm-{i}", f"Crash Test {i}"), f"k-{i}") for i in range(3)]
    ids = [p["id"] for p in queued]
    # A run claimed all three, sent the first to Xero, and died before recording Xero's answer.
    engine = engine_for(settings.sqlalchemy_url)
    with session_scope(engine) as session:
        connection_id = session.scalars(select(TenantIntegration.id)).one()
        (first, *_rest) = claim(session, connection_id, ids, "0f0f0f0f-dead-run")
        request = PushRequest(
            "contact",
            "create",
            dict(first.payload),
            None,
            provider_idempotency_key(first),
            defaults_from_schema(XERO.config_schema),
            lambda _e, _v: None,
        )
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        with provider_client(settings) as http:
            target = provider_connection(ctx, XERO, connection_id, http, RateGovernor())
            assert XERO.pushes is not None and XERO.client is not None
            sent_before_the_crash = XERO.pushes.push(XERO.client(target), request).external_id
    assert all(state(api, acme, i)["status"] == "running" for i in ids)

    drain(instance)  # the sensor returns the dead run's rows to the outbox and runs them again
    finished = [state(api, acme, i) for i in ids]
    assert [p["status"] for p in finished] == ["done"] * 3
    assert finished[0]["external_id"] == sent_before_the_crash
    assert sandbox.count(org, "contacts") == before + 3
    assert len({p["external_id"] for p in finished}) == 3


def test_each_tenants_pushes_go_to_its_own_organisation_in_its_own_run(
    api: TestClient,
    settings: Settings,
    xero: Any,
    instance: DagsterInstance,
) -> None:
    sandbox, _served, first_org = xero
    second_org = sandbox.add_organisation("Globex", contacts=3, invoices=2, payments=1, items=1)
    tokens = {"acme": make_tenant(settings, "acme"), "globex": make_tenant(settings, "globex")}
    connect_xero(settings, "acme", [first_org])
    connect_xero(settings, "globex", [second_org])
    counts = {org: sandbox.count(org, "contacts") for org in (first_org, second_org)}
    pushed = {
        t: push(api, token, "contact", "create", contact("crm-1", f"{t} customer"), "same-key")
        for t, token in tokens.items()
    }
    assert pushed["acme"]["id"] != pushed["globex"]["id"]
    requests = tick(instance)
    assert sorted(r.tags["vrtx/push-connection"] for r in requests) == ["xero:acme", "xero:globex"]
    for request in requests:
        run(instance, request)
    assert sandbox.count(first_org, "contacts") == counts[first_org] + 1
    assert sandbox.count(second_org, "contacts") == counts[second_org] + 1
    acme_names = {r["data"]["name"] for r in records(api, tokens["acme"], "contacts")["records"]}
    globex_names = {r["data"]["name"] for r in records(api, tokens["globex"], "contacts")["records"]}
    assert "acme customer" in acme_names and "globex customer" not in acme_names
    assert "globex customer" in globex_names and "acme customer" not in globex_names
    foreign = api.get(f"/api/v1/integrations/xero/push/{pushed['acme']['id']}", headers=bearer(tokens["globex"]))
    assert foreign.status_code == 404


def test_a_lost_response_is_retried_with_the_same_key_and_creates_nothing_twice(
    api: TestClient, settings: Settings, xero: Any, instance: DagsterInstance, acme: str
) -> None:
    sandbox, served, org = xero
    before = sandbox.count(org, "contacts")
    queued = push(api, acme, "contact", "create", contact("crm-1", "Lost In Transit Ltd"), "k-1")
    served.app.state.sandbox.lose_write_responses = 1  # Xero writes it, the answer never arrives
    drain(instance)
    assert state(api, acme, queued["id"])["status"] == "done"
    assert sandbox.count(org, "contacts") == before + 1
