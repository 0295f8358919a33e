"""How the core pulls Xero: the connection's client, the dlt source, and the canonical mappers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from providers.base import PullConnection, PullSpec

from .fetch import fetch_by_ids
from .fields import RECORD_FIELDS
from .mappers import MAPPERS
from .source import ENTITIES, RESOURCE_ENDPOINTS, xero_source

if TYPE_CHECKING:
    from .client import XeroClient

API_BASE_URL = "https://api.xero.com/api.xro/2.0"


def connection_client(connection: PullConnection, **options: Any) -> XeroClient:
    """The Xero client of a connection (its organisation, token and governor); ``options`` tune retries."""
    if not connection.external_tenant_id:
        raise ValueError("the Xero connection has no organisation chosen")
    from .client import XeroClient

    return XeroClient(
        connection.http,
        base_url=connection.url(API_BASE_URL),
        tenant_id=connection.external_tenant_id,
        access_token=connection.access_token,
        on_unauthorized=connection.refresh_access_token,
        governor=connection.governor,
        **options,
    )


def make_source(connection: PullConnection | None, entities: Sequence[str]) -> Any:
    if connection is None:
        return xero_source(None, entities)  # type: ignore[arg-type]  # describes the resources; nothing runs
    client = connection_client(connection)
    entity_of = {endpoint.endpoint: name for name, endpoint in RESOURCE_ENDPOINTS.items()}

    def stats() -> dict[str, int]:
        pages = {f"pages:{entity_of.get(endpoint, endpoint)}": n for endpoint, n in client.pages.items()}
        return {"api_calls": client.api_calls, "rate_limited": client.rate_limited, **pages}

    connection.stats = stats
    return xero_source(client, entities)


PULLS = PullSpec(
    entities=ENTITIES,
    make_source=make_source,
    mappers=MAPPERS,
    max_concurrent_calls=5,
    record_fields=RECORD_FIELDS,
    fetch_by_ids=fetch_by_ids,
)
