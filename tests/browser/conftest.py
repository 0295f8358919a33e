"""Browser tests: Debian's Chromium driven by Playwright against the API served by uvicorn on loopback.

Playwright's own browser download is not available here, so the system Chromium is launched by path. Without
it these tests skip locally and fail under CI (``VRTX_REQUIRE_BROWSER=1``, set by .ci/run)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.main import create_app
from providers.sandbox_kit.serve import ServedApp, free_port
from vrtx_pipelines.config import Settings

CHROMIUM = os.environ.get("VRTX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("VRTX_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[ServedApp, Settings]]:
    """The real API over HTTP on loopback, its public URL being where it is served (OAuth comes back there)."""
    port = free_port()
    public = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    with ServedApp(create_app(public), port=port) as server:
        yield server, public


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("VRTX_TEST_ARTIFACTS", "test-artifacts")) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
