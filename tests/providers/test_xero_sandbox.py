"""The Xero sandbox over real HTTP on loopback: OAuth, connections, errors, paging, incremental reads, rate limits,
fault knobs, determinism, scale, and its responses validated against Xero's own OpenAPI specs.

Time is an injected clock: expiry and rate-limit windows move with it, no test sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_USER_EMAIL,
    XeroSandbox,
    XeroSandboxKnobs,
    create_app,
)

SPECS = Path(__file__).resolve().parents[1] / "specs"  # copies of Xero's official specs (see its README)
REDIRECT = "http://127.0.0.1:8765/api/v1/integrations/xero/oauth/callback"
SCOPES = (
    "openid profile email offline_access accounting.contacts accounting.invoices accounting.payments"
    " accounting.settings.read"
)
SIZES: dict[str, int] = {"contacts": 30, "invoices": 250, "lines_per_invoice": 3, "payments": 40, "items": 10}
START = 1_800_000_000.0  # 2027-01-15, after the seeded history (which ends 2025-01-01)
MS_DATE = re.compile(r"^/Date\((\d+)\+0000\)/$")


@dataclass
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Xero:
    sandbox: XeroSandbox
    app_knobs: Any
    base_url: str
    tenant_id: str
    clock: Clock
    http: httpx.Client
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def knobs(self) -> XeroSandboxKnobs:
        knobs: XeroSandboxKnobs = self.app_knobs.sandbox
        return knobs

    def token(self) -> str:
        if "default" not in self.tokens:
            self.tokens["default"] = self.sandbox.issue_access_token([self.tenant_id])
        return self.tokens["default"]

    def api(self, path: str, *, token: str | None = None, tenant: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token or self.token()}",
            "xero-tenant-id": tenant or self.tenant_id,
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        return self.http.get(f"/api.xro/2.0/{path}", headers=headers, **kwargs)

    def all_pages(self, path: str, key: str, *, page_size: int = 100, **kwargs: Any) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {**kwargs.pop("params", {}), "page": page, "pageSize": page_size}
            body = self.api(path, params=params, **kwargs).json()
            records += body[key]
            if page >= body["pagination"]["pageCount"]:
                return records
            page += 1
            kwargs["params"] = {k: v for k, v in params.items() if k not in ("page", "pageSize")}


@pytest.fixture
def xero() -> Iterator[Xero]:
    clock = Clock()
    sandbox = XeroSandbox(seed=42, clock=clock)
    tenant_id = sandbox.add_organisation("Acme Trading", **SIZES)  # type: ignore[arg-type]
    app = create_app(sandbox)
    with ServedApp(app) as served, httpx.Client(base_url=served.base_url, timeout=10) as http:
        yield Xero(sandbox, app.state, served.base_url, tenant_id, clock, http)


# --- the OAuth dance ---------------------------------------------------------------------------------------


class ConsentPage(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.organisations: list[str] = []
        self.decisions: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a["action"]
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a["value"]
        elif tag == "input" and a.get("type") == "checkbox" and a.get("name") == "tenant_id":
            assert "checked" in a
            self.organisations.append(a["value"])
        elif tag == "button" and a.get("name") == "decision":
            self.decisions.append(a["value"])


def pkce_pair(verifier: str = "v" * 64) -> tuple[str, str]:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(x: Xero, **overrides: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "state": "state-123",
        "code_challenge": pkce_pair()[1],
        "code_challenge_method": "S256",
        **overrides,
    }
    return x.http.get("/identity/connect/authorize", params={k: v for k, v in params.items() if v != ""})


def consent(x: Xero, page: httpx.Response, decision: str = "allow", tenants: list[str] | None = None) -> dict[str, str]:
    form = ConsentPage(page.text)
    data = [*form.hidden.items(), *(("tenant_id", t) for t in (form.organisations if tenants is None else tenants))]
    answer = x.http.post(
        form.action,
        content=urlencode([*data, ("decision", decision)]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(
    x: Xero, code: str, *, verifier: str | None = "v" * 64, basic: bool = False, **extra: str
) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    if verifier is not None:
        form["code_verifier"] = verifier
    if basic:
        return x.http.post("/connect/token", data=form, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))
    return x.http.post(
        "/connect/token", data={**form, "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
    )


def refresh(x: Xero, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return x.http.post("/connect/token", data=form, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))


def dance(x: Xero, tenants: list[str] | None = None, scope: str = SCOPES) -> dict[str, Any]:
    params = consent(x, authorize(x, scope=scope), tenants=tenants)
    response = exchange(x, params["code"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_full_oauth_dance_with_pkce_reaches_the_chosen_organisation(xero: Xero) -> None:
    second = xero.sandbox.add_organisation("Acme Holdings", contacts=2, invoices=2, payments=1, items=1)
    someone_else = xero.sandbox.add_organisation(
        "Not Yours", contacts=1, invoices=0, payments=0, items=0, user_email="x@y.example"
    )

    page = authorize(xero)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "VRTX Integrations wants to access your Xero organisations" in page.text
    assert DEMO_USER_EMAIL in page.text and "accounting.contacts" in page.text
    form = ConsentPage(page.text)
    assert form.action == "/identity/connect/authorize/consent" and set(form.hidden) == {"request_id"}
    assert form.organisations == [xero.tenant_id, second] and someone_else not in form.organisations
    assert form.decisions == ["allow", "deny"]

    params = consent(xero, page, tenants=[xero.tenant_id])
    assert params["state"] == "state-123" and params["code"]
    response = exchange(xero, params["code"])

    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert set(tokens) == {"id_token", "access_token", "expires_in", "token_type", "refresh_token", "scope"}
    assert tokens["expires_in"] == 1800 and tokens["token_type"] == "Bearer" and tokens["scope"] == SCOPES
    assert tokens["access_token"].count(".") == 2 and tokens["id_token"].count(".") == 2
    claims = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[1] + "=="))
    assert claims["email"] == DEMO_USER_EMAIL and claims["aud"] == DEMO_CLIENT_ID
    connections = xero.http.get("/connections", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert connections.status_code == 200
    (connection,) = connections.json()
    assert connection["tenantId"] == xero.tenant_id and connection["tenantName"] == "Acme Trading"
    assert connection["tenantType"] == "ORGANISATION" and connection["authEventId"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", connection["createdDateUtc"])
    assert xero.api("Organisation", token=tokens["access_token"]).status_code == 200
    assert xero.api("Organisation", token=tokens["access_token"], tenant=second).status_code == 403
    assert xero.sandbox.stats.token_requests == 1 and xero.sandbox.stats[xero.tenant_id].token_requests == 1


def test_code_is_single_use_bound_to_its_redirect_uri_and_short_lived(xero: Xero) -> None:
    code = consent(xero, authorize(xero))["code"]
    assert exchange(xero, code).status_code == 200
    reused = exchange(xero, code)
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_grant"}

    other = consent(xero, authorize(xero))["code"]
    wrong_uri = exchange(xero, other, redirect_uri="http://127.0.0.1:8765/elsewhere")
    assert wrong_uri.json()["error"] == "invalid_grant"

    late = consent(xero, authorize(xero))["code"]
    xero.clock.advance(301)
    assert exchange(xero, late).json()["error"] == "invalid_grant"


def test_pkce_verifier_is_checked(xero: Xero) -> None:
    wrong = exchange(xero, consent(xero, authorize(xero))["code"], verifier="w" * 64)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    missing = exchange(xero, consent(xero, authorize(xero))["code"], verifier=None)
    assert missing.json()["error"] == "invalid_grant"
    verifier, challenge = pkce_pair("another-verifier-" * 4)
    good = exchange(
        xero, consent(xero, authorize(xero, code_challenge=challenge))["code"], verifier=verifier, basic=True
    )
    assert good.status_code == 200


def test_unknown_client_or_unregistered_redirect_is_an_error_page_never_a_redirect(xero: Xero) -> None:
    xero.sandbox.register_client("strict-app", "s3cret", ["https://app.example.com/callback"])
    for overrides in (
        {"client_id": "nobody"},
        {"redirect_uri": "https://evil.example/callback"},
        {"client_id": "strict-app", "redirect_uri": REDIRECT},
    ):
        page = authorize(xero, **overrides)
        assert page.status_code == 400 and "location" not in page.headers
        assert page.headers["content-type"].startswith("text/html")
    assert authorize(xero, client_id="strict-app", redirect_uri="https://app.example.com/callback").status_code == 200
    assert authorize(xero, redirect_uri="http://localhost:3000/cb").status_code == 200  # loopback leniency


def test_a_pkce_app_without_a_secret_must_send_a_challenge(xero: Xero) -> None:
    xero.sandbox.register_client("pkce-app", None, [REDIRECT], name="Pocket App")
    refused = authorize(xero, client_id="pkce-app", code_challenge="", code_challenge_method="")
    assert parse_qs(urlsplit(refused.headers["location"]).query)["error"] == ["invalid_request"]
    page = authorize(xero, client_id="pkce-app")
    assert "Pocket App wants to access your Xero organisations" in page.text
    code = consent(xero, page)["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": "v" * 64}
    tokens = xero.http.post("/connect/token", data={**form, "client_id": "pkce-app"})
    assert tokens.status_code == 200, tokens.text
    assert xero.api("Organisation", token=tokens.json()["access_token"]).json()["ProviderName"] == "Pocket App"


def test_authorize_request_errors_and_denial_go_back_to_the_app(xero: Xero) -> None:
    bad_type = authorize(xero, response_type="token")
    assert bad_type.status_code == 302
    assert parse_qs(urlsplit(bad_type.headers["location"]).query) == {
        "error": ["unsupported_response_type"],
        "error_description": ["response_type must be code"],
        "state": ["state-123"],
    }
    bad_scope = authorize(xero, scope="openid accounting.everything")
    assert parse_qs(urlsplit(bad_scope.headers["location"]).query)["error"] == ["invalid_scope"]
    granular = authorize(xero, scope="openid accounting.invoices.read accounting.reports.aged.read payroll.employees")
    assert granular.status_code == 200  # the 2026 granular scopes and other API families are known
    denied = consent(xero, authorize(xero), decision="deny")
    assert denied == {"error": "access_denied", "state": "state-123"}


def test_refresh_rotates_and_the_old_token_has_a_30_minute_grace_after_first_use(xero: Xero) -> None:
    first = dance(xero)
    rotated = refresh(xero, first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert xero.api("Items", token=second["access_token"]).status_code == 200

    xero.clock.advance(29 * 60)  # a lost response: the old token still gets a working pair
    retry = refresh(xero, first["refresh_token"])
    assert retry.status_code == 200 and retry.json()["refresh_token"] not in (
        first["refresh_token"],
        second["refresh_token"],
    )
    assert xero.api("Items", token=retry.json()["access_token"]).status_code == 200

    xero.clock.advance(2 * 60)  # 31 minutes after its first use
    expired = refresh(xero, first["refresh_token"])
    assert expired.status_code == 400 and expired.json() == {"error": "invalid_grant"}
    assert refresh(xero, second["refresh_token"]).status_code == 200
    assert xero.sandbox.stats.refresh_requests == 3 and xero.sandbox.stats[xero.tenant_id].refresh_requests == 3
    assert refresh(xero, "not-a-token").json() == {"error": "invalid_grant"}


def test_unused_refresh_tokens_expire_after_60_days_and_need_offline_access(xero: Xero) -> None:
    tokens = dance(xero)
    xero.clock.advance(60 * 86_400 + 1)
    assert refresh(xero, tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    online = dance(xero, scope="openid accounting.settings.read")
    assert "refresh_token" not in online and online["scope"] == "openid accounting.settings.read"


def test_bad_client_credentials_are_401_invalid_client(xero: Xero) -> None:
    tokens = dance(xero)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    for auth in ((DEMO_CLIENT_ID, "wrong"), ("unknown", DEMO_CLIENT_SECRET)):
        for path, data in (("/connect/token", form), ("/connect/revocation", {"token": tokens["refresh_token"]})):
            response = xero.http.post(path, data=data, auth=auth)
            assert response.status_code == 401 and response.json() == {"error": "invalid_client"}
    body_creds = xero.http.post("/connect/token", data={**form, "client_id": DEMO_CLIENT_ID, "client_secret": "nope"})
    assert body_creds.status_code == 401
    assert refresh(xero, tokens["refresh_token"]).status_code == 200  # the failed attempts did not burn it


def test_revocation_ends_the_grant_its_tokens_and_the_connections(xero: Xero) -> None:
    tokens = dance(xero)
    revoked = xero.http.post(
        "/connect/revocation", data={"token": tokens["refresh_token"]}, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    )
    assert revoked.status_code == 200 and revoked.content == b""
    assert refresh(xero, tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    assert xero.api("Organisation", token=tokens["access_token"]).status_code == 401
    again = dance(xero)  # the user can connect again
    assert [c["tenantId"] for c in xero.http.get("/connections", headers=bearer(again["access_token"])).json()] == [
        xero.tenant_id
    ]


def test_deleting_a_connection_removes_that_organisation_from_the_grant(xero: Xero) -> None:
    second = xero.sandbox.add_organisation("Acme Holdings", contacts=2, invoices=2, payments=1, items=1)
    tokens = dance(xero)
    listed = xero.http.get("/Connections", headers=bearer(tokens["access_token"])).json()  # xero-python's casing
    assert {c["tenantId"] for c in listed} == {xero.tenant_id, second}
    target = next(c for c in listed if c["tenantId"] == second)

    gone = xero.http.delete(f"/connections/{target['id']}", headers=bearer(tokens["access_token"]))

    assert gone.status_code == 204
    assert [c["tenantId"] for c in xero.http.get("/connections", headers=bearer(tokens["access_token"])).json()] == [
        xero.tenant_id
    ]
    assert xero.api("Organisation", token=tokens["access_token"], tenant=second).status_code == 403
    assert xero.http.delete(f"/connections/{target['id']}", headers=bearer(tokens["access_token"])).status_code == 404
    assert xero.http.get(
        "/connections", params={"authEventId": listed[0]["authEventId"]}, headers=bearer(tokens["access_token"])
    ).json()


def test_two_consents_of_one_user_share_the_connection_and_revoking_either_removes_it_for_both(xero: Xero) -> None:
    """What a platform serving many tenants from one app must live with (vrtx_pipelines.connect.revocation): a
    connection is per (app, user, organisation), a second consent only renews it, and revocation removes every
    connection of the user, so the other grant's tokens still authenticate but reach no organisation."""
    first, second = dance(xero), dance(xero)
    (one,) = xero.http.get("/connections", headers=bearer(first["access_token"])).json()
    (same,) = xero.http.get("/connections", headers=bearer(second["access_token"])).json()
    assert one["id"] == same["id"]  # the second consent renewed the first one's connection

    revoked = xero.http.post(
        "/connect/revocation", data={"token": second["refresh_token"]}, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    )

    assert revoked.status_code == 200
    assert refresh(xero, second["refresh_token"]).json() == {"error": "invalid_grant"}
    assert xero.http.get("/connections", headers=bearer(first["access_token"])).json() == []
    assert xero.api("Organisation", token=first["access_token"]).status_code == 403
    assert refresh(xero, first["refresh_token"]).status_code == 200  # its grant lives on, reaching nothing


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_access_tokens_expire_after_30_minutes_and_on_demand(xero: Xero) -> None:
    tokens = dance(xero)
    xero.clock.advance(1799)
    assert xero.api("Items", token=tokens["access_token"]).status_code == 200
    xero.clock.advance(1)
    expired = xero.api("Items", token=tokens["access_token"])
    assert expired.status_code == 401 and expired.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    fresh = xero.sandbox.issue_access_token([xero.tenant_id])
    xero.knobs.expire_tokens = True
    assert xero.api("Items", token=fresh).status_code == 401
    assert xero.knobs.expire_tokens is False  # consumed: tokens issued from now on work
    assert xero.api("Items", token=xero.sandbox.issue_access_token([xero.tenant_id])).status_code == 200


# --- errors -----------------------------------------------------------------------------------------------


def test_error_bodies_are_xeros(xero: Xero) -> None:
    no_token = xero.http.get("/api.xro/2.0/Invoices", headers={"xero-tenant-id": xero.tenant_id})
    assert no_token.status_code == 401
    assert no_token.json() == {
        "title": "Unauthorized",
        "status": 401,
        "detail": "AuthenticationUnsuccessful",
        "instance": no_token.headers["xero-correlation-id"],
    }
    no_tenant = xero.http.get("/api.xro/2.0/Invoices", headers={**bearer(xero.token()), "Accept": "application/json"})
    for forbidden in (no_tenant, xero.api("Invoices", tenant="00000000-0000-0000-0000-000000000000")):
        assert forbidden.status_code == 403
        body = forbidden.json()
        assert body == {
            "Type": None,
            "Title": "Forbidden",
            "Status": 403,
            "Detail": "AuthenticationUnsuccessful",
            "Instance": forbidden.headers["xero-correlation-id"],
            "Extensions": {},
        }
    missing = xero.api("Invoices/6e1ad3b1-52f9-4c4b-9c53-8f1c5a2b7d10")
    assert missing.status_code == 404 and missing.text == "The resource you're looking for cannot be found"
    assert xero.api("Contacts/not-a-guid").status_code == 404
    bad_where = xero.api("Invoices", params={"where": "Nonsense==1"})
    assert bad_where.status_code == 400
    assert bad_where.json() == {
        "ErrorNumber": 16,
        "Type": "QueryParseException",
        "Message": "No property or field 'Nonsense' exists in type 'Invoice'",
    }
    assert xero.api("Invoices", params={"where": 'Status=="DRAFT" AND ('}).json()["Type"] == "QueryParseException"
    assert xero.api("Contacts", params={"where": 'IsCustomer=="yes"'}).json()["Message"] == (
        "Operator '==' incompatible with operand types 'Boolean' and 'String'"
    )
    settings_only = dance(xero, scope="openid accounting.settings.read")
    no_scope = xero.api("Contacts", token=settings_only["access_token"])
    assert no_scope.status_code == 401 and no_scope.json()["detail"] == "AuthorizationUnsuccessful"
    assert xero.http.put("/api.xro/2.0/Items", headers=bearer(xero.token())).status_code == 501
    assert xero.api("BankTransactions").status_code == 404
    assert xero.api("Invoices", headers={"Accept": "application/xml"}).status_code == 406


# --- paging, order, filters ------------------------------------------------------------------------------


def test_paging_pages_clamps_and_ends_with_empty_pages_on_exact_multiples() -> None:
    sandbox = XeroSandbox(seed=7, clock=Clock())
    tenant_id = sandbox.add_organisation("Exact", contacts=5, invoices=200, lines_per_invoice=1, payments=0, items=1)
    with ServedApp(create_app(sandbox)) as served, httpx.Client(base_url=served.base_url) as http:
        x = Xero(sandbox, None, served.base_url, tenant_id, Clock(), http)
        pages = [x.api("Invoices", params={"page": p, "pageSize": 100}).json() for p in (1, 2, 3, 9)]
        assert [len(p["Invoices"]) for p in pages] == [100, 100, 0, 0]
        assert pages[1]["pagination"] == {"page": 2, "pageSize": 100, "pageCount": 2, "itemCount": 200}
        assert pages[2]["pagination"] == {"page": 3, "pageSize": 100, "pageCount": 2, "itemCount": 200}
        assert len({i["InvoiceID"] for p in pages for i in p["Invoices"]}) == 200
        assert x.api("Invoices", params={"page": 1, "pageSize": 5000}).json()["pagination"]["pageSize"] == 1000
        assert len(x.api("Invoices", params={"page": 1}).json()["Invoices"]) == 100  # default page size
        unpaged = x.api("Invoices").json()
        assert "pagination" not in unpaged and len(unpaged["Invoices"]) == 200
        assert all("LineItems" not in invoice for invoice in unpaged["Invoices"])  # only paged/single carry lines
        assert all(len(i["LineItems"]) == 1 for i in pages[0]["Invoices"])
        items = x.api("Items", params={"page": 2}).json()
        assert "pagination" not in items and len(items["Items"]) == 1  # Items are not paged


def test_default_order_is_updated_date_then_id_and_desc_reverses_it(xero: Xero) -> None:
    xero.sandbox.touch(xero.tenant_id, "invoices", 3)
    xero.sandbox.create(xero.tenant_id, "invoices", 4)
    records = xero.all_pages("Invoices", "Invoices", page_size=37)
    keys = [(ms(r["UpdatedDateUTC"]), r["InvoiceID"]) for r in records]
    assert keys == sorted(keys) and len(keys) == len(set(keys)) == xero.sandbox.count(xero.tenant_id, "invoices") == 254
    descending = xero.all_pages("Invoices", "Invoices", page_size=37, params={"order": "UpdatedDateUTC DESC"})
    assert [r["InvoiceID"] for r in descending] == [r["InvoiceID"] for r in reversed(records)]
    by_number = xero.all_pages("Invoices", "Invoices", page_size=100, params={"order": "InvoiceNumber DESC"})
    numbers = [r["InvoiceNumber"] for r in by_number]
    assert numbers == sorted(numbers, reverse=True) and numbers[0] == "INV-000254"


def test_if_modified_since_and_where_select_by_change_date(xero: Xero) -> None:
    records = xero.all_pages("Invoices", "Invoices")
    cut = ms(records[99]["UpdatedDateUTC"])  # 150 invoices changed strictly after it
    iso_with_offset = datetime.fromtimestamp(cut / 1000, UTC).astimezone().isoformat(timespec="milliseconds")
    for header in (iso_with_offset, datetime.fromtimestamp(cut / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")):
        changed = xero.all_pages("Invoices", "Invoices", headers={"If-Modified-Since": header})
        assert [r["InvoiceID"] for r in changed] == [r["InvoiceID"] for r in records[100:]]
    second = cut // 1000 + 1  # RFC 1123 dates have whole seconds
    rfc1123 = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(second))
    by_date = xero.all_pages("Invoices", "Invoices", headers={"If-Modified-Since": rfc1123})
    assert len(by_date) == sum(ms(r["UpdatedDateUTC"]) > second * 1000 for r in records)
    floor = ms(records[200]["UpdatedDateUTC"]) // 1000 * 1000
    where = f"UpdatedDateUTC>=DateTime({datetime.fromtimestamp(floor / 1000, UTC):%Y,%m,%d,%H,%M,%S})"
    since = xero.all_pages("Invoices", "Invoices", params={"where": where})
    assert [r["InvoiceID"] for r in since] == [r["InvoiceID"] for r in records if ms(r["UpdatedDateUTC"]) >= floor]
    assert len(xero.all_pages("Invoices", "Invoices", params={"where": "UpdatedDateUTC>=DateTime(2024,01,01)"})) == sum(
        ms(r["UpdatedDateUTC"]) >= 1_704_067_200_000 for r in records
    )


def test_where_filters_by_field_equality_text_and_logic(xero: Xero) -> None:
    records = xero.all_pages("Invoices", "Invoices")
    drafts = xero.all_pages("Invoices", "Invoices", params={"where": 'Status=="DRAFT"'})
    assert drafts and {r["Status"] for r in drafts} == {"DRAFT"}
    assert len(drafts) == sum(r["Status"] == "DRAFT" for r in records)
    paid_or_voided = xero.api("Invoices", params={"where": 'Status == "PAID" OR Status == "VOIDED"'}).json()["Invoices"]
    assert len(paid_or_voided) == sum(r["Status"] in ("PAID", "VOIDED") for r in records)
    big = xero.api("Invoices", params={"where": 'Total>=1000 && Type=="ACCREC"', "page": 1}).json()
    assert big["pagination"]["itemCount"] == sum(r["Total"] >= 1000 for r in records)
    name = records[0]["Contact"]["Name"]
    by_contact = xero.api("Invoices", params={"where": f'Contact.Name.Contains("{name[:5]}")'}).json()["Invoices"]
    assert by_contact and all(name[:5].lower() in r["Contact"]["Name"].lower() for r in by_contact)
    ids = xero.api("Invoices", params={"IDs": f"{records[3]['InvoiceID']},{records[1]['InvoiceID']}"}).json()
    assert [r["InvoiceID"] for r in ids["Invoices"]] == [records[1]["InvoiceID"], records[3]["InvoiceID"]]
    by_number = xero.api(f"invoices/{records[5]['InvoiceNumber']}").json()["Invoices"]
    assert by_number[0]["InvoiceID"] == records[5]["InvoiceID"] and len(by_number[0]["LineItems"]) == 3
    item = xero.api("Items").json()["Items"][4]
    assert (
        xero.api(f"Items/{item['Code']}").json()["Items"]
        == [item]
        == xero.api(f"Items/{item['ItemID']}").json()["Items"]
    )
    assert xero.api("TaxRates/output2").json()["TaxRates"][0]["Name"] == "15% GST on Income"
    statuses = xero.api("Invoices", params={"Statuses": "DRAFT,VOIDED"}).json()["Invoices"]
    assert {r["Status"] for r in statuses} <= {"DRAFT", "VOIDED"}


WHERE_CASES: list[tuple[str, Any]] = [
    ('Status != "DRAFT"', lambda r: r["Status"] != "DRAFT"),
    ('NOT (Status=="DRAFT") AND Total > 500', lambda r: r["Status"] != "DRAFT" and r["Total"] > 500),
    ('status=="paid"', lambda r: r["Status"] == "PAID"),  # names and text compare without case
    ("FullyPaidOnDate != null", lambda r: "FullyPaidOnDate" in r),
    ('Reference.StartsWith("PO") || AmountDue == 0', lambda r: r["Reference"].startswith("PO") or r["AmountDue"] == 0),
    (
        'Date >= DateTime(2024, 1, 1) AND Date < DateTime.Parse("2024-06-01T00:00:00")',
        lambda r: 1_704_067_200_000 <= ms(r["Date"]) < 1_717_200_000_000,
    ),
    ("SentToContact == true", lambda r: r["SentToContact"] is True),
]


@pytest.mark.parametrize(("where", "expected"), WHERE_CASES, ids=[case[0] for case in WHERE_CASES])
def test_where_expressions_match_the_same_filter_in_python(xero: Xero, where: str, expected: Any) -> None:
    everything = xero.all_pages("Invoices", "Invoices")
    matched = xero.all_pages("Invoices", "Invoices", params={"where": where})
    assert matched, where
    assert [r["InvoiceID"] for r in matched] == [r["InvoiceID"] for r in everything if expected(r)]


def test_archived_contacts_only_with_include_archived(xero: Xero) -> None:
    all_contacts = xero.api("Contacts", params={"includeArchived": "true"}).json()["Contacts"]
    active = xero.api("Contacts").json()["Contacts"]
    assert len(all_contacts) == xero.sandbox.count(xero.tenant_id, "contacts") == 30
    assert {c["ContactStatus"] for c in active} == {"ACTIVE"}
    xero.sandbox.archive_contact(xero.tenant_id, active[0]["ContactID"])
    assert len(xero.api("Contacts").json()["Contacts"]) == len(active) - 1


def test_touched_created_voided_and_archived_records_arrive_incrementally(xero: Xero) -> None:
    invoices = xero.all_pages("Invoices", "Invoices")
    latest = max(ms(r["UpdatedDateUTC"]) for r in invoices)
    since = {"If-Modified-Since": datetime.fromtimestamp(latest / 1000, UTC).isoformat(timespec="milliseconds")}
    assert xero.all_pages("Invoices", "Invoices", headers=since) == []

    touched = xero.sandbox.touch(xero.tenant_id, "invoices", 5)
    created = xero.sandbox.create(xero.tenant_id, "invoices", 2)
    changed = xero.all_pages("Invoices", "Invoices", headers=since)

    assert {r["InvoiceID"] for r in changed} == set(touched) | set(created)
    assert touched == [r["InvoiceID"] for r in invoices[:5]]  # the five oldest
    assert {r["InvoiceNumber"] for r in changed if r["InvoiceID"] in created} == {"INV-000251", "INV-000252"}
    assert all(ms(r["UpdatedDateUTC"]) == int(START * 1000) for r in changed)
    assert xero.all_pages("Payments", "Payments", headers=since) == []  # invoices changed, payments did not
    assert {r["Reference"] for r in changed if r["InvoiceID"] in touched} != {i["Reference"] for i in invoices[:5]}

    xero.clock.advance(60)
    paid = next(r for r in invoices if r["Status"] == "PAID")
    xero.sandbox.void_invoice(xero.tenant_id, paid["InvoiceID"])
    contact_id = invoices[0]["Contact"]["ContactID"]
    xero.sandbox.archive_contact(xero.tenant_id, contact_id)
    later = {"If-Modified-Since": datetime.fromtimestamp(START + 30, UTC).isoformat()}
    (voided,) = xero.all_pages("Invoices", "Invoices", headers=later)
    assert voided["Status"] == "VOIDED" and voided["AmountDue"] == 0 and voided["Payments"] == []
    (deleted,) = xero.all_pages("Payments", "Payments", headers=later)
    assert deleted["Status"] == "DELETED" and deleted["Invoice"]["InvoiceID"] == paid["InvoiceID"]
    (archived,) = xero.all_pages("Contacts", "Contacts", headers=later, params={"includeArchived": "true"})
    assert archived["ContactID"] == contact_id and archived["ContactStatus"] == "ARCHIVED"

    new_payment = xero.sandbox.create(xero.tenant_id, "payments", 1)
    (payment,) = xero.api(f"Payments/{new_payment[0]}").json()["Payments"]
    (settled,) = xero.api(f"Invoices/{payment['Invoice']['InvoiceID']}").json()["Invoices"]
    assert settled["Status"] == "PAID" and settled["AmountPaid"] == payment["Amount"] == settled["Total"]
    assert xero.sandbox.count(xero.tenant_id, "payments") == 41


def test_generated_records_are_consistent(xero: Xero) -> None:
    invoices = xero.all_pages("Invoices", "Invoices")
    contacts = {c["ContactID"] for c in xero.api("Contacts", params={"includeArchived": "true"}).json()["Contacts"]}
    for invoice in invoices:
        lines = invoice["LineItems"]
        assert round(invoice["SubTotal"] + invoice["TotalTax"], 2) == invoice["Total"]
        assert round(sum(line["TaxAmount"] for line in lines), 2) == invoice["TotalTax"]
        assert invoice["Contact"]["ContactID"] in contacts
        assert invoice["Date"] <= invoice["DueDate"] and MS_DATE.match(invoice["UpdatedDateUTC"])
        assert invoice["DateString"] == datetime.fromtimestamp(ms(invoice["Date"]) / 1000, UTC).strftime(
            "%Y-%m-%dT00:00:00"
        )
        for line in lines:
            exact = Decimal(str(line["Quantity"])) * Decimal(str(line["UnitAmount"]))
            assert exact.quantize(Decimal("0.01"), ROUND_HALF_UP) == Decimal(str(line["LineAmount"]))
        if invoice["Status"] != "VOIDED":
            assert round(invoice["AmountPaid"] + invoice["AmountDue"], 2) == invoice["Total"]
        assert (invoice["Status"] == "PAID") == ("FullyPaidOnDate" in invoice)
    by_id = {i["InvoiceID"]: i for i in invoices}
    payments = xero.all_pages("Payments", "Payments")
    assert len(payments) == 40 and len({p["Invoice"]["InvoiceID"] for p in payments}) == 40
    for payment in payments:
        invoice = by_id[payment["Invoice"]["InvoiceID"]]
        assert (
            invoice["AmountPaid"] == payment["Amount"] and invoice["Payments"][0]["PaymentID"] == payment["PaymentID"]
        )
        assert invoice["Date"] <= payment["Date"] and payment["Account"]["Code"] == "090"
    statuses = {i["Status"] for i in invoices}
    assert {"DRAFT", "AUTHORISED", "PAID", "VOIDED"} <= statuses
    tax_types = {t["TaxType"] for t in xero.api("TaxRates").json()["TaxRates"]}
    assert {"OUTPUT2", "INPUT2", "NONE", "EXEMPTOUTPUT"} <= tax_types
    codes = {a["Code"]: a for a in xero.api("Accounts").json()["Accounts"]}
    assert codes["200"]["Name"] == "Sales" and codes["090"]["Type"] == "BANK" and codes["400"]["Name"] == "Advertising"


# --- rate limits and fault knobs --------------------------------------------------------------------------


def test_every_accounting_response_carries_the_rate_limit_headers(xero: Xero) -> None:
    responses = [
        xero.api("Invoices", params={"page": 1}),
        xero.api("Invoices/00000000-0000-0000-0000-000000000000"),
        xero.api("Invoices", params={"where": "("}),
        xero.api("Organisation", tenant="00000000-0000-0000-0000-000000000000"),
        xero.api("Organisation", token="nope"),
        xero.api("BankTransactions"),
    ]
    assert [r.status_code for r in responses] == [200, 404, 400, 403, 401, 404]
    for response in responses:
        for name in ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining", "Xero-Correlation-Id"):
            assert name in response.headers, (response.status_code, name)
    assert (
        responses[2].headers["X-MinLimit-Remaining"] == "57" and responses[2].headers["X-DayLimit-Remaining"] == "4997"
    )


def test_minute_limit_answers_429_with_retry_after_until_the_window_rolls(xero: Xero) -> None:
    xero.knobs.minute_limit = 3
    for _ in range(3):
        assert xero.api("Items").status_code == 200
        xero.clock.advance(10)
    refused = xero.api("Items")
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute" and refused.headers["Retry-After"] == "30"
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    xero.clock.advance(30)
    assert xero.api("Items").status_code == 200
    assert xero.sandbox.stats[xero.tenant_id].rate_limited_responses == 1
    assert xero.sandbox.stats[xero.tenant_id].api_calls == 5


def test_day_and_app_minute_limits(xero: Xero) -> None:
    other = xero.sandbox.add_organisation("Other", contacts=1, invoices=0, payments=0, items=0)
    token = xero.sandbox.issue_access_token([xero.tenant_id, other])
    xero.knobs.day_limit = 2
    assert [xero.api("Items", token=token).status_code for _ in range(3)] == [200, 200, 429]
    day = xero.api("Items", token=token)
    assert day.headers["X-Rate-Limit-Problem"] == "day" and day.headers["Retry-After"] == "86400"
    xero.knobs.day_limit = 5000
    xero.knobs.app_minute_limit = 3
    third = xero.api("Items", token=token, tenant=other)  # the app's third call this minute, another organisation
    assert third.status_code == 200 and third.headers["X-AppMinLimit-Remaining"] == "0"
    refused = xero.api("Items", token=token, tenant=other)
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "appminute"


def test_concurrent_limit_refuses_a_call_while_others_are_in_flight(xero: Xero) -> None:
    xero.knobs.concurrent_limit = 1
    xero.knobs.latency_s = 0.4  # holds the first call in flight
    token = xero.token()
    statuses: list[int] = []
    first = threading.Thread(target=lambda: statuses.append(xero.api("Items", token=token).status_code))
    first.start()
    deadline = time.monotonic() + 5
    while xero.sandbox.in_flight(xero.tenant_id) == 0 and time.monotonic() < deadline:
        pass
    second = httpx.get(
        f"{xero.base_url}/api.xro/2.0/Items",
        headers={"Authorization": f"Bearer {token}", "xero-tenant-id": xero.tenant_id, "Accept": "application/json"},
    )
    first.join()
    assert second.status_code == 429 and second.headers["X-Rate-Limit-Problem"] == "concurrent"
    assert statuses == [200]


def test_rate_limits_can_be_switched_off(xero: Xero) -> None:
    xero.knobs.enforce_rate_limits = False
    xero.knobs.minute_limit = 1
    assert [xero.api("Items").status_code for _ in range(3)] == [200, 200, 200]


def test_429_storm_knob(xero: Xero) -> None:
    xero.knobs.rate_limit_next = 2
    xero.knobs.retry_after_s = 7
    first, second, third = (xero.api("Invoices", params={"page": 1}) for _ in range(3))
    for refused in (first, second):
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "7"
        assert refused.headers["X-Rate-Limit-Problem"] == "minute" and "X-DayLimit-Remaining" in refused.headers
    assert third.status_code == 200 and xero.knobs.rate_limit_next == 0
    assert xero.sandbox.stats.rate_limited_responses == 2


def test_5xx_on_page_n_knob_fails_that_page_n_times_then_serves_it(xero: Xero) -> None:
    xero.knobs.fail_on_page = 2
    xero.knobs.fail_on_page_status = 503
    xero.knobs.fail_on_page_times = 2
    assert xero.api("Invoices", params={"page": 1}).status_code == 200
    assert [xero.api("Invoices", params={"page": 2}).status_code for _ in range(3)] == [503, 503, 200]
    assert xero.api("Contacts", params={"page": 2}).status_code == 200 and xero.knobs.fail_on_page_times == 0
    xero.knobs.fail_on_page_times = 1
    failed = xero.api("Payments", params={"page": 2, "pageSize": 10})
    assert failed.status_code == 503 and failed.json()["Status"] == 503
    xero.knobs.fail_next_with_status = 502  # the shared one-shot knob
    assert [xero.api("Items").status_code for _ in range(2)] == [502, 200]


# --- determinism, scale, fidelity --------------------------------------------------------------------------


def first_page(seed: int) -> tuple[str, list[dict[str, Any]]]:
    sandbox = XeroSandbox(seed=seed, clock=Clock())
    tenant_id = sandbox.add_organisation("Acme Trading", **SIZES)  # type: ignore[arg-type]
    with ServedApp(create_app(sandbox)) as served, httpx.Client(base_url=served.base_url) as http:
        x = Xero(sandbox, None, served.base_url, tenant_id, Clock(), http)
        return tenant_id, x.api("Invoices", params={"page": 1}).json()["Invoices"]


def test_same_seed_same_data_other_seed_other_data() -> None:
    assert first_page(42) == first_page(42)
    assert first_page(43)[1] != first_page(42)[1]


def test_page_50_of_a_100k_invoice_organisation_has_exactly_its_thousand_invoices() -> None:
    # How fast the sandbox serves a deep page is bench/pull.py's business; this checks what it serves.
    sandbox = XeroSandbox(seed=1, clock=Clock())
    tenant_id = sandbox.add_organisation("Big", contacts=5000, invoices=100_000, payments=40_000, items=50)
    with ServedApp(create_app(sandbox)) as served, httpx.Client(base_url=served.base_url, timeout=30) as http:
        x = Xero(sandbox, None, served.base_url, tenant_id, Clock(), http)
        body = x.api("Invoices", params={"page": 50, "pageSize": 1000}).json()
    assert body["pagination"] == {"page": 50, "pageSize": 1000, "pageCount": 100, "itemCount": 100_000}
    assert body["Invoices"][0]["InvoiceNumber"] == "INV-049001" and len(body["Invoices"]) == 1000
    assert body["Invoices"][-1]["InvoiceNumber"] == "INV-050000"


@pytest.fixture(scope="session")
def accounting_spec() -> OpenAPI:
    # The spec fails its own validation ("default: 'false'" on booleans, e.g. Account.HasAttachments): skip that
    # check, which is about the spec, not about responses.
    return OpenAPI.from_file_path(str(SPECS / "xero-accounting.yaml"), config=Config(spec_validator_cls=None))


@pytest.fixture(scope="session")
def identity_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPECS / "xero-identity.yaml"))


def validate(spec: OpenAPI, path: str, response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    request = MockRequest("https://api.xero.com", "get", path, headers={"xero-tenant-id": "x"})
    spec.validate_response(request, MockResponse(response.content, headers=dict(response.headers)))


def test_responses_validate_against_xeros_accounting_spec(xero: Xero, accounting_spec: OpenAPI) -> None:
    invoices = xero.api("Invoices", params={"page": 1})
    one = invoices.json()["Invoices"][0]
    checked = {
        "/api.xro/2.0/Contacts": xero.api("Contacts", params={"page": 1, "includeArchived": "true"}),
        "/api.xro/2.0/Invoices": invoices,
        f"/api.xro/2.0/Invoices/{one['InvoiceID']}": xero.api(f"Invoices/{one['InvoiceID']}"),
        "/api.xro/2.0/Payments": xero.api("Payments", params={"page": 1}),
        "/api.xro/2.0/Items": xero.api("Items"),
        "/api.xro/2.0/TaxRates": xero.api("TaxRates"),
        "/api.xro/2.0/Accounts": xero.api("Accounts"),
        "/api.xro/2.0/Organisation": xero.api("Organisation"),
        "/api.xro/2.0/TaxRates/{TaxType}": xero.api("TaxRates/NONE"),
    }
    xero.sandbox.void_invoice(xero.tenant_id, one["InvoiceID"])
    xero.sandbox.create(xero.tenant_id, "payments", 2)
    checked["/api.xro/2.0/Invoices?changed"] = xero.api("Invoices", params={"page": 2, "summaryOnly": "true"})
    for path, response in checked.items():
        validate(accounting_spec, path.split("?")[0].replace("{TaxType}", "NONE"), response)


def test_connections_validate_against_xeros_identity_spec(xero: Xero, identity_spec: OpenAPI) -> None:
    tokens = dance(xero)
    response = xero.http.get("/connections", headers=bearer(tokens["access_token"]))
    # Xero writes connection dates without an offset ("2019-12-07T18:46:19.5165400", the spec's own example),
    # which the spec's `format: date-time` (RFC 3339) rejects. Check that shape, then validate the rest as UTC.
    body = response.json()
    for connection in body:
        for key in ("createdDateUtc", "updatedDateUtc"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}", connection[key])
            connection[key] += "Z"
    patched = httpx.Response(200, json=body, headers={"content-type": "application/json"})
    validate(identity_spec, "/Connections", patched)


def ms(value: str) -> int:
    match = MS_DATE.match(value)
    assert match, value
    return int(match.group(1))
