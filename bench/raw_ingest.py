"""The webhook-ingest bench's baseline: a conventional receiver (one transaction per delivery) as a bare Starlette app.

``POST /ingest`` checks ``x-xero-signature`` (HMAC-SHA256 over the raw body, constant-time compare) with a key it
already holds, and runs one ``INSERT ... ON CONFLICT DO NOTHING`` through a SQLAlchemy core connection pool, on
the thread pool like the platform's route. No tenant lookup, no JSON parsing, no secret decryption, no framework
beyond Starlette. ``GET /ping`` answers an empty 200: the load generator's ceiling on this machine.
Served by uvicorn with the same settings as the platform: ``uvicorn --factory raw_ingest:create_app``.
Environment: ``RAW_INGEST_DATABASE_URL``, ``RAW_INGEST_KEY``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

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


def create_app() -> Starlette:
    engine = create_engine(os.environ["RAW_INGEST_DATABASE_URL"], pool_size=10, max_overflow=10)
    key = os.environ["RAW_INGEST_KEY"].encode()

    def store(body: bytes) -> None:
        # The body's hash is the event id: every distinct delivery is a real insert, a replay is dropped.
        with engine.begin() as conn:
            conn.execute(INSERT, {"event_id": hashlib.sha256(body).hexdigest(), "payload": body.decode()})

    async def ingest(request: Request) -> Response:
        body = await request.body()
        try:
            sent = base64.b64decode(request.headers.get("x-xero-signature", ""), validate=True)
        except ValueError:
            return Response(status_code=401)
        if not hmac.compare_digest(sent, hmac.new(key, body, hashlib.sha256).digest()):
            return Response(status_code=401)
        await run_in_threadpool(store, body)
        return Response(status_code=200)

    async def ping(_request: Request) -> Response:
        return Response(status_code=200)

    return Starlette(routes=[Route("/ingest", ingest, methods=["POST"]), Route("/ping", ping)])
