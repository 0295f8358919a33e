"""How the core pushes to QuickBooks: one canonical write -> one POST through ``QuickBooksClient``.

API docs: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer (and invoice,
payment, item): create is ``POST /{entity}``; an update is the same POST with ``Id``, the ``SyncToken`` and
``"sparse": true``; ``?operation=delete`` and ``?operation=void`` name the Id and SyncToken only.

- A linked record is updated, an unlinked one created (the kit's ``create_or_update``). The SyncToken is the one
  VRTX stored with the record (``PushRequest.version``), else the current one, read first. A stale one is
  QuickBooks' Fault 5010: raised as ``ProviderConflict``, so the core fetches the record, re-plans the push
  through the two-way conflict policy and retries once; a second stale answer is the push's failure.
- Customers and items are never deleted in QuickBooks: ``archive`` makes them inactive. Invoices are voided or
  deleted; payments deleted.
- Every write sends ``requestid`` (the push's idempotency key): a resend after a crash is answered with the first
  write's answer, and nothing is made twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from providers.base import PushOutcome, PushRequest, PushSpec
from providers.errors import ProviderConflict, ProviderRejected
from providers.kit import pushes
from providers.kit.client import ApiClient
from vrtx_pipelines.records.canonical import Contact, Invoice, InvoicePayment, Product

from .client import is_stale, reference
from .mappers import to_contact, to_invoice, to_payment, to_product
from .push_mappers import customer_body, invoice_body, item_body, payment_body

NAME = "QuickBooks"
# Push entity -> (QuickBooks entity, its path, its pull mapper).
ENTITIES: dict[str, tuple[str, str, Callable[[Mapping[str, Any]], BaseModel]]] = {
    "contact": ("Customer", "customer", to_contact),
    "invoice": ("Invoice", "invoice", to_invoice),
    "payment": ("Payment", "payment", to_payment),
    "product": ("Item", "item", to_product),
}
# (entity, operation) -> the query the write sends (None: a sparse update making the name inactive).
_STATUS_WRITES: dict[tuple[str, str], Mapping[str, str] | None] = {
    ("contact", "archive"): None,
    ("product", "archive"): None,
    ("invoice", "void"): {"operation": "void"},
    ("invoice", "delete"): {"operation": "delete"},
    ("payment", "delete"): {"operation": "delete"},
}


def push(client: ApiClient, request: PushRequest) -> PushOutcome:
    model = pushes.canonical_model(PUSHES, request, NAME)
    entity, path, mapper = ENTITIES[request.entity]
    if (request.entity, request.operation) in _STATUS_WRITES:
        return _change_status(client, request)
    record = pushes.validated(model, request)
    body = pushes.with_overrides(_body(client, record, request), request.overrides)
    answer = pushes.create_or_update(
        request,
        NAME,
        create=lambda: _write(client, path, body, request),
        update=lambda linked: _write(
            client, path, {**body, **_version(client, path, entity, linked, request)}, request
        ),
    )
    return _outcome(answer, entity, mapper)


def _body(client: ApiClient, record: BaseModel, request: PushRequest) -> dict[str, Any]:
    if isinstance(record, Contact):
        return customer_body(record)
    if isinstance(record, Invoice):
        customer = pushes.linked(request, "contact", record.contact_id, "invoice's customer", NAME)
        return invoice_body(record, customer, request.settings)
    if isinstance(record, Product):
        return item_body(record, request.settings)
    assert isinstance(record, InvoicePayment)
    invoice = pushes.linked(request, "invoice", record.invoice_id, "payment's invoice", NAME)
    # A payment names the invoice's customer too: QuickBooks refuses one without it.
    payer = reference(_read(client, "invoice", "Invoice", invoice).get("CustomerRef"))
    if payer is None:
        raise ProviderRejected(f"QuickBooks invoice {invoice} names no customer.")
    return payment_body(record, invoice, payer)


def _change_status(client: ApiClient, request: PushRequest) -> PushOutcome:
    entity, path, mapper = ENTITIES[request.entity]
    linked = pushes.require_link(request, NAME)
    query = _STATUS_WRITES[(request.entity, request.operation)]
    body: dict[str, Any] = _version(client, path, entity, linked, request)
    if query is None:
        body.update(sparse=True, Active=False)
    answer = _write(client, path, body, request, params=query)
    record = pushes.written_record(answer, entity, NAME)
    if record.get("status") == "Deleted":  # QuickBooks answers a delete with the tombstone only
        return PushOutcome(external_id=linked, response_sample={"Id": linked, "status": "Deleted"})
    return _outcome(answer, entity, mapper)


def _version(client: ApiClient, path: str, entity: str, linked: str, request: PushRequest) -> dict[str, Any]:
    """What an update or a status change names: the record's Id and the SyncToken it is based on."""
    version = request.version or str(_read(client, path, entity, linked).get("SyncToken") or "")
    return {"Id": linked, "SyncToken": version, "sparse": True}


def _read(client: ApiClient, path: str, entity: str, record_id: str) -> dict[str, Any]:
    found = client.get(f"{path}/{record_id}").get(entity)
    if not isinstance(found, dict):
        raise ProviderRejected(f"QuickBooks has no {entity} {record_id}.")
    return found


def _write(
    client: ApiClient, path: str, body: Mapping[str, Any], request: PushRequest, params: Mapping[str, str] | None = None
) -> dict[str, Any]:
    try:
        return client.write("POST", path, body, idempotency_key=request.idempotency_key, params=params)
    except ProviderRejected as exc:
        if is_stale(exc):
            raise ProviderConflict(exc.message, status=exc.status, provider_code=exc.provider_code) from exc
        raise


def _outcome(answer: Mapping[str, Any], entity: str, mapper: Callable[[Mapping[str, Any]], BaseModel]) -> PushOutcome:
    record = pushes.written_record(answer, entity, NAME)
    sample = {"Id": str(record["Id"]), "SyncToken": str(record.get("SyncToken", ""))}
    return pushes.outcome(str(record["Id"]), mapper(record), record, sample)


PUSHES = PushSpec(
    entities={
        "contact": (Contact, frozenset({"create", "update", "upsert", "archive"})),
        "invoice": (Invoice, frozenset({"create", "update", "upsert", "void", "delete"})),
        "payment": (InvoicePayment, frozenset({"create", "delete"})),
        "product": (Product, frozenset({"create", "update", "upsert", "archive"})),
    },
    push=push,
)
