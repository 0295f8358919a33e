"""The FastAPI app: the CRM's door to connections, settings and (later) pushes, records and logs."""

from __future__ import annotations

import gc
import logging

from fastapi import FastAPI

from api.access_log import install_access_log_redaction
from api.errors import install_error_handlers
from api.json_bodies import StrictJSONBodies
from api.pages import install_pages
from api.routes import (
    conflicts,
    connections,
    contacts,
    events,
    health,
    integrations,
    mappings,
    oauth,
    pushes,
    records,
    sync,
    tenant,
    webhooks,
)
from api.routes import settings as settings_routes
from vrtx_pipelines import __version__
from vrtx_pipelines.config import Settings, get_settings
from vrtx_pipelines.connect.context import ClientFactory
from vrtx_pipelines.connect.http import provider_client
from vrtx_pipelines.credentials.vault import vault_from_settings
from vrtx_pipelines.db.session import engine_for, session_factory
from vrtx_pipelines.platform import prepare_database

log = logging.getLogger("vrtx.api")


def create_app(
    settings: Settings | None = None, *, client_factory: ClientFactory = provider_client, migrate: bool = True
) -> FastAPI:
    settings = settings or get_settings()
    install_access_log_redaction()  # links and OAuth codes in query strings never reach the access log
    engine = engine_for(settings.sqlalchemy_url)
    vault = vault_from_settings(settings)  # fails fast in production without a key
    prepare_database(settings, migrate=migrate)

    app = FastAPI(
        title="VRTX Integrations API",
        version=__version__,
        description="Connections, OAuth, settings, pushes, records and sync logs for the VRTX CRM's tenants. "
        "Authenticate with the tenant's API token as a bearer token.",
    )
    app.state.settings = settings
    app.state.vault = vault
    app.state.sessions = session_factory(engine)
    app.state.client_factory = client_factory
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(integrations.router)
    app.include_router(connections.router)
    app.include_router(settings_routes.router)
    app.include_router(oauth.router)
    app.include_router(records.router)
    app.include_router(contacts.router)
    app.include_router(pushes.router)
    app.include_router(conflicts.router)
    app.include_router(mappings.router)
    app.include_router(webhooks.router)
    app.include_router(sync.router)
    app.include_router(events.router)
    app.include_router(tenant.router)
    install_pages(app)
    app.add_middleware(StrictJSONBodies)
    # Outermost (added last): deliveries are answered before anything else runs; they parse with the same limits.
    app.add_middleware(webhooks.WebhookDeliveries)
    return app


def serve_app(settings: Settings | None = None) -> FastAPI:
    """The app as a serving process runs it: ``vrtx api``, or ``uvicorn --factory api.main:serve_app``."""
    app = create_app(settings)
    # What exists by now (modules, the app and its routes) lives as long as the process: frozen out of the cyclic
    # collector, whose full passes over it otherwise pause request handling (seen in the webhook bench's p99).
    gc.freeze()
    return app
