"""How the core pushes to Google: an email sent through the connected mailbox, a meeting booked on its calendar.

API docs: https://developers.google.com/gmail/api/reference/rest/v1/users.messages/send,
https://developers.google.com/calendar/api/v3/reference/events/insert, .../events/patch, .../events/delete.

- ``message`` create: an RFC 5322 message built with the standard library (``email.message``), sent by
  ``messages.send``. A reply (``reply_to``: the message answered, by VRTX id or Gmail id) carries
  ``In-Reply-To``/``References`` and the thread's id, so Gmail and mail clients thread it. Gmail takes no
  idempotency key: the Message-ID is derived from the push's key, and a resend first looks for it
  (``rfc822msgid:``), so a retried push never sends twice.
- ``event`` create/update/upsert/cancel on the primary calendar: a created event's id is derived from the push's
  key (Google takes client ids: a resend answers 409 and the event is read back), attendees are invited
  (``sendUpdates=all``); cancel deletes it (a cancelled event, as Google keeps one).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from providers.base import PushOutcome, PushRequest
from providers.errors import ProviderError, ProviderRejected
from providers.google_workspace.client import GoogleClient, header
from providers.google_workspace.mappers import to_event, to_message
from providers.google_workspace.source import event_row, message_row
from providers.kit import pushes
from providers.kit.client import ApiClient
from vrtx_pipelines.records.canonical import Attendee, CalendarEvent, EventTime, OutgoingEmail, Participant

PROVIDER = "Google"
CALENDAR = "primary"
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"


def _google(client: ApiClient) -> GoogleClient:
    assert isinstance(client, GoogleClient)
    return client


def event_id_for(key: str) -> str:
    """A Calendar event id (base32hex, 5-1024 characters) from the push's key: a resent create meets its own."""
    digest = pushes.key_digest(key)
    return "crm" + "".join(_BASE32HEX[byte % 32] for byte in digest[:26])  # "crm": base32hex letters only


def _address(person: Participant) -> str:
    return formataddr((person.name or "", person.address))


def _addresses(people: list[Participant]) -> str:
    return ", ".join(_address(person) for person in people)


def build_message(email: OutgoingEmail, mailbox: str, message_id: str, original: dict[str, Any] | None) -> bytes:
    """The RFC 5322 message; ``original`` is the Gmail message answered (format=metadata), if any."""
    mail = EmailMessage()
    mail["From"] = formataddr((email.sender_name or "", mailbox))
    mail["To"] = _addresses(email.to)
    if email.cc:
        mail["Cc"] = _addresses(email.cc)
    if email.bcc:
        mail["Bcc"] = _addresses(email.bcc)
    subject = email.subject
    if original is not None:
        payload = original.get("payload") or {}
        answered = header(payload, "Message-ID")
        if answered:
            mail["In-Reply-To"] = answered
            mail["References"] = " ".join(filter(None, [header(payload, "References"), answered]))
        if not subject:
            first = header(payload, "Subject") or ""
            subject = first if first.lower().startswith("re:") else f"Re: {first}"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = message_id
    if email.body_text is not None:
        mail.set_content(email.body_text)
        if email.body_html is not None:
            mail.add_alternative(email.body_html, subtype="html")
    else:
        mail.set_content(email.body_html or "", subtype="html")
    return bytes(mail)


def _read_message(client: ApiClient, gmail_id: str) -> tuple[PushOutcome, dict[str, Any]]:
    found = client.get(f"messages/{gmail_id}", params={"format": "full"})
    row = message_row(found, str(client.tenant_id or ""), client.seal)
    return pushes.outcome(gmail_id, to_message(row), row, {"id": gmail_id, "threadId": found.get("threadId")}), row


def _send(client: ApiClient, request: PushRequest) -> PushOutcome:
    email = OutgoingEmail.model_validate(request.payload)
    mailbox = str(client.tenant_id or "")
    message_id = pushes.message_id_for(request.idempotency_key, mailbox)
    already = client.get("messages", params={"q": f"rfc822msgid:{message_id.strip('<>')}", "maxResults": 1})
    if already.get("messages"):
        return _read_message(client, str(already["messages"][0]["id"]))[0]  # sent by an earlier attempt
    original = None
    if email.reply_to:
        answered = request.linked_id("messages", email.reply_to) or email.reply_to
        try:
            original = client.get(f"messages/{answered}", params={"format": "metadata"})
        except ProviderError as exc:
            if exc.status == 404:
                raise ProviderRejected(f"The message replied to ({email.reply_to}) is not in the mailbox.") from exc
            raise
    raw = build_message(email, mailbox, message_id, original)
    body: dict[str, Any] = {"raw": base64.urlsafe_b64encode(raw).decode()}
    if original is not None and original.get("threadId"):
        body["threadId"] = original["threadId"]
    sent = client.write("POST", "messages/send", body)
    return _read_message(client, str(sent["id"]))[0]


def _when(at: EventTime) -> dict[str, Any]:
    if at.day is not None:
        return {"date": at.day.isoformat()}
    if at.at is None:
        raise ProviderRejected("An event's start and end need a time or a day.")
    return {"dateTime": at.at.isoformat(), **({"timeZone": at.time_zone} if at.time_zone else {})}


def _invitee(attendee: Attendee) -> dict[str, Any]:
    found: dict[str, Any] = {"email": attendee.address}
    if attendee.name:
        found["displayName"] = attendee.name
    if attendee.optional:
        found["optional"] = True
    return found


def event_body(event: CalendarEvent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "summary": event.title,
        "start": _when(event.start),
        "end": _when(event.end),
        "attendees": [_invitee(attendee) for attendee in event.attendees],
    }
    for key, value in (("description", event.description), ("location", event.location)):
        if value is not None:
            body[key] = value
    if event.recurrence:
        body["recurrence"] = list(event.recurrence)
    if event.status == "tentative":
        body["status"] = "tentative"
    return body


def _event_outcome(found: dict[str, Any]) -> PushOutcome:
    row = event_row(found, CALENDAR)
    return pushes.outcome(str(row["id"]), to_event(row), row, {"id": found.get("id"), "status": found.get("status")})


def _event_path(client: ApiClient, event_id: str) -> str:
    return _google(client).calendar_url(f"calendars/{CALENDAR}/events/{event_id}")


def _linked_event(external_id: str) -> str:
    calendar, _, event_id = external_id.partition(":")
    if calendar != CALENDAR or not event_id:
        raise ProviderRejected(f"The linked event ({external_id}) is not on the primary calendar.")
    return event_id


def _create_event(client: ApiClient, request: PushRequest, body: dict[str, Any]) -> PushOutcome:
    event_id = event_id_for(request.idempotency_key)
    url = _google(client).calendar_url(f"calendars/{CALENDAR}/events")
    try:
        created = client.write("POST", url, {**body, "id": event_id}, params={"sendUpdates": "all"})
    except ProviderRejected as exc:
        if exc.status != 409:
            raise
        created = client.get(_event_path(client, event_id))  # an earlier attempt made it
    return _event_outcome(created)


def _event(client: ApiClient, request: PushRequest) -> PushOutcome:
    if request.operation == "cancel":
        event_id = _linked_event(pushes.require_link(request, PROVIDER))
        try:
            client.send("DELETE", _event_path(client, event_id), params={"sendUpdates": "all"})
        except ProviderError as exc:
            if exc.status != 410:  # cancelled already: a resent cancel
                raise
        return _event_outcome(client.get(_event_path(client, event_id)))
    event = CalendarEvent.model_validate(request.payload)
    body = pushes.with_overrides(event_body(event), request.overrides)

    def update(linked: str) -> PushOutcome:
        path = _event_path(client, _linked_event(linked))
        return _event_outcome(client.write("PATCH", path, body, params={"sendUpdates": "all"}))

    return pushes.create_or_update(
        request, PROVIDER, create=lambda: _create_event(client, request, body), update=update
    )


PUSHES = pushes.mailbox_pushes(PROVIDER, _send, _event)
