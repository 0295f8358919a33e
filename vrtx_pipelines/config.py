"""Settings, read once from ``VRTX_*`` environment variables (documented in docs/configuration.md)."""

from __future__ import annotations

import json
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VRTX_", extra="ignore")

    env: Environment = Environment.DEVELOPMENT
    # Local state for the embedded default: SQLite database, development key file, Dagster storage.
    home: Path = Field(default_factory=lambda: Path.cwd() / ".vrtx")
    database_url: str | None = None
    # "kid:base64key,kid:base64key" -- the first key encrypts, all of them decrypt.
    vault_keys: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    dagster_port: int = 3000
    # The Dagster webserver the API launches on-demand and webhook-driven runs through (GraphQL); empty means the
    # local one on dagster_port.
    dagster_url: str | None = None
    # Where the API is reachable from outside (OAuth redirect URIs, webhook URLs).
    public_url: str = "http://127.0.0.1:8000"
    # JSON object: provider slug -> an origin (scheme://host:port[/prefix]) that replaces every host of that
    # provider, keeping the path: how the same client code reaches a sandbox.
    provider_base_urls: dict[str, str] = Field(default_factory=dict)
    # JSON object: provider slug -> {"client_id": ..., "client_secret": ...}: this platform's OAuth apps.
    oauth_clients: dict[str, dict[str, str]] = Field(default_factory=dict)
    http_timeout_s: float = 20.0
    # Event callbacks may reach loopback and private addresses (a receiver on this machine or a trusted network).
    # Off by default: a tenant's callback is otherwise a way into the platform's own network. `vrtx dev` sets it.
    allow_private_callbacks: bool = False
    demo_tenant: str = "demo"
    # "published": pace every connection under its provider's published limits (and its headers, and 429s);
    # "headers": pace only on what the provider's own rate-limit headers and 429s say (sandboxes without limits).
    pacing: Literal["published", "headers"] = "published"
    # dlt's progress display for pulls run in a terminal (`vrtx sync`): "tqdm", "log" or unset.
    pull_progress: str | None = None
    log_level: str = "INFO"
    # Scheduled pulls run in batches (docs/scale-out.md): tenants per batch run, batch runs each provider's
    # schedule keeps queued or running, and tenants a batch run pulls at a time.
    pull_batch_size: int = Field(default=400, ge=1)
    pull_batches_in_flight: int = Field(default=3, ge=1)
    pull_batch_threads: int = Field(default=6, ge=1, le=32)
    # Ask the provider what changed before starting dlt (vrtx_pipelines.pull.probe); off: every pull runs dlt.
    pull_probe: bool = True

    @field_validator("provider_base_urls", "oauth_clients", mode="before")
    @classmethod
    def _parse_base_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        return value

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def sqlalchemy_url(self) -> str:
        """The app database; SQLite under ``home`` unless VRTX_DATABASE_URL says otherwise."""
        if self.database_url:
            url = make_url(self.database_url)
            # psycopg2 is what dagster-postgres installs; SQLAlchemy 2.1 would otherwise pick psycopg 3.
            if url.drivername in ("postgres", "postgresql"):
                url = url.set(drivername="postgresql+psycopg2")
            return url.render_as_string(hide_password=False)
        return f"sqlite:///{self.home / 'vrtx.db'}"

    @property
    def uses_postgres(self) -> bool:
        return self.sqlalchemy_url.startswith("postgresql")

    @property
    def vault_key_file(self) -> Path:
        return self.home / "vault.keys"

    def provider_url(self, slug: str, url: str) -> str:
        """``url`` as is, or its path on the origin VRTX_PROVIDER_BASE_URLS gives for this provider."""
        override = self.provider_base_urls.get(slug)
        if not override:
            return url
        real, origin = urlsplit(url), urlsplit(override)
        path = origin.path.rstrip("/") + real.path
        return urlunsplit((origin.scheme, origin.netloc, path, real.query, real.fragment))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """Forget cached settings (tests and CLI commands that change the environment)."""
    get_settings.cache_clear()
