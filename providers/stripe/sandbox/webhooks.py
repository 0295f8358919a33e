"""Stripe webhooks from the sandbox: every recorded event, one per POST as Stripe sends them, signed with
``Stripe-Signature: t=...,v1=...`` (the provider's own ``signature_header``) at the sandbox's time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from providers.sandbox_kit.webhooks import WebhookSender
from providers.stripe.webhooks import signature_header


def new_sender(clock: Callable[[], float]) -> WebhookSender:
    def sign(body: bytes, secret: str) -> dict[str, str]:
        return {"Stripe-Signature": signature_header(body, secret, int(clock()))}

    def payload(events: list[Any], first: int, last: int) -> Any:
        return events[0]

    return WebhookSender(sign=sign, payload=payload, max_batch=1, name="stripe-sandbox-webhooks")
