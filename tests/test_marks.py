"""The marketplace draws each integration's mark as inline SVG (text on its brand colour), never an emoji."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from api.pages.marks import MARKS, mark
from api.pages.theme import contrast
from tests.browser.helpers import open_marketplace
from tests.helpers import make_tenant
from vrtx_pipelines.config import Settings
from vrtx_pipelines.registry import get_provider, load_providers

MARK = re.compile(
    r'<svg class="mark"[^>]*><rect [^>]*fill="(#[0-9a-f]{6})"/><text [^>]*fill="(#[0-9a-f]{6})">([^<]+)</text></svg>'
)


def test_every_integration_on_the_marketplace_wears_its_svg_mark_and_no_emoji(
    api: TestClient, settings: Settings
) -> None:
    open_marketplace(api, make_tenant(settings, "acme"))
    html = api.get("/marketplace").text
    providers = load_providers()
    cards = re.findall(r'<li class="card catalog-card[^"]*"[^>]*data-slug="([a-z0-9_]+)">(.*?)</li>', html, re.S)
    assert {slug for slug, _ in cards} == set(providers)
    for slug, card in cards:
        found = MARK.search(card)
        assert found, slug
        assert (found.group(3), found.group(1)) == MARKS[slug]
        assert providers[slug].icon not in card
    details = api.get("/marketplace/xero").text
    assert 'width="48"' in details and ">xero</text>" in details


@pytest.mark.parametrize("slug", sorted(MARKS))
def test_a_marks_text_reads_on_its_colour(slug: str) -> None:
    found = MARK.search(str(mark(get_provider(slug))))
    assert found
    background, text, _letters = found.groups()
    assert contrast(background, text) >= 3.0  # WCAG's minimum for large bold text; the name is written beside it


def test_an_integration_without_a_listed_mark_gets_its_initial_on_a_colour_of_its_own() -> None:
    newcomer = replace(get_provider("zapier"), slug="acme_books", name="Acme Books")
    found = MARK.search(str(mark(newcomer)))
    assert found and found.group(3) == "A" and contrast(found.group(1), found.group(2)) >= 3.0
    assert str(mark(newcomer)) == str(mark(newcomer))  # the same colour every time
    assert "<script" not in str(mark(replace(newcomer, name="<script>x")))
