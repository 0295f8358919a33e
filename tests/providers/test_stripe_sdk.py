"""The official ``stripe`` SDK, unchanged, against the Stripe sandbox over real HTTP on loopback: the measure of the
sandbox's fidelity. Only the base addresses move (``StripeClient(base_addresses=...)``, ``stripe.connect_api_base``
for OAuth), as the reference's section 3 ("SDK") says."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from fastapi import FastAPI, Request, Response

from providers.sandbox_kit.serve import ServedApp
from providers.stripe.sandbox import (
    DEMO_ACCOUNT_ID,
    DEMO_CONNECT_CLIENT_ID,
    DEMO_CONNECTED_ACCOUNT_ID,
    DEMO_SECRET_KEY,
    StripeSandbox,
    create_app,
    demo_sandbox,
)
from tests.flows.harness import consent

WEBHOOK_SECRET = "whsec_sdk_test_" + "s" * 24


@dataclass
class Sdk:
    sandbox: StripeSandbox
    base_url: str
    client: stripe.StripeClient

    def client_for(self, key: str, **options: Any) -> stripe.StripeClient:
        return stripe.StripeClient(key, base_addresses={"api": self.base_url, "connect": self.base_url}, **options)


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    sandbox = demo_sandbox(seed=11)
    with ServedApp(create_app(sandbox)) as served:
        client = stripe.StripeClient(
            DEMO_SECRET_KEY, base_addresses={"api": served.base_url, "connect": served.base_url}, max_network_retries=0
        )
        yield Sdk(sandbox, served.base_url, client)


def test_the_sdk_lists_every_customer_page_by_page_creates_retrieves_and_updates_one(sdk: Sdk) -> None:
    held = sdk.sandbox.count(DEMO_ACCOUNT_ID, "customers")
    listed = list(sdk.client.v1.customers.list(params={"limit": 7}).auto_paging_iter())
    assert len(listed) == len({c.id for c in listed}) == held
    assert [c.created for c in listed] == sorted((c.created for c in listed), reverse=True)
    created = sdk.client.v1.customers.create(
        params={
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "metadata": {"crm_id": "c-1"},
            "address": {"city": "London", "country": "GB"},
        }
    )
    assert created.object == "customer" and created.metadata["crm_id"] == "c-1" and created.address.city == "London"
    assert sdk.client.v1.customers.retrieve(created.id).email == "ada@example.com"
    updated = sdk.client.v1.customers.update(
        created.id, params={"phone": "+44 20 7946 0000", "metadata": {"crm_id": ""}}
    )
    assert updated.phone == "+44 20 7946 0000" and "crm_id" not in updated.metadata
    newest = sdk.client.v1.customers.list(params={"limit": 1}).data[0]
    assert newest.id == created.id
    deleted = sdk.client.v1.customers.delete(created.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sdk.client.v1.customers.retrieve(created.id)
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404


def test_the_sdk_takes_an_invoice_through_items_finalize_and_pay(sdk: Sdk) -> None:
    customer = sdk.client.v1.customers.create(params={"name": "Babbage & Co", "email": "ap@babbage.example"})
    invoice = sdk.client.v1.invoices.create(
        params={"customer": customer.id, "collection_method": "send_invoice", "days_until_due": 30}
    )
    assert invoice.status == "draft" and invoice.total == 0
    sdk.client.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "invoice": invoice.id,
            "amount": 12_345,
            "currency": "gbp",
            "description": "Difference engine, assembly",
        }
    )
    sdk.client.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "invoice": invoice.id,
            "unit_amount": 500,
            "quantity": 3,
            "currency": "gbp",
            "description": "Punch cards",
        }
    )
    finalized = sdk.client.v1.invoices.finalize_invoice(invoice.id)
    assert finalized.status == "open" and finalized.total == 13_845 and finalized.number
    assert finalized.hosted_invoice_url and len(finalized.lines.data) == 2
    sent = sdk.client.v1.invoices.send_invoice(invoice.id)
    assert sent.status == "open"
    paid = sdk.client.v1.invoices.pay(invoice.id, params={"expand": ["customer"]})
    assert paid.status == "paid" and paid.amount_paid == 13_845 and paid.amount_remaining == 0
    assert paid.customer.name == "Babbage & Co"  # expanded
    with pytest.raises(stripe.InvalidRequestError):
        sdk.client.v1.invoices.void_invoice(invoice.id)  # a paid invoice cannot be voided
    lines = sdk.client.v1.invoices.line_items.list(invoice.id)
    assert [line.amount for line in lines.data] == [12_345, 1_500]
    types = [e.type for e in sdk.client.v1.events.list(params={"limit": 100}).data]
    assert {"invoice.created", "invoice.finalized", "invoice.sent", "invoice.paid", "charge.succeeded"} <= set(types)


def test_the_sdk_confirms_a_payment_intent_and_a_declined_card_raises_card_error(sdk: Sdk) -> None:
    intent = sdk.client.v1.payment_intents.create(params={"amount": 2_000, "currency": "gbp"})
    assert intent.status == "requires_payment_method"
    confirmed = sdk.client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded" and confirmed.latest_charge
    charge = sdk.client.v1.charges.retrieve(str(confirmed.latest_charge))
    assert charge.amount == 2_000 and charge.paid and charge.balance_transaction
    refund = sdk.client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 500})
    assert refund.status == "succeeded" and sdk.client.v1.charges.retrieve(charge.id).amount_refunded == 500
    other = sdk.client.v1.payment_intents.create(params={"amount": 900, "currency": "gbp"})
    with pytest.raises(stripe.CardError) as declined:
        sdk.client.v1.payment_intents.confirm(other.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert declined.value.code == "card_declined" and declined.value.http_status == 402


def test_the_sdk_creates_updates_and_cancels_a_subscription(sdk: Sdk) -> None:
    customer = sdk.client.v1.customers.create(params={"name": "Countess of Lovelace"})
    price = sdk.client.v1.prices.create(
        params={
            "currency": "gbp",
            "unit_amount": 4_900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Analytical engine support"},
        }
    )
    subscription = sdk.client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id, "quantity": 2}]}
    )
    assert subscription.status == "active" and subscription["items"].data[0].quantity == 2
    updated = sdk.client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    assert updated.cancel_at_period_end is True
    canceled = sdk.client.v1.subscriptions.cancel(subscription.id)
    assert canceled.status == "canceled" and canceled.canceled_at
    listed = sdk.client.v1.subscriptions.list(params={"customer": customer.id})
    assert [s.id for s in listed.data] == [subscription.id]


def test_the_sdk_raises_each_error_as_its_own_exception_type(sdk: Sdk) -> None:
    with pytest.raises(stripe.AuthenticationError):
        sdk.client_for("sk_test_51NotAKeyAtAll0000000000", max_network_retries=0).v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sdk.client.v1.customers.create(params={"nickname": "x"})
    assert unknown.value.param == "nickname"
    with pytest.raises(stripe.InvalidRequestError) as too_many:
        sdk.client.v1.customers.list(params={"limit": 101})
    assert too_many.value.param == "limit"
    first = sdk.client.v1.customers.create(params={"name": "Once"}, options={"idempotency_key": "sdk-key-1"})
    again = sdk.client.v1.customers.create(params={"name": "Once"}, options={"idempotency_key": "sdk-key-1"})
    assert again.id == first.id and again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        sdk.client.v1.customers.create(params={"name": "Twice"}, options={"idempotency_key": "sdk-key-1"})


def test_the_sdk_constructs_the_event_of_a_signed_sandbox_webhook(sdk: Sdk) -> None:
    received: list[tuple[bytes, str]] = []
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: Request) -> Response:
        received.append((await request.body(), request.headers["stripe-signature"]))
        return Response(status_code=200)

    with ServedApp(receiver) as served:
        sdk.sandbox.subscribe_webhooks(served.base_url + "/hook", WEBHOOK_SECRET)
        customer = sdk.client.v1.customers.create(params={"name": "Signed"})
        assert sdk.sandbox.flush_webhooks(10)
    ((body, signature),) = received
    event = stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET)
    assert event.type == "customer.created" and event.data.object.id == customer.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_another_secret")


def test_the_sdk_connects_an_account_through_connect_oauth_and_acts_for_it(
    sdk: Sdk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "connect_api_base", sdk.base_url)
    monkeypatch.setattr(stripe, "api_base", sdk.base_url)
    monkeypatch.setattr(stripe, "client_id", DEMO_CONNECT_CLIENT_ID)
    url = stripe.OAuth.authorize_url(scope="read_write", redirect_uri="http://127.0.0.1:9/callback", state="s1")
    code = parse_qs(urlsplit(consent(url)).query)["code"][0]
    token = stripe.OAuth.token(api_key=DEMO_SECRET_KEY, grant_type="authorization_code", code=code)
    assert token.stripe_user_id == DEMO_CONNECTED_ACCOUNT_ID and token.access_token.startswith("sk_test_")
    acting = sdk.client_for(DEMO_SECRET_KEY, stripe_account=DEMO_CONNECTED_ACCOUNT_ID, max_network_retries=0)
    theirs = acting.v1.customers.list(params={"limit": 3}).data
    ours = sdk.client.v1.customers.list(params={"limit": 3}).data
    assert {c.id for c in theirs}.isdisjoint(c.id for c in ours)
    assert sdk.client_for(token.access_token).v1.customers.list(params={"limit": 3}).data[0].id == theirs[0].id
    stripe.OAuth.deauthorize(api_key=DEMO_SECRET_KEY, stripe_user_id=DEMO_CONNECTED_ACCOUNT_ID)
    with pytest.raises(stripe.PermissionError):
        acting.v1.customers.list()
    with pytest.raises(stripe.AuthenticationError):
        sdk.client_for(token.access_token, max_network_retries=0).v1.customers.list()
