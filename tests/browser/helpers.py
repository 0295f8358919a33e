"""Helpers for the marketplace page tests (TestClient and browser): opening a session like the CRM does, forms."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
from fastapi.testclient import TestClient

from tests.helpers import bearer
from vrtx_pipelines.connect.consent import _ConsentForm

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def session_link(api: TestClient, token: str, path: str = "/marketplace") -> str:
    """The signed link the CRM gets for its tenant (path and query, to open in a test client)."""
    response = api.post("/api/v1/marketplace/sessions", json={"path": path}, headers=bearer(token))
    assert response.status_code == 201, response.text
    parts = urlsplit(response.json()["url"])
    return f"{parts.path}?{parts.query}"


def open_marketplace(api: TestClient, token: str) -> None:
    """What the tenant admin's browser does with the link: the cookie session lands in ``api``'s cookie jar."""
    opened = api.get(session_link(api, token), follow_redirects=False)
    assert opened.status_code == 303, opened.text
    assert opened.headers["location"] == "/marketplace"


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def post_form(api: TestClient, path: str, data: list[tuple[str, str]], page: str | None = None) -> httpx.Response:
    """Post a page's form the way a browser does, with the CSRF token of the page it came from."""
    token = csrf_of(api.get(page or path).text)
    return api.post(
        path,
        content=urlencode([("csrf_token", token), *data]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def consent(authorize_url: str, decision: str = "allow") -> str:
    """Answer a sandbox's consent page; returns the path and query of its redirect back to our callback."""
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        page = client.get(authorize_url)
        assert page.status_code == 200, page.text
        form = _ConsentForm()
        form.feed(page.text)
        assert form.action
        data = [*form.fields, *(("tenant_id", org) for org in form.organisations), ("decision", decision)]
        answer = client.post(
            urljoin(str(page.url), form.action),
            content=urlencode(data),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    location = urlsplit(answer.headers["location"])
    assert dict(parse_qsl(location.query)).get("state")
    return f"{location.path}?{location.query}"
