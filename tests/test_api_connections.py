"""Connect, test, status, settings and disconnect through the API, against the sandboxes over real HTTP."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from providers.mailchimp.sandbox import DEMO_API_KEY
from providers.sandbox_kit.serve import ServedApp
from providers.stripe.sandbox import DEMO_ACCOUNT_ID, DEMO_SECRET_KEY
from providers.twilio.sandbox import DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN
from tests.helpers import bearer, make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import OutboundEvent, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope

BAD_STRIPE_KEY = "sk_test_51VrtxDemo00000001NotARealKey9999"


def connect_stripe(api: TestClient, token: str, key: str = DEMO_SECRET_KEY) -> Any:
    return api.post(
        "/api/v1/integrations/stripe/connect", json={"credentials": {"secret_key": key}}, headers=bearer(token)
    )


def stored_connection(settings: Settings, tenant_id: str) -> TenantIntegration | None:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        return session.scalar(select(TenantIntegration).where(TenantIntegration.tenant_id == tenant_id))


def test_connect_tests_the_key_at_the_provider_then_stores_it_encrypted(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    response = connect_stripe(api, token)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "connected"
    assert body["account"]["external_account_id"] == DEMO_ACCOUNT_ID
    assert body["settings"]["sync_frequency_minutes"] == 60
    assert DEMO_SECRET_KEY not in response.text
    row = stored_connection(settings, "acme")
    assert row is not None and row.credentials is not None
    assert DEMO_SECRET_KEY not in str(row.credentials)
    assert row.credentials["kid"] == "k1"
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        events = [e.event_type for e in session.scalars(select(OutboundEvent))]
    assert events == ["integration.connected"]


def test_connect_with_basic_auth_and_datacenter_keys(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    twilio = api.post(
        "/api/v1/integrations/twilio/connect",
        json={"credentials": {"account_sid": DEMO_ACCOUNT_SID, "auth_token": DEMO_AUTH_TOKEN}},
        headers=bearer(token),
    )
    assert twilio.status_code == 201, twilio.text
    assert twilio.json()["account"]["external_account_id"] == DEMO_ACCOUNT_SID
    mailchimp = api.post(
        "/api/v1/integrations/mailchimp/connect", json={"credentials": {"api_key": DEMO_API_KEY}}, headers=bearer(token)
    )
    assert mailchimp.status_code == 201, mailchimp.text
    connected = api.get("/api/v1/integrations/connected", headers=bearer(token)).json()
    assert [c["integration"] for c in connected] == ["mailchimp", "twilio"]


def test_a_key_the_provider_rejects_is_reported_in_its_words_and_nothing_is_stored(
    api: TestClient, settings: Settings
) -> None:
    token = make_tenant(settings, "acme")
    response = connect_stripe(api, token, BAD_STRIPE_KEY)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "provider_auth_failed"
    assert "Invalid API Key provided" in error["message"]
    assert BAD_STRIPE_KEY not in response.text
    assert stored_connection(settings, "acme") is None


def test_credentials_that_do_not_fit_the_auth_fields_get_422_per_field(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    response = api.post(
        "/api/v1/integrations/twilio/connect",
        json={"credentials": {"account_sid": "not-a-sid", "extra": "x"}},
        headers=bearer(token),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    fields = {d["field"] for d in error["details"]}
    assert fields == {"account_sid", "auth_token", "extra"}
    assert "not-a-sid" not in response.text
    missing_body = api.post("/api/v1/integrations/stripe/connect", json={}, headers=bearer(token))
    assert missing_body.status_code == 422
    assert missing_body.json()["error"]["details"][0]["field"] == "credentials"


def test_integrations_that_cannot_be_connected_yet_say_so(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    for slug in ("sage", "zapier"):
        response = api.post(f"/api/v1/integrations/{slug}/connect", json={"credentials": {}}, headers=bearer(token))
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "integration_not_available"
    oauth = api.post("/api/v1/integrations/xero/connect", json={"credentials": {}}, headers=bearer(token))
    assert oauth.status_code == 409
    assert oauth.json()["error"]["code"] == "oauth_required"
    assert "/oauth/url" in oauth.json()["error"]["message"]
    unknown = api.post("/api/v1/integrations/nope/connect", json={"credentials": {}}, headers=bearer(token))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "integration_not_found"


def test_provider_outage_and_rate_limit_are_distinct_errors(
    api: TestClient, settings: Settings, sandboxes: dict[str, ServedApp]
) -> None:
    token = make_tenant(settings, "acme")
    knobs = sandboxes["stripe"].app.state.sandbox
    knobs.fail_next_with_status = 500
    outage = connect_stripe(api, token)
    assert outage.status_code == 502
    assert outage.json()["error"]["code"] == "provider_unavailable"
    knobs.rate_limit_next = 1
    knobs.retry_after_s = 7
    limited = connect_stripe(api, token)
    assert limited.status_code == 503
    assert limited.json()["error"]["code"] == "provider_rate_limited"
    assert limited.headers["Retry-After"] == "7"
    assert stored_connection(settings, "acme") is None


def test_status_test_and_disconnect_follow_the_connection(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    never = api.get("/api/v1/integrations/stripe/status", headers=bearer(token))
    assert never.status_code == 404
    assert never.json()["error"]["code"] == "not_connected"
    assert connect_stripe(api, token).status_code == 201
    status = api.get("/api/v1/integrations/stripe/status", headers=bearer(token)).json()
    assert status["status"] == "connected" and status["connected_at"]
    tested = api.post("/api/v1/integrations/stripe/test", headers=bearer(token))
    assert tested.status_code == 200
    assert tested.json() == {
        "ok": True,
        "account": tested.json()["account"] | {"external_account_id": DEMO_ACCOUNT_ID},
    }
    gone = api.delete("/api/v1/integrations/stripe/disconnect", headers=bearer(token))
    assert gone.status_code == 200
    assert gone.json()["status"] == "disconnected"
    row = stored_connection(settings, "acme")
    assert row is not None and row.credentials is None
    again = api.delete("/api/v1/integrations/stripe/disconnect", headers=bearer(token))
    assert again.status_code == 404
    assert api.post("/api/v1/integrations/stripe/test", headers=bearer(token)).status_code == 404


def test_a_revoked_key_turns_the_connection_to_error_with_the_providers_reason(
    api: TestClient, settings: Settings, sandboxes: dict[str, ServedApp]
) -> None:
    token = make_tenant(settings, "acme")
    assert connect_stripe(api, token).status_code == 201
    sandboxes["stripe"].app.state.sandbox.fail_next_with_status = 401
    tested = api.post("/api/v1/integrations/stripe/test", headers=bearer(token))
    assert tested.status_code == 400
    assert tested.json()["error"]["code"] == "provider_auth_failed"
    status = api.get("/api/v1/integrations/stripe/status", headers=bearer(token)).json()
    assert status["status"] == "error"
    assert status["last_error"]
    assert api.post("/api/v1/integrations/stripe/test", headers=bearer(token)).json()["ok"] is True
    assert api.get("/api/v1/integrations/stripe/status", headers=bearer(token)).json()["status"] == "connected"


def test_disconnect_with_purge_forgets_settings_and_account(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    connect_stripe(api, token)
    api.put("/api/v1/integrations/stripe/settings", json={"sync_frequency_minutes": 15}, headers=bearer(token))
    kept = api.delete("/api/v1/integrations/stripe/disconnect", headers=bearer(token)).json()
    assert kept["settings"]["sync_frequency_minutes"] == 15
    connect_stripe(api, token)
    reconnected = api.get("/api/v1/integrations/stripe/settings", headers=bearer(token)).json()
    assert reconnected["settings"]["sync_frequency_minutes"] == 15
    purged = api.delete("/api/v1/integrations/stripe/disconnect?purge=true", headers=bearer(token)).json()
    assert purged["settings"] is None and purged["account"] is None


def test_settings_are_validated_against_the_config_schema(api: TestClient, settings: Settings) -> None:
    token = make_tenant(settings, "acme")
    assert api.get("/api/v1/integrations/stripe/settings", headers=bearer(token)).status_code == 404
    connect_stripe(api, token)
    current = api.get("/api/v1/integrations/stripe/settings", headers=bearer(token))
    assert current.status_code == 200
    assert current.json()["settings"]["sync_enabled"] is True
    good = api.put(
        "/api/v1/integrations/stripe/settings",
        json={"sync_frequency_minutes": 30, "entities": ["customers"]},
        headers=bearer(token),
    )
    assert good.status_code == 200, good.text
    assert good.json()["settings"]["sync_frequency_minutes"] == 30
    bad = api.put(
        "/api/v1/integrations/stripe/settings",
        json={"sync_frequency_minutes": 1, "entities": ["customers", "bogus"], "colour": "red"},
        headers=bearer(token),
    )
    assert bad.status_code == 422
    details = bad.json()["error"]["details"]
    assert {d["field"] for d in details} == {"sync_frequency_minutes", "entities.1", "colour"}
    not_object = api.put("/api/v1/integrations/stripe/settings", json=[1, 2], headers=bearer(token))
    assert not_object.status_code == 422
    unchanged = api.get("/api/v1/integrations/stripe/settings", headers=bearer(token)).json()["settings"]
    assert unchanged["sync_frequency_minutes"] == 30
