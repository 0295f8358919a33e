"""The official ``google-api-python-client`` and ``google-auth``, unchanged, against the Google sandbox over real
HTTP on loopback: the OAuth dance and refresh, Gmail list/get/history/send, Calendar list/insert/sync, Google's
error shape as the client's ``HttpError``, and a Pub/Sub push token verified by google-auth against the sandbox's
certs.

Only the addresses move: the Gmail service is built from the discovery document in ``../shared/specs`` (the one
the client ships, saved), Calendar from the client's own; ``client_options.api_endpoint`` points both at the
sandbox, ``token_uri`` google-auth's refreshes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from jwt.exceptions import InvalidTokenError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import google.auth.transport.requests
    from google.auth.exceptions import RefreshError
    from google.oauth2 import id_token
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build, build_from_document
    from googleapiclient.errors import HttpError

from providers.google_workspace.sandbox import GoogleSandbox, create_app, demo_sandbox
from providers.google_workspace.sandbox_credentials import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_MAILBOX
from providers.sandbox_kit.serve import ServedApp
from tests.flows.harness import consent

REDIRECT = "http://127.0.0.1:9/callback"
DISCOVERY = Path(__file__).resolve().parents[3] / "shared" / "specs" / "gmail-gmail.v1.discovery.json"
SCOPES = (
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.send",
    "https://www.googleapis.com/auth/calendar.events",
)


@dataclass
class Sdk:
    sandbox: GoogleSandbox
    base_url: str
    credentials: Credentials
    gmail: Any
    calendar: Any


def _authorize(base_url: str) -> dict[str, Any]:
    """The authorization-code dance with PKCE as a web app does it; the token endpoint's JSON answer."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"client_id": DEMO_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "scope": " ".join(SCOPES),
             "access_type": "offline", "prompt": "consent", "include_granted_scopes": "true", "state": "s1",
             "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    callback = parse_qs(urlsplit(consent(f"{base_url}/o/oauth2/v2/auth?{urlencode(query)}")).query)
    assert callback["state"] == ["s1"]
    answer = httpx.post(f"{base_url}/token", data={
        "grant_type": "authorization_code", "code": callback["code"][0], "redirect_uri": REDIRECT,
        "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET, "code_verifier": verifier,
    })  # fmt: skip
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _walk(part: dict[str, Any]) -> list[dict[str, Any]]:
    return [part, *(found for child in part.get("parts", []) for found in _walk(child))]


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    sandbox = demo_sandbox(seed=5)
    with ServedApp(create_app(sandbox)) as served:
        token = _authorize(served.base_url)
        credentials = Credentials(
            token["access_token"], refresh_token=token["refresh_token"], token_uri=f"{served.base_url}/token",
            client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, scopes=list(SCOPES),
        )  # fmt: skip
        gmail = build_from_document(
            json.loads(DISCOVERY.read_text()), credentials=credentials,
            client_options={"api_endpoint": f"{served.base_url}/"},
        )  # fmt: skip
        calendar = build(
            "calendar", "v3", credentials=credentials, static_discovery=True,
            client_options={"api_endpoint": f"{served.base_url}/calendar/v3/"},
        )  # fmt: skip
        yield Sdk(sandbox, served.base_url, credentials, gmail, calendar)


def test_the_token_answer_has_a_refresh_token_only_for_offline_access(sdk: Sdk) -> None:
    refreshed = httpx.post(f"{sdk.base_url}/token", data={
        "grant_type": "refresh_token", "refresh_token": sdk.credentials.refresh_token,
        "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET,
    }).json()  # fmt: skip
    assert refreshed["expires_in"] == 3599
    assert "refresh_token" not in refreshed  # Google's refresh tokens do not rotate


def test_gmail_lists_pages_and_gets_messages_in_every_format(sdk: Sdk) -> None:
    users = sdk.gmail.users()
    profile = users.getProfile(userId="me").execute()
    assert profile["emailAddress"] == DEMO_MAILBOX
    ids: list[str] = []
    request = users.messages().list(userId="me", maxResults=50)
    while request is not None:
        page = request.execute()
        ids += [m["id"] for m in page.get("messages", [])]
        request = users.messages().list_next(request, page)
    assert len(ids) == profile["messagesTotal"] == len(set(ids))
    full = users.messages().get(userId="me", id=ids[0]).execute()
    headers = {h["name"]: h["value"] for h in full["payload"]["headers"]}
    assert {"From", "To", "Subject", "Date", "Message-ID"} <= set(headers)
    parts = _walk(full["payload"])
    text = next(p for p in parts if p["mimeType"] == "text/plain")
    assert any(p["filename"].endswith(".pdf") and "attachmentId" in p["body"] for p in parts)  # every 10th has one
    assert "Hi " in base64.urlsafe_b64decode(text["body"]["data"]).decode()
    metadata = users.messages().get(userId="me", id=ids[0], format="metadata", metadataHeaders=["Subject"]).execute()
    assert [h["name"] for h in metadata["payload"]["headers"]] == ["Subject"]
    raw = users.messages().get(userId="me", id=ids[0], format="raw").execute()
    assert b"Message-ID:" in base64.urlsafe_b64decode(raw["raw"])


def test_a_reply_sent_through_the_sdk_threads_and_appears_in_history(sdk: Sdk) -> None:
    users = sdk.gmail.users()
    start = users.getProfile(userId="me").execute()["historyId"]
    first = users.messages().list(userId="me", labelIds=["INBOX"], maxResults=1).execute()["messages"][0]
    original = users.messages().get(userId="me", id=first["id"], format="metadata").execute()
    message_id = next(h["value"] for h in original["payload"]["headers"] if h["name"] == "Message-ID")
    reply = EmailMessage()
    reply["To"], reply["Subject"] = "olivia.smith@northwind.example", "Re: thanks"
    reply["In-Reply-To"], reply["References"] = message_id, message_id
    reply.set_content("Thanks, see you then.")
    sent = users.messages().send(userId="me", body={"raw": base64.urlsafe_b64encode(bytes(reply)).decode()}).execute()
    assert sent["threadId"] == first["threadId"] and sent["labelIds"] == ["SENT"]
    history = users.history().list(userId="me", startHistoryId=start, historyTypes=["messageAdded"]).execute()
    added = [a["message"]["id"] for record in history["history"] for a in record.get("messagesAdded", [])]
    assert added == [sent["id"]]
    assert int(history["historyId"]) > int(start)


def test_a_stale_history_id_is_the_clients_http_error_404(sdk: Sdk) -> None:
    users = sdk.gmail.users()
    start = users.getProfile(userId="me").execute()["historyId"]
    sdk.sandbox.expire_history(DEMO_MAILBOX)
    with pytest.raises(HttpError) as raised:
        users.history().list(userId="me", startHistoryId=start).execute()
    assert raised.value.resp.status == 404
    assert raised.value.error_details[0]["reason"] == "notFound"


def test_calendar_lists_inserts_and_syncs_incrementally(sdk: Sdk) -> None:
    events = sdk.calendar.events()
    first = events.list(calendarId="primary", maxResults=5).execute()
    items, page = list(first["items"]), first
    while "nextPageToken" in page:
        page = events.list(calendarId="primary", maxResults=5, pageToken=page["nextPageToken"]).execute()
        items += page["items"]
    token = page["nextSyncToken"]
    created = events.insert(calendarId="primary", sendUpdates="all", body={
        "summary": "Demo with Olivia", "start": {"dateTime": "2026-12-10T10:00:00+00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-10T11:00:00+00:00", "timeZone": "UTC"},
        "attendees": [{"email": "olivia.smith@northwind.example"}],
    }).execute()  # fmt: skip
    events.delete(calendarId="primary", eventId=items[0]["id"]).execute()
    changed = events.list(calendarId="primary", syncToken=token).execute()
    assert {e["id"]: e["status"] for e in changed["items"]} == {created["id"]: "confirmed", items[0]["id"]: "cancelled"}
    sdk.sandbox.invalidate_sync_tokens(DEMO_MAILBOX)
    with pytest.raises(HttpError) as raised:
        events.list(calendarId="primary", syncToken=changed["nextSyncToken"]).execute()
    assert raised.value.resp.status == 410


def test_google_auth_refreshes_and_a_revoked_grant_is_its_refresh_error(sdk: Sdk) -> None:
    request = google.auth.transport.requests.Request()
    before = sdk.credentials.token
    sdk.credentials.refresh(request)
    assert sdk.credentials.token != before and sdk.credentials.valid
    assert sdk.gmail.users().getProfile(userId="me").execute()["emailAddress"] == DEMO_MAILBOX
    sdk.sandbox.revoke_user(DEMO_MAILBOX)
    with pytest.raises(RefreshError, match="invalid_grant"):
        sdk.credentials.refresh(request)


def test_google_auth_verifies_a_pubsub_push_token_against_the_sandbox_certs(sdk: Sdk) -> None:
    audience = "https://crm.example/api/v1/webhooks/google_workspace"
    token = sdk.sandbox.push_token(audience)
    claims = id_token.verify_token(
        token, google.auth.transport.requests.Request(), audience=audience, certs_url=f"{sdk.base_url}/oauth2/v3/certs"
    )
    assert claims["iss"] == "https://accounts.google.com" and claims["email_verified"] is True
    # google-auth checks claims with PyJWT where it is installed (it is: a dlt dependency), else itself.
    with pytest.raises((ValueError, InvalidTokenError), match=r"(?i)audience"):
        id_token.verify_token(token, google.auth.transport.requests.Request(), audience="https://elsewhere.example",
                              certs_url=f"{sdk.base_url}/oauth2/v3/certs")  # fmt: skip


def test_a_watch_through_the_sdk_publishes_each_change_as_a_signed_pubsub_push(sdk: Sdk) -> None:
    """users.watch and users.stop through the client; the push a change makes, as Pub/Sub's envelope with a token
    google-auth verifies."""
    received: list[tuple[dict[str, Any], str]] = []

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        received.append((json.loads(body), headers["authorization"].removeprefix("Bearer ")))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    topic, audience = "projects/vrtx-demo/topics/gmail-push", "https://crm.example/push"
    with ServedApp(endpoint) as served:
        sdk.sandbox.subscribe_push(served.base_url, topic=topic, audience=audience)
        watch = sdk.gmail.users().watch(userId="me", body={"topicName": topic, "labelIds": ["INBOX"]}).execute()
        assert int(watch["historyId"]) > 0 and int(watch["expiration"]) > 0
        sdk.sandbox.create(DEMO_MAILBOX, "messages", 1)
        assert sdk.sandbox.pubsub.flush()
        assert sdk.gmail.users().stop(userId="me").execute() == ""  # Gmail's 204
        sdk.sandbox.create(DEMO_MAILBOX, "messages", 1)  # not watched any more
        assert sdk.sandbox.pubsub.flush()

    ((envelope, token),) = received
    notification = json.loads(base64.b64decode(envelope["message"]["data"]))
    assert notification["emailAddress"] == DEMO_MAILBOX and int(notification["historyId"]) > int(watch["historyId"])
    assert envelope["message"]["messageId"] and envelope["message"]["publishTime"].endswith("Z")
    claims = id_token.verify_token(
        token, google.auth.transport.requests.Request(), audience=audience, certs_url=f"{sdk.base_url}/oauth2/v3/certs"
    )
    assert claims["email"].endswith(".iam.gserviceaccount.com")
