"""The CRM's contacts, and the activity (messages, meetings) matched to them by address.

The CRM owns its contacts and tells the platform their addresses; activity records are indexed by their
participants' address keys (``addresses.address_key``: case, ``+tag`` and Gmail's dots do not matter). A contact's
timeline is the join of the two, so a contact added or re-addressed matches what was synced before at once, with
nothing to re-run. The index catches up by the connection's change numbers, so every path that writes records
(pulls, webhooks, pushes, sweeps) is covered without each having to remember it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.orm import Session

from vrtx_pipelines.db.locks import lock_connection
from vrtx_pipelines.db.models import (
    CanonicalRecord,
    CrmContact,
    CrmContactAddress,
    Integration,
    ParticipantIndexMark,
    RecordParticipant,
    TenantIntegration,
    utcnow,
)
from vrtx_pipelines.records.addresses import address_key
from vrtx_pipelines.records.canonical import ACTIVITY_MODELS

ACTIVITY_ENTITIES = tuple(ACTIVITY_MODELS)
MAX_ADDRESSES = 20
INDEX_BATCH = 2000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ContactIn:
    contact_id: str
    name: str
    emails: Sequence[str]


def _addresses(emails: Iterable[str]) -> dict[str, str]:
    """Address key -> the address as given, first spelling kept; what is no address raises ``ValueError``."""
    found: dict[str, str] = {}
    for email in emails:
        key = address_key(email)
        if key is None:
            raise ValueError(f"{email[:80]!r} is not an email address")
        found.setdefault(key, email.strip())
    return found


def upsert_contacts(session: Session, tenant_id: str, contacts: Sequence[ContactIn]) -> list[CrmContact]:
    """Create or replace contacts (name and every address); returns their rows in order."""
    keyed = [(contact, _addresses(contact.emails)) for contact in contacts]
    ids = [contact.contact_id for contact in contacts]
    existing = {
        row.contact_id: row
        for row in session.scalars(
            select(CrmContact).where(CrmContact.tenant_id == tenant_id, CrmContact.contact_id.in_(ids))
        )
    }
    rows = []
    for contact, addresses in keyed:
        row = existing.get(contact.contact_id)
        if row is None:
            row = existing[contact.contact_id] = CrmContact(tenant_id=tenant_id, contact_id=contact.contact_id)
            session.add(row)
        row.name = contact.name
        row.updated_at = utcnow()
        session.flush()
        session.execute(delete(CrmContactAddress).where(CrmContactAddress.contact_row_id == row.id))
        if addresses:
            session.execute(
                insert(CrmContactAddress),
                [{"contact_row_id": row.id, "tenant_id": tenant_id, "address": address, "address_key": key}
                 for key, address in addresses.items()],
            )  # fmt: skip
        rows.append(row)
    return rows


def get_contact(session: Session, tenant_id: str, contact_id: str) -> CrmContact | None:
    return session.scalar(
        select(CrmContact).where(CrmContact.tenant_id == tenant_id, CrmContact.contact_id == contact_id)
    )


def contact_addresses(session: Session, row_ids: Sequence[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {row_id: [] for row_id in row_ids}
    query = select(CrmContactAddress.contact_row_id, CrmContactAddress.address).where(
        CrmContactAddress.contact_row_id.in_(list(row_ids))
    )
    for row_id, address in session.execute(query.order_by(CrmContactAddress.id)):
        found[row_id].append(address)
    return found


def list_contacts(session: Session, tenant_id: str, after: int, limit: int) -> list[CrmContact]:
    query = select(CrmContact).where(CrmContact.tenant_id == tenant_id, CrmContact.id > after)
    return list(session.scalars(query.order_by(CrmContact.id).limit(limit)))


def delete_contact(session: Session, tenant_id: str, contact_id: str) -> bool:
    row = get_contact(session, tenant_id, contact_id)
    if row is None:
        return False
    session.execute(delete(CrmContactAddress).where(CrmContactAddress.contact_row_id == row.id))
    session.delete(row)
    return True


# --- the participants index ---------------------------------------------------------------------------------------


def participants(entity: str, data: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(role, address) of everyone on an activity record's canonical data."""
    if entity == "messages":
        sender = data.get("sender")
        if isinstance(sender, Mapping):
            yield "from", str(sender.get("address", ""))
        for role in ("to", "cc", "bcc"):
            for person in data.get(role) or []:
                if isinstance(person, Mapping):
                    yield role, str(person.get("address", ""))
    elif entity == "events":
        organizer = data.get("organizer")
        if isinstance(organizer, Mapping):
            yield "organizer", str(organizer.get("address", ""))
        for person in data.get("attendees") or []:
            if isinstance(person, Mapping):
                yield "attendee", str(person.get("address", ""))


def activity_at(entity: str, data: Mapping[str, Any]) -> datetime | None:
    """When an activity happened: a message's sending, a meeting's start (an all-day one's day)."""
    raw = data.get("sent_at") if entity == "messages" else (data.get("start") or {}).get("at")
    day = None if entity == "messages" else (data.get("start") or {}).get("day")
    try:
        if isinstance(raw, str) and raw:
            found = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return found if found.tzinfo is not None else found.replace(tzinfo=UTC)
        if isinstance(day, str) and day:
            return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        return None
    return None


def index_participants(session: Session, connection_id: int) -> int:
    """Bring the connection's participants index up to its newest change; returns the records (re)indexed. Holds
    the connection's lock, as record writes do, so it never reads a change number still being written."""
    lock_connection(session, connection_id)
    mark = session.get(ParticipantIndexMark, connection_id)
    if mark is None:
        mark = ParticipantIndexMark(tenant_integration_id=connection_id, indexed_seq=0)
        session.add(mark)
        session.flush()
    tenant_id = session.scalar(select(TenantIntegration.tenant_id).where(TenantIntegration.id == connection_id))
    done = 0
    while True:
        rows = session.execute(
            select(CanonicalRecord.id, CanonicalRecord.entity_type, CanonicalRecord.data, CanonicalRecord.deleted,
                   CanonicalRecord.change_seq)
            .where(CanonicalRecord.tenant_integration_id == connection_id,
                   CanonicalRecord.change_seq > mark.indexed_seq,
                   CanonicalRecord.entity_type.in_(ACTIVITY_ENTITIES))
            .order_by(CanonicalRecord.change_seq)
            .limit(INDEX_BATCH)
        ).all()  # fmt: skip
        if not rows:
            return done
        session.execute(delete(RecordParticipant).where(RecordParticipant.record_id.in_([row[0] for row in rows])))
        entries = []
        for record_id, entity, data, deleted, _seq in rows:
            if deleted:
                continue
            at = activity_at(entity, data) or EPOCH  # undated activity sorts oldest
            seen: set[tuple[str, str]] = set()
            for role, address in participants(entity, data):
                key = address_key(address)
                if key is not None and (role, key) not in seen:
                    seen.add((role, key))
                    entries.append({"tenant_integration_id": connection_id, "record_id": record_id,
                                    "tenant_id": tenant_id, "address_key": key, "role": role, "at": at})  # fmt: skip
        if entries:
            session.execute(insert(RecordParticipant), entries)
        mark.indexed_seq = rows[-1][4]
        done += len(rows)


def index_tenant(session: Session, tenant_id: str) -> None:
    """Catch up the index of every connection of the tenant whose activity records changed since it was indexed
    (read without the lock first: a connection with nothing new is not waited for)."""
    newest = (
        select(CanonicalRecord.tenant_integration_id, func.max(CanonicalRecord.change_seq))
        .join(TenantIntegration, TenantIntegration.id == CanonicalRecord.tenant_integration_id)
        .where(TenantIntegration.tenant_id == tenant_id, CanonicalRecord.entity_type.in_(ACTIVITY_ENTITIES))
        .group_by(CanonicalRecord.tenant_integration_id)
    )
    marks = dict(
        session.execute(
            select(ParticipantIndexMark.tenant_integration_id, ParticipantIndexMark.indexed_seq)
            .join(TenantIntegration, TenantIntegration.id == ParticipantIndexMark.tenant_integration_id)
            .where(TenantIntegration.tenant_id == tenant_id)
        ).all()
    )
    for connection_id, seq in session.execute(newest).all():
        if seq > marks.get(connection_id, 0):
            index_participants(session, connection_id)


@dataclass(frozen=True)
class Activity:
    record: CanonicalRecord
    integration: str
    roles: tuple[str, ...]
    at: datetime | None


def timeline(
    session: Session, tenant_id: str, contact_row_id: int, *, before: tuple[datetime, int] | None, limit: int
) -> list[Activity]:
    """The contact's activity, newest first; ``before`` is the (at, record id) of the last item already read."""
    keys = select(CrmContactAddress.address_key).where(CrmContactAddress.contact_row_id == contact_row_id)
    matched = (
        select(RecordParticipant.record_id, func.max(RecordParticipant.at).label("at"))
        .where(RecordParticipant.tenant_id == tenant_id, RecordParticipant.address_key.in_(keys))
        .group_by(RecordParticipant.record_id)
        .subquery()
    )
    query = select(matched.c.record_id, matched.c.at)
    if before is not None:
        query = query.where(tuple_(matched.c.at, matched.c.record_id) < tuple_(before[0], before[1]))
    found = session.execute(query.order_by(matched.c.at.desc(), matched.c.record_id.desc()).limit(limit)).all()
    if not found:
        return []
    ids = [row[0] for row in found]
    records = {r.id: r for r in session.scalars(select(CanonicalRecord).where(CanonicalRecord.id.in_(ids)))}
    roles: dict[int, list[str]] = {}
    for record_id, role in session.execute(
        select(RecordParticipant.record_id, RecordParticipant.role).where(
            RecordParticipant.record_id.in_(ids), RecordParticipant.address_key.in_(keys)
        )
    ):
        roles.setdefault(record_id, []).append(role)
    slugs = dict(
        session.execute(
            select(TenantIntegration.id, Integration.slug)
            .join(Integration)
            .where(TenantIntegration.id.in_({r.tenant_integration_id for r in records.values()}))
        ).all()
    )
    return [
        Activity(records[record_id], slugs[records[record_id].tenant_integration_id],
                 tuple(sorted(set(roles.get(record_id, [])))), when)
        for record_id, when in found
        if record_id in records
    ]  # fmt: skip
