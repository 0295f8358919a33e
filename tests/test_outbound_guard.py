"""Event callbacks never reach the platform's own network: internal addresses are refused when the URL is set and
again on the address each delivery actually connects to (DNS rebinding), redirects are not followed, and what an
internal service would answer is never recorded. Loopback receivers only with the explicit allowance."""
# ruff: noqa: F811 -- the receiver fixture is imported from tests/test_event_delivery.py and used by name

from __future__ import annotations

import ipaddress

import pytest
from fastapi.testclient import TestClient

from tests.helpers import bearer, make_tenant
from tests.test_event_delivery import Clock, Receiver, add_event, event_row, receiver  # noqa: F401
from vrtx_pipelines.config import Environment, Settings
from vrtx_pipelines.credentials.stored import callback_secret_context
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import Tenant
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.events.delivery import deliver_due_events
from vrtx_pipelines.outbound_guard import IPAddress, OutboundGuard, refusal

REFUSED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.10",
    "169.254.169.254",
    "169.254.10.20",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 -- an address to refuse, nothing binds to it
    "224.0.0.1",
    "239.255.255.250",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fd00:ec2::254",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 carrying 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 carrying 10.0.0.1
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


def resolver(table: dict[str, list[str]]) -> OutboundGuard:
    def resolve(host: str, _port: int) -> list[IPAddress]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return [ipaddress.ip_address(a) for a in table[host]]

    return OutboundGuard(resolve=resolve)


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_and_their_ipv6_forms_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_the_allowance_opens_loopback_and_private_but_never_metadata_multicast_or_unspecified() -> None:
    for address in ("127.0.0.1", "::1", "10.0.0.1", "192.168.0.2", "fd12::1", "::ffff:127.0.0.1"):
        assert refusal(ipaddress.ip_address(address), allow_private=True) is None, address
    for address in ("169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "224.0.0.1", "0.0.0.0"):  # noqa: S104
        assert refusal(ipaddress.ip_address(address), allow_private=True) is not None, address


def test_a_name_is_refused_when_any_of_its_addresses_is_internal() -> None:
    guard = resolver({"split.test": ["93.184.215.14", "10.0.0.5"], "public.test": ["93.184.215.14"]})
    assert guard.addresses("public.test", 443) == [ipaddress.ip_address("93.184.215.14")]
    with pytest.raises(Exception, match="destination refused"):
        guard.addresses("split.test", 443)
    with pytest.raises(Exception, match="metadata"):
        guard.addresses("metadata.google.internal.", 80)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:3000/graphql",
        "http://localhost:3000/graphql",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/hook",
        "https://192.168.1.1/hook",
        "https://[::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://[::ffff:127.0.0.1]:8443/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
        "https://0.0.0.0/hook",
        "http://2130706433:3000/graphql",  # 127.0.0.1 as one number
        "http://127.1:3000/graphql",  # and in short form
        "http://0x7f.0.0.1:3000/graphql",
    ],
)
def test_setting_a_callback_to_an_internal_address_is_refused_with_destination_refused(
    api: TestClient, settings: Settings, url: str
) -> None:
    token = make_tenant(settings, "acme")
    for env in (Environment.DEVELOPMENT, Environment.PRODUCTION):
        api.app.state.settings = settings.model_copy(update={"env": env})  # type: ignore[attr-defined]
        answer = api.put("/api/v1/events/callback", json={"url": url}, headers=bearer(token))
        assert answer.status_code == 422, (env, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "destination_refused" and error["message"].startswith("destination refused")
    assert api.get("/api/v1/events/callback", headers=bearer(token)).json()["configured"] is False


def test_a_public_callback_and_a_name_not_resolvable_yet_are_accepted(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    for url in ("https://93.184.215.14/hook", "https://crm.invalid/vrtx/events"):
        answer = api.put("/api/v1/events/callback", json={"url": url}, headers=bearer(token))
        assert answer.status_code == 200, answer.text


def test_a_malformed_callback_url_is_a_422_not_a_500(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    too_long = "https://crm.example/" + "x" * 500
    for url in ("http://[::1/hook", "https://crm.example:99999/hook", "https://crm.example:port/hook", too_long):
        answer = api.put("/api/v1/events/callback", json={"url": url}, headers=bearer(token))
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_failed", url


def store_callback(settings: Settings, tenant_id: str, url: str) -> None:
    """A callback as stored before the guard existed (or that resolved elsewhere when it was set)."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        tenant = session.get_one(Tenant, tenant_id)
        tenant.callback_url = url
        secret = "whsec_" + "s" * 32
        tenant.callback_secret = vault_from_settings(settings).encrypt_text(secret, callback_secret_context(tenant_id))


def deliver(settings: Settings, guard: OutboundGuard) -> None:
    engine = engine_for(settings.sqlalchemy_url)
    deliver_due_events(vault_from_settings(settings), engine=engine, now=Clock(), guard=guard)


def test_a_stored_callback_to_an_internal_service_is_never_contacted_and_its_answer_never_reported(
    api: TestClient, settings: Settings, receiver: Receiver
) -> None:
    token = make_tenant(settings, "acme")
    store_callback(settings, "acme", receiver.url)  # an internal service on loopback, answering 200
    event_id = add_event(settings, "acme")
    deliver(settings, OutboundGuard())
    assert receiver.received == []
    row = event_row(settings, event_id)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, None)
    assert row.last_error is not None and row.last_error.startswith("destination refused")
    assert "127.0.0.1" not in row.last_error

    again = api.post(f"/api/v1/events/{event_id}/redeliver", headers=bearer(token))
    assert again.status_code == 202
    deliver(settings, OutboundGuard())
    listed = api.get("/api/v1/events", headers=bearer(token)).json()["events"][0]["delivery"]
    assert listed["status"] == "failed" and listed["last_status_code"] is None
    assert listed["last_error"].startswith("destination refused") and receiver.received == []


def test_a_name_that_rebinds_to_loopback_after_it_was_accepted_is_refused_at_delivery(
    api: TestClient, settings: Settings, receiver: Receiver
) -> None:
    token = make_tenant(settings, "acme")
    port = receiver.url.split(":")[2].split("/")[0]
    accepted = api.put(
        "/api/v1/events/callback", json={"url": f"http://rebind.invalid:{port}/vrtx/events"}, headers=bearer(token)
    )
    assert accepted.status_code == 200, accepted.text
    event_id = add_event(settings, "acme")
    deliver(settings, resolver({"rebind.invalid": ["127.0.0.1"]}))  # the name now answers with loopback
    row = event_row(settings, event_id)
    assert row.status == "failed" and row.last_status_code is None and receiver.received == []
    assert row.last_error is not None and row.last_error.startswith("destination refused")


def test_delivery_connects_to_the_checked_address_and_keeps_the_urls_host(
    api: TestClient, settings: Settings, receiver: Receiver
) -> None:
    """Allowed (loopback, with the allowance): the name is resolved once by the guard and the connection goes to
    that address; the system resolver never sees ``crm.invalid`` (it could not resolve it)."""
    make_tenant(settings, "acme")
    port = receiver.url.split(":")[2].split("/")[0]
    store_callback(settings, "acme", f"http://crm.invalid:{port}/vrtx/events")
    event_id = add_event(settings, "acme")
    table = {"crm.invalid": ["127.0.0.1"]}
    guard = OutboundGuard(allow_private=True, resolve=resolver(table).resolve)
    deliver(settings, guard)
    assert event_row(settings, event_id).status == "delivered"
    ((headers, _body),) = receiver.received
    assert headers["host"] == f"crm.invalid:{port}"


def test_a_redirect_from_the_callback_is_not_followed(api: TestClient, settings: Settings, receiver: Receiver) -> None:
    make_tenant(settings, "acme")
    store_callback(settings, "acme", receiver.url)
    event_id = add_event(settings, "acme")
    receiver.script = [307]
    deliver(settings, OutboundGuard(allow_private=True))
    row = event_row(settings, event_id)
    assert (row.status, row.last_status_code, len(receiver.received)) == ("retrying", 307, 1)
