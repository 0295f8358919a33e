"""The Microsoft 365 sandbox speaks the identity platform's and Graph's wire: tenant segments, PKCE, rotating
refresh tokens only with offline_access, AADSTS error bodies, and Graph's error body for a token it refuses. And
what the provider reads off it: the mailbox from /me, the organisation from the token's tid."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from providers.base import Grant
from providers.microsoft365.identity import discover_tenants, needs_admin_consent, token_tenant_id
from providers.microsoft365.sandbox import MicrosoftKnobs, MicrosoftSandbox, create_app, demo_sandbox
from providers.microsoft365.sandbox_credentials import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_MAILBOX,
    DEMO_TENANT_DOMAIN,
    DEMO_TENANT_ID,
)
from providers.sandbox_kit.serve import ServedApp
from vrtx_pipelines.connect.consent import _ConsentForm

REDIRECT = "http://127.0.0.1:8765/callback"
OTHER_TENANT = "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b"


@pytest.fixture
def served() -> Iterator[tuple[MicrosoftSandbox, MicrosoftKnobs, str]]:
    sandbox, knobs = demo_sandbox(seed=3), MicrosoftKnobs()
    with ServedApp(create_app(sandbox, knobs=knobs)) as server:
        yield sandbox, knobs, server.base_url


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(base: str, tenant: str = "common", **overrides: str) -> httpx.Response:
    _, challenge = pkce()
    params = {"client_id": DEMO_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "state": "s-1",
              "scope": "offline_access User.Read Mail.Read", "code_challenge": challenge,
              "code_challenge_method": "S256", **overrides}  # fmt: skip
    return httpx.get(f"{base}/{tenant}/oauth2/v2.0/authorize", params={k: v for k, v in params.items() if v})


def sign_in(base: str, scope: str = "offline_access User.Read Mail.Read", tenant: str = "common") -> dict[str, Any]:
    """The whole code flow by hand: consent, then the code exchange; the token endpoint's answer."""
    verifier, challenge = pkce()
    page = authorize(base, tenant, scope=scope, code_challenge=challenge)
    assert page.status_code == 200, page.text
    form = _ConsentForm()
    form.feed(page.text)
    assert form.action
    back = httpx.post(f"{base}{form.action}", data=dict([*form.fields, ("decision", "allow")]))
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    answer = token(base, tenant, grant_type="authorization_code", code=code, redirect_uri=REDIRECT,
                   code_verifier=verifier)  # fmt: skip
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def token(base: str, tenant: str = "common", **form: str) -> httpx.Response:
    return httpx.post(f"{base}/{tenant}/oauth2/v2.0/token", data=form, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))


def aadsts(answer: httpx.Response) -> int:
    body = answer.json()
    assert set(body) >= {"error", "error_description", "error_codes", "timestamp", "trace_id", "correlation_id"}
    code = int(body["error_codes"][0])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert f"Trace ID: {body['trace_id']}" in body["error_description"]
    return code


def test_the_tenant_segment_is_common_organizations_consumers_or_a_known_organisation(served: Any) -> None:
    _, _, base = served
    for segment in ("common", "organizations", "consumers", DEMO_TENANT_ID, DEMO_TENANT_DOMAIN):
        assert authorize(base, segment).status_code == 200, segment
    unknown = authorize(base, OTHER_TENANT)
    assert unknown.status_code == 400 and "AADSTS90002" in unknown.text
    refused = token(base, OTHER_TENANT, grant_type="refresh_token", refresh_token="x")
    assert refused.status_code == 400 and aadsts(refused) == 90002


def test_an_authorize_request_without_a_pkce_challenge_goes_back_refused(served: Any) -> None:
    _, _, base = served
    answer = authorize(base, code_challenge="", code_challenge_method="")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["invalid_request"] and query["error_description"][0].startswith("AADSTS9002325:")
    assert query["state"] == ["s-1"]


def test_a_wrong_code_verifier_and_a_spent_code_are_aadsts_errors(served: Any) -> None:
    _, _, base = served
    _, challenge = pkce()
    page = authorize(base, code_challenge=challenge)
    form = _ConsentForm()
    form.feed(page.text)
    back = httpx.post(f"{base}{form.action}", data=dict([*form.fields, ("decision", "allow")]))
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    wrong = token(base, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier="nope")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant" and aadsts(wrong) == 501481
    spent = token(base, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier="nope")
    assert aadsts(spent) == 70008
    bad_secret = httpx.post(f"{base}/common/oauth2/v2.0/token", data={"grant_type": "refresh_token"},
                            auth=(DEMO_CLIENT_ID, "not-the-secret"))  # fmt: skip
    assert bad_secret.status_code == 401 and aadsts(bad_secret) == 7000215


def test_refresh_tokens_need_offline_access_and_rotate_on_every_refresh(served: Any) -> None:
    sandbox, _, base = served
    online = sign_in(base, scope="User.Read")
    assert "refresh_token" not in online and online["expires_in"] == 3600 and online["token_type"] == "Bearer"

    first = sign_in(base)
    second = token(base, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    third = token(base, grant_type="refresh_token", refresh_token=second["refresh_token"]).json()

    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert sandbox.stats.refresh_requests == 2


def test_admin_consent_required_answers_aadsts65001_with_its_suberror(served: Any) -> None:
    _, knobs, base = served
    first = sign_in(base)
    knobs.admin_consent_required = "token"
    refused = token(base, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert aadsts(refused) == 65001 and refused.json()["suberror"] == "consent_required"
    assert needs_admin_consent("invalid_grant", refused.json()["error_description"])
    assert not needs_admin_consent("invalid_grant", "AADSTS70008: The provided authorization code ...")


def test_graph_refuses_missing_expired_and_underscoped_tokens_in_its_error_shape(served: Any) -> None:
    _, knobs, base = served
    profile_only = sign_in(base, scope="offline_access Mail.Read")["access_token"]
    good = sign_in(base)["access_token"]

    def me(access_token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        return httpx.get(f"{base}/v1.0/me", headers={**headers, "client-request-id": "c-1"})

    for answer, status, code, message in (
        (me(None), 401, "InvalidAuthenticationToken", "Access token is empty."),
        (me("eyJ0.eyJ0.sig"), 401, "InvalidAuthenticationToken", "Access token validation failure."),
        (me(profile_only), 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    ):
        error = answer.json()["error"]
        assert (answer.status_code, error["code"], error["message"]) == (status, code, message)
        assert error["innerError"]["client-request-id"] == "c-1" and error["innerError"]["request-id"]
    assert me(good).status_code == 200
    knobs.expire_tokens = True
    expired = me(good)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    assert expired.headers["WWW-Authenticate"].startswith("Bearer ")


def test_discovery_names_the_mailbox_lower_cased_and_the_organisation_from_the_tokens_tid(served: Any) -> None:
    _, _, base = served
    with httpx.Client() as client:
        found = discover_tenants(client, lambda url: url.replace("https://graph.microsoft.com", base),
                                 Grant(access_token=sign_in(base)["access_token"]))  # fmt: skip
    assert [(t.id, t.name, t.kind, t.directory_id) for t in found] == [
        (DEMO_MAILBOX.lower(), DEMO_MAILBOX, "mailbox", DEMO_TENANT_ID)
    ]


def test_discovery_of_a_user_without_a_mail_address_names_the_sign_in_address(served: Any) -> None:
    sandbox, _, base = served
    sandbox.add_user(None, "Sam Taylor", tenant_id=OTHER_TENANT, user_principal_name="Sam.Taylor@Fabrikam.example")
    access = sign_in_as(base, "sam.taylor@fabrikam.example")
    with httpx.Client() as client:
        (found,) = discover_tenants(client, lambda url: url.replace("https://graph.microsoft.com", base),
                                    Grant(access_token=access))  # fmt: skip
    assert (found.id, found.directory_id) == ("sam.taylor@fabrikam.example", OTHER_TENANT)


def sign_in_as(base: str, login_hint: str) -> str:
    verifier, challenge = pkce()
    page = authorize(base, code_challenge=challenge, login_hint=login_hint)
    assert login_hint in page.text
    form = _ConsentForm()
    form.feed(page.text)
    back = httpx.post(f"{base}{form.action}", data=dict([*form.fields, ("decision", "allow")]))
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    answer = token(base, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    return str(answer.json()["access_token"])


def test_a_token_that_is_not_a_jwt_leaves_the_organisation_unknown() -> None:
    assert token_tenant_id("opaque-token") is None
    assert token_tenant_id("a.!!!.c") is None
    claims = base64.urlsafe_b64encode(b'{"tid": "ABC"}').rstrip(b"=").decode()
    assert token_tenant_id(f"h.{claims}.s") == "abc"
