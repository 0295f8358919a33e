"""Running the provider sandboxes: for `vrtx sandbox`, `vrtx dev` and the tests."""

from __future__ import annotations

from collections.abc import Iterable

from providers.base import Provider
from providers.sandbox_kit.serve import ServedApp, load_sandbox


def start_sandboxes(providers: Iterable[Provider], port_base: int | None = None) -> dict[str, ServedApp]:
    """Serve every provider that ships a sandbox on loopback; ports from ``port_base`` up, else free ones."""
    served: dict[str, ServedApp] = {}
    try:
        for offset, provider in enumerate(p for p in providers if p.sandbox is not None):
            port = port_base + offset if port_base else None
            served[provider.slug] = ServedApp(load_sandbox(provider), port=port).start()
    except BaseException:
        stop_sandboxes(served)
        raise
    return served


def sandbox_base_urls(served: dict[str, ServedApp]) -> dict[str, str]:
    """What VRTX_PROVIDER_BASE_URLS should say to reach each served sandbox."""
    return {slug: server.base_url for slug, server in served.items()}


def stop_sandboxes(served: dict[str, ServedApp]) -> None:
    for server in served.values():
        server.stop()
