"""Push batches: creates a provider takes many to a call (``PushSpec.batched_creates``), sent as one write.

A batch's membership is fixed before its call: each member row gets the batch's key, committed before anything is
sent, and the provider's idempotency key is derived from that key and the members. A resend (a retry after a 429
or a 5xx, or a run that died between the provider's answer and the commit of its outcomes) regroups exactly the
rows holding the key, in the same order, under the same idempotency key: the provider answers it with the first
call's answer (Xero keeps Idempotency-Key answers for a day), so nothing is created twice.

Only a row that was never sent is put into a new batch: one sent on its own before (by a run that died, or a retry)
goes on its own again, under its own key, for the same reason.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from providers.base import PushSpec
from vrtx_pipelines.db.models import PushOutbox
from vrtx_pipelines.push.outbox import CREATING, PushStatus


def new_batch_key() -> str:
    """Random, so no two batches ever share a provider idempotency key, even across reset databases."""
    return secrets.token_hex(16)


def batch_idempotency_key(connection_id: int, batch_key: str, members: Sequence[PushOutbox]) -> str:
    """The key the provider sees for the batch's call: the same for every resend of these members (and short
    enough for any provider: Xero takes 128 characters)."""
    identity = "|".join(
        [str(connection_id), batch_key, *(f"{row.id}:{row.idempotency_key}:{row.request_hash}" for row in members)]
    )
    return f"vrtx-b-{hashlib.sha256(identity.encode()).hexdigest()}"


def batch_size(spec: PushSpec, row: PushOutbox) -> int:
    """How many of this row's kind go in one call: more than one only for a create of a batched entity that was
    never sent (claimed just now for the first time, or only deferred, which gives the attempt back)."""
    if spec.push_many is None or row.operation not in CREATING or row.batch_key is not None or row.attempts > 1:
        return 1
    return spec.batch_size(row.entity_type)


def members_elsewhere(session: Session, row: PushOutbox) -> int:
    """Unfinished members of the row's batch that another run holds or that are not claimed: the batch waits for
    them rather than going out without them (a different set under the same key would not be the same call)."""
    count = session.scalar(
        select(func.count()).where(
            PushOutbox.tenant_integration_id == row.tenant_integration_id,
            PushOutbox.batch_key == row.batch_key,
            PushOutbox.status.in_(PushStatus.UNFINISHED),
            (PushOutbox.run_id != row.run_id) | PushOutbox.run_id.is_(None) | (PushOutbox.status != PushStatus.RUNNING),
        )
    )
    return int(count or 0)
