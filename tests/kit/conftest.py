"""One crafted API served over loopback for the whole module; each test starts it afresh (records, script, time)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import FakeTime
from tests.kit.apis import Api, Served, serve


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    yield from serve(Api())


@pytest.fixture
def served(server: Served) -> Served:
    server.api.reset()
    server.time = FakeTime()
    return server
