"""Settings of the marketplace pages, read from ``VRTX_*`` like the rest (docs/marketplace.md lists them)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_FRAME_ANCESTORS = "'self' http://localhost:* http://127.0.0.1:* https://localhost:*"


class PagesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VRTX_", extra="ignore")

    # Who may show the pages in an iframe: the CRM's origins, as a CSP frame-ancestors source list. Empty means
    # this server itself plus localhost (development); production sets the CRM's origin(s).
    frame_ancestors: str = ""
    # How long a signed marketplace link can be opened, and how long the browser session it starts lasts.
    marketplace_link_ttl_s: int = 600
    marketplace_session_ttl_s: int = 3600

    def frame_ancestors_value(self, production: bool) -> str:
        if self.frame_ancestors.strip():
            return self.frame_ancestors.strip()
        return "'self'" if production else DEV_FRAME_ANCESTORS


@lru_cache(maxsize=1)
def pages_settings() -> PagesSettings:
    return PagesSettings()
