"""The API is stateless: two `vrtx api` processes on different ports against one PostgreSQL app database, with the
same settings (vault keys, Xero app, sandbox), and the real `dagster-daemon` for the push. Every piece of state a
request leaves behind is written to the database, so whatever one process starts the other finishes or refuses:

- OAuth: the consent URL is issued by A, the callback lands on B and connects; replaying it on A is refused.
- Marketplace: a link issued by B opens on A once; on B it is then refused; A's session cookie works on B; after
  the tenant's token is rotated (by a third process, this one) the cookie is refused by both.
- Webhooks: one signed Xero delivery sent to A and then to B is one inbox row.
- Pushes: one Idempotency-Key sent to A and to B (one after the other, then a second key to both at once) is one
  push and one outbox row each, another body under the key is 409 ``idempotency_key_reused``, and the daemon sends
  each push to Xero exactly once.

Each check would fail if that state lived in a process's memory: the second process would not know it (a state, a
session, a push issued by the other) or would not know it was used (a burnt state or link, a stored event or key).
PostgreSQL only (skipped without ``VRTX_TEST_POSTGRES_URL``): that is the database a fleet of API replicas shares.
"""

# ruff: noqa: F811 -- the Xero fixtures imported below are requested by name
from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import func, select

from api.pages.session import COOKIE
from providers.sandbox_kit.serve import ServedApp, free_port
from providers.xero.sandbox import XeroSandbox
from providers.xero.webhooks import sign
from tests.helpers import bearer, make_tenant, stop_group
from tests.test_webhooks import KEY, xero_event, xero_payload
from tests.xero.conftest import base_urls, callback_path, connect_xero, oauth_clients, xero  # noqa: F401
from tests.xero.test_connect import consent
from vrtx_pipelines.cli.devserver import dagster_environment, initialise_instance
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import OAuthState, PushOutbox, Tenant, WebhookInbox
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.platform import prepare_database
from vrtx_pipelines.tenants import rotate_token

pytestmark = [pytest.mark.postgres, pytest.mark.dagster]
ROOT = Path(__file__).resolve().parent.parent
Xero = tuple[XeroSandbox, ServedApp, str]
T = TypeVar("T")


@pytest.fixture
def db_url(migrated_postgres_url: str) -> str:
    """PostgreSQL only: the database every API replica shares (the root fixture's parametrisation also runs
    SQLite)."""
    return migrated_postgres_url


def poll(condition: Callable[[], T | None], what: str, timeout_s: float = 60) -> T:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@dataclass
class Api:
    """One `vrtx api` process: its base URL, the process and its log."""

    name: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url(path), timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url(path), timeout=30, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.put(self.url(path), timeout=30, **kwargs)

    def up(self) -> bool:
        assert self.process.poll() is None, f"API {self.name} exited:\n{self.log.read_text()[-3000:]}"
        try:
            return self.get("/healthz").status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture
def apis(settings: Settings, xero: Xero, tmp_path: Path) -> Iterator[tuple[Api, Api]]:
    """Two API processes on ports of their own, started at once, with the environment the settings fixture
    exported (database, vault keys, Xero app and sandbox). The database is migrated and its catalog synced first,
    as a deployment's migration job does before the replicas roll out; neither process has a Dagster webserver to
    launch runs through (the daemon's sensors launch them)."""
    prepare_database(settings)
    env = {**os.environ, "VRTX_DAGSTER_URL": f"http://127.0.0.1:{free_port()}"}
    env.pop("DAGSTER_HOME", None)
    started: list[Api] = []
    try:
        for name in ("A", "B"):
            port = free_port()
            log = tmp_path / f"api-{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "vrtx_pipelines.cli.main", "api", "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )
            started.append(Api(name, f"http://127.0.0.1:{port}", process, log))
        for api in started:
            poll(api.up, f"API {api.name} to answer /healthz", timeout_s=120)
        a, b = started
        assert a.process.pid != b.process.pid and a.base != b.base
        yield a, b
    finally:
        for api in started:
            stop_group(api.process)


@pytest.fixture
def daemon(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """The real `dagster-daemon` (its sensors launch push runs), its Dagster storage in the same PostgreSQL."""
    dagster_env = dagster_environment(settings, ROOT)
    initialise_instance(dagster_env)
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env={**os.environ, **dagster_env},
            stdout=out,
            stderr=out,
            start_new_session=True,  # its code server and run processes go with it
        )
    try:
        yield log
        assert process.poll() is None, log.read_text()[-3000:]
    finally:
        stop_group(process)


def local(url: str) -> str:
    """The path and query of a URL the platform built on its public URL, to send to one process or the other."""
    return callback_path(url)


def test_an_oauth_state_issued_by_one_process_completes_on_the_other_and_is_burnt_for_both(
    settings: Settings, xero: Xero, apis: tuple[Api, Api]
) -> None:
    a, b = apis
    org = xero[2]
    token = make_tenant(settings, "acme")
    issued = a.get("/api/v1/integrations/xero/oauth/url", headers=bearer(token))
    assert issued.status_code == 200, issued.text
    location = consent(str(issued.json()["url"]))  # the user allows on Xero's page: the browser goes back with it

    done = b.get(callback_path(location))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "connected" and done.json()["account"]["external_account_id"] == org
    status = a.get("/api/v1/integrations/xero/status", headers=bearer(token))
    assert status.status_code == 200 and status.json()["status"] == "connected"

    for replayed_on in (a, b):
        replay = replayed_on.get(callback_path(location))
        assert replay.status_code == 400, (replayed_on.name, replay.text)
        assert replay.json()["error"]["code"] == "oauth_state_invalid"
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        [state] = session.scalars(select(OAuthState)).all()
        assert state.tenant_id == "acme" and state.used_at is not None


def test_a_marketplace_link_opens_once_across_processes_and_its_session_ends_for_both_on_rotation(
    settings: Settings, apis: tuple[Api, Api]
) -> None:
    a, b = apis
    token = make_tenant(settings, "acme")
    issued = b.post("/api/v1/marketplace/sessions", json={"path": "/marketplace"}, headers=bearer(token))
    assert issued.status_code == 201, issued.text
    link = local(str(issued.json()["url"]))
    unopened = local(str(b.post("/api/v1/marketplace/sessions", headers=bearer(token)).json()["url"]))

    opened = a.get(link)
    assert opened.status_code == 303 and opened.headers["location"] == "/marketplace", opened.text
    cookie = opened.cookies[COOKIE]
    again = b.get(link)  # another browser, another replica: the link was burnt by A, in the database
    assert again.status_code == 401 and COOKIE not in again.cookies
    assert "already used" in again.text

    session = {"Cookie": f"{COOKIE}={cookie}"}
    for replica in (b, a):
        page = replica.get("/marketplace", headers=session)
        assert page.status_code == 200, (replica.name, page.text[-2000:])

    with session_scope(engine_for(settings.sqlalchemy_url)) as db:  # what `vrtx tenants rotate-token` runs
        new_token = rotate_token(db, db.get_one(Tenant, "acme"))
    for replica in (a, b):
        assert replica.get("/marketplace", headers=session).status_code == 401, replica.name
        assert replica.get(unopened).status_code == 401, replica.name
        assert replica.post("/api/v1/marketplace/sessions", headers=bearer(token)).status_code == 401
    fresh = local(str(a.post("/api/v1/marketplace/sessions", headers=bearer(new_token)).json()["url"]))
    assert b.get(fresh).status_code == 303


def inbox(settings: Settings) -> list[WebhookInbox]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return list(session.scalars(select(WebhookInbox).order_by(WebhookInbox.id)))


def test_one_webhook_delivered_to_both_processes_is_one_inbox_row(
    settings: Settings, xero: Xero, apis: tuple[Api, Api]
) -> None:
    a, b = apis
    sandbox, _served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    configured = a.put("/api/v1/integrations/xero/webhook", json={"secret": KEY}, headers=bearer(token))
    assert configured.status_code == 200, configured.text
    first, second = sandbox.touch(org, "contacts", 2)

    def delivery(resource: str) -> tuple[bytes, dict[str, str]]:
        body = xero_payload(org, xero_event(org, "CONTACT", resource))
        return body, {"x-xero-signature": sign(body, KEY), "Content-Type": "application/json"}

    body, headers = delivery(first)  # one delivery, byte for byte, to each replica
    answers = [api.post("/api/v1/webhooks/xero/acme", content=body, headers=headers) for api in (a, b)]
    assert [(r.status_code, r.content) for r in answers] == [(200, b""), (200, b"")]
    [row] = inbox(settings)
    assert row.payload["external_id"] == first

    # B stores what is new to it: the dedup above was the database's key, not B refusing deliveries.
    body, headers = delivery(second)
    assert b.post("/api/v1/webhooks/xero/acme", content=body, headers=headers).status_code == 200
    assert [r.payload["external_id"] for r in inbox(settings)] == [first, second]


def outbox(settings: Settings) -> list[PushOutbox]:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return list(session.scalars(select(PushOutbox).order_by(PushOutbox.id)))


def test_one_idempotency_key_on_both_processes_is_one_push_sent_once(
    settings: Settings, xero: Xero, apis: tuple[Api, Api], daemon: Path
) -> None:
    a, b = apis
    sandbox, _served, org = xero
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    before = sandbox.count(org, "contacts")
    pushes = "/api/v1/integrations/xero/push"

    def push(api: Api, key: str, name: str) -> httpx.Response:
        body = {"operation": "create", "data": {"id": f"crm-{key}", "name": name}}
        return api.post(f"{pushes}/contact", json=body, headers={**bearer(token), "Idempotency-Key": key})

    queued = push(a, "stateless-1", "Two Replicas Ltd")
    replayed = push(b, "stateless-1", "Two Replicas Ltd")
    assert (queued.status_code, replayed.status_code) == (202, 200), (queued.text, replayed.text)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == queued.json()["id"]
    reused = push(b, "stateless-1", "Somebody Else Ltd")
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(outbox(settings)) == 1

    # The same new key to both replicas at the same moment: one wins the insert, the other answers its push.
    raced: dict[str, httpx.Response] = {}
    start = threading.Barrier(2)

    def submit(api: Api) -> None:
        start.wait()
        raced[api.name] = push(api, "stateless-race", "Raced Ltd")

    threads = [threading.Thread(target=submit, args=(api,)) for api in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r.status_code for r in raced.values()) == [200, 202], {n: r.text for n, r in raced.items()}
    assert raced["A"].json()["id"] == raced["B"].json()["id"]
    rows = outbox(settings)
    assert [row.idempotency_key for row in rows] == ["stateless-1", "stateless-race"]

    def finished(push_id: int) -> dict[str, Any] | None:
        answer = b.get(f"{pushes}/{push_id}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        state: dict[str, Any] = answer.json()
        return state if state["status"] in ("done", "failed") else None

    for push_id in [row.id for row in rows]:
        state = poll(functools.partial(finished, push_id), f"push {push_id} to finish", timeout_s=240)
        assert state["status"] == "done" and state["external_id"], (state, daemon.read_text()[-3000:])
    assert sandbox.count(org, "contacts") == before + 2  # each push sent once, whichever replica took it
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        assert session.scalar(select(func.count()).select_from(PushOutbox)) == 2
