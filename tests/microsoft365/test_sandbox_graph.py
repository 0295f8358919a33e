"""The Microsoft 365 sandbox speaks Graph v1.0's Outlook mail and calendar: mail folders, a folder's messages delta
(page size preference, next links to a delta link, changes with @removed, $select, $filter, immutable ids),
calendarView delta, expired and garbled state tokens, scopes, and Outlook's 4-in-flight cap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from providers.microsoft365.sandbox import MicrosoftKnobs, MicrosoftSandbox, create_app, demo_sandbox
from providers.microsoft365.sandbox.mail import DEFAULT_PROPERTIES
from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX
from providers.sandbox_kit.serve import ServedApp

BOX = DEMO_MAILBOX.lower()


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


IMMUTABLE = 'IdType="ImmutableId"'


@dataclass
class Graph:
    sandbox: MicrosoftSandbox
    knobs: MicrosoftKnobs
    base: str
    token: str

    def get(self, path_or_url: str, params: dict[str, str] | None = None, token: str | None = None,
            **headers: str) -> httpx.Response:  # fmt: skip
        url = path_or_url if path_or_url.startswith("http") else f"{self.base}/v1.0{path_or_url}"
        auth = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.get(url, params=params, headers={**auth, **headers}, timeout=10)

    def round(self, first: str, params: dict[str, str] | None = None, **headers: str) -> tuple[list[Any], str]:
        """A whole delta round from ``first`` (a path or a delta link): its rows and its delta link."""
        rows, answer = [], self.get(first, params, **headers)
        while True:
            assert answer.status_code == 200, answer.text
            body = answer.json()
            rows += body["value"]
            if "@odata.deltaLink" in body:
                return rows, body["@odata.deltaLink"]
            answer = self.get(body["@odata.nextLink"], None, None, **headers)


@pytest.fixture
def graph() -> Iterator[Graph]:
    sandbox, knobs = demo_sandbox(seed=5), MicrosoftKnobs()
    with ServedApp(create_app(sandbox, knobs=knobs)) as served:
        yield Graph(sandbox, knobs, served.base_url, sandbox.issue_access_token())


def error_of(answer: httpx.Response) -> tuple[int, str]:
    error = answer.json()["error"]
    assert error["message"] and error["innerError"]["request-id"]
    return answer.status_code, error["code"]


def test_a_folder_delta_pages_by_the_preferred_size_through_next_links_on_the_same_origin_to_a_delta_link(
    graph: Graph,
) -> None:
    inbox = graph.get("/me/mailFolders/inbox").json()
    first = graph.get("/me/mailFolders/inbox/messages/delta", Prefer="odata.maxpagesize=7")
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=7"
    assert first.headers["content-type"].startswith("application/json;odata.metadata=minimal")
    pages, ids, answer = 0, [], first
    while True:
        body = answer.json()
        assert body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#Collection(message)"
        assert len(body["value"]) <= 7 and all(
            row["@odata.type"] == "#microsoft.graph.message" for row in body["value"]
        )
        ids += [row["id"] for row in body["value"]]
        pages += 1
        if "@odata.deltaLink" in body:
            assert body["@odata.deltaLink"].startswith(
                f"{graph.base}/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken="
            )
            break
        assert body["@odata.nextLink"].startswith(f"{graph.base}/v1.0/me/mailFolders/inbox/messages/delta?$skiptoken=")
        answer = graph.get(body["@odata.nextLink"], Prefer="odata.maxpagesize=7")
    assert len(ids) == len(set(ids)) == inbox["totalItemCount"] > 7
    assert pages == -(-len(ids) // 7)
    assert graph.sandbox.stats[BOX].pages_served["messages"] == pages
    default = graph.get("/me/mailFolders/inbox/messages/delta").json()
    assert len(default["value"]) == 10 and "Preference-Applied" not in graph.get("/me/mailFolders").headers


def test_a_message_carries_graphs_properties_and_its_headers_only_when_selected(graph: Graph) -> None:
    rows, _ = graph.round("/me/mailFolders/inbox/messages/delta", Prefer="odata.maxpagesize=200")
    replies = [row for row in rows if row["subject"].startswith("Re: ")]
    assert replies and all(row["conversationId"] for row in rows) and "internetMessageHeaders" not in rows[0]
    assert set(DEFAULT_PROPERTIES) <= set(rows[0])
    assert rows[0]["from"]["emailAddress"]["address"] and rows[0]["body"]["contentType"] == "html"
    one = graph.get(f"/me/messages/{replies[0]['id']}", {"$select": "subject,internetMessageHeaders"}).json()
    headers = {h["name"]: h["value"] for h in one["internetMessageHeaders"]}
    assert set(one) == {"@odata.context", "@odata.etag", "id", "subject", "internetMessageHeaders"}
    assert headers["In-Reply-To"] in headers["References"] and headers["Message-ID"] == replies[0]["internetMessageId"]
    sent, _ = graph.round("/me/mailFolders/sentitems/messages/delta", Prefer="odata.maxpagesize=200")
    answered = [row for row in rows + sent if row["internetMessageId"] == headers["In-Reply-To"]]
    assert [row["conversationId"] for row in answered] == [replies[0]["conversationId"]]


def test_the_delta_link_answers_exactly_the_changes_with_the_first_requests_select(graph: Graph) -> None:
    rows, delta = graph.round("/me/mailFolders/inbox/messages/delta", {"$select": "subject,isRead"},
                              Prefer='odata.maxpagesize=50, IdType="ImmutableId"')  # fmt: skip
    inbox = [row["id"] for row in rows]
    assert set(rows[0]) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"}
    touched = [i for i in graph.sandbox.touch(BOX, "messages", 6) if i in inbox]
    created = graph.sandbox.create(BOX, "messages", 2)
    graph.sandbox.delete_message(BOX, inbox[0])
    graph.sandbox.move_message(BOX, inbox[1], "archive")

    changes, again = graph.round(delta, Prefer=IMMUTABLE)
    updated = {row["id"]: row for row in changes if "@removed" not in row}
    gone = {row["id"]: row["@removed"] for row in changes if "@removed" in row}
    assert set(updated) == set(touched) | set(created) and touched
    assert gone == {inbox[0]: {"reason": "deleted"}, inbox[1]: {"reason": "deleted"}}
    assert all(set(row) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"} for row in updated.values())
    assert graph.round(again, Prefer=IMMUTABLE)[0] == []


def test_a_rest_id_changes_when_its_message_moves_and_an_immutable_id_does_not(graph: Graph) -> None:
    rest_rows, rest_delta = graph.round("/me/mailFolders/inbox/messages/delta", Prefer="odata.maxpagesize=200")
    immutable_rows, immutable_delta = graph.round("/me/mailFolders/inbox/messages/delta",
                                                  Prefer='odata.maxpagesize=200, IdType="ImmutableId"')  # fmt: skip
    rest_id, immutable_id = rest_rows[3]["id"], immutable_rows[3]["id"]
    assert rest_id != immutable_id and rest_rows[3]["internetMessageId"] == immutable_rows[3]["internetMessageId"]

    assert graph.sandbox.move_message(BOX, immutable_id, "archive") == immutable_id
    archive_id = graph.get("/me/mailFolders/archive").json()["id"]
    assert error_of(graph.get(f"/me/messages/{rest_id}")) == (404, "ErrorItemNotFound")
    moved = graph.get(f"/me/messages/{immutable_id}", Prefer=IMMUTABLE).json()
    assert moved["id"] == immutable_id and moved["parentFolderId"] == archive_id
    assert graph.get(f"/me/messages/{immutable_id}").json()["id"] not in (rest_id, immutable_id)  # its new REST id

    assert [row["id"] for row in graph.round(rest_delta)[0]] == [rest_id]
    assert [row["id"] for row in graph.round(immutable_delta, Prefer=IMMUTABLE)[0]] == [immutable_id]
    archived, _ = graph.round("/me/mailFolders/archive/messages/delta", Prefer=IMMUTABLE)
    assert [row["id"] for row in archived] == [immutable_id]


def test_an_expired_delta_token_answers_410_sync_state_not_found_for_mail_and_calendar(graph: Graph) -> None:
    window = {"startDateTime": "2000-01-01T00:00:00Z", "endDateTime": "2100-01-01T00:00:00Z"}
    _, mail_delta = graph.round("/me/mailFolders/inbox/messages/delta")
    _, events_delta = graph.round("/me/calendarView/delta", window)
    mid_round = graph.get("/me/mailFolders/inbox/messages/delta").json()["@odata.nextLink"]
    graph.sandbox.expire_delta(BOX)
    for link in (mail_delta, events_delta, mid_round):
        assert error_of(graph.get(link)) == (410, "syncStateNotFound")
    assert graph.round("/me/mailFolders/inbox/messages/delta")[0]  # a full sync starts over


def test_a_garbled_or_misplaced_token_is_graphs_400_never_a_500(graph: Graph) -> None:
    _, delta = graph.round("/me/mailFolders/inbox/messages/delta")
    token = delta.split("$deltatoken=")[1]
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    next_link = graph.get("/me/mailFolders/inbox/messages/delta").json()["@odata.nextLink"]
    for params in ({"$deltatoken": "not-a-token"}, {"$deltatoken": tampered}, {"$skiptoken": "%%%"},
                   {"$skiptoken": token}, {"$deltatoken": next_link.split("$skiptoken=")[1]}):  # fmt: skip
        assert error_of(graph.get("/me/mailFolders/inbox/messages/delta", params)) == (400, "ErrorInvalidUrlQuery")
    sent = graph.get(f"/me/mailFolders/sentitems/messages/delta?$deltatoken={token}")  # another folder's token
    assert error_of(sent) == (400, "ErrorInvalidUrlQuery")


def test_select_filter_and_orderby_are_honoured_or_refused_as_graph_does(graph: Graph) -> None:
    unknown = graph.get("/me/mailFolders/inbox/messages/delta", {"$select": "subject,size"})
    assert error_of(unknown) == (400, "RequestBroker--ParseUri") and "'size'" in unknown.json()["error"]["message"]
    everything, _ = graph.round("/me/mailFolders/inbox/messages/delta", Prefer="odata.maxpagesize=200")
    cut = sorted(row["receivedDateTime"] for row in everything)[len(everything) // 2]
    recent, _ = graph.round(
        "/me/mailFolders/inbox/messages/delta",
        {"$filter": f"receivedDateTime ge {cut}", "$orderby": "receivedDateTime desc", "$select": "receivedDateTime"},
    )
    received = [row["receivedDateTime"] for row in recent]
    assert received == sorted(received, reverse=True) and min(received) == cut
    assert len(received) == sum(1 for row in everything if row["receivedDateTime"] >= cut)
    after, _ = graph.round("/me/mailFolders/inbox/messages/delta", {"$filter": f"receivedDateTime gt {cut}"})
    assert len(after) == len(received) - 1
    for params, code in (({"$filter": "subject eq 'x'"}, "ErrorInvalidUrlQueryFilter"),
                         ({"$filter": "receivedDateTime ge yesterday"}, "ErrorInvalidUrlQueryFilter"),
                         ({"$orderby": "subject"}, "ErrorInvalidUrlQuery")):  # fmt: skip
        assert error_of(graph.get("/me/mailFolders/inbox/messages/delta", params)) == (400, code)


def test_mail_needs_a_mail_scope_and_calendars_a_calendar_scope(graph: Graph) -> None:
    profile = graph.sandbox.issue_access_token(scopes=("User.Read",))
    mail = graph.sandbox.issue_access_token(scopes=("Mail.Read",))
    window = {"startDateTime": "2000-01-01T00:00:00Z", "endDateTime": "2100-01-01T00:00:00Z"}
    assert error_of(graph.get("/me/mailFolders/inbox/messages/delta", token=profile))[0] == 403
    assert graph.get("/me/mailFolders/inbox/messages/delta", token=mail).status_code == 200
    assert error_of(graph.get("/me/calendarView/delta", window, token=mail)) == (403, "Authorization_RequestDenied")


def test_unknown_folders_and_messages_are_graphs_errors(graph: Graph) -> None:
    folder_id = graph.get("/me/mailFolders/inbox").json()["id"]
    assert graph.get(f"/me/mailFolders/{folder_id}/messages/delta").status_code == 200
    assert error_of(graph.get("/me/mailFolders/nosuchfolder")) == (400, "ErrorInvalidIdMalformed")
    assert error_of(graph.get(f"/me/mailFolders/{folder_id[:-8]}AAAAAAA=/messages/delta")) == (404, "ErrorItemNotFound")
    assert error_of(graph.get("/me/messages/AAMkADAARlOOGsR56kD6kiNtzyY3CiIAAA==")) == (404, "ErrorItemNotFound")
    listed = graph.get("/me/mailFolders", {"$top": "2"}).json()
    assert [f["displayName"] for f in listed["value"]] == ["Inbox", "Sent Items"] and "$skip=2" in listed[
        "@odata.nextLink"
    ]


def test_calendar_view_delta_needs_its_window_then_answers_overlapping_events_and_removals(graph: Graph) -> None:
    assert error_of(graph.get("/me/calendarView/delta")) == (400, "ErrorInvalidParameter")
    now = time.time()
    window = {"startDateTime": iso(now - 86_400), "endDateTime": iso(now + 5 * 86_400)}
    assert error_of(graph.get("/me/calendarView/delta", {**window, "$select": "subject"})) == (
        400,
        "ErrorInvalidUrlQuery",
    )
    events, delta = graph.round("/me/calendarView/delta", window, Prefer="odata.maxpagesize=3")
    everything, _ = graph.round("/me/calendarView/delta", {"startDateTime": "2000-01-01", "endDateTime": "2100-01-01"})
    assert 0 < len(events) < len(everything) == graph.sandbox.count(BOX, "events") == 12
    event = events[0]
    assert event["type"] == "singleInstance" and event["start"]["timeZone"] == "UTC"
    assert event["start"]["dateTime"].endswith(".0000000") and event["organizer"]["emailAddress"]["address"]
    assert {a["status"]["response"] for e in everything for a in e["attendees"]} <= {
        "none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded"}  # fmt: skip

    graph.sandbox.delete_event(BOX, events[0]["id"])
    (created,) = graph.sandbox.create(BOX, "events")
    outside = next(e["id"] for e in everything if e["id"] not in {x["id"] for x in events})
    retitled = graph.sandbox.touch(BOX, "events", 12)
    changes, _ = graph.round(delta)
    removed = {row["id"] for row in changes if "@removed" in row}
    kept = {row["id"] for row in changes if "@removed" not in row}
    assert events[0]["id"] in removed and outside in removed and created in kept
    assert kept | removed == set(retitled) | {created, events[0]["id"]}
    assert graph.sandbox.count(BOX, "events") == 12


def test_the_fifth_concurrent_call_on_a_mailbox_is_refused_429_and_the_peak_in_flight_is_counted(graph: Graph) -> None:
    graph.knobs.latency_s = 0.6  # each call holds its in-flight slot that long
    answers: list[httpx.Response] = []
    calls = [threading.Thread(target=lambda: answers.append(graph.get("/me/mailFolders"))) for _ in range(5)]
    for call in calls:
        call.start()
    for call in calls:
        call.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 429]
    refused = next(a for a in answers if a.status_code == 429)
    assert error_of(refused) == (429, "ApplicationThrottled") and refused.headers["Retry-After"]
    assert "MailboxConcurrency" in refused.json()["error"]["message"]
    assert graph.sandbox.stats[BOX].max_in_flight == 4


def test_a_failing_second_page_is_answered_again_on_retry_from_the_same_next_link(graph: Graph) -> None:
    graph.knobs.fail_on_page = 2
    next_link = graph.get("/me/mailFolders/inbox/messages/delta").json()["@odata.nextLink"]
    assert error_of(graph.get(next_link))[0] == 500
    assert graph.get(next_link).status_code == 200


def test_a_fifty_thousand_message_mailbox_costs_nothing_until_read_and_the_control_api_counts_it(graph: Graph) -> None:
    started = time.monotonic()
    graph.sandbox.add_mailbox("bulk@vrtx-demo.example", messages=50_000, days=30, events=0)
    assert time.monotonic() - started < 0.5
    token = graph.sandbox.issue_access_token("bulk@vrtx-demo.example")
    page = graph.get("/me/mailFolders/sentitems/messages/delta", token=token, Prefer="odata.maxpagesize=100").json()
    assert len(page["value"]) == 100 and "@odata.nextLink" in page
    total = graph.sandbox.count("bulk@vrtx-demo.example", "messages")
    (new,) = graph.sandbox.create("bulk@vrtx-demo.example", "messages")
    assert graph.sandbox.count("bulk@vrtx-demo.example", "messages") == total + 1
    graph.sandbox.delete_message("bulk@vrtx-demo.example", new)
    assert graph.sandbox.count("bulk@vrtx-demo.example", "messages") == total
    assert 45_000 < total < 50_000  # deleted items and drafts are not pulled


def test_a_batch_answers_each_request_as_if_called_alone_and_holds_at_most_twenty(graph: Graph) -> None:
    rows, _link = graph.round("/me/mailFolders/inbox/messages/delta", {"$select": "subject"}, Prefer=IMMUTABLE)
    known = rows[0]["id"]
    calls_before = graph.sandbox.stats.api_calls
    requests = [
        {"id": "1", "method": "GET", "url": f"/me/messages/{known}?$select=subject", "headers": {"Prefer": IMMUTABLE}},
        {"id": "2", "method": "GET", "url": "/me/messages/AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AAAAAAAA?$select=subject",
         "headers": {"Prefer": IMMUTABLE}},
    ]  # fmt: skip
    auth = {"Authorization": f"Bearer {graph.token}"}
    answer = httpx.post(f"{graph.base}/v1.0/$batch", json={"requests": requests}, headers=auth, timeout=10)

    assert answer.status_code == 200, answer.text
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["id"] == known and "subject" in by_id["1"]["body"]
    assert by_id["2"]["status"] in (400, 404) and by_id["2"]["body"]["error"]["code"]
    assert graph.sandbox.stats.api_calls - calls_before == 2  # each request counts, as Graph meters them

    too_many = [{**requests[0], "id": str(n)} for n in range(21)]
    refused = httpx.post(f"{graph.base}/v1.0/$batch", json={"requests": too_many}, headers=auth, timeout=10)
    assert error_of(refused) == (400, "BadRequest")
    repeated = httpx.post(f"{graph.base}/v1.0/$batch", json={"requests": [requests[0]] * 2}, headers=auth, timeout=10)
    assert error_of(repeated) == (400, "BadRequest")
    assert httpx.post(f"{graph.base}/v1.0/$batch", content=b"{", headers=auth, timeout=10).status_code == 400
