"""The fault matrix runs on PostgreSQL only (app database and warehouse), with real processes where the fault
is a process's death or a race between processes. Without ``VRTX_TEST_POSTGRES_URL`` every test here is skipped,
unless ``VRTX_REQUIRE_POSTGRES=1`` (CI), where that is an error (``tests/conftest.py``).

At the end of a run that collected these tests, the matrix is printed with each test's result.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.sandbox_kit.serve import ServedApp
from providers.xero.sandbox import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, XeroSandbox, create_app
from tests.faults.matrix import MATRIX, ROW_PROPERTY


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """PostgreSQL only (the root fixture's parametrisation also runs SQLite)."""
    return postgres_url


@pytest.fixture
def xero() -> Iterator[tuple[XeroSandbox, ServedApp, str]]:
    """A Xero organisation with listings of several pages (Xero pages by 1,000), served over real HTTP."""
    sandbox = XeroSandbox(seed=13)
    org = sandbox.add_organisation("Acme Trading", contacts=2300, invoices=2600, payments=40, items=5)
    with ServedApp(create_app(sandbox)) as served:
        yield sandbox, served, org


@pytest.fixture
def base_urls(xero: tuple[XeroSandbox, ServedApp, str]) -> dict[str, str]:
    return {"xero": xero[1].base_url}


@pytest.fixture
def oauth_clients() -> dict[str, dict[str, str]]:
    return {"xero": {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        row = MATRIX.get(getattr(item, "originalname", item.name))
        if row is not None:
            item.user_properties.append((ROW_PROPERTY, (row.fault, row.checked)))
