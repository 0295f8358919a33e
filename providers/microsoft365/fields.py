"""The published fields of the rows the Microsoft 365 pulls land (``source.message_row``, ``source.event_row``):
field mappings are checked against them."""

from __future__ import annotations

from providers.kit.streams import fields_of

RECORD_FIELDS = {
    "messages": fields_of(
        "string: id conversation_id mailbox folder folder_id internet_message_id subject body_preview importance "
        "web_link change_key flag_status",
        "datetime: received_at sent_at last_modified_at",
        "boolean: is_read is_draft has_attachments deleted",
        "object: from sender",
        "array: to cc bcc reply_to categories",
    ),
    "events": fields_of(
        "string: id mailbox ical_uid subject body_preview location show_as type series_master_id web_link "
        "online_meeting_url change_key original_start_time_zone",
        "datetime: last_modified_at created_at",
        "boolean: is_all_day is_online_meeting deleted",
        "object: organizer start end recurrence",
        "array: attendees categories",
    ),
}
