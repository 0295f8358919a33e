"""The fields of the Stripe objects the pulls load, with their types: what tenants' field mappings may name, and
where the warehouse's column types come from (https://docs.stripe.com/api: each object's attributes, as of the
pinned API version). Amounts are integer minor units (``number``: exact decimal columns). Nested list objects
arrive as plain lists (``events.flatten_lists``): an invoice's ``lines`` and a subscription's ``items`` are child
tables. ``metadata`` is free-form: a JSON column, like every other list."""

from __future__ import annotations

from providers.kit.streams import fields_of

_ADDRESS = "city country line1 line2 postal_code state"

RECORD_FIELDS: dict[str, dict[str, str]] = {
    "customers": fields_of(
        "string: id object name email phone description currency invoice_prefix tax_exempt default_source",
        "number: balance created next_invoice_sequence",
        "boolean: livemode delinquent deleted",
        f"string of address: {_ADDRESS}",
        "array: preferred_locales metadata",
    ),
    "products": fields_of(
        "string: id object name description default_price type unit_label url tax_code statement_descriptor",
        "number: created updated",
        "boolean: active livemode shippable deleted",
        "array: images marketing_features metadata",
    ),
    "prices": fields_of(
        "string: id object product currency type nickname lookup_key billing_scheme tax_behavior unit_amount_decimal",
        "number: created unit_amount",
        "boolean: active livemode deleted",
        "string of recurring: interval usage_type",
        "number of recurring: interval_count trial_period_days",
        "array: metadata",
    ),
    "invoices": fields_of(
        "string: id object number customer customer_name customer_email currency status collection_method "
        "billing_reason description hosted_invoice_url invoice_pdf account_country account_name receipt_number",
        "number: created due_date effective_at period_start period_end amount_due amount_paid amount_remaining "
        "subtotal subtotal_excluding_tax total total_excluding_tax starting_balance ending_balance attempt_count",
        "boolean: livemode attempted auto_advance deleted",
        "number of status_transitions: finalized_at paid_at voided_at marked_uncollectible_at",
        "array: metadata discounts",
        "array: lines",
        "string of lines[]: id object invoice description currency",
        "number of lines[]: amount quantity subtotal",
        "boolean of lines[]: discountable livemode",
        "object of lines[]: period pricing parent",
        "array of lines[]: metadata discounts discount_amounts taxes",
    ),
    "payment_intents": fields_of(
        "string: id object customer currency status description latest_charge payment_method capture_method "
        "confirmation_method receipt_email statement_descriptor cancellation_reason",
        "number: created amount amount_received amount_capturable canceled_at",
        "boolean: livemode",
        "array: payment_method_types metadata",
    ),
    "charges": fields_of(
        "string: id object customer currency status description payment_intent payment_method balance_transaction "
        "receipt_url failure_code failure_message",
        "number: created amount amount_captured amount_refunded",
        "boolean: livemode paid captured refunded disputed",
        "string of billing_details: name email phone",
        "array: refunds metadata",
    ),
    "refunds": fields_of(
        "string: id object charge payment_intent currency status reason balance_transaction receipt_number",
        "number: created amount",
        "array: metadata",
    ),
    "subscriptions": fields_of(
        "string: id object customer currency status collection_method description latest_invoice "
        "default_payment_method",
        "number: created start_date billing_cycle_anchor cancel_at canceled_at ended_at trial_start trial_end "
        "days_until_due",
        "boolean: livemode cancel_at_period_end",
        "array: metadata discounts default_tax_rates",
        "array: items",
        "string of items[]: id object subscription",
        "number of items[]: created quantity current_period_start current_period_end",
        "object of items[]: price plan",
        "array of items[]: metadata tax_rates discounts",
    ),
    "balance_transactions": fields_of(
        "string: id object currency type reporting_category source status description balance_type",
        "number: created available_on amount fee net exchange_rate",
        "array: fee_details",
    ),
    "payouts": fields_of(
        "string: id object currency status type method description destination balance_transaction source_type "
        "failure_code statement_descriptor reconciliation_status",
        "number: created arrival_date amount",
        "boolean: livemode automatic",
        "array: metadata",
    ),
}
