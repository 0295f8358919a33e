"""The catalog: all 17 roadmap integrations, discovered through entry points, honest about what works."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from providers.base import AuthType, Provider
from providers.schema import defaults_from_schema
from vrtx_pipelines.catalog import sync_catalog
from vrtx_pipelines.db import migrate
from vrtx_pipelines.db.models import Integration
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.registry import ENTRY_POINT_GROUP, load_providers

ROADMAP = {
    # slug: (tier, category)
    "xero": (1, "accounting"),
    "quickbooks": (1, "accounting"),
    "stripe": (1, "payment"),
    "google_workspace": (1, "email"),
    "microsoft365": (1, "email"),
    "slack": (2, "communication"),
    "mailchimp": (2, "marketing"),
    "hubspot": (2, "crm"),
    "calendly": (2, "scheduling"),
    "twilio": (2, "communication"),
    "docusign": (2, "documents"),
    "salesforce": (3, "crm"),
    "netsuite": (3, "erp"),
    "sage": (3, "accounting"),
    "freshbooks": (3, "accounting"),
    "zapier": (3, "automation"),
    "make": (3, "automation"),
}
PROVIDERS = list(load_providers().values())


def test_the_catalog_has_the_17_roadmap_integrations_with_their_tier_and_category() -> None:
    assert {p.slug: (p.tier, p.category.value) for p in PROVIDERS} == ROADMAP


def test_providers_are_discovered_through_the_entry_point_group() -> None:
    names = {entry.name for entry in entry_points(group=ENTRY_POINT_GROUP)}
    assert names == set(ROADMAP)


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.slug)
def test_config_schema_is_valid_closed_json_schema_whose_defaults_validate(provider: Provider) -> None:
    schema = provider.config_schema
    Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert "sync_frequency_minutes" in schema["properties"]
    assert not list(Draft202012Validator(schema).iter_errors(defaults_from_schema(schema)))


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.slug)
def test_metadata_is_complete_and_auth_urls_are_the_providers_real_https_endpoints(provider: Provider) -> None:
    assert provider.name and provider.description and provider.icon and provider.capabilities
    assert provider.docs_url.startswith("https://")
    if provider.auth.type is AuthType.OAUTH2:
        oauth = provider.auth.oauth2
        assert oauth is not None and oauth.scopes is not None
        assert oauth.authorize_url.startswith("https://") and oauth.token_url.startswith("https://")
    else:
        assert provider.auth.fields


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.slug)
def test_nothing_claims_to_work_that_is_not_built(provider: Provider) -> None:
    pulls = {f"pull:{e}" for e in provider.pulls.entities} if provider.pulls else set()
    pushes = {f"push:{e}" for e in provider.pushes.entities} if provider.pushes else set()
    webhooks = {"webhooks"} if provider.webhooks else set()
    assert provider.implemented <= {"connect"} | pulls | pushes | webhooks, "a claimed capability has its code"
    assert {c for c in provider.implemented if c.startswith("push:")} == pushes if provider.connectable else not pushes
    assert {c for c in provider.implemented if c.startswith("pull:")} == pulls if provider.connectable else not pulls
    if provider.auth.oauth2 is None:
        assert provider.connectable == (provider.connection_tester is not None)
    else:
        assert provider.connectable == (provider.discover_tenants is not None)
    if provider.connectable:
        assert provider.sandbox is not None, "a connectable provider ships a sandbox to try it on"
        assert provider.sandbox_credentials, "and the sandbox's credentials, for the demo tenant"


def test_sync_catalog_upserts_every_provider_and_deactivates_vanished_ones(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = engine_for(db_url)
    with session_scope(engine) as session:
        session.add(
            Integration(
                slug="retired", name="Retired", category="crm", auth_type="api_key", config_schema={}, capabilities=[]
            )
        )
    with session_scope(engine) as session:
        sync_catalog(session)
        sync_catalog(session)  # idempotent
    with session_scope(engine) as session:
        rows = {row.slug: row for row in session.scalars(select(Integration))}
    assert {slug for slug, row in rows.items() if row.is_active} == set(ROADMAP)
    assert rows["retired"].is_active is False
    assert rows["twilio"].implemented == ["connect"]
    assert rows["xero"].auth_type == "oauth2" and rows["xero"].config_schema["type"] == "object"
