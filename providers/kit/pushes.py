"""What every provider's push handler shares: checking the write, resolving references through the links, the
tenant's push mappings over the provider's own mapping, and the outcome the core records."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from providers.base import PushOutcome, PushRequest, PushResult, PushSpec
from providers.errors import ProviderRejected
from providers.kit.client import ApiClient, ErrorWords
from vrtx_pipelines.records.canonical import CalendarEvent, OutgoingEmail, content_hash

T = TypeVar("T")


class UnlinkedReference(ProviderRejected):
    """The pushed record names a VRTX record that has no counterpart at the provider yet: final, since retrying
    cannot help until the referenced record has been pushed."""

    code = "unlinked_reference"


def key_digest(key: str) -> bytes:
    """A push's idempotency key as 32 bytes: what ids derived from it (a Message-ID, an event's key) are made of."""
    return hashlib.sha256(key.encode()).digest()


def message_id_for(key: str, mailbox: str) -> str:
    """The Internet Message-ID of the email a push sends, the same for every attempt of that push: where a mailbox
    API takes no idempotency key, a retried send first looks for the message by it and never sends twice."""
    domain = mailbox.rpartition("@")[2] or "vrtx.invalid"
    return f"<vrtx-{key_digest(key).hex()[:32]}@{domain}>"


def canonical_model(spec: PushSpec, request: PushRequest, provider: str) -> type[BaseModel]:
    """The canonical model of a write the provider takes; ``ProviderRejected`` for one it does not."""
    entity = spec.entities.get(request.entity)
    if entity is None or request.operation not in entity[1]:
        raise ProviderRejected(f"{provider} cannot {request.operation} a {request.entity}.")
    model: type[BaseModel] = entity[0]
    return model


def validated(model: type[BaseModel], request: PushRequest) -> BaseModel:
    try:
        return model.model_validate(request.payload)
    except ValidationError as exc:
        raise ProviderRejected(f"The {request.entity} is not valid: {exc.error_count()} field error(s).") from exc


def linked(request: PushRequest, entity: str, vrtx_id: str, what: str, provider: str) -> str:
    """The provider id of a referenced VRTX record (an invoice's contact), or ``UnlinkedReference``."""
    external_id = request.linked_id(entity, vrtx_id)
    if not external_id:
        raise UnlinkedReference(
            f"The {what} (VRTX id {vrtx_id}) is not linked to a {provider} {entity} yet: push the {entity} first."
        )
    return external_id


def require_link(request: PushRequest, provider: str) -> str:
    """The provider id of the record a status change (archive, approve, void ...) is about: it needs the link,
    not the record's content."""
    if not request.external_id:
        raise UnlinkedReference(
            f"The {request.entity} cannot be {request.operation}d: it is not linked to {provider} yet."
        )
    return request.external_id


def create_or_update(request: PushRequest, provider: str, create: Callable[[], T], update: Callable[[str], T]) -> T:
    """A linked record is updated (``update(external_id)``) and an unlinked one created, whatever the operation's
    name (create, update or upsert): a retried create of a record that got linked meanwhile never makes a second
    one. An ``update`` of an unlinked record is refused."""
    if request.external_id:
        return update(request.external_id)
    if request.operation == "update":
        raise UnlinkedReference(f"The {request.entity} cannot be updated: it is not linked to {provider} yet.")
    return create()


def with_overrides(element: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``element`` with the tenant's push mappings set over it: dotted paths reach into nested objects
    (``Contact.Name``), creating them when the element has none."""
    if not overrides:
        return element
    merged = copy.deepcopy(element)
    for path, value in overrides.items():
        *parents, last = path.split(".")
        target = merged
        for part in parents:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[last] = value
    return merged


def written_record(answer: Mapping[str, Any], key: str, provider: str) -> dict[str, Any]:
    """The record a write's answer holds under ``key``: the object itself, or the first of a list (Xero answers
    ``{"Contacts": [...]}``, QuickBooks ``{"Customer": {...}}``). An answer without one is refused: the write's
    result is unknown."""
    found = answer.get(key)
    record = found[0] if isinstance(found, list) and found else found
    if not isinstance(record, dict):
        raise ProviderRejected(f"{provider}'s answer has no {key} record.", status=200)
    return record


def outcome(external_id: str, model: BaseModel, raw: Mapping[str, Any], sample: Mapping[str, Any]) -> PushOutcome:
    """What the core records of an accepted write: the record as the provider holds it (``model``, its pull
    mapping), its version and hash, and a small ``sample`` of the answer for the sync log (never a secret)."""
    canonical: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    updated = canonical.get("updated_at")
    return PushOutcome(
        external_id=external_id,
        remote_version=str(updated) if updated is not None else None,
        remote_hash=content_hash(canonical),
        canonical=canonical,
        raw=raw,
        response_sample={**sample, "updated_at": updated},
    )


def batch_results(
    requests: Sequence[PushRequest],
    element: Callable[[PushRequest], dict[str, Any]],
    send: Callable[[list[dict[str, Any]]], Sequence[Mapping[str, Any]]],
    refused: Callable[[Mapping[str, Any]], ErrorWords | None],
    written: Callable[[Mapping[str, Any]], PushOutcome],
    provider: str,
) -> list[PushResult]:
    """Many writes in one call (``PushSpec.push_many``): each request's element built (one the provider's rules
    refuse is answered at once and not sent), the built ones sent together, and the provider's answer to each read
    back in order: its refusal in its own words (``refused``), else the record written. An answer that does not hold
    one record per element is refused whole: which writes it made is unknown, and a retry under the same key would
    only replay it."""
    results: list[PushResult | None] = [None] * len(requests)
    elements: list[dict[str, Any]] = []
    sent: list[int] = []
    for index, request in enumerate(requests):
        try:
            elements.append(element(request))
        except ProviderRejected as exc:
            results[index] = exc
        else:
            sent.append(index)
    if elements:
        answers = send(elements)
        if len(answers) != len(elements):
            raise ProviderRejected(f"{provider} answered {len(answers)} records to {len(elements)} writes.", status=200)
        for index, answer in zip(sent, answers, strict=True):
            words = refused(answer)
            if words is None:
                results[index] = written(answer)
            else:
                message = words.message or f"{provider} refused the {requests[index].entity}."
                results[index] = ProviderRejected(message, status=200, details=list(words.details))
    return [result for result in results if result is not None]


def mailbox_pushes(
    provider: str,
    send: Callable[[ApiClient, PushRequest], PushOutcome],
    meeting: Callable[[ApiClient, PushRequest], PushOutcome],
) -> PushSpec:
    """The writes of a mailbox and calendar provider (Google Workspace, Microsoft 365): an email sent through the
    mailbox (``send``), a meeting booked, moved or cancelled (``meeting``)."""

    def push(client: ApiClient, request: PushRequest) -> PushOutcome:
        model: type[BaseModel] = canonical_model(spec, request, provider)
        if request.operation != "cancel":  # a cancel needs the link, not the record
            validated(model, request)
        return send(client, request) if request.entity == "message" else meeting(client, request)

    spec = PushSpec(
        entities={
            "message": (OutgoingEmail, frozenset({"create"})),
            "event": (CalendarEvent, frozenset({"create", "update", "upsert", "cancel"})),
        },
        push=push,
    )
    return spec
