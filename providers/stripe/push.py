"""How the core pushes to Stripe: each canonical write -> Stripe's calls through ``StripeClient``, every one under
an Idempotency-Key derived from the push's own key (one key per call: the same push retried replays each call's
first answer; a key reused with a different body is Stripe's ``idempotency_error``, the push's failure).

API docs: https://docs.stripe.com/api/customers/create, .../invoices/create, .../invoiceitems/create,
.../invoices/finalize, .../invoices/send, .../invoices/void, .../payment_links/create, .../subscriptions/create,
.../subscriptions/cancel, .../refunds/create.

- ``customer`` create/update/upsert: the kit's ``create_or_update``.
- ``invoice`` create: a draft ``send_invoice`` invoice, an invoice item per line, finalized, then sent; ``void``
  voids the linked one; ``collect`` asks Stripe to collect a CRM invoice through a Payment Link for its amount due
  (a one-off price): the link is what the CRM invoice is linked to, its URL comes back as the invoice's
  ``payment_url``, and the payment made through it (its metadata names the link) arrives as an InvoicePayment
  whose ``invoice_id`` is the link.
- ``subscription`` create (items are Stripe prices) and ``cancel``; ``refund`` create on a payment (a payment
  intent or charge id, or a linked one).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from providers.base import PushOutcome, PushRequest, PushSpec
from providers.errors import ProviderRejected
from providers.kit import pushes
from providers.kit.client import ApiClient
from vrtx_pipelines.records.canonical import Contact, Invoice, Refund, Subscription

from .mappers import PAYMENT_LINK_KEY, to_contact, to_invoice, to_subscription
from .push_mappers import (
    customer_params,
    invoice_params,
    line_params,
    payment_link_price,
    refund_params,
    subscription_params,
)
from .webhooks import flatten_lists

PROVIDER = "Stripe"


def push(client: ApiClient, request: PushRequest) -> PushOutcome:
    model = pushes.canonical_model(PUSHES, request, PROVIDER)
    operation = (request.entity, request.operation)
    if operation == ("invoice", "void"):
        invoice_id = pushes.require_link(request, PROVIDER)
        return _invoice(_write(client, request, f"invoices/{invoice_id}/void", {}, "void"))
    if operation == ("subscription", "cancel"):
        subscription_id = pushes.require_link(request, PROVIDER)
        return _subscription(_write(client, request, f"subscriptions/{subscription_id}", {}, "cancel", "DELETE"))
    record = _valid(model, request)
    if isinstance(record, Contact):
        params = pushes.with_overrides(customer_params(record), request.overrides)
        written = pushes.create_or_update(
            request, PROVIDER, create=lambda: _write(client, request, "customers", params),
            update=lambda linked: _write(client, request, f"customers/{linked}", params),
        )  # fmt: skip
        return _outcome(written, to_contact(flatten_lists(written)))
    if isinstance(record, Invoice) and request.operation == "collect":
        return _collect(client, request, record)
    if isinstance(record, Invoice):
        return _create_invoice(client, request, record)
    if isinstance(record, Subscription):
        customer = pushes.linked(request, "customer", record.contact_id, "subscription's customer", PROVIDER)
        params = pushes.with_overrides(subscription_params(record, customer), request.overrides)
        return _subscription(_write(client, request, "subscriptions", params))
    assert isinstance(record, Refund)
    payment = record.payment_id
    if not payment.startswith(("pi_", "ch_")):
        payment = pushes.linked(request, "payment_intent", payment, "refund's payment", PROVIDER)
    params = pushes.with_overrides(refund_params(record, payment, None), request.overrides)
    written = _write(client, request, "refunds", params)
    refund = Refund(external_id=written["id"], payment_id=payment, amount=record.amount, currency=record.currency,
                    status=written.get("status"), reason=written.get("reason"))  # fmt: skip
    return _outcome(written, refund)


def _create_invoice(client: ApiClient, request: PushRequest, invoice: Invoice) -> PushOutcome:
    if request.external_id:
        raise ProviderRejected("A Stripe invoice cannot be changed once it is finalized: void it and push a new one.")
    customer = pushes.linked(request, "customer", invoice.contact_id, "invoice's customer", PROVIDER)
    draft = _write(
        client, request, "invoices", pushes.with_overrides(invoice_params(invoice, customer), request.overrides)
    )
    for n, line in enumerate(invoice.lines):
        _write(
            client,
            request,
            "invoiceitems",
            _checked(line_params, line, customer, draft["id"], invoice.currency),
            f"line-{n}",
        )
    _write(client, request, f"invoices/{draft['id']}/finalize", {}, "finalize")
    return _invoice(_write(client, request, f"invoices/{draft['id']}/send", {}, "send"))


def _collect(client: ApiClient, request: PushRequest, invoice: Invoice) -> PushOutcome:
    """A Payment Link for the CRM invoice's amount due; its payments name the link in their metadata."""
    price = _write(client, request, "prices", _checked(payment_link_price, invoice), "price")
    vrtx = {"vrtx_invoice_id": invoice.id or ""}
    link = _write(client, request, "payment_links", {
        "line_items": [{"price": price["id"], "quantity": 1}], "metadata": vrtx,
        "payment_intent_data": {"metadata": vrtx},
    }, "link")  # fmt: skip
    link = _write(client, request, f"payment_links/{link['id']}", {
        "payment_intent_data": {"metadata": {PAYMENT_LINK_KEY: link["id"]}},
    }, "name-link")  # fmt: skip
    collected = invoice.model_copy(
        update={"external_id": link["id"], "payment_url": link["url"], "status": "authorised"}
    )
    sample = {"id": link["id"], "url": link["url"], "active": link.get("active")}
    # No raw record: the link is not an invoice a pull would map; the CRM's invoice as collected is what is kept.
    return replace(pushes.outcome(link["id"], collected, {}, sample), raw=None)


def _write(
    client: ApiClient, request: PushRequest, path: str, params: dict[str, Any], step: str = "", method: str = "POST"
) -> dict[str, Any]:
    key = f"{request.idempotency_key}:{step}" if step else request.idempotency_key
    return client.write(method, path, params, idempotency_key=key)


def _checked(build: Any, *args: Any) -> dict[str, Any]:
    try:
        params: dict[str, Any] = build(*args)
    except ValueError as exc:
        raise ProviderRejected(str(exc)) from exc
    return params


def _valid(model: type[BaseModel], request: PushRequest) -> BaseModel:
    return pushes.validated(model, request)


def _invoice(written: dict[str, Any]) -> PushOutcome:
    return _outcome(written, to_invoice(flatten_lists(written)))


def _subscription(written: dict[str, Any]) -> PushOutcome:
    return _outcome(written, to_subscription(flatten_lists(written)))


def _outcome(written: dict[str, Any], model: BaseModel) -> PushOutcome:
    sample = {"id": str(written["id"]), "object": str(written.get("object", "")), "status": written.get("status")}
    return pushes.outcome(str(written["id"]), model, flatten_lists(dict(written)), sample)


PUSHES = PushSpec(
    entities={
        "customer": (Contact, frozenset({"create", "update", "upsert"})),
        "invoice": (Invoice, frozenset({"create", "void", "collect"})),
        "subscription": (Subscription, frozenset({"create", "cancel"})),
        "refund": (Refund, frozenset({"create"})),
    },
    push=push,
)
