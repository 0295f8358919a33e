"""The sync status page's log: what started each run and a link to the run in the configured Dagster UI."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from tests.browser.helpers import open_marketplace
from tests.helpers import make_tenant
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.config import Settings
from vrtx_pipelines.connect.context import get_connection
from vrtx_pipelines.db.models import IntegrationSyncLog
from vrtx_pipelines.db.session import engine_for, session_scope

DAGSTER_UI = "https://dagster.example/vrtx"


@pytest.fixture
def page(settings: Settings) -> Iterator[TestClient]:
    """Tenant acme's marketplace, on an API configured with a Dagster UI of its own, Xero connected."""
    configured = settings.model_copy(update={"dagster_url": DAGSTER_UI})
    with TestClient(create_app(configured), raise_server_exceptions=False) as client:
        token = make_tenant(settings, "acme")
        connect_xero(settings, "acme")
        open_marketplace(client, token)
        yield client


def add_row(settings: Settings, run_id: str, minutes_ago: int, direction: str, request: dict[str, Any]) -> None:
    with session_scope(engine_for(settings.sqlalchemy_url)) as session:
        connection = get_connection(session, "acme", "xero")
        assert connection is not None
        session.add(
            IntegrationSyncLog(
                tenant_integration_id=connection.id,
                run_id=run_id,
                entity_type="contacts",
                direction=direction,
                sync_type="push" if direction == "push" else "incremental",
                status="success",
                counts={"rows_loaded": 3} if direction == "pull" else {"pushed": 2},
                request_data=request,
                created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
            )
        )


def test_the_sync_log_says_what_started_each_run_and_links_to_it_in_dagster(
    page: TestClient, settings: Settings
) -> None:
    started_by = {"schedule": "Schedule", "cli": "Command line", "webhook": "Webhook", "api": "Sync now"}
    for minutes, trigger in enumerate(started_by, start=1):
        add_row(settings, f"run-{trigger}", minutes, "pull", {"trigger": trigger})
    add_row(settings, "run-push", 9, "push", {"pushes": []})  # push rows written before they named a trigger

    html = page.get("/marketplace/xero/sync").text
    assert ">Trigger</th>" in html and ">Run</th>" in html
    rows = re.findall(r'<tr class="log-row" data-run="([^"]+)">(.*?)</tr>', html, re.S)
    assert len(rows) == 5
    for run_id, cells in rows:
        trigger = re.search(r'<td class="log-trigger">([^<]+)</td>', cells)
        assert trigger
        expected = "From the CRM" if run_id == "run-push" else started_by[run_id.removeprefix("run-")]
        assert trigger.group(1) == expected
        link = re.search(r'<a class="run-link" href="([^"]+)" target="_blank" rel="noopener">', cells)
        assert link and link.group(1) == f"{DAGSTER_UI}/runs/{run_id}"
