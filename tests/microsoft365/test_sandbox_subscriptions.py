"""The Microsoft 365 sandbox's Graph change notifications over real HTTP, to a real subscriber on loopback: the
validation handshake, notifications of created, updated and deleted messages and events with the client state,
renewal and its ceiling, deletion, expiry, lifecycle notifications and retried deliveries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from providers.microsoft365.sandbox import MicrosoftSandbox, create_app, demo_sandbox
from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX
from providers.sandbox_kit.clock import ManualClock
from providers.sandbox_kit.serve import ServedApp

BOX = DEMO_MAILBOX.lower()
FAILED = "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.02)


@dataclass
class Subscriber:
    """A webhook endpoint: answers handshakes as ``handshake`` says, notifications with ``statuses`` (then 202)."""

    handshake: str = "echo"  # echo | wrong | json | slow
    statuses: list[int] = field(default_factory=list)
    handshakes: list[tuple[str, str]] = field(default_factory=list)  # (token as decoded, content type sent)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"notify": [], "lifecycle": []})

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{kind}")
        async def hook(request: Request, kind: str) -> Response:
            token = request.query_params.get("validationToken")
            if token is not None:
                self.handshakes.append((token, request.headers.get("content-type", "")))
                if self.handshake == "slow":
                    await asyncio.sleep(1.5)
                if self.handshake == "json":
                    return JSONResponse({"validationToken": token})
                return PlainTextResponse(token if self.handshake != "wrong" else token.upper())
            body = await request.json()
            if self.statuses:
                return Response(status_code=self.statuses.pop(0))
            self.received[kind] += body["value"]
            return Response(status_code=202)

        return app

    def notes(self, kind: str = "notify") -> list[dict[str, Any]]:
        return list(self.received[kind])


@dataclass
class Graph:
    sandbox: MicrosoftSandbox
    subscriber: Subscriber
    base: str
    hooks: str
    token: str

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             **headers: str) -> httpx.Response:  # fmt: skip
        auth = {"Authorization": f"Bearer {token or self.token}", **headers}
        return httpx.request(method, f"{self.base}/v1.0{path}", json=body, headers=auth, timeout=15)

    def subscribe(self, resource: str = "me/mailFolders('inbox')/messages", **extra: Any) -> httpx.Response:
        body = {"changeType": "created,updated,deleted", "notificationUrl": f"{self.hooks}/hooks/notify",
                "resource": resource, "expirationDateTime": iso(self.sandbox.clock() + 3 * 86_400),
                "clientState": "secret-state"} | extra  # fmt: skip
        return self.call("POST", "/subscriptions", body)

    def settled(self) -> None:
        assert self.sandbox.notifications.sender.flush()


def serve(sandbox: MicrosoftSandbox) -> Iterator[Graph]:
    subscriber = Subscriber()
    with ServedApp(create_app(sandbox)) as served, ServedApp(subscriber.app()) as hooks:
        yield Graph(sandbox, subscriber, served.base_url, hooks.base_url, sandbox.issue_access_token())
    sandbox.notifications.close()


@pytest.fixture
def graph() -> Iterator[Graph]:
    yield from serve(demo_sandbox(seed=3))


def test_a_subscription_is_created_once_its_endpoint_echoes_the_decoded_validation_token(graph: Graph) -> None:
    answer = graph.subscribe(lifecycleNotificationUrl=f"{graph.hooks}/hooks/lifecycle")
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity"
    assert created["resource"] == "me/mailFolders('inbox')/messages"
    assert created["changeType"] == "created,updated,deleted"
    assert created["clientState"] == "secret-state" and created["includeResourceData"] is False
    assert created["latestSupportedTlsVersion"] == "v1_2" and created["encryptionCertificate"] is None
    assert created["creatorId"] == graph.sandbox.users[BOX].id and created["applicationId"]
    assert created["expirationDateTime"].endswith("0Z") and len(created["id"]) == 36
    # Both URLs were validated, the token sent URL-encoded (spaces, colons) and read back decoded, as text/plain.
    assert len(graph.subscriber.handshakes) == 2
    token, content_type = graph.subscriber.handshakes[0]
    assert token.startswith("Validation: Testing client application reachability for subscription Request-Id: ")
    assert content_type == "text/plain; charset=utf-8"
    assert all(v.passed for v in graph.sandbox.notifications.validations)
    assert graph.call("GET", f"/subscriptions/{created['id']}").json()["id"] == created["id"]
    assert [s["id"] for s in graph.call("GET", "/subscriptions").json()["value"]] == [created["id"]]
    assert graph.sandbox.subscriptions(BOX)[0]["reauthorizationRequired"] is False


@pytest.mark.parametrize("handshake", ["wrong", "json", "slow"])
def test_an_endpoint_answering_the_handshake_wrongly_or_too_late_gets_400_and_no_subscription(
    graph: Graph, handshake: str
) -> None:
    graph.subscriber.handshake = handshake
    graph.sandbox.notifications.validation_timeout_s = 0.5  # Graph waits 10 s; the test has no time to spare
    answer = graph.subscribe()
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidRequest" and answer.json()["error"]["message"] == FAILED
    assert graph.call("GET", "/subscriptions").json()["value"] == [] and graph.sandbox.subscriptions(BOX) == []


def test_messages_arriving_in_and_leaving_the_inbox_are_notified_as_created_and_deleted_with_the_client_state(
    graph: Graph,
) -> None:
    subscription = graph.subscribe().json()
    arrived = graph.sandbox.deliver(BOX, sender="Ada <ada@example.org>", subject="Hello", text="Hi")
    eventually(lambda: len(graph.subscriber.notes()) == 1)
    graph.sandbox.move_message(BOX, arrived, "archive")
    graph.sandbox.deliver(BOX, sender="Bob <bob@example.org>", subject="Hi again", text="Hi")
    eventually(lambda: len(graph.subscriber.notes()) == 3)
    first, moved, second = graph.subscriber.notes()
    user_id, tenant_id = graph.sandbox.users[BOX].id, graph.sandbox.users[BOX].tenant_id
    assert first["subscriptionId"] == subscription["id"] and first["clientState"] == "secret-state"
    assert first["changeType"] == "created" and first["tenantId"] == tenant_id
    assert first["subscriptionExpirationDateTime"] == subscription["expirationDateTime"]
    data = first["resourceData"]
    assert data["@odata.type"] == "#Microsoft.Graph.Message" and data["@odata.etag"].startswith('W/"')
    assert first["resource"] == data["@odata.id"] == f"Users/{user_id}/Messages/{data['id']}"
    assert moved["changeType"] == "deleted" and second["changeType"] == "created"
    # Without Prefer: IdType="ImmutableId" on the subscription, messages are named by REST ids (not the one returned).
    assert data["id"] != arrived and moved["resourceData"]["id"] != data["id"]


def test_immutable_ids_and_updates_everywhere_in_a_mailbox_subscription(graph: Graph) -> None:
    body = {"changeType": "updated", "notificationUrl": f"{graph.hooks}/hooks/notify", "resource": "/me/messages",
            "expirationDateTime": iso(graph.sandbox.clock() + 3600)}  # fmt: skip
    answer = graph.call("POST", "/subscriptions", body, Prefer='IdType="ImmutableId"')
    assert answer.status_code == 201, answer.text
    touched = graph.sandbox.touch(BOX, "messages", 2)
    graph.sandbox.deliver(BOX, sender="x@example.org", subject="Not an update", text="-")  # created: not asked for
    eventually(lambda: len(graph.subscriber.notes()) == 2)
    graph.settled()
    notes = graph.subscriber.notes()
    assert [n["changeType"] for n in notes] == ["updated", "updated"]
    assert [n["resourceData"]["id"] for n in notes] == touched and notes[0]["clientState"] is None


def test_created_updated_and_deleted_events_are_notified(graph: Graph) -> None:
    assert graph.subscribe("me/events").status_code == 201
    (made,) = graph.sandbox.create(BOX, "events")
    graph.sandbox.delete_event(BOX, made)
    eventually(lambda: len(graph.subscriber.notes()) == 2)
    created, deleted = graph.subscriber.notes()
    assert (created["changeType"], deleted["changeType"]) == ("created", "deleted")
    assert created["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event" and created["resourceData"]["id"] == made
    assert created["resource"] == f"Users/{graph.sandbox.users[BOX].id}/Events/{made}"


def test_renewal_by_patch_moves_the_expiry_within_graphs_ceiling(graph: Graph) -> None:
    subscription_id = graph.subscribe().json()["id"]
    later = iso(graph.sandbox.clock() + 5 * 86_400)
    renewed = graph.call("PATCH", f"/subscriptions/{subscription_id}", {"expirationDateTime": later})
    assert renewed.status_code == 200 and renewed.json()["expirationDateTime"].startswith(later[:-1])
    too_far = iso(graph.sandbox.clock() + 10_071 * 60)
    refused = graph.call("PATCH", f"/subscriptions/{subscription_id}", {"expirationDateTime": too_far})
    assert refused.status_code == 400
    assert refused.json()["error"] | {"innerError": None} == {
        "code": "ExtensionError", "message": "Subscription expiration can only be 10070 minutes in the future.",
        "innerError": None}  # fmt: skip
    assert graph.subscribe(expirationDateTime=too_far).status_code == 400
    assert graph.subscribe(expirationDateTime=iso(graph.sandbox.clock() - 60)).status_code == 400
    missing = graph.subscribe(expirationDateTime=None)
    assert missing.status_code == 400 and "expirationDateTime is a required property" in missing.text
    assert len(graph.sandbox.subscriptions(BOX)) == 1


def test_a_deleted_subscription_notifies_nothing_more_and_is_not_found(graph: Graph) -> None:
    subscription_id = graph.subscribe().json()["id"]
    assert graph.call("DELETE", f"/subscriptions/{subscription_id}").status_code == 204
    graph.sandbox.deliver(BOX, sender="x@example.org", subject="After", text="-")
    graph.settled()
    assert graph.subscriber.notes() == [] and graph.sandbox.deliveries == []
    gone = graph.call("GET", f"/subscriptions/{subscription_id}")
    assert gone.status_code == 404 and set(gone.json()["error"]) == {"code", "message", "innerError"}
    assert graph.call("DELETE", f"/subscriptions/{subscription_id}").status_code == 404


def test_an_expired_subscription_notifies_nothing_and_is_not_found() -> None:
    clock = ManualClock()
    for graph in serve(demo_sandbox(seed=3, clock=clock)):
        subscription_id = graph.subscribe(expirationDateTime=iso(clock() + 3600)).json()["id"]
        clock.advance(3601)
        graph.sandbox.deliver(BOX, sender="x@example.org", subject="Too late", text="-")
        graph.settled()
        assert graph.subscriber.notes() == [] and graph.sandbox.subscriptions(BOX) == []
        token = graph.sandbox.issue_access_token()
        assert graph.call("GET", f"/subscriptions/{subscription_id}", token=token).status_code == 404


def test_lifecycle_notifications_reach_the_lifecycle_url_and_reauthorizing_resumes_notifications(graph: Graph) -> None:
    subscription = graph.subscribe(lifecycleNotificationUrl=f"{graph.hooks}/hooks/lifecycle").json()
    graph.sandbox.lifecycle(subscription["id"], "reauthorizationRequired")
    eventually(lambda: len(graph.subscriber.notes("lifecycle")) == 1)
    assert graph.subscriber.notes("lifecycle")[0] == {
        "subscriptionId": subscription["id"], "subscriptionExpirationDateTime": subscription["expirationDateTime"],
        "tenantId": graph.sandbox.users[BOX].tenant_id, "clientState": "secret-state",
        "lifecycleEvent": "reauthorizationRequired"}  # fmt: skip
    graph.sandbox.deliver(BOX, sender="x@example.org", subject="Lost while unauthorised", text="-")
    graph.settled()
    assert graph.subscriber.notes() == []
    assert graph.call("POST", f"/subscriptions/{subscription['id']}/reauthorize").status_code == 204
    graph.sandbox.deliver(BOX, sender="x@example.org", subject="Seen", text="-")
    eventually(lambda: len(graph.subscriber.notes()) == 1)
    graph.sandbox.lifecycle(subscription["id"], "missed")
    graph.sandbox.remove_subscription(subscription["id"])
    eventually(lambda: len(graph.subscriber.notes("lifecycle")) == 3)
    assert [n["lifecycleEvent"] for n in graph.subscriber.notes("lifecycle")][1:] == ["missed", "subscriptionRemoved"]
    assert graph.call("GET", f"/subscriptions/{subscription['id']}").status_code == 404


def test_a_renewal_also_reauthorizes(graph: Graph) -> None:
    subscription_id = graph.subscribe().json()["id"]
    graph.sandbox.lifecycle(subscription_id, "reauthorizationRequired")
    assert graph.sandbox.subscriptions(BOX)[0]["reauthorizationRequired"] is True
    later = {"expirationDateTime": iso(graph.sandbox.clock() + 86_400)}
    assert graph.call("PATCH", f"/subscriptions/{subscription_id}", later).status_code == 200
    assert graph.sandbox.subscriptions(BOX)[0]["reauthorizationRequired"] is False


def test_a_failing_endpoint_is_retried_and_every_attempt_is_recorded_with_its_answer(graph: Graph) -> None:
    graph.subscribe()
    graph.subscriber.statuses = [500, 503]
    graph.sandbox.deliver(BOX, sender="x@example.org", subject="Retried", text="-")
    eventually(lambda: len(graph.subscriber.notes()) == 1)
    graph.settled()
    attempts = graph.sandbox.deliveries
    assert [(a.attempt, a.status) for a in attempts] == [(1, 500), (2, 503), (3, 202)]
    assert all(a.url == f"{graph.hooks}/hooks/notify" and a.seconds < 3 for a in attempts)
    assert attempts[0].payload["value"][0]["changeType"] == "created"


def test_subscriptions_need_the_resources_read_scope_and_belong_to_their_user(graph: Graph) -> None:
    calendars_only = graph.sandbox.issue_access_token(scopes=("Calendars.Read",))
    refused = graph.call("POST", "/subscriptions", {
        "changeType": "created", "notificationUrl": f"{graph.hooks}/hooks/notify", "resource": "me/messages",
        "expirationDateTime": iso(graph.sandbox.clock() + 3600)}, token=calendars_only)  # fmt: skip
    assert refused.status_code == 403 and graph.subscriber.handshakes == []
    subscription_id = graph.subscribe().json()["id"]
    assert graph.call("GET", f"/subscriptions/{subscription_id}", token=calendars_only).status_code == 403
    graph.sandbox.add_mailbox("ada@contoso.example")
    ada = graph.sandbox.issue_access_token("ada@contoso.example")
    assert graph.call("GET", "/subscriptions", token=ada).json()["value"] == []
    assert graph.call("GET", f"/subscriptions/{subscription_id}", token=ada).status_code == 404
    others = graph.subscribe(f"users/{graph.sandbox.users['ada@contoso.example'].id}/messages")
    assert others.status_code == 403
    mine = graph.subscribe(f"users/{graph.sandbox.users[BOX].id}/mailfolders/Inbox/messages")
    assert mine.status_code == 201, mine.text


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("notificationUrl", "http://hooks.example.org/notify"), ("clientState", "x" * 129),
     ("changeType", "created,moved"), ("resource", "me/contacts"), ("resource", "me/mailFolders('nope')/messages")],
)  # fmt: skip
def test_invalid_subscriptions_are_refused_before_any_handshake(graph: Graph, field_name: str, value: str) -> None:
    answer = graph.subscribe(**{field_name: value})
    assert answer.status_code in (400, 404) and "error" in answer.json()
    assert graph.subscriber.handshakes == []
