"""A provider's pulls and pushes as its own tests drive and read them: a sync through the real assets, the records
API, the tenant's warehouse dataset, the sync log's reason for a full sync, a push through the API and its run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance, build_sensor_context
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.helpers import bearer
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.db.models import IntegrationSyncLog
from vrtx_pipelines.db.session import engine_for, session_scope
from vrtx_pipelines.orchestration.pushes import push_job, push_sensor
from vrtx_pipelines.registry import get_provider
from vrtx_pipelines.synclog.mirror import mirror_run
from vrtx_pipelines.warehouse import pipeline_for


def full_sync_reason(settings: Settings, instance: DagsterInstance) -> tuple[str, str]:
    """The latest run's sync type and why it listed in full, as its sync log row says."""
    (run,) = instance.get_runs(limit=1)
    mirror_run(instance, run, succeeded=True)
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        row = session.scalars(select(IntegrationSyncLog).where(IntegrationSyncLog.run_id == run.run_id)).one()
        return row.sync_type, str((row.request_data or {}).get("full_sync_reason"))


@dataclass(frozen=True)
class ProviderDriver:
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

    def push(self, api: TestClient, token: str, entity: str, operation: str, data: dict[str, Any], key: str) -> int:
        """A push queued through the API (202); its id."""
        answer = api.post(
            f"/api/v1/integrations/{self.slug}/push/{entity}",
            json={"operation": operation, "data": data},
            headers={**bearer(token), "Idempotency-Key": key},
        )
        assert answer.status_code == 202, answer.text
        return int(answer.json()["id"])

    def drain(self, instance: DagsterInstance) -> None:
        """Run what the push sensor launches now, in process."""
        provider = get_provider(self.slug)
        job = push_job(provider)
        requests = push_sensor(provider, job).evaluate_tick(build_sensor_context(instance=instance)).run_requests
        for request in requests or []:
            assert job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags).success
