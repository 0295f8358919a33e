"""Provider discovery through the ``vrtx.providers`` entry-point group."""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib.metadata import entry_points

from providers.base import Provider
from vrtx_pipelines.errors import ConfigurationError, UnknownIntegration

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vrtx.providers"


@lru_cache(maxsize=1)
def load_providers() -> dict[str, Provider]:
    """Every installed provider by slug, in catalog order."""
    found: dict[str, Provider] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        provider = entry.load()
        if not isinstance(provider, Provider):
            raise ConfigurationError(f"entry point {entry.name!r} does not point at a Provider")
        if provider.slug != entry.name:
            raise ConfigurationError(f"entry point {entry.name!r} loads provider {provider.slug!r}")
        if provider.slug in found:
            raise ConfigurationError(f"two providers claim the slug {provider.slug!r}")
        found[provider.slug] = provider
    return dict(sorted(found.items(), key=lambda item: (item[1].display_order, item[0])))


def get_provider(slug: str) -> Provider:
    provider = load_providers().get(slug)
    if provider is None:
        raise UnknownIntegration(f"there is no integration called {slug!r}")
    return provider
