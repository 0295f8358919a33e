"""The CRM's contacts as the platform knows them (their addresses), and each contact's activity timeline: the
messages and meetings of every connected mailbox matched to them by address."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field

from api.deps import SessionDep, TenantDep
from api.responses import JSON_BODY, TENANT_ROUTE, errors
from vrtx_pipelines import cursors
from vrtx_pipelines.errors import NotFound, ValidationFailed
from vrtx_pipelines.records import contacts

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"], responses=TENANT_ROUTE)
ContactId = Annotated[
    str, Path(min_length=1, max_length=100, pattern=r"^[\w.:@-]+$", description="The CRM's id of the contact.")
]
Email = Annotated[str, Field(min_length=3, max_length=320)]


class ContactIn(BaseModel):
    name: str = Field(default="", max_length=200)
    emails: list[Email] = Field(default_factory=list, max_length=contacts.MAX_ADDRESSES)


class BulkContactIn(ContactIn):
    id: str = Field(min_length=1, max_length=100, pattern=r"^[\w.:@-]+$")


class BulkIn(BaseModel):
    contacts: list[BulkContactIn] = Field(min_length=1, max_length=1000)


class ContactOut(BaseModel):
    id: str
    name: str
    emails: list[str]
    updated_at: datetime


class ContactsOut(BaseModel):
    contacts: list[ContactOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class BulkOut(BaseModel):
    upserted: int


class ActivityOut(BaseModel):
    integration: str
    entity: str = Field(description="messages or events")
    external_id: str
    roles: list[str] = Field(description="How the contact took part: from, to, cc, bcc, organizer, attendee.")
    at: datetime | None = Field(description="When: a message's sending, a meeting's start.")
    data: dict[str, Any] = Field(description="The canonical EmailMessage or CalendarEvent.")


class TimelineOut(BaseModel):
    activity: list[ActivityOut]
    next_cursor: str | None


class UnknownContact(NotFound):
    code = "unknown_contact"


def _out(row: Any, emails: list[str]) -> ContactOut:
    return ContactOut(id=row.contact_id, name=row.name, emails=emails, updated_at=row.updated_at)


def _upsert(session: Any, tenant_id: str, items: list[contacts.ContactIn]) -> list[Any]:
    try:
        return contacts.upsert_contacts(session, tenant_id, items)
    except ValueError as exc:
        raise ValidationFailed(str(exc), details=[{"field": "emails", "message": str(exc)}]) from None


@router.put("/{contact_id}", response_model=ContactOut, summary="Create or replace a contact",
            responses=JSON_BODY)  # fmt: skip
def put_contact(contact_id: ContactId, body: ContactIn, tenant: TenantDep, session: SessionDep) -> ContactOut:
    (row,) = _upsert(session, tenant.id, [contacts.ContactIn(contact_id, body.name, body.emails)])
    out = _out(row, contacts.contact_addresses(session, [row.id])[row.id])
    session.commit()
    return out


@router.post("/bulk", response_model=BulkOut, summary="Create or replace up to 1,000 contacts", responses=JSON_BODY)
def bulk_contacts(body: BulkIn, tenant: TenantDep, session: SessionDep) -> BulkOut:
    ids = [item.id for item in body.contacts]
    if len(set(ids)) != len(ids):
        raise ValidationFailed("a contact id appears twice", details=[{"field": "contacts", "message": "duplicate id"}])
    rows = _upsert(session, tenant.id, [contacts.ContactIn(c.id, c.name, c.emails) for c in body.contacts])
    session.commit()
    return BulkOut(upserted=len(rows))


@router.get("", response_model=ContactsOut, summary="The contacts, a page at a time")
def list_contacts(
    tenant: TenantDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ContactsOut:
    after = cursors.row_id(cursors.decode(cursor, "k1", 1)[0]) if cursor else 0
    rows = contacts.list_contacts(session, tenant.id, after, limit)
    emails = contacts.contact_addresses(session, [row.id for row in rows])
    following = cursors.encode("k1", rows[-1].id) if len(rows) == limit else None
    return ContactsOut(contacts=[_out(row, emails[row.id]) for row in rows], next_cursor=following)


def _contact(session: Any, tenant_id: str, contact_id: str) -> Any:
    row = contacts.get_contact(session, tenant_id, contact_id)
    if row is None:
        raise UnknownContact(f"no contact {contact_id!r}")
    return row


@router.get("/{contact_id}", response_model=ContactOut, summary="A contact", responses=errors(404))
def get_contact(contact_id: ContactId, tenant: TenantDep, session: SessionDep) -> ContactOut:
    row = _contact(session, tenant.id, contact_id)
    return _out(row, contacts.contact_addresses(session, [row.id])[row.id])


@router.delete("/{contact_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Forget a contact (its synced activity stays)", responses=errors(404))  # fmt: skip
def delete_contact(contact_id: ContactId, tenant: TenantDep, session: SessionDep) -> Response:
    if not contacts.delete_contact(session, tenant.id, contact_id):
        raise UnknownContact(f"no contact {contact_id!r}")
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{contact_id}/activity", response_model=TimelineOut, summary="The contact's activity timeline",
            responses=errors(404))  # fmt: skip
def contact_activity(
    contact_id: ContactId,
    tenant: TenantDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TimelineOut:
    row = _contact(session, tenant.id, contact_id)
    before = None
    if cursor:
        at, record_id = cursors.decode(cursor, "t1", 2, sep="|")
        before = (cursors.instant(at), cursors.row_id(record_id))
    contacts.index_tenant(session, tenant.id)
    session.commit()  # the index caught up: kept for the next read
    found = contacts.timeline(session, tenant.id, row.id, before=before, limit=limit)
    last = found[-1] if len(found) == limit else None
    following = cursors.encode("t1", (last.at or contacts.EPOCH).isoformat(), last.record.id, sep="|") if last else None
    return TimelineOut(
        activity=[
            ActivityOut(integration=item.integration, entity=item.record.entity_type,
                        external_id=item.record.external_id, roles=list(item.roles), at=item.at,
                        data=item.record.data)
            for item in found
        ],
        next_cursor=following,
    )  # fmt: skip
