"""The Microsoft 365 sandbox's Graph writes over real HTTP: drafts created, edited and sent to Sent Items under the
same immutable id, replies threaded, sendMail, a message found by its Internet message id, events booked once per
transactionId, moved and cancelled, each change seen by delta; Graph's refusals and scopes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from providers.microsoft365.sandbox import MicrosoftKnobs, MicrosoftSandbox, create_app, demo_sandbox
from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX
from providers.sandbox_kit.serve import ServedApp

BOX = DEMO_MAILBOX.lower()
IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}
MEETING = {"subject": "Contract review", "start": {"dateTime": "2026-12-15T09:00:00", "timeZone": "Europe/London"},
           "end": {"dateTime": "2026-12-15T09:45:00", "timeZone": "Europe/London"},
           "attendees": [{"emailAddress": {"address": "olivia@northwind.example", "name": "Olivia"},
                          "type": "required"}]}  # fmt: skip


@dataclass
class Graph:
    sandbox: MicrosoftSandbox
    knobs: MicrosoftKnobs
    base: str
    token: str

    def call(self, method: str, path: str, body: Any = None, token: str | None = None, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **IMMUTABLE}
        return httpx.request(method, f"{self.base}/v1.0{path}", json=body, params=params or None, headers=headers,
                             timeout=10)  # fmt: skip

    def sent(self) -> int:
        return len(self.sandbox.mailbox(BOX).listing("sentitems"))

    def delta(self, path: str, **params: str) -> tuple[list[Any], str]:
        rows, answer = [], self.call("GET", path, **params)
        while True:
            assert answer.status_code == 200, answer.text
            body = answer.json()
            rows += body["value"]
            if "@odata.deltaLink" in body:
                return rows, body["@odata.deltaLink"]
            answer = httpx.get(body["@odata.nextLink"], headers={"Authorization": f"Bearer {self.token}"})

    def follow(self, link: str) -> list[Any]:
        answer = httpx.get(link, headers={"Authorization": f"Bearer {self.token}", **IMMUTABLE}, timeout=10)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["value"])


@pytest.fixture
def graph() -> Iterator[Graph]:
    sandbox, knobs = demo_sandbox(seed=5), MicrosoftKnobs()
    with ServedApp(create_app(sandbox, knobs=knobs)) as served:
        yield Graph(sandbox, knobs, served.base_url, sandbox.issue_access_token())


def test_a_draft_is_created_in_drafts_then_sent_to_sent_items_under_the_same_id(graph: Graph) -> None:
    _, link = graph.delta("/me/mailFolders/sentitems/messages/delta")
    before = graph.sent()
    draft = graph.call("POST", "/me/messages", {
        "subject": "Quote", "body": {"contentType": "text", "content": "Here it is."},
        "toRecipients": [{"emailAddress": {"address": "ada@example.com"}}],
        "internetMessageId": "<vrtx-1@contoso.example>",
        "internetMessageHeaders": [{"name": "x-vrtx-push", "value": "k1"}],
    })  # fmt: skip
    assert draft.status_code == 201, draft.text
    made = draft.json()
    assert made["isDraft"] is True and made["sentDateTime"] is None and made["parentFolderId"] == graph.call(
        "GET", "/me/mailFolders/drafts").json()["id"]  # fmt: skip
    assert graph.call("POST", f"/me/messages/{made['id']}/send").status_code == 202
    sent = graph.call("GET", f"/me/messages/{made['id']}").json()
    assert sent["isDraft"] is False and sent["sentDateTime"] and sent["internetMessageId"] == "<vrtx-1@contoso.example>"
    assert graph.sent() == before + 1
    assert [row["id"] for row in graph.follow(link)] == [made["id"]]  # the pull's next delta round sees it
    again = graph.call("POST", f"/me/messages/{made['id']}/send")
    assert again.status_code == 400 and again.json()["error"]["code"] == "ErrorInvalidOperation"
    found = graph.call("GET", "/me/messages", **{"$filter": "internetMessageId eq '<vrtx-1@contoso.example>'",
                                                  "$select": "id,isDraft"})  # fmt: skip
    assert [(m["id"], m["isDraft"]) for m in found.json()["value"]] == [(made["id"], False)]


def test_create_reply_threads_with_the_original_and_carries_its_message_id(graph: Graph) -> None:
    inbox, _ = graph.delta("/me/mailFolders/inbox/messages/delta")
    original = inbox[0]
    draft = graph.call("POST", f"/me/messages/{original['id']}/createReply",
                       {"message": {"body": {"contentType": "text", "content": "Agreed."}}})  # fmt: skip
    assert draft.status_code == 201, draft.text
    reply = draft.json()
    assert reply["subject"].lower().startswith("re: ") and reply["conversationId"] == original["conversationId"]
    assert reply["toRecipients"] == [original["from"]] and reply["body"]["content"] == "Agreed."
    headers = graph.call("GET", f"/me/messages/{reply['id']}", **{"$select": "internetMessageHeaders"}).json()
    named = {h["name"]: h["value"] for h in headers["internetMessageHeaders"]}
    answered = original["internetMessageId"]
    assert named["In-Reply-To"] == answered and answered in named["References"]
    both = graph.call("POST", f"/me/messages/{original['id']}/createReply",
                      {"comment": "x", "message": {"body": {"contentType": "text", "content": "y"}}})  # fmt: skip
    assert both.status_code == 400


def test_graph_refuses_bad_recipients_headers_and_bodies_in_its_words(graph: Graph) -> None:
    bad = graph.call("POST", "/me/sendMail", {"message": {"subject": "x", "toRecipients": [
        {"emailAddress": {"address": "not-an-address"}}]}})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "ErrorInvalidRecipients"
    assert "not-an-address" in bad.json()["error"]["message"]
    none = graph.call("POST", "/me/sendMail", {"message": {"subject": "x"}})
    assert none.status_code == 400 and "no recipients" in none.json()["error"]["message"]
    header = graph.call("POST", "/me/messages", {"internetMessageHeaders": [{"name": "Reply-To", "value": "x"}]})
    assert header.status_code == 400 and header.json()["error"]["code"] == "InvalidInternetMessageHeader"
    unknown = graph.call("POST", "/me/messages", {"colour": "red"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "RequestBodyRead"
    huge = graph.call("POST", "/me/messages", {"body": {"contentType": "text", "content": "x" * (4 * 1024 * 1024)}})
    assert huge.status_code == 413
    missing = graph.call("POST", "/me/messages/AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AAAAAAAAAAAAAAAAAAAAAAA==/send")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ErrorItemNotFound"


def test_send_mail_saves_to_sent_items_and_scopes_are_graphs(graph: Graph) -> None:
    before = graph.sent()
    message = {"subject": "Hi", "toRecipients": [{"emailAddress": {"address": "ada@example.com"}}]}
    assert graph.call("POST", "/me/sendMail", {"message": message}).status_code == 202
    assert graph.call("POST", "/me/sendMail", {"message": message, "saveToSentItems": False}).status_code == 202
    assert graph.sent() == before + 1
    read_only = graph.sandbox.issue_access_token(BOX, scopes=("Mail.Read", "Calendars.Read"))
    for method, path in (("POST", "/me/sendMail"), ("POST", "/me/messages"), ("POST", "/me/events")):
        assert graph.call(method, path, {"message": message}, token=read_only).status_code == 403, path
    drafts_only = graph.sandbox.issue_access_token(BOX, scopes=("Mail.ReadWrite",))
    assert graph.call("POST", "/me/sendMail", {"message": message}, token=drafts_only).status_code == 403


def test_an_event_is_booked_once_per_transaction_id_moved_and_cancelled_out_of_the_calendar(graph: Graph) -> None:
    window = {"startDateTime": "2026-12-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}
    _, link = graph.delta("/me/calendarView/delta", **window)
    live = graph.sandbox.count(BOX, "events")
    first = graph.call("POST", "/me/events", {**MEETING, "transactionId": "t-1"})
    again = graph.call("POST", "/me/events", {**MEETING, "transactionId": "t-1"})
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    event = first.json()
    assert graph.sandbox.count(BOX, "events") == live + 1
    assert event["start"] == {"dateTime": "2026-12-15T09:00:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == "Europe/London" and event["transactionId"] == "t-1"
    assert event["attendees"][0]["emailAddress"]["address"] == "olivia@northwind.example"
    assert [row["id"] for row in graph.follow(link)] == [event["id"]]
    moved = graph.call("PATCH", f"/me/events/{event['id']}", {"start": {"dateTime": "2026-12-16T09:00:00",
                       "timeZone": "UTC"}, "end": {"dateTime": "2026-12-16T09:45:00", "timeZone": "UTC"}})  # fmt: skip
    assert moved.status_code == 200 and moved.json()["start"]["dateTime"].startswith("2026-12-16T09:00")
    backwards = graph.call("PATCH", f"/me/events/{event['id']}", {"end": {"dateTime": "2026-12-01T00:00:00"}})
    assert backwards.json()["error"]["code"] == "ErrorCalendarEndDateIsEarlierThanStartDate"
    assert graph.call("POST", f"/me/events/{event['id']}/cancel", {"comment": "Sorry"}).status_code == 202
    assert graph.call("GET", f"/me/events/{event['id']}").status_code == 404
    assert graph.sandbox.count(BOX, "events") == live
    zone = graph.call("POST", "/me/events", {**MEETING, "start": {"dateTime": "2026-12-15T09:00:00",
                      "timeZone": "Mars/Olympus"}})  # fmt: skip
    assert zone.status_code == 400 and zone.json()["error"]["code"] == "TimeZoneNotSupportedException"
