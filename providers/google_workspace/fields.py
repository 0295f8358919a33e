"""The published fields of the rows the Google pulls land (``source.message_row``, ``source.event_row``): field
mappings are checked against them."""

from __future__ import annotations

from providers.kit.streams import fields_of

RECORD_FIELDS = {
    "messages": fields_of(
        "string: id thread_id mailbox history_id snippet from to cc bcc subject date message_id in_reply_to references",
        "datetime: internal_date",
        "number: size_estimate",
        "boolean: deleted",
        "array: label_ids attachments",
    ),
    "events": fields_of(
        "string: id event_id calendar_id status summary description location html_link hangout_link ical_uid "
        "recurring_event_id conference_url updated created",
        "object: organizer start end",
        "boolean: deleted",
        "array: attendees recurrence",
    ),
}
