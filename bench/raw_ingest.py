"""The webhook benches' baseline: a conventional receiver (one transaction per delivery) as a bare Starlette app.

``POST /ingest`` checks the delivery's signature with a key it already holds (``RAW_INGEST_SIGNATURE``: ``xero``,
the default, ``x-xero-signature``: base64 HMAC-SHA256 of the raw body; ``stripe``, ``Stripe-Signature: t=...,v1=...``:
hex HMAC-SHA256 of ``"{t}.{body}"``, any v1, 300 s tolerance; ``google_workspace``, the provider's own check of a
Pub/Sub push's OIDC token (``RAW_INGEST_APP``: its audience and service account; the keys at
``RAW_INGEST_JWKS_URL``) or of a Calendar channel's token; ``microsoft365``, no signature: every notification's
``clientState`` in the body is the key, the provider's own check; constant-time compares), and runs one
``INSERT ... ON CONFLICT DO NOTHING`` through a SQLAlchemy core connection pool, on the thread pool like the
platform's route. No tenant lookup, no JSON parsing, no secret decryption, no framework beyond Starlette.
A receiver whose provider proves the URL first (``HANDSHAKES``: Graph's ``?validationToken=``, echoed as
``text/plain``) answers that before any check, as the platform's route does.
``GET /ping`` answers an empty 200: the load generator's ceiling on this machine.
Served by uvicorn with the same settings as the platform: ``uvicorn --factory raw_ingest:create_app``.
Environment: ``RAW_INGEST_DATABASE_URL``, ``RAW_INGEST_KEY``, ``RAW_INGEST_SIGNATURE``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any

from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS raw_webhook_inbox (id bigserial PRIMARY KEY, provider_event_id varchar(200) "
    "NOT NULL UNIQUE, payload jsonb NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"
)
INSERT = text(
    "INSERT INTO raw_webhook_inbox (provider_event_id, payload) VALUES (:event_id, CAST(:payload AS jsonb)) "
    "ON CONFLICT DO NOTHING"
)


def xero_signed(request: Request, body: bytes, key: bytes) -> bool:
    try:
        sent = base64.b64decode(request.headers.get("x-xero-signature", ""), validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(sent, hmac.new(key, body, hashlib.sha256).digest())


def stripe_signed(request: Request, body: bytes, key: bytes) -> bool:
    pairs = [item.split("=", 1) for item in request.headers.get("stripe-signature", "").split(",") if "=" in item]
    stamps = [value for name, value in pairs if name == "t"]
    if not stamps or not stamps[0].isdigit() or abs(time.time() - int(stamps[0])) > 300:
        return False
    expected = hmac.new(key, stamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(value, expected) for name, value in pairs if name == "v1")


def google_signed(request: Request, body: bytes, key: bytes) -> bool:
    """The platform's own check of Google's deliveries (a channel's token, or a Pub/Sub push's OIDC token), against
    the key set fetched once at start from RAW_INGEST_JWKS_URL."""
    from providers.base import WebhookProof
    from providers.google_workspace.webhooks import verify

    headers = {name.lower(): value for name, value in request.headers.items()}
    return verify(body, headers, WebhookProof(key.decode(), _GOOGLE[0], _GOOGLE[1]))


_GOOGLE: list[Any] = [None, {}]  # the key set and the app's push configuration, set by create_app


def microsoft_signed(request: Request, body: bytes, key: bytes) -> bool:
    """Graph signs nothing: each notification's ``clientState`` (in the body) is the key; the provider's own check."""
    from providers.base import WebhookProof
    from providers.microsoft365.webhooks import verify

    return verify(body, dict(request.headers), WebhookProof(key.decode()))


def microsoft_handshake(request: Request) -> Response | None:
    from providers.microsoft365.webhooks import handshake

    answer = handshake(dict(request.query_params), dict(request.headers))
    return None if answer is None else Response(answer.body, answer.status, media_type=answer.content_type)


SIGNATURES = {"xero": xero_signed, "stripe": stripe_signed, "google_workspace": google_signed,
              "microsoft365": microsoft_signed}  # fmt: skip
# A provider's proof that the URL is the subscriber's, answered before any signature check (the others have none).
HANDSHAKES = {"microsoft365": microsoft_handshake}


def create_app() -> Starlette:
    engine = create_engine(os.environ["RAW_INGEST_DATABASE_URL"], pool_size=10, max_overflow=10)
    key = os.environ["RAW_INGEST_KEY"].encode()
    signed = SIGNATURES[os.environ.get("RAW_INGEST_SIGNATURE", "xero")]
    handshake = HANDSHAKES.get(os.environ.get("RAW_INGEST_SIGNATURE", "xero"))
    if signed is google_signed:  # fetched here, not on the first delivery's path
        import httpx

        _GOOGLE[:] = [httpx.get(os.environ["RAW_INGEST_JWKS_URL"]).json(), json.loads(os.environ["RAW_INGEST_APP"])]

    def store(body: bytes) -> None:
        # The body's hash is the event id: every distinct delivery is a real insert, a replay is dropped.
        with engine.begin() as conn:
            conn.execute(INSERT, {"event_id": hashlib.sha256(body).hexdigest(), "payload": body.decode()})

    async def ingest(request: Request) -> Response:
        if handshake is not None and (answer := handshake(request)) is not None:
            return answer
        body = await request.body()
        if not signed(request, body, key):
            return Response(status_code=401)
        if not body:  # a notification told in its headers (Google's channels): they are what is stored
            body = json.dumps({k: v for k, v in request.headers.items() if k.startswith("x-goog-")}).encode()
        await run_in_threadpool(store, body)
        return Response(status_code=200)

    async def ping(_request: Request) -> Response:
        return Response(status_code=200)

    return Starlette(routes=[Route("/ingest", ingest, methods=["POST"]), Route("/ping", ping)])
