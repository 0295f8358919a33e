"""The official Microsoft Graph SDK (msgraph-sdk), unchanged, against the Microsoft 365 sandbox over real HTTP: its
request builders, its middleware (``/me`` rewriting, ``$`` decoding) and its models parse what the sandbox serves,
and what its models serialise (sendMail, a new event) the sandbox takes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.attendee_type import AttendeeType
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.location import Location
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import DeltaRequestBuilder as EventsDelta
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_request_builder import (
    DeltaRequestBuilder as MessagesDelta,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient

from providers.microsoft365.sandbox import MicrosoftSandbox, create_app, demo_sandbox
from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX
from providers.sandbox_kit.serve import ServedApp
from providers.sandbox_kit.wire import run_to_end

BOX = DEMO_MAILBOX.lower()


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class StaticToken(AccessTokenProvider):
    """A token the sandbox issued, for the loopback host only."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
        return self.token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator(["127.0.0.1"])


@pytest.fixture
def served() -> Iterator[tuple[MicrosoftSandbox, GraphServiceClient]]:
    sandbox = demo_sandbox(seed=9)
    with ServedApp(create_app(sandbox)) as server:
        auth = BaseBearerTokenAuthenticationProvider(StaticToken(sandbox.issue_access_token()))
        # The SDK's own kiota HttpxRequestAdapter, as GraphServiceClient makes it from credentials: its middleware
        # turns the builders' /users/me-token-to-replace into /me.
        adapter = GraphRequestAdapter(auth)
        adapter.base_url = f"{server.base_url}/v1.0"
        yield sandbox, GraphServiceClient(request_adapter=adapter)


def test_the_sdk_reads_me_and_pages_a_folders_delta_to_its_delta_link_then_reads_the_changes(served: Any) -> None:
    sandbox, client = served

    async def scenario() -> None:
        me = await client.me.get()
        assert me is not None and me.mail == DEMO_MAILBOX and me.display_name == "Jordan Lee"

        inbox = client.me.mail_folders.by_mail_folder_id("inbox").messages.delta
        config = RequestConfiguration(query_parameters=MessagesDelta.DeltaRequestBuilderGetQueryParameters(
            select=["subject", "from", "receivedDateTime", "isRead"]))  # fmt: skip
        config.headers.add("Prefer", "odata.maxpagesize=15")
        config.headers.add("Prefer", 'IdType="ImmutableId"')
        page, messages, pages = await inbox.get(request_configuration=config), list[Any](), 0
        while page is not None and page.odata_next_link:
            messages += page.value or []
            pages += 1
            page = await inbox.with_url(page.odata_next_link).get(request_configuration=config)
        assert page is not None and page.odata_delta_link and pages >= 2
        messages += page.value or []
        first = messages[0]
        assert first.subject and first.from_.email_address.address and first.received_date_time is not None
        assert len({m.id for m in messages}) == len(messages) == sandbox.mailbox(BOX).listing("inbox").__len__()

        (delivered,) = sandbox.create(BOX, "messages")
        sandbox.delete_message(BOX, messages[0].id)
        changes = await inbox.with_url(page.odata_delta_link).get(request_configuration=config)
        assert changes is not None and changes.odata_delta_link
        by_id = {m.id: m for m in changes.value or []}
        assert set(by_id) == {delivered, messages[0].id}
        assert by_id[delivered].subject == "Enquiry 0" and by_id[delivered].is_read is False
        assert by_id[messages[0].id].additional_data["@removed"] == {"reason": "deleted"}

    run_to_end(scenario())


def test_the_sdk_reads_a_calendar_view_delta_with_its_window(served: Any) -> None:
    sandbox, client = served

    async def scenario() -> None:
        query = EventsDelta.DeltaRequestBuilderGetQueryParameters(
            start_date_time=iso(time.time() - 30 * 86_400), end_date_time=iso(time.time() + 30 * 86_400)
        )
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("Prefer", "odata.maxpagesize=5")
        page, events = await client.me.calendar_view.delta.get(request_configuration=config), list[Any]()
        while page is not None and page.odata_next_link:
            events += page.value or []
            page = await client.me.calendar_view.delta.with_url(page.odata_next_link).get()
        assert page is not None and page.odata_delta_link
        events += page.value or []
        assert len(events) == sandbox.count(BOX, "events")
        event = events[0]
        assert event.subject and event.start.time_zone == "UTC" and event.organizer.email_address.address
        assert event.attendees and event.attendees[0].email_address.address and event.attendees[0].status.response

        sandbox.delete_event(BOX, event.id)
        changes = await client.me.calendar_view.delta.with_url(page.odata_delta_link).get()
        assert changes is not None
        assert [(e.id, e.additional_data.get("@removed")) for e in changes.value or []] == [
            (event.id, {"reason": "deleted"})
        ]

    run_to_end(scenario())


def test_the_sdk_sends_mail_and_books_a_meeting(served: Any) -> None:
    sandbox, client = served
    box = sandbox.mailbox(BOX)

    async def scenario() -> None:
        sent_before = len(box.listing("sentitems"))
        recipient = Recipient(email_address=EmailAddress(address="ada@example.com", name="Ada Lovelace"))
        message = Message(subject="Quote", body=ItemBody(content_type=BodyType.Text, content="Attached."),
                          to_recipients=[recipient])  # fmt: skip
        await client.me.send_mail.post(SendMailPostRequestBody(message=message, save_to_sent_items=True))
        assert len(box.listing("sentitems")) == sent_before + 1
        (_, newest), *_ = box.listing("sentitems")
        sent = box.content(box.item(newest))
        assert sent.subject == "Quote" and sent.to == (("Ada Lovelace", "ada@example.com"),) and not sent.is_draft

        live = sandbox.count(BOX, "events")
        meeting = Event(
            subject="Contract review", transaction_id="sdk-1",
            start=DateTimeTimeZone(date_time="2026-12-15T09:00:00", time_zone="Europe/London"),
            end=DateTimeTimeZone(date_time="2026-12-15T09:45:00", time_zone="Europe/London"),
            location=Location(display_name="Video call"),
            attendees=[Attendee(email_address=recipient.email_address, type=AttendeeType.Required)],
        )  # fmt: skip
        booked = await client.me.events.post(meeting)
        again = await client.me.events.post(meeting)  # the same transactionId: nothing new
        assert booked is not None and again is not None and booked.id == again.id
        assert sandbox.count(BOX, "events") == live + 1
        assert booked.start.date_time.startswith("2026-12-15T09:00:00") and booked.start.time_zone == "UTC"
        assert booked.attendees[0].email_address.address == "ada@example.com" and booked.transaction_id == "sdk-1"
        stored = sandbox.calendars[BOX].find(booked.id)
        assert stored.subject == "Contract review" and stored.location == "Video call"

    run_to_end(scenario())


def test_the_sdk_creates_renews_reauthorizes_and_deletes_a_subscription_and_its_endpoint_is_notified(
    served: Any,
) -> None:
    sandbox, client = served
    received: list[dict[str, Any]] = []
    hooks = FastAPI()

    @hooks.post("/notify")
    async def notify(request: Request) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            return PlainTextResponse(token)
        received.extend((await request.json())["value"])
        return Response(status_code=202)

    async def scenario(url: str) -> None:
        expires = datetime.now(UTC) + timedelta(days=2)
        made = await client.subscriptions.post(Subscription(
            change_type="created,updated", notification_url=url, resource="me/mailFolders('Inbox')/messages",
            expiration_date_time=expires, client_state="sdk-state"))  # fmt: skip
        assert made is not None and made.id and made.client_state == "sdk-state" and made.include_resource_data is False
        assert made.expiration_date_time is not None and abs(made.expiration_date_time - expires) < timedelta(seconds=1)
        sandbox.deliver(BOX, sender="sdk@example.org", subject="Seen by the SDK's endpoint", text="-")
        deadline = time.monotonic() + 10
        while not received:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert received[0]["subscriptionId"] == made.id and received[0]["clientState"] == "sdk-state"

        one = client.subscriptions.by_subscription_id(made.id)
        renewed = await one.patch(Subscription(expiration_date_time=expires + timedelta(days=1)))
        assert renewed is not None and renewed.expiration_date_time is not None
        assert renewed.expiration_date_time > expires
        await one.reauthorize.post()
        listed = await client.subscriptions.get()
        assert listed is not None and [s.id for s in listed.value or []] == [made.id]
        await one.delete()
        listed = await client.subscriptions.get()
        assert listed is not None and listed.value == []

    with ServedApp(hooks) as subscriber:
        run_to_end(scenario(f"{subscriber.base_url}/notify"))
    sandbox.notifications.close()
