"""Domain events for the CRM (the seed's IntegrationConnected, IntegrationDisconnected, ...).

Events are written in the same transaction as the change they describe, so none is lost or invented.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from vrtx_pipelines.db.models import OutboundEvent


class EventType(StrEnum):
    INTEGRATION_CONNECTED = "integration.connected"
    INTEGRATION_DISCONNECTED = "integration.disconnected"
    INTEGRATION_ERROR = "integration.error"
    INTEGRATION_EXPIRED = "integration.expired"
    SYNC_COMPLETED = "sync.completed"
    SYNC_FAILED = "sync.failed"
    PUSH_FINISHED = "push.finished"
    RECORDS_CHANGED = "records.changed"
    # A change made on both sides that the conflict policy could not settle: its push is held until resolved.
    CONFLICT_DETECTED = "conflict.detected"
    # A conflict settled by the policy or through the API: carries the record the CRM should now hold.
    CONFLICT_RESOLVED = "conflict.resolved"


def record_event(
    session: Session, tenant_id: str, event_type: EventType, slug: str | None, payload: dict[str, Any]
) -> OutboundEvent:
    event = OutboundEvent(tenant_id=tenant_id, event_type=event_type.value, integration_slug=slug, payload=payload)
    session.add(event)
    return event
