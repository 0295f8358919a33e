"""The kit's OAuth 2.0 authorization server over real HTTP on loopback, assembled the way different providers
need it: Xero-like rotation with a grace window, Google-like tokens that never rotate, Microsoft-like rotation
whose old tokens live on, QuickBooks-like Basic-only client authentication and a realm on the redirect."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from providers.sandbox_kit.clock import DAY_S, ManualClock
from providers.sandbox_kit.oauth import AuthCode, Consent, Grant, OAuthError, OAuthPolicy, OAuthServer
from providers.sandbox_kit.oauth_http import ConsentPages, OAuthPaths, add_oauth_routes, standard_error
from providers.sandbox_kit.serve import ServedApp
from providers.sandbox_kit.wire import bearer_token

REDIRECT = "http://127.0.0.1:9999/callback"
VERIFIER = "v" * 64
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()
ROTATING = OAuthPolicy(access_token_s=1800, refresh_grace_s=1800, refresh_idle_s=60 * DAY_S)
PATHS = OAuthPaths("/authorize", "/token", "/revoke")


class ToyServer(OAuthServer):
    """A provider with companies a user picks on the consent page, and a realm sent back on the redirect."""

    companies = {"ada@example.com": [("c1", "Ada's Cafe"), ("c2", "Ada's Bakery")]}

    def __init__(self, clock: ManualClock, policy: OAuthPolicy) -> None:
        super().__init__(clock, policy)
        self.granted: list[tuple[str, tuple[str, ...]]] = []

    def known_scope(self, scope: str) -> bool:
        return scope in {"offline_access", "openid", "accounting", "payments"}

    def offered_tenants(self, consent: Consent) -> list[tuple[str, str]]:
        return self.companies.get(consent.user, [])

    def redirect_params(self, code: AuthCode) -> dict[str, str]:
        return {"realmId": code.tenant_ids[0]} if code.tenant_ids else {}

    def on_grant(self, grant: Grant, tenant_ids: Sequence[str]) -> None:
        self.granted.append((grant.user, tuple(tenant_ids)))


def google_error(exc: OAuthError) -> Response:
    return JSONResponse({"error": exc.error, "error_description": "Bad Request"}, status_code=exc.status)


@dataclass
class Toy:
    http: httpx.Client
    clock: ManualClock
    server: ToyServer

    def authorize(self, **overrides: str) -> httpx.Response:
        params = {
            "response_type": "code",
            "client_id": "app",
            "redirect_uri": REDIRECT,
            "scope": "offline_access accounting",
            "state": "s1",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
            **overrides,
        }
        return self.http.get("/authorize", params={k: v for k, v in params.items() if v != ""})

    def consent(
        self, page: httpx.Response, decision: str = "allow", tenants: list[str] | None = None
    ) -> dict[str, str]:
        form = ConsentForm(page.text)
        data = [*form.fields, *(("tenant_id", t) for t in (form.tenants if tenants is None else tenants))]
        answer = self.http.post(
            form.action,
            content=urlencode([*data, ("decision", decision)]),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 302, answer.text
        return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}

    def code(self, **overrides: str) -> str:
        return self.consent(self.authorize(**overrides))["code"]

    def token(self, data: dict[str, str], auth: tuple[str, str] | None = ("app", "secret")) -> httpx.Response:
        return self.http.post("/token", data=data, auth=auth)

    def exchange(self, code: str, **extra: str) -> httpx.Response:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
        return self.token({**form, **extra})

    def tokens(self, **overrides: str) -> dict[str, Any]:
        answer = self.exchange(self.code(**overrides))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def refresh(self, refresh_token: str, **extra: str) -> httpx.Response:
        return self.token({"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})

    def api(self, access_token: str) -> int:
        return self.http.get("/me", headers={"Authorization": f"Bearer {access_token}"}).status_code


class ConsentForm(HTMLParser):
    """Reads the page the way vrtx_pipelines/connect/consent.py does: the post form, its fields, the tenant boxes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.action, self.fields, self.tenants, self.decisions = "", [], [], []  # type: ignore[var-annotated]
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and values.get("method") == "post":
            self.action = values["action"]
        elif tag == "input" and values.get("type") == "checkbox" and values.get("name") == "tenant_id":
            assert "checked" in values
            self.tenants.append(values["value"])
        elif tag == "input" and values.get("type") == "hidden":
            self.fields.append((values["name"], values["value"]))
        elif tag == "button" and values.get("name") == "decision":
            self.decisions.append(values["value"])


def toy(policy: OAuthPolicy, error_response: Any = None) -> Iterator[Toy]:
    clock, lock = ManualClock(), threading.RLock()
    server = ToyServer(clock, policy)
    server.register("app", "secret", None, "Toy App")
    server.register("public", None, [REDIRECT], "Pocket App")
    app = FastAPI()

    async def prepare(request: Request) -> None:
        return None

    add_oauth_routes(
        app,
        server,
        lock,
        paths=PATHS,
        pages=ConsentPages(heading="{app} wants your books", scope_text={"accounting": "Books"}),
        prepare=prepare,
        user_of=lambda hint: hint or "ada@example.com",
        error_response=error_response or standard_error("toy.example"),
    )

    @app.get("/me")
    async def me(request: Request) -> Response:
        with lock:
            access = server.authenticate(bearer_token(request))
        return Response(status_code=200 if not isinstance(access, str) else 401)

    with ServedApp(app) as served, httpx.Client(base_url=served.base_url) as http:
        yield Toy(http, clock, server)


@pytest.fixture
def xero_like() -> Iterator[Toy]:
    yield from toy(ROTATING)


def test_the_consent_page_is_a_form_automation_can_read_and_only_offered_tenants_are_granted(xero_like: Toy) -> None:
    page = xero_like.authorize()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Toy App wants your books" in page.text and "ada@example.com" in page.text and ">Books<" in page.text
    form = ConsentForm(page.text)
    assert form.action == "/authorize/consent" and [name for name, _ in form.fields] == ["request_id"]
    assert form.tenants == ["c1", "c2"] and form.decisions == ["allow", "deny"]
    params = xero_like.consent(page, tenants=["c2", "not-offered", "c2"])
    assert params["state"] == "s1" and params["realmId"] == "c2" and params["scope"] == "offline_access accounting"
    assert xero_like.exchange(params["code"]).status_code == 200
    assert xero_like.server.granted == [("ada@example.com", ("c2",))]
    assert xero_like.consent(xero_like.authorize(), decision="deny") == {"error": "access_denied", "state": "s1"}


def test_unverified_apps_and_redirects_get_an_error_page_other_errors_go_back_to_the_app(xero_like: Toy) -> None:
    for overrides in ({"client_id": "nobody"}, {"redirect_uri": "https://evil.example/cb"}, {"client_id": "public"}):
        page = xero_like.authorize(**{"redirect_uri": "http://localhost:1/x", **overrides})
        assert page.status_code == 400 and "location" not in page.headers and 'id="error"' in page.text
    for overrides, error in (
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "accounting everything"}, "invalid_scope"),
        ({"scope": ""}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"client_id": "public", "code_challenge": "", "code_challenge_method": ""}, "invalid_request"),
    ):
        answer = xero_like.authorize(**overrides)
        assert answer.status_code == 302, overrides
        assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == [error]


def test_codes_are_single_use_bound_to_their_redirect_and_verifier_and_short_lived(xero_like: Toy) -> None:
    code = xero_like.code()
    assert xero_like.exchange(code, code_verifier="w" * 64).json()["error"] == "invalid_grant"
    assert xero_like.exchange(code).json() == {"error": "invalid_grant"}  # the failed attempt burnt it
    assert xero_like.exchange(xero_like.code(), redirect_uri="http://127.0.0.1:9999/other").status_code == 400
    late = xero_like.code()
    xero_like.clock.advance(301)
    assert xero_like.exchange(late).json() == {"error": "invalid_grant"}


def test_clients_authenticate_by_basic_or_body_and_public_apps_by_pkce_alone(xero_like: Toy) -> None:
    form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    by_body = xero_like.token({**form, "code": xero_like.code(), "client_id": "app", "client_secret": "secret"}, None)
    assert by_body.status_code == 200 and by_body.headers["cache-control"] == "no-store"
    bad = xero_like.token({**form, "code": xero_like.code()}, ("app", "wrong"))
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}
    assert bad.headers["www-authenticate"] == 'Basic realm="toy.example"'
    public = xero_like.token({**form, "code": xero_like.code(client_id="public"), "client_id": "public"}, None)
    assert public.status_code == 200
    with_secret = {**form, "code": xero_like.code(client_id="public"), "client_id": "public", "client_secret": "x"}
    assert xero_like.token(with_secret, None).status_code == 401  # a public app has no secret to send


def test_basic_only_providers_refuse_credentials_in_the_body() -> None:
    for quickbooks_like in toy(replace(ROTATING, client_auth=frozenset({"basic"}))):
        form = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
        body = {**form, "code": quickbooks_like.code(), "client_id": "app", "client_secret": "secret"}
        assert quickbooks_like.token(body, None).status_code == 401
        assert quickbooks_like.token({**form, "code": quickbooks_like.code()}).status_code == 200


def test_access_tokens_live_their_lifetime_and_can_all_be_expired_at_once(xero_like: Toy) -> None:
    tokens = xero_like.tokens()
    assert tokens["expires_in"] == 1800 and tokens["token_type"] == "Bearer"
    xero_like.clock.advance(1799)
    assert xero_like.api(tokens["access_token"]) == 200
    xero_like.clock.advance(1)
    assert xero_like.api(tokens["access_token"]) == 401
    fresh = xero_like.server.mint("app", "ada@example.com", ["accounting"], 3600)
    xero_like.server.expire_all()
    assert xero_like.api(fresh) == 401


def test_rotating_refresh_tokens_keep_a_grace_window_after_first_use(xero_like: Toy) -> None:
    first = xero_like.tokens()
    second = xero_like.refresh(first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"] and xero_like.api(second["access_token"]) == 200
    xero_like.clock.advance(29 * 60)
    assert xero_like.refresh(first["refresh_token"]).status_code == 200  # a lost answer, retried in the grace
    xero_like.clock.advance(2 * 60)
    assert xero_like.refresh(first["refresh_token"]).json() == {"error": "invalid_grant"}
    assert xero_like.refresh(second["refresh_token"], scope="payments").json() == {"error": "invalid_scope"}
    assert xero_like.server.stats.refresh_requests == 2


def test_unused_refresh_tokens_expire_and_need_the_offline_scope(xero_like: Toy) -> None:
    tokens = xero_like.tokens()
    xero_like.clock.advance(60 * DAY_S + 1)
    assert xero_like.refresh(tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    assert "refresh_token" not in xero_like.tokens(scope="accounting")


def test_google_like_refresh_tokens_never_rotate_and_die_when_idle() -> None:
    policy = OAuthPolicy(access_token_s=3599, rotate_refresh_tokens=False, refresh_idle_s=183 * DAY_S)
    for google_like in toy(policy, google_error):
        token = google_like.tokens()["refresh_token"]
        for _ in range(3):
            google_like.clock.advance(100 * DAY_S)  # used within six months each time: it lives on
            answer = google_like.refresh(token).json()
            assert "refresh_token" not in answer and answer["expires_in"] == 3599
        google_like.clock.advance(184 * DAY_S)
        dead = google_like.refresh(token)
        assert dead.status_code == 400 and dead.json() == {"error": "invalid_grant", "error_description": "Bad Request"}


def test_microsoft_like_rotated_tokens_keep_working_until_they_expire() -> None:
    for microsoft_like in toy(OAuthPolicy(refresh_grace_s=None, refresh_idle_s=90 * DAY_S)):
        first = microsoft_like.tokens()["refresh_token"]
        assert microsoft_like.refresh(first).json()["refresh_token"] != first
        microsoft_like.clock.advance(80 * DAY_S)
        assert microsoft_like.refresh(first).status_code == 200
        microsoft_like.clock.advance(11 * DAY_S)
        assert microsoft_like.refresh(first).status_code == 400


def test_revoking_a_refresh_token_ends_its_grant_and_access_tokens_can_revoke_alone(xero_like: Toy) -> None:
    tokens, other = xero_like.tokens(), xero_like.tokens()
    assert xero_like.http.post("/revoke", data={"token": other["access_token"]}, auth=("app", "secret")).content == b""
    assert xero_like.api(other["access_token"]) == 401 and xero_like.refresh(other["refresh_token"]).status_code == 200
    revoked = xero_like.http.post("/revoke", data={"token": tokens["refresh_token"]}, auth=("app", "secret"))
    assert revoked.status_code == 200
    assert (
        xero_like.api(tokens["access_token"]) == 401 and xero_like.refresh(tokens["refresh_token"]).status_code == 400
    )
    assert xero_like.http.post("/revoke", data={"token": "unknown"}, auth=("app", "secret")).status_code == 200
    assert xero_like.http.post("/revoke", data={"token": "x"}, auth=("app", "bad")).status_code == 401


def test_only_refresh_tokens_revoke_where_the_provider_says_so() -> None:
    for refresh_only in toy(replace(ROTATING, revoke_access_tokens=False)):
        tokens = refresh_only.tokens()
        refresh_only.http.post("/revoke", data={"token": tokens["access_token"]}, auth=("app", "secret"))
        assert refresh_only.api(tokens["access_token"]) == 200


def test_other_grant_types_are_refused_unless_the_provider_adds_them(xero_like: Toy) -> None:
    assert xero_like.token({"grant_type": "client_credentials"}).json() == {"error": "unauthorized_client"}
    assert xero_like.token({"grant_type": "password"}).json() == {"error": "unsupported_grant_type"}


class ShapedServer(ToyServer):
    """A provider whose token answer has its own shape (Stripe Connect: no expiry, the account named)."""

    def token_answer(self, grant: Grant, body: dict[str, object]) -> dict[str, object]:
        shaped = {k: v for k, v in body.items() if k != "expires_in"}
        return {**shaped, "account": grant.tenant_ids[0] if grant.tenant_ids else None}


def test_a_provider_shapes_its_token_answer_and_may_serve_its_own_token_endpoint() -> None:
    clock = ManualClock()
    server = ShapedServer(clock, ROTATING)
    server.register("app", "secret", [REDIRECT], "Toy app")
    app = FastAPI()

    async def prepare(request: Request) -> None:
        return None

    add_oauth_routes(
        app, server, threading.RLock(), paths=OAuthPaths("/authorize", None), pages=ConsentPages(), prepare=prepare,
        user_of=lambda hint: "ada@example.com", error_response=standard_error("toy"),
    )  # fmt: skip
    with ServedApp(app) as served:
        assert httpx.post(served.base_url + "/token", data={"grant_type": "refresh_token"}).status_code == 404
    request_id, _ = server.begin(
        {"client_id": "app", "redirect_uri": REDIRECT, "response_type": "code", "scope": "accounting"},
        "ada@example.com",
    )
    _, params = server.decide(request_id, True, ["c1"])
    form = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": REDIRECT}
    answer = server.token(form, ("app", "secret"))
    assert answer["account"] == "c1" and "expires_in" not in answer and answer["access_token"]
