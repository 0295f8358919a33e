"""VRTX Integrations: the provider-agnostic core (data, vault, registry, flows, Dagster definitions)."""

import warnings

__version__ = "0.1.0"


def _quiet_authlib_httpx_notice() -> None:
    """Authlib's httpx integration warns on import unless the separate ``httpx2`` package is installed. The
    platform makes every provider call through httpx on purpose (one HTTP stack: retries, governor, redaction),
    so that one notice says nothing anyone can act on; every other Authlib deprecation still shows."""
    try:
        # Imported first: it installs an "always" filter for its warnings, ahead of which ours must sit.
        from authlib.deprecate import AuthlibDeprecationWarning
    except ImportError:  # pragma: no cover -- authlib is a dependency
        return
    warnings.filterwarnings(
        "ignore", message="The httpx module is deprecated; please use httpx2", category=AuthlibDeprecationWarning
    )


_quiet_authlib_httpx_notice()
