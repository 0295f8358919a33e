"""Key rotation over a real database: every stored secret re-encrypted, old key no longer needed."""

from __future__ import annotations

from fastapi.testclient import TestClient

from providers.stripe.sandbox import DEMO_SECRET_KEY
from tests.helpers import bearer, make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.stored import callback_secret_context, reencrypt_all, webhook_secret_context
from vrtx_pipelines.credentials.vault import Vault, generate_key, parse_keys
from vrtx_pipelines.db.models import IntegrationWebhook, Tenant, TenantIntegration
from vrtx_pipelines.db.session import engine_for, session_scope


def test_rotation_reencrypts_credentials_webhook_and_callback_secrets_under_the_new_key(
    api: TestClient, settings: Settings
) -> None:
    token = make_tenant(settings, "acme")
    api.post(
        "/api/v1/integrations/stripe/connect",
        json={"credentials": {"secret_key": DEMO_SECRET_KEY}},
        headers=bearer(token),
    )
    old = parse_keys(settings.vault_keys or "")
    engine = engine_for(settings.sqlalchemy_url)
    with session_scope(engine) as session:
        connection = session.query(TenantIntegration).one()
        webhook = IntegrationWebhook(tenant_integration_id=connection.id, endpoint_url="https://example.test/hook")
        webhook.secret_key = Vault(old).encrypt_text("whsec_abc", webhook_secret_context(connection.id))
        session.add(webhook)
        tenant = session.get_one(Tenant, "acme")
        tenant.callback_secret = Vault(old).encrypt_text("whsec_cb", callback_secret_context("acme"))

    new = generate_key("k2")
    rotated = Vault([new, *old])
    with session_scope(engine) as session:
        report = reencrypt_all(session, rotated)
    assert (report.credentials, report.webhook_secrets, report.callback_secrets) == (1, 1, 1)

    only_new = Vault([new])
    with session_scope(engine) as session:
        connection = session.query(TenantIntegration).one()
        assert connection.credentials is not None and connection.credentials["kid"] == "k2"
        assert only_new.decrypt_json(connection.credentials, "tenant_integrations/acme/stripe/credentials") == {
            "secret_key": DEMO_SECRET_KEY
        }
        webhook = session.query(IntegrationWebhook).one()
        assert webhook.secret_key is not None
        assert only_new.decrypt_text(webhook.secret_key, webhook_secret_context(connection.id)) == "whsec_abc"
        tenant = session.get_one(Tenant, "acme")
        assert tenant.callback_secret is not None
        assert only_new.decrypt_text(tenant.callback_secret, callback_secret_context("acme")) == "whsec_cb"
    with session_scope(engine) as session:
        again = reencrypt_all(session, rotated)
    assert again.total == 0 and again.already_current == 3
