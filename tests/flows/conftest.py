"""The generic flow tests' parametrisation and fixtures.

A test module says which capability its flows need (``CAPABILITY = "pull:"``, a prefix of ``Provider.implemented``
entries); every test asking for ``flows`` runs once per provider that implements it, against that provider's own
fresh sandbox served over real HTTP on loopback, with the platform pointed at it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.sandbox_kit.serve import ServedApp
from tests.flows.harness import Flows, Started
from tests.flows.providers import FLOWS
from tests.helpers import make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.registry import load_providers


def implementing(capability: str) -> list[str]:
    """The slugs of providers whose ``implemented`` has an entry starting with ``capability``."""
    return [
        slug
        for slug, provider in load_providers().items()
        if any(done == capability or done.startswith(capability) for done in provider.implemented)
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "flows" not in metafunc.fixturenames:
        return
    capability = getattr(metafunc.module, "CAPABILITY", None)
    assert capability, f"{metafunc.module.__name__} names no CAPABILITY for its flows"
    slugs = [slug for slug in implementing(capability) if slug in FLOWS]
    if getattr(metafunc.module, "OAUTH_ONLY", False):  # the flow needs a grant to refresh
        slugs = [slug for slug in slugs if FLOWS[slug].oauth]
    metafunc.parametrize("flows", [FLOWS[slug] for slug in slugs], ids=slugs)


@pytest.fixture
def started(flows: Flows) -> Started:
    return flows.start()


@pytest.fixture
def served(started: Started) -> Iterator[ServedApp]:
    with ServedApp(started.app) as server:
        yield server


@pytest.fixture
def base_urls(sandboxes: dict[str, ServedApp], flows: Flows, served: ServedApp) -> dict[str, str]:
    return {**{slug: s.base_url for slug, s in sandboxes.items()}, flows.slug: served.base_url}


@pytest.fixture
def oauth_clients(flows: Flows) -> dict[str, dict[str, str]]:
    return {flows.slug: dict(flows.oauth_app)} if flows.oauth_app else {}


@pytest.fixture
def token(settings: Settings) -> str:
    """The API token of tenant ``acme``, not yet connected."""
    return make_tenant(settings, "acme")
