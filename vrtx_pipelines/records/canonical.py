"""Canonical VRTX entities: what the CRM reads and pushes, whichever provider is behind them.

Provider mappers translate to and from these; nothing here knows a provider.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def record_line(data: Mapping[str, Any]) -> str:
    """Canonical data as one line of JSON whose SHA-256 is its ``content_hash``."""
    return json.dumps(data, sort_keys=True, default=str)


def content_hash(data: Mapping[str, Any]) -> str:
    """What tells a changed record from an unchanged one: pulls, pushes and the webhook fast path all hash
    canonical data this way, so the same content read back by any of them is no change."""
    return hashlib.sha256(record_line(data).encode()).hexdigest()


class CanonicalModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="The VRTX id, when the record exists in the CRM.")
    external_id: str | None = Field(default=None, description="The provider's id, when linked.")
    updated_at: datetime | None = None
    # Fields of the CRM that have no canonical counterpart, filled by the tenant's field mappings
    # (``custom_fields.<name>``). None rather than {} when unused: records without mappings keep their hash.
    custom_fields: dict[str, Any] | None = Field(
        default=None, description="CRM custom fields set or read by the tenant's field mappings."
    )
    # The provider's version of the record where writes must name it (QuickBooks' SyncToken): a push of an update
    # sends the version it was based on, and the provider refuses it when the record changed since.
    version: str | None = Field(default=None, description="The provider's version of the record, if it keeps one.")
    # True when the provider deleted the record, whichever way it says so (QuickBooks' change data capture
    # tombstones, Stripe's ``*.deleted`` events): the one flag the records store and API read. None, not False,
    # otherwise, so records of providers that never delete keep their hash.
    deleted: bool | None = Field(default=None, description="The provider deleted this record.")


class Deleted(CanonicalModel):
    """A deleted record of any entity of which the provider says no more than its id and time (QuickBooks' change
    data capture lists it as ``status: Deleted``): ``deleted`` as on every canonical record, with nothing else to
    show. A provider whose deletion carries the whole record (Stripe's ``*.deleted`` events) maps it as usual, with
    ``deleted=True``. Mappers return it for any entity."""

    deleted: Literal[True] = True


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Contact(CanonicalModel):
    name: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None
    company: str | None = None
    tax_number: str | None = None
    addresses: list[Address] = Field(default_factory=list)
    is_customer: bool = True
    is_supplier: bool = False
    archived: bool = False


class InvoiceLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str
    quantity: Decimal = Decimal("1")
    unit_amount: Decimal
    account_code: str | None = None
    tax_type: str | None = None
    item_code: str | None = None
    line_amount: Decimal | None = None


class Invoice(CanonicalModel):
    number: str | None = None
    contact_id: str
    status: Literal["draft", "submitted", "authorised", "paid", "voided", "deleted"] = "draft"
    issue_date: date
    due_date: date | None = None
    currency: str = Field(min_length=3, max_length=3)
    lines: list[InvoiceLine]
    subtotal: Decimal | None = None
    total_tax: Decimal | None = None
    total: Decimal | None = None
    amount_due: Decimal | None = None
    reference: str | None = None
    payment_url: str | None = Field(
        default=None, description="Where the customer pays it: the provider's hosted invoice page or payment link."
    )


class InvoicePayment(CanonicalModel):
    invoice_id: str
    amount: Decimal
    date: date
    currency: str | None = None
    account_code: str | None = None
    reference: str | None = None


class Product(CanonicalModel):
    code: str
    name: str
    description: str | None = None
    unit_price: Decimal | None = None
    is_sold: bool = True
    is_purchased: bool = False


class TaxRate(CanonicalModel):
    name: str
    tax_type: str
    rate_percent: Decimal
    is_active: bool = True


class Account(CanonicalModel):
    code: str | None = None
    name: str
    type: str
    is_active: bool = True


class SubscriptionItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price_id: str
    product_id: str | None = None
    quantity: int = 1
    unit_amount: int | None = Field(default=None, description="Per unit and interval, in minor units.")
    interval: Literal["day", "week", "month", "year"] = "month"
    interval_count: int = 1


class Subscription(CanonicalModel):
    """A recurring charge of a customer: what it is for (``plan``), where it stands, its current period and its
    monthly recurring revenue in integer minor units of its currency (JPY has none: yen)."""

    contact_id: str
    plan: str = Field(
        default="", description="What is subscribed to: the first item's price nickname, else its product."
    )
    status: Literal[
        "incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid", "paused"
    ] = "active"
    currency: str = Field(min_length=3, max_length=3)
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    mrr: int = Field(default=0, description="Monthly recurring revenue in minor units: 0 once canceled.")
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    items: list[SubscriptionItem] = Field(default_factory=list)


class Refund(CanonicalModel):
    """Money given back on a payment: ``payment_id`` is the provider's payment (Stripe: a payment intent or charge);
    ``amount`` None refunds what is left of it."""

    payment_id: str
    amount: Decimal | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    status: str | None = None
    reason: str | None = None


# The entities of an accounting system (Xero, QuickBooks) and their models, under the pull names every such
# provider uses: mappings saved for one mean the same for the other.
ACCOUNTING_MODELS: dict[str, type[CanonicalModel]] = {
    "contacts": Contact,
    "invoices": Invoice,
    "payments": InvoicePayment,
    "products": Product,
    "tax_rates": TaxRate,
    "accounts": Account,
}


class Participant(BaseModel):
    """A person on a message: the address as the provider wrote it, and the display name if one was given."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=3, max_length=320)
    name: str | None = Field(default=None, max_length=500)


class Attachment(BaseModel):
    """An attachment's description; its content stays with the provider."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(default="", max_length=500)
    mime_type: str = Field(default="application/octet-stream", max_length=255)
    size: int = Field(default=0, ge=0)
    attachment_id: str | None = Field(default=None, description="The provider's id, to fetch the content.")


class EmailMessage(CanonicalModel):
    """One email in a connected mailbox, as the CRM's activity timeline shows it. ``direction`` is seen from the
    mailbox: ``outbound`` when the mailbox sent it. Bodies are present only where the tenant chose to keep them
    (encrypted at rest); otherwise None."""

    mailbox: str = Field(description="The connected mailbox's address.")
    thread_id: str | None = None
    message_id: str | None = Field(default=None, description="The RFC 5322 Message-ID header.")
    in_reply_to: str | None = None
    sender: Participant | None = None
    to: list[Participant] = Field(default_factory=list)
    cc: list[Participant] = Field(default_factory=list)
    bcc: list[Participant] = Field(default_factory=list)
    subject: str = ""
    sent_at: datetime | None = None
    direction: Literal["inbound", "outbound"] = "inbound"
    snippet: str = ""
    labels: list[str] = Field(default_factory=list)
    body_text: str | None = None
    body_html: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)


class Attendee(Participant):
    """An invitee of a calendar event and their answer."""

    response_status: Literal["needs_action", "accepted", "declined", "tentative"] = "needs_action"
    organizer: bool = False
    optional: bool = False


class EventTime(BaseModel):
    """A start or end: an instant with the zone it was set in, or a whole ``day`` for all-day events (whose end
    day is exclusive, as in iCalendar)."""

    model_config = ConfigDict(extra="forbid")

    at: datetime | None = None
    time_zone: str | None = Field(default=None, max_length=100)
    day: date | None = None


class CalendarEvent(CanonicalModel):
    """A meeting on a connected calendar. A recurring meeting is one record, its series, with ``recurrence``
    rules; an instance changed on its own is a record of its own with ``recurring_event_id`` naming the series."""

    calendar_id: str = "primary"
    title: str = ""
    description: str | None = None
    location: str | None = None
    organizer: Participant | None = None
    attendees: list[Attendee] = Field(default_factory=list)
    start: EventTime
    end: EventTime
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    conference_url: str | None = None
    html_link: str | None = None
    recurrence: list[str] = Field(default_factory=list)
    recurring_event_id: str | None = None
    ical_uid: str | None = None


class OutgoingEmail(CanonicalModel):
    """An email the CRM sends through a connected mailbox (pushed as ``message``). ``reply_to`` names the message
    answered (its VRTX id or the provider's id): the reply then threads with it at the provider and in mail
    clients. At least one recipient and one body."""

    to: list[Participant] = Field(min_length=1, max_length=100)
    cc: list[Participant] = Field(default_factory=list, max_length=100)
    bcc: list[Participant] = Field(default_factory=list, max_length=100)
    subject: str = Field(default="", max_length=998)
    body_text: str | None = Field(default=None, max_length=5_000_000)
    body_html: str | None = Field(default=None, max_length=5_000_000)
    reply_to: str | None = Field(default=None, max_length=255)
    sender_name: str | None = Field(default=None, max_length=200, description="The display name on From.")

    @model_validator(mode="after")
    def _has_a_body(self) -> OutgoingEmail:
        if self.body_text is None and self.body_html is None:
            raise ValueError("an email needs body_text or body_html")
        return self


# The entities of a mailbox and calendar provider (Google Workspace, Microsoft 365), under the pull names both use.
ACTIVITY_MODELS: dict[str, type[CanonicalModel]] = {
    "messages": EmailMessage,
    "events": CalendarEvent,
}
