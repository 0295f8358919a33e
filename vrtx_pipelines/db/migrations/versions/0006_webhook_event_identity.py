"""webhook inbox rows keyed on the event's normalised identity

Xero sends no event id, and its inbox rows were keyed by a hash over the raw ``eventDateUtc`` text, so one event
written two ways (``...000`` and ``...000Z``) was two rows. The core now keys such events on organisation, event
type, resource and the parsed instant (``vrtx_pipelines.webhooks.inbox.event_identity``). The rows recent enough to
meet a redelivery (Xero retries for a day; older events are refused as stale) are re-keyed with that formula, so a
retry of an event stored before this revision is still a duplicate. A row whose new key another row of its
connection took first (one of the re-formatted duplicates this revision fixes) keeps its old key: nothing is
deleted. Downgrade leaves the keys as they are (the raw date text the old keys hashed is not stored).

Revision ID: 0006
Revises: 0005_marketplace
Create Date: 2026-12-03
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005_marketplace"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Xero retries for 24 hours and events older than 25 are refused: three days covers every row a retry can meet.
REKEY_WINDOW = timedelta(days=3)
# The one provider whose events carried a derived id before this revision.
DERIVED_ID_PROVIDERS = ("xero",)


def identity(payload: Mapping[str, Any]) -> str | None:
    """``event_identity`` of the row's event as of this revision, from what the row stores. Frozen here on purpose:
    a migration must give the same result whatever the code becomes."""
    occurred = payload.get("occurred_at")
    if not occurred or not payload.get("event_type"):
        return None
    instant = datetime.fromisoformat(occurred).astimezone(UTC).isoformat(timespec="microseconds")
    parts = (payload.get("external_tenant_id") or "", payload["event_type"], payload.get("external_id") or "")
    return hashlib.sha256("|".join([*(str(p).casefold() for p in parts), instant]).encode()).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT w.id, w.tenant_integration_id, w.provider_event_id, w.payload FROM webhook_inbox w "
            "JOIN tenant_integrations t ON t.id = w.tenant_integration_id "
            "JOIN integrations i ON i.id = t.integration_id "
            "WHERE i.slug IN :slugs AND w.received_at >= :since ORDER BY w.id"
        ).bindparams(sa.bindparam("slugs", expanding=True), sa.bindparam("since", type_=sa.DateTime(timezone=True))),
        {"slugs": list(DERIVED_ID_PROVIDERS), "since": datetime.now(UTC) - REKEY_WINDOW},
    ).all()
    taken = {(connection_id, key) for _, connection_id, key, _ in rows}
    changes = []
    for row_id, connection_id, key, payload in rows:
        new = identity(payload if isinstance(payload, dict) else json.loads(payload))
        if new is None or new == key or (connection_id, new) in taken:
            continue
        taken.discard((connection_id, key))
        taken.add((connection_id, new))
        changes.append({"row_id": row_id, "new_key": new})
    if changes:
        bind.execute(sa.text("UPDATE webhook_inbox SET provider_event_id = :new_key WHERE id = :row_id"), changes)


def downgrade() -> None:
    pass
