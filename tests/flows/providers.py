"""Each provider's fixtures for the generic flow tests: add one entry when a provider implements a flow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from providers.google_workspace.sandbox import create_app as google_app
from providers.google_workspace.sandbox import demo_sandbox as google_sandbox
from providers.google_workspace.sandbox_credentials import DEMO_CLIENT_ID as GOOGLE_CLIENT_ID
from providers.google_workspace.sandbox_credentials import DEMO_CLIENT_SECRET as GOOGLE_CLIENT_SECRET
from providers.google_workspace.sandbox_credentials import DEMO_MAILBOX
from providers.mailchimp.sandbox_credentials import DEMO_DATACENTER
from providers.microsoft365.sandbox import create_app as microsoft_app
from providers.microsoft365.sandbox import demo_sandbox as microsoft_sandbox
from providers.microsoft365.sandbox_credentials import DEMO_CLIENT_ID as MICROSOFT_CLIENT_ID
from providers.microsoft365.sandbox_credentials import DEMO_CLIENT_SECRET as MICROSOFT_CLIENT_SECRET
from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX as MICROSOFT_MAILBOX
from providers.microsoft365.source import PAGE_SIZE as MICROSOFT_PAGE
from providers.quickbooks.sandbox import QuickBooksSandbox
from providers.quickbooks.sandbox import create_app as quickbooks_app
from providers.quickbooks.sandbox_credentials import DEMO_CLIENT_ID as QBO_CLIENT_ID
from providers.quickbooks.sandbox_credentials import DEMO_CLIENT_SECRET as QBO_CLIENT_SECRET
from providers.sandbox_kit.webhooks import WebhookSender
from providers.stripe.sandbox import DEMO_ACCOUNT_ID, demo_sandbox
from providers.stripe.sandbox import create_app as stripe_app
from providers.stripe.sandbox.wire import StripeIds
from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, XeroSandbox, create_app
from tests.flows.harness import Flows, PushCase, Started


@dataclass
class XeroFlows(Flows):
    def start(self) -> Started:
        sandbox = XeroSandbox(seed=7)
        org = sandbox.add_organisation(
            "Acme Trading", contacts=30, invoices=120, lines_per_invoice=3, payments=25, items=8
        )
        return Started(create_app(sandbox), sandbox, org)


@dataclass
class QuickBooksFlows(Flows):
    def start(self) -> Started:
        sandbox = QuickBooksSandbox(seed=7)
        realm = sandbox.add_company(
            "Acme Trading", customers=30, invoices=120, lines_per_invoice=3, payments=25, items=8
        )
        return Started(quickbooks_app(sandbox), sandbox, realm)


@dataclass
class StripeFlows(Flows):
    def start(self) -> Started:
        sandbox = demo_sandbox(seed=STRIPE_SEED)
        return Started(stripe_app(sandbox), sandbox, DEMO_ACCOUNT_ID)


@dataclass
class GoogleFlows(Flows):
    """Calendar changes come through a channel whose token is the connection's secret (Gmail's come through
    Pub/Sub, signed by Google's keys: tests/google_workspace/test_notifications.py)."""

    def start(self) -> Started:
        sandbox = google_sandbox(seed=7)
        return Started(google_app(sandbox), sandbox, DEMO_MAILBOX)

    def subscribe_webhooks(self, started: Started, url: str, secret: str) -> None:
        started.sandbox.open_channel(DEMO_MAILBOX, url, secret)

    def webhook_sender(self, started: Started) -> WebhookSender:
        sender: WebhookSender = started.sandbox.channels.sender
        return sender


@dataclass
class MicrosoftFlows(Flows):
    def start(self) -> Started:
        sandbox = microsoft_sandbox(seed=7)
        return Started(microsoft_app(sandbox), sandbox, MICROSOFT_MAILBOX.lower())

    def subscribe_webhooks(self, started: Started, url: str, secret: str) -> None:
        started.sandbox.subscribe(MICROSOFT_MAILBOX, url, secret)  # the secret is the subscription's clientState

    def webhook_sender(self, started: Started) -> WebhookSender:
        sender: WebhookSender = started.sandbox.notifications.sender
        return sender


STRIPE_SEED = 7
# The demo account's first recurring price (after its 8 products' one-time prices) and its second payment.
STRIPE_PRICE = StripeIds(STRIPE_SEED, DEMO_ACCOUNT_ID, "price").encode(8)
STRIPE_PAYMENT = StripeIds(STRIPE_SEED, DEMO_ACCOUNT_ID, "pi").encode(1)


def _stripe_invoice() -> dict[str, Any]:
    line = {"description": "Espresso machine service", "quantity": "2", "unit_amount": "45.50"}
    return {"id": "crm-invoice-1", "contact_id": "crm-contact-1", "issue_date": "2026-11-02",
            "due_date": "2026-12-02", "currency": "GBP", "lines": [line], "reference": "PO-7"}  # fmt: skip


def _meeting(title: str) -> dict[str, Any]:
    return {"id": "crm-meeting-1", "title": title, "start": {"at": "2026-12-14T10:00:00+00:00", "time_zone": "UTC"},
            "end": {"at": "2026-12-14T10:30:00+00:00", "time_zone": "UTC"},
            "attendees": [{"address": "ada@example.com", "name": "Ada Lovelace"}]}  # fmt: skip


# A mailbox provider's writes (Google Workspace, Microsoft 365): an email sent, a meeting booked and moved.
MAILBOX_PUSHES = {
    "message": PushCase(
        "messages",
        {
            "id": "crm-email-1",
            "to": [{"address": "ada@example.com", "name": "Ada Lovelace"}],
            "subject": "Your quote",
            "body_text": "Attached, as promised.",
        },
    ),
    "event": PushCase("events", _meeting("Demo"), _meeting("Demo, rescheduled"), "title"),
}


def _contact(email: str) -> dict[str, Any]:
    return {"id": "crm-contact-1", "name": "Ada Lovelace Ltd", "email": email}


def _invoice(reference: str) -> dict[str, Any]:
    line = {"description": "Analytical engine, one", "quantity": "2", "unit_amount": "150.00", "account_code": "200"}
    return {
        "id": "crm-invoice-1",
        "contact_id": "crm-contact-1",
        "issue_date": "2026-11-02",
        "due_date": "2026-12-02",
        "currency": "NZD",
        "lines": [line],
        "reference": reference,
    }


def _qbo_invoice(memo: str) -> dict[str, Any]:
    line = {"description": "Analytical engine, one", "quantity": "2", "unit_amount": "150.00", "tax_type": "TAX"}
    return {**_invoice(memo), "currency": "USD", "lines": [line]}


def _product(description: str) -> dict[str, Any]:
    return {"id": "crm-product-1", "code": "AE-1", "name": "Analytical engine", "description": description}


FLOWS: dict[str, Flows] = {
    flows.slug: flows
    for flows in (
        XeroFlows(
            "xero",
            oauth_app={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET},
            sandbox_entities={"products": "items"},
            incremental=("contacts", "invoices", "payments"),
            paged=("invoices", 1000),
            pushes={
                "contact": PushCase("contacts", _contact("ada@example.com"), _contact("ada.l@example.com"), "email"),
                "invoice": PushCase("invoices", _invoice("PO-1"), _invoice("PO-1, revised"), "reference"),
                "payment": PushCase(
                    "payments",
                    {"id": "crm-payment-1", "invoice_id": "crm-invoice-1", "amount": "100.00", "date": "2026-11-20"},
                ),
            },
            # Xero takes payments only on approved invoices.
            push_settings={"invoice_status_on_push": "AUTHORISED"},
            webhook_entity="contacts",
        ),
        QuickBooksFlows(
            "quickbooks",
            oauth_app={"client_id": QBO_CLIENT_ID, "client_secret": QBO_CLIENT_SECRET},
            sandbox_entities={"contacts": "customers", "products": "items"},
            incremental=("contacts", "invoices", "payments"),
            paged=("invoices", 1000),
            pushes={
                "contact": PushCase("contacts", _contact("ada@example.com"), _contact("ada.l@example.com"), "email"),
                "product": PushCase(
                    "products", _product("Difference engine"), _product("Analytical engine"), "description"
                ),
                "invoice": PushCase("invoices", _qbo_invoice("PO-1"), _qbo_invoice("PO-1, revised"), "reference"),
                "payment": PushCase(
                    "payments",
                    {"id": "crm-payment-1", "invoice_id": "crm-invoice-1", "amount": "100.00", "date": "2026-11-20"},
                ),
            },
            # The sandbox's income account and first item (every QuickBooks product and sales line names one).
            push_settings={"default_sales_account_code": "9", "default_item_id": "1"},
            webhook_entity="contacts",
        ),
        StripeFlows(
            "stripe",
            rejected_credentials={"secret_key": "sk_test_51VrtxDemo00000001NotARealKey9999"},
            incremental=("customers", "invoices"),
            paged=("customers", 100),
            pushes={
                "customer": PushCase("customers", _contact("ada@example.com"), _contact("ada.l@example.com"), "email"),
                "invoice": PushCase("invoices", _stripe_invoice()),
                "subscription": PushCase(
                    "subscriptions",
                    {
                        "id": "crm-sub-1",
                        "contact_id": "crm-contact-1",
                        "currency": "GBP",
                        "items": [{"price_id": STRIPE_PRICE, "quantity": 2}],
                    },
                ),
                "refund": PushCase(
                    "refunds", {"id": "crm-refund-1", "payment_id": STRIPE_PAYMENT, "amount": "1.00", "currency": "GBP"}
                ),
            },
            webhook_entity="customers",
        ),
        GoogleFlows(
            "google_workspace",
            oauth_app={"client_id": GOOGLE_CLIENT_ID, "client_secret": GOOGLE_CLIENT_SECRET},
            incremental=("messages", "events"),
            paged=("messages", 500),
            pushes=MAILBOX_PUSHES,
            webhook_entity="events",
            webhook_names_record=False,
        ),
        MicrosoftFlows(
            "microsoft365",
            oauth_app={"client_id": MICROSOFT_CLIENT_ID, "client_secret": MICROSOFT_CLIENT_SECRET},
            incremental=("messages", "events"),
            paged=("messages", MICROSOFT_PAGE),
            pushes=MAILBOX_PUSHES,
            webhook_entity="messages",
            webhook_names_record=False,
        ),
        Flows(
            "twilio",
            rejected_credentials={
                "account_sid": "AC5ef8732a3c49700934481addd5ce1659",
                "auth_token": "0badc0ffee0badc0ffee0badc0ffee00",
            },
        ),
        Flows("mailchimp", rejected_credentials={"api_key": f"0badc0ffee0badc0ffee0badc0ffee00-{DEMO_DATACENTER}"}),
    )
}
