"""Connecting Microsoft 365 through the identity platform's real consent flow, against the sandbox over HTTP:
the mailbox and organisation found from the grant, refresh tokens that rotate, an organisation that requires an
administrator's consent, and disconnects that can only forget (the identity platform revokes nothing)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX, DEMO_TENANT_ID
from tests.browser.helpers import consent, open_marketplace, post_form
from tests.helpers import bearer, make_tenant
from tests.microsoft365.conftest import SLUG, Microsoft, connect, stored_tokens
from vrtx_pipelines.cli.main import main
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect import oauth
from vrtx_pipelines.connect.context import ConnectionContext, get_connection
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.models import OutboundEvent
from vrtx_pipelines.db.session import engine_for, session_scope

ADMIN_MESSAGE = "An administrator of your Microsoft 365 organisation must consent to the permissions VRTX asks for"


def status(api: TestClient, token: str) -> dict[str, Any]:
    answer = api.get(f"/api/v1/integrations/{SLUG}/status", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def refresh(settings: Settings, tenant_id: str) -> str:
    """A forced refresh through the platform's single-flight path (what a 401 mid-sync does)."""
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection = get_connection(session, tenant_id, SLUG)
        assert connection is not None
        ctx = ConnectionContext(session=session, vault=vault_from_settings(settings), settings=settings)
        return oauth.access_token(ctx, connection.id, force=True)


def me(microsoft: Microsoft, access_token: str) -> httpx.Response:
    return httpx.get(f"{microsoft.served.base_url}/v1.0/me", headers={"Authorization": f"Bearer {access_token}"})


def last_event(settings: Settings, tenant_id: str) -> OutboundEvent:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        found = session.scalars(
            select(OutboundEvent).where(OutboundEvent.tenant_id == tenant_id).order_by(OutboundEvent.id.desc())
        ).first()
        assert found is not None
        session.expunge(found)
        return found


def test_connect_goes_through_microsoft_consent_and_finds_the_mailbox_and_its_organisation(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    token = make_tenant(settings, "acme")
    url = api.get(f"/api/v1/integrations/{SLUG}/oauth/url", headers=bearer(token)).json()["url"]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/common/oauth2/v2.0/authorize"
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert "offline_access" in query["scope"].split() and "User.Read" in query["scope"].split()

    answer = api.get(consent(url))

    assert answer.status_code == 200, answer.text
    account = answer.json()["account"]
    assert answer.json()["status"] == "connected"
    assert account["external_account_id"] == DEMO_MAILBOX.lower()  # Graph's mail is mixed case
    assert account["external_directory_id"] == DEMO_TENANT_ID  # the token's tid
    assert account["organisations"] == [
        {"id": DEMO_MAILBOX.lower(), "name": DEMO_MAILBOX, "kind": "mailbox", "connection_id": None,
         "directory_id": DEMO_TENANT_ID}
    ]  # fmt: skip
    tokens = stored_tokens(settings, "acme")
    assert tokens["refresh_token"] in microsoft.sandbox.oauth.refresh_tokens  # offline_access was asked for
    assert me(microsoft, tokens["access_token"]).json()["mail"] == DEMO_MAILBOX
    assert microsoft.sandbox.stats.token_requests == 1


def test_vrtx_connect_connects_the_mailbox_through_the_sandboxs_consent(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    token = make_tenant(settings, "acme")
    result = CliRunner().invoke(main, ["connect", SLUG, "--tenant", "acme"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"connected to {DEMO_MAILBOX} ({DEMO_MAILBOX.lower()})" in result.output
    assert status(api, token)["status"] == "connected"


def test_every_refresh_stores_the_new_refresh_token_microsoft_answers(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    make_tenant(settings, "acme")
    connect(settings, "acme")
    first = stored_tokens(settings, "acme")

    access = refresh(settings, "acme")
    second = stored_tokens(settings, "acme")
    refresh(settings, "acme")  # with the stored (rotated) refresh token
    third = stored_tokens(settings, "acme")

    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert access == second["access_token"] != first["access_token"]
    issued = microsoft.sandbox.oauth.refresh_tokens
    assert issued[first["refresh_token"]].first_used_at is not None
    assert issued[second["refresh_token"]].first_used_at is not None  # the second refresh used the rotated one
    assert issued[third["refresh_token"]].first_used_at is None
    assert microsoft.sandbox.stats.refresh_requests == 2
    assert me(microsoft, third["access_token"]).status_code == 200


def test_a_rotated_away_refresh_token_still_works_at_microsoft_as_documented(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    """Microsoft does not revoke the refresh token a refresh replaced: a refresh whose answer was lost can be
    retried with it (the platform's retry does so)."""
    make_tenant(settings, "acme")
    connect(settings, "acme")
    old = stored_tokens(settings, "acme")["refresh_token"]
    refresh(settings, "acme")
    again = httpx.post(
        f"{microsoft.served.base_url}/common/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "refresh_token": old},
        auth=(settings.oauth_clients[SLUG]["client_id"], settings.oauth_clients[SLUG]["client_secret"]),
    )
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] != old


def test_an_organisation_needing_admin_consent_is_told_so_when_sign_in_comes_back_refused(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    microsoft.knobs.admin_consent_required = "redirect"
    token = make_tenant(settings, "acme")
    url = api.get(f"/api/v1/integrations/{SLUG}/oauth/url", headers=bearer(token)).json()["url"]
    callback = consent(url)
    assert parse_qs(urlsplit(callback).query)["error"] == ["consent_required"]

    answer = api.get(callback)

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "admin_consent_required"
    assert error["message"].startswith(ADMIN_MESSAGE) and "AADSTS" not in error["message"]
    assert api.get(f"/api/v1/integrations/{SLUG}/status", headers=bearer(token)).status_code == 404


def test_an_organisation_needing_admin_consent_is_told_so_when_the_token_endpoint_refuses(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    microsoft.knobs.admin_consent_required = "token"
    token = make_tenant(settings, "acme")
    url = api.get(f"/api/v1/integrations/{SLUG}/oauth/url", headers=bearer(token)).json()["url"]

    answer = api.get(consent(url))

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "admin_consent_required"
    assert answer.json()["error"]["message"].startswith(ADMIN_MESSAGE)
    assert api.get(f"/api/v1/integrations/{SLUG}/status", headers=bearer(token)).status_code == 404


def test_the_marketplace_page_tells_the_tenant_an_administrator_must_consent(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    microsoft.knobs.admin_consent_required = "token"
    open_marketplace(api, make_tenant(settings, "acme"))
    started = post_form(api, f"/marketplace/{SLUG}/connect", [], page=f"/marketplace/{SLUG}")
    assert started.status_code == 303

    back = api.get(consent(started.headers["location"]), follow_redirects=False)

    assert back.status_code == 303
    assert back.headers["location"].startswith(f"/marketplace/{SLUG}/connected?error=admin_consent_required")
    page = api.get(back.headers["location"])
    assert page.status_code == 400
    assert "An administrator of your Microsoft 365 organisation must consent" in page.text


def test_consent_withdrawn_by_an_administrator_expires_the_connection_with_that_reason(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    token = make_tenant(settings, "acme")
    connect(settings, "acme")
    microsoft.knobs.admin_consent_required = "token"

    with pytest.raises(oauth.ConnectionExpired, match="administrator of your Microsoft 365 organisation"):
        refresh(settings, "acme")

    found = status(api, token)
    assert found["status"] == "expired"
    assert "an administrator of your Microsoft 365 organisation must consent" in found["last_error"]


def test_two_tenants_connect_the_same_mailbox_and_one_disconnecting_leaves_the_other_connected(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    tokens = {tenant: make_tenant(settings, tenant) for tenant in ("acme", "globex")}
    connect(settings, "acme")
    connect(settings, "globex")  # the same Microsoft user and mailbox, consented twice: two grants
    acme, globex = stored_tokens(settings, "acme"), stored_tokens(settings, "globex")
    assert status(api, tokens["acme"])["account"]["external_account_id"] == DEMO_MAILBOX.lower()
    assert status(api, tokens["globex"])["account"]["external_account_id"] == DEMO_MAILBOX.lower()

    gone = api.delete(f"/api/v1/integrations/{SLUG}/disconnect", headers=bearer(tokens["acme"]))

    assert gone.status_code == 200, gone.text
    assert gone.json()["status"] == "disconnected"
    assert stored_tokens(settings, "acme") == {}  # the tokens VRTX held are deleted...
    assert last_event(settings, "acme").payload["revoked_at_provider"] is False  # ...and nothing was revoked
    assert status(api, tokens["globex"])["status"] == "connected"
    assert me(microsoft, globex["access_token"]).status_code == 200
    refresh(settings, "globex")  # the other tenant's grant lives on
    assert status(api, tokens["globex"])["status"] == "connected"
    # Microsoft has no revocation endpoint: acme's grant is not dead there, only forgotten here.
    assert me(microsoft, acme["access_token"]).status_code == 200


def test_a_disconnect_from_the_marketplace_stops_syncing_and_deletes_the_stored_tokens(
    api: TestClient, settings: Settings, microsoft: Microsoft
) -> None:
    open_marketplace(api, make_tenant(settings, "acme"))
    connect(settings, "acme")
    assert "does not sync anything yet" not in api.get(f"/marketplace/{SLUG}").text  # it pulls mail and calendar

    gone = post_form(api, f"/marketplace/{SLUG}/disconnect", [], page=f"/marketplace/{SLUG}")

    assert gone.status_code == 303
    assert "Disconnected. Nothing more will be synced." in api.get(gone.headers["location"]).text
    assert stored_tokens(settings, "acme") == {}  # the identity platform has no revocation: deleting is all there is
