"""Pulls, for every provider that pulls: through the real Dagster assets into the tenant's warehouse dataset and
canonical records, against the provider's sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from tests.flows.harness import Flows, Started
from tests.helpers import bearer
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings
from vrtx_pipelines.errors import IntegrationError
from vrtx_pipelines.warehouse import pipeline_for

CAPABILITY = "pull:"
pytestmark = pytest.mark.dagster


def sync(settings: Settings, flows: Flows, instance: DagsterInstance, entities: Sequence[str] = ()) -> dict[str, Any]:
    rows = sync_now(settings, flows.slug, "acme", list(entities), instance=instance)
    return {row[0]: {"rows_loaded": int(row[1]), "changed": int(row[2])} for row in rows}


def warehouse_count(settings: Settings, flows: Flows, table: str) -> int:
    with pipeline_for(settings, flows.slug, "acme").sql_client() as client:
        return int(client.execute_sql(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 -- our own table names


def records(api: TestClient, token: str, flows: Flows, entity: str, cursor: str | None = None) -> dict[str, Any]:
    """One page of the records API (of up to 1,000)."""
    params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
    answer = api.get(f"/api/v1/integrations/{flows.slug}/records/{entity}", params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def all_ids(api: TestClient, token: str, flows: Flows, entity: str) -> list[str]:
    ids, cursor = [], None
    while True:
        page = records(api, token, flows, entity, cursor)
        ids += [record["external_id"] for record in page["records"]]
        if not page["has_more"]:
            return ids
        cursor = page["next_cursor"]


@pytest.fixture
def connected(api: TestClient, flows: Flows, token: str) -> str:
    flows.connect(api, token)
    return token


def test_a_full_pull_loads_exactly_what_the_sandbox_holds(
    api: TestClient, settings: Settings, flows: Flows, started: Started, instance: DagsterInstance, connected: str
) -> None:
    result = sync(settings, flows, instance)
    assert set(result) == set(flows.pull_entities())
    for entity in flows.pull_entities():
        held = started.sandbox.count(started.tenant, flows.sandbox_entity(entity))
        assert warehouse_count(settings, flows, entity) == held, entity
        assert result[entity]["rows_loaded"] == held, entity
    # The canonical records are one per record with a canonical form (Xero's deleted payments have none).
    for entity in flows.incremental:
        ids = all_ids(api, connected, flows, entity)
        assert len(ids) == len(set(ids)) and 0 < len(ids) <= result[entity]["rows_loaded"], entity
    status = api.get(f"/api/v1/integrations/{flows.slug}/status", headers=bearer(connected)).json()
    assert status["last_sync_at"] and status["last_error"] is None


def test_an_incremental_pull_fetches_only_what_changed(
    api: TestClient, settings: Settings, flows: Flows, started: Started, instance: DagsterInstance, connected: str
) -> None:
    sync(settings, flows, instance)
    cursors = {entity: records(api, connected, flows, entity)["next_cursor"] for entity in flows.incremental[:2]}
    first, second = flows.incremental[:2]
    touched = started.sandbox.touch(started.tenant, flows.sandbox_entity(first), 5)
    created = started.sandbox.create(started.tenant, flows.sandbox_entity(second), 2)
    result = sync(settings, flows, instance, [first, second])
    assert (result[first]["rows_loaded"], result[second]["rows_loaded"]) == (5, 2)
    changed = records(api, connected, flows, first, cursors[first])
    assert {r["external_id"] for r in changed["records"]} == set(touched)
    assert {r["external_id"] for r in records(api, connected, flows, second, cursors[second])["records"]} == set(
        created
    )
    assert not records(api, connected, flows, first, changed["next_cursor"])["records"]
    for entity in (first, second):
        held = started.sandbox.count(started.tenant, flows.sandbox_entity(entity))
        assert warehouse_count(settings, flows, entity) == held, entity


def test_a_5xx_mid_paging_then_a_rerun_loads_everything_exactly_once(
    api: TestClient, settings: Settings, flows: Flows, started: Started, instance: DagsterInstance, connected: str
) -> None:
    entity, page_size = flows.paged
    started.sandbox.create(started.tenant, flows.sandbox_entity(entity), page_size)  # more than one page
    knobs = started.knobs
    knobs.fail_on_page, knobs.fail_on_page_status, knobs.fail_on_page_times = 2, 500, 10
    with pytest.raises(IntegrationError):
        sync(settings, flows, instance, [entity])
    knobs.fail_on_page = None
    sync(settings, flows, instance, [entity])
    held = started.sandbox.count(started.tenant, flows.sandbox_entity(entity))
    assert warehouse_count(settings, flows, entity) == held
    ids = all_ids(api, connected, flows, entity)
    assert len(ids) == len(set(ids)) == held


def test_a_429_storm_still_ends_in_a_complete_pull(
    api: TestClient, settings: Settings, flows: Flows, started: Started, instance: DagsterInstance, connected: str
) -> None:
    started.knobs.rate_limit_next, started.knobs.retry_after_s = 4, 0
    result = sync(settings, flows, instance, flows.incremental)
    assert started.knobs.rate_limit_next == 0  # the storm was met, and waited out
    for entity in flows.incremental:
        held = started.sandbox.count(started.tenant, flows.sandbox_entity(entity))
        assert warehouse_count(settings, flows, entity) == held == result[entity]["rows_loaded"], entity
