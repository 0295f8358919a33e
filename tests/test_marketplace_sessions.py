"""Marketplace links and sessions: a fresh link opens whichever page it names, once; a token rotation ends every
link and session issued before it; links and OAuth codes never reach the access log. SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.access_log import ACCESS_LOGGER, redact_query
from api.main import create_app
from api.pages import session as page_sessions
from providers.sandbox_kit.serve import free_port
from tests.browser.helpers import session_link
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.cli.main import main
from vrtx_pipelines.config import Settings


def browser(api: TestClient) -> TestClient:
    """Another browser: its own cookie jar."""
    return TestClient(api.app, raise_server_exceptions=False)


PAGES = ["/marketplace", "/marketplace/xero"] + [f"/marketplace/xero/{p}" for p in ("settings", "sync", "mappings")]


@pytest.mark.parametrize("path", PAGES)
def test_a_fresh_link_opens_the_page_it_names(api: TestClient, settings: Settings, path: str) -> None:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    admin = browser(api)
    opened = admin.get(session_link(api, token, path), follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == path
    assert page_sessions.COOKIE in opened.headers["set-cookie"]
    page = admin.get(path)
    assert page.status_code == 200, page.text


def test_a_link_opens_once(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    link = session_link(api, token, "/marketplace/xero")
    assert browser(api).get(link, follow_redirects=False).status_code == 303
    again = browser(api).get(link, follow_redirects=False)
    assert again.status_code == 401 and "set-cookie" not in again.headers
    assert "already used" in again.text


def test_a_link_opened_twice_at_the_same_moment_starts_one_session(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    link = session_link(api, token)
    answers: list[int] = []
    start = threading.Barrier(4)

    def open_it() -> None:
        client = browser(api)
        start.wait()
        answers.append(client.get(link, follow_redirects=False).status_code)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [303, 401, 401, 401]


def test_rotating_the_token_ends_earlier_links_and_sessions(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    admin = browser(api)
    assert admin.get(session_link(api, token), follow_redirects=False).status_code == 303
    assert admin.get("/marketplace").status_code == 200
    unopened = session_link(api, token)

    rotated = CliRunner().invoke(main, ["tenants", "rotate-token", "acme"], catch_exceptions=False)
    assert rotated.exit_code == 0, rotated.output
    new_token = rotated.output.strip().rsplit(" ", 1)[-1]

    assert admin.get("/marketplace").status_code == 401  # the cookie of the old generation
    assert browser(api).get(unopened, follow_redirects=False).status_code == 401
    assert api.post("/api/v1/marketplace/sessions", headers=bearer(token)).status_code == 401
    fresh = browser(api)
    assert fresh.get(session_link(api, new_token), follow_redirects=False).status_code == 303
    assert fresh.get("/marketplace").status_code == 200


def test_secret_query_values_are_redacted_and_the_rest_kept() -> None:
    assert redact_query("/marketplace/xero?session=acme.0.1.n.k1.sig") == "/marketplace/xero?session=[redacted]"
    assert (
        redact_query("/api/v1/integrations/xero/oauth/callback?code=c0de&scope=a+b&state=st8")
        == "/api/v1/integrations/xero/oauth/callback?code=[redacted]&scope=a+b&state=[redacted]"
    )
    assert redact_query("/marketplace?q=accounting") == "/marketplace?q=accounting"


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def served_api(settings: Settings) -> Iterator[tuple[str, Captured]]:
    """The API under real uvicorn with its default logging (access log on), and what its access log said."""
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="info", lifespan="off")
    server = uvicorn.Server(config)  # configures uvicorn's loggers, as `vrtx api` does
    captured = Captured()
    logging.getLogger(ACCESS_LOGGER).addHandler(captured)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            threading.Event().wait(0.02)
        yield f"http://127.0.0.1:{port}", captured
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        logging.getLogger(ACCESS_LOGGER).removeHandler(captured)


def test_links_and_oauth_codes_never_reach_the_access_log(settings: Settings, served_api: tuple[str, Captured]) -> None:
    url, captured = served_api
    token = make_tenant(settings, "acme")
    link = httpx.post(f"{url}/api/v1/marketplace/sessions", headers=bearer(token)).json()["url"]
    grant = urlsplit(link).query.split("=", 1)[1]
    assert httpx.get(f"{url}/marketplace?session={grant}", follow_redirects=False).status_code == 303
    callback = f"{url}/api/v1/integrations/xero/oauth/callback?code=secret-code-123&state=secret-state-456"
    assert httpx.get(callback).status_code >= 400  # an unknown state: refused, and still logged
    lines = "\n".join(captured.lines)
    assert '"GET /marketplace?session=[redacted] HTTP/1.1" 303' in lines
    assert "code=[redacted]&state=[redacted]" in lines
    for secret in (grant, "secret-code-123", "secret-state-456"):
        assert secret not in lines


def test_vrtx_marketplace_link_prints_a_fresh_link_to_the_page_asked_for(api: TestClient, settings: Settings) -> None:
    make_tenant(settings, "acme")
    printed = CliRunner().invoke(main, ["marketplace-link", "--tenant", "acme", "--path", "/marketplace/xero/sync"])
    assert printed.exit_code == 0, printed.output
    url = printed.stdout.strip()
    assert url.startswith(f"{settings.public_url}/marketplace/xero/sync?session=acme.")
    parts = urlsplit(url)
    opened = browser(api).get(f"{parts.path}?{parts.query}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/marketplace/xero/sync"
    assert "opens once" in printed.stderr

    for args, message in (
        (["--tenant", "nobody"], "error: there is no active tenant 'nobody'"),
        (["--tenant", "acme", "--path", "https://evil.example/"], "error: 'https://evil.example/' is not a"),
    ):
        refused = CliRunner().invoke(main, ["marketplace-link", *args])
        assert refused.exit_code == 1 and refused.stdout == "" and refused.stderr.startswith(message)
