"""The Dagster instance files load as Dagster reads them, with the run queue limits the platform relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
LIMITED_TAGS = {"vrtx/connection", "vrtx/push-connection", "vrtx/provider", "vrtx/pull-batch"}

pytestmark = pytest.mark.dagster


def limits(instance: DagsterInstance) -> dict[str, int]:
    coordinator = instance.run_coordinator
    return {limit["key"]: limit["limit"] for limit in coordinator.inst_data.config_dict["tag_concurrency_limits"]}  # type: ignore[union-attr]


@pytest.mark.postgres
def test_the_production_instance_file_loads_on_postgresql_with_per_tenant_and_per_provider_limits(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = make_url(postgres_url).set(drivername="postgresql+psycopg2")
    monkeypatch.setenv("DAGSTER_PG_URL", url.render_as_string(hide_password=False))
    with DagsterInstance.from_config(str(ROOT / "dagster_home" / "production")) as instance:
        assert instance.get_runs(limit=1) == []  # the storage is created and answers
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert set(limits(instance)) == LIMITED_TAGS
        assert limits(instance)["vrtx/connection"] == 1 and limits(instance)["vrtx/push-connection"] == 1
        assert instance.run_monitoring_enabled


@pytest.mark.parametrize("folder", ["", "postgres"])
def test_the_local_instance_files_limit_the_same_tags(folder: str, tmp_path: Path) -> None:
    text = (ROOT / "dagster_home" / folder / "dagster.yaml").read_text()
    if folder == "postgres":  # its storage is tested by every PostgreSQL run; here only its queue
        text = text[: text.index("storage:")]
    (tmp_path / "dagster.yaml").write_text(text)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert set(limits(instance)) == LIMITED_TAGS
