"""Stripe's push quirks: every write carries an Idempotency-Key derived from the push's (replayed alike, refused
as Stripe's idempotency_error when reused for another body), an invoice goes through items, finalize and send,
and a CRM invoice collected through a Payment Link comes back paid as an InvoicePayment linked to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from dagster import DagsterInstance, build_sensor_context
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.base import PushRequest
from providers.errors import ProviderRejected
from providers.kit.governor import RateGovernor
from providers.stripe.client import StripeClient
from providers.stripe.push import push
from providers.stripe.sandbox import DEMO_ACCOUNT_ID, DEMO_SECRET_KEY
from tests.helpers import bearer, make_tenant
from tests.stripe.conftest import Stripe, connect_with_key, records, sync
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import EntityLink
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.orchestration.pushes import push_job, push_sensor
from vrtx_pipelines.registry import get_provider

CONTACT = {"id": "crm-1", "name": "Ada Lovelace", "email": "ada@example.com"}


@pytest.fixture
def client(stripe: Stripe) -> Iterator[StripeClient]:
    with httpx.Client() as http:
        yield StripeClient(
            http, base_url=f"{stripe.served.base_url}/v1", governor=RateGovernor(),
            credentials={"secret_key": DEMO_SECRET_KEY},
        )  # fmt: skip


def request(entity: str, payload: dict[str, Any], key: str, operation: str = "create", **kw: Any) -> PushRequest:
    links = kw.pop("links", {})
    return PushRequest(
        entity=entity, operation=operation, payload=payload, external_id=kw.pop("external_id", None),
        idempotency_key=key, settings={}, linked_id=lambda e, v: links.get((e, v)),
    )  # fmt: skip


def test_the_same_push_key_replays_each_write_and_another_body_under_it_is_stripes_idempotency_error(
    stripe: Stripe, client: StripeClient
) -> None:
    before = stripe.sandbox.count(DEMO_ACCOUNT_ID, "customers")
    first = push(client, request("customer", CONTACT, "push-key-1"))
    again = push(client, request("customer", CONTACT, "push-key-1"))
    assert again.external_id == first.external_id
    assert stripe.sandbox.count(DEMO_ACCOUNT_ID, "customers") == before + 1
    with pytest.raises(ProviderRejected) as refused:
        push(client, request("customer", {**CONTACT, "email": "other@example.com"}, "push-key-1"))
    assert refused.value.provider_code == "idempotency_error" and refused.value.status == 400
    assert stripe.sandbox.count(DEMO_ACCOUNT_ID, "customers") == before + 1


def test_an_invoice_push_adds_its_lines_finalizes_and_sends_it_and_void_voids_it(
    stripe: Stripe, client: StripeClient
) -> None:
    customer = push(client, request("customer", CONTACT, "k-customer")).external_id
    line = {"description": "Espresso machine service", "quantity": "2", "unit_amount": "45.50"}
    invoice = {"id": "crm-inv-1", "contact_id": "crm-1", "issue_date": "2026-11-02", "due_date": "2026-11-16",
               "currency": "GBP", "lines": [line, {**line, "quantity": "1", "unit_amount": "9.99"}]}  # fmt: skip
    links = {("customer", "crm-1"): customer}
    sent = push(client, request("invoice", invoice, "k-invoice", links=links))
    assert sent.canonical is not None and sent.canonical["status"] == "authorised"
    assert sent.canonical["total"] == "100.99" and sent.canonical["payment_url"].startswith("https://invoice.stripe")
    types = [e["type"] for e in stripe.sandbox.events(DEMO_ACCOUNT_ID)]
    assert types[1:4] == ["invoice.created", "invoiceitem.created", "invoice.updated"]
    assert {"invoice.finalized", "invoice.sent"} <= set(types)
    again = push(client, request("invoice", invoice, "k-invoice", links=links))  # a retried push: all replayed
    assert again.external_id == sent.external_id and stripe.sandbox.count(DEMO_ACCOUNT_ID, "invoices") == 61
    voided = push(client, request("invoice", {"id": "crm-inv-1"}, "k-void", "void", external_id=sent.external_id))
    assert voided.canonical is not None and voided.canonical["status"] == "voided"


def test_a_crm_invoice_collected_through_a_payment_link_comes_back_paid_as_a_linked_payment(
    api: TestClient, settings: Settings, stripe: Stripe, instance: DagsterInstance
) -> None:
    token = make_tenant(settings, "acme")
    connect_with_key(api, token)
    line = {"description": "Roastery tour for 12", "quantity": "1", "unit_amount": "240.00"}
    invoice = {"id": "crm-inv-9", "contact_id": "crm-9", "issue_date": "2026-11-02", "currency": "GBP",
               "lines": [line], "number": "CRM-0009"}  # fmt: skip
    queued = api.post("/api/v1/integrations/stripe/push/invoice", json={"operation": "collect", "data": invoice},
                      headers={**bearer(token), "Idempotency-Key": "collect-9"})  # fmt: skip
    assert queued.status_code == 202, queued.text
    provider = get_provider("stripe")
    job = push_job(provider)
    for run in push_sensor(provider, job).evaluate_tick(build_sensor_context(instance=instance)).run_requests or []:
        assert job.execute_in_process(run_config=run.run_config, instance=instance, tags=run.tags).success
    done = api.get(f"/api/v1/integrations/stripe/push/{queued.json()['id']}", headers=bearer(token)).json()
    link = done["external_id"]
    assert done["status"] == "done" and link.startswith("plink_")
    collected = records(api, token, "invoices")[link]["data"]
    assert collected["payment_url"].startswith("https://buy.stripe.com/") and collected["status"] == "authorised"
    paid = stripe.sandbox.pay_payment_link(DEMO_ACCOUNT_ID, link)
    assert paid["amount"] == 24_000 and paid["metadata"]["vrtx_payment_link"] == link
    sync(settings, instance, ["payment_intents"])
    (payment,) = [r for r in records(api, token, "payment_intents").values() if r["data"]["invoice_id"] == link]
    assert payment["external_id"] == paid["id"] and payment["data"]["amount"] == "240.00"
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        linked = session.scalars(select(EntityLink).where(EntityLink.external_id == link)).one()
        assert (linked.entity_type, linked.vrtx_id) == ("invoices", "crm-inv-9")
