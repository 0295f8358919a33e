"""A provider's pulls as its own tests drive and read them: a sync through the real assets, the records API, the
tenant's warehouse dataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance
from fastapi.testclient import TestClient

from tests.helpers import bearer
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.warehouse import pipeline_for


@dataclass(frozen=True)
class Pulled:
    slug: str

    def sync(
        self, settings: Settings, instance: DagsterInstance, entities: Sequence[str], tenant: str = "acme"
    ) -> dict[str, Any]:
        """Each entity's rows loaded and records changed."""
        rows = sync_now(settings, self.slug, tenant, list(entities), instance=instance)
        return {r[0]: {"rows_loaded": int(r[1]), "changed": int(r[2])} for r in rows}

    def records(self, api: TestClient, token: str, entity: str, cursor: str | None = None) -> dict[str, Any]:
        """One page (of up to 1,000) of the records API."""
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        answer = api.get(f"/api/v1/integrations/{self.slug}/records/{entity}", params=params, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        page: dict[str, Any] = answer.json()
        return page

    def by_id(self, api: TestClient, token: str, entity: str) -> dict[str, dict[str, Any]]:
        return {r["external_id"]: r for r in self.records(api, token, entity)["records"]}

    def warehouse(self, settings: Settings, sql: str, tenant: str = "acme") -> list[tuple[object, ...]]:
        with pipeline_for(settings, self.slug, tenant).sql_client() as client:
            return [tuple(row) for row in client.execute_sql(sql)]
