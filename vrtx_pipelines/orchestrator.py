"""Talking to the Dagster webserver from the API process: where it is, and a GraphQL client for it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from vrtx_pipelines.config import Settings

CODE_LOCATION = "vrtx"  # workspace.yaml
REPOSITORY = "__repository__"  # the name Dagster gives a Definitions object's repository


def dagster_webserver_url(settings: Settings) -> str:
    """Where the Dagster webserver answers GraphQL: ``VRTX_DAGSTER_URL`` when set, else the local one."""
    return (settings.dagster_url or f"http://127.0.0.1:{settings.dagster_port}").rstrip("/")


def graphql_client(url: str, timeout_s: int = 10) -> Any:
    """A ``DagsterGraphQLClient`` for the webserver at ``url`` (scheme, host, port and path prefix)."""
    from dagster_graphql import DagsterGraphQLClient  # heavy import, only where runs are launched

    parts = urlsplit(url)
    return DagsterGraphQLClient(
        parts.hostname or "127.0.0.1",
        port_number=parts.port,
        use_https=parts.scheme == "https",
        timeout=timeout_s,
        path_prefix=parts.path.rstrip("/"),
    )
