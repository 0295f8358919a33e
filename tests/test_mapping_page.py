"""The mapping editor page: lookup tables edited as rows of values (saved through the mapping API, shown again,
options it does not edit kept), and a preview that reads as a table of fields, not as Python values."""

from __future__ import annotations

import re
from typing import Any

import pytest
from dagster import DagsterInstance
from fastapi.testclient import TestClient

from tests.browser.helpers import open_marketplace, post_form
from tests.helpers import bearer, make_tenant
from tests.xero.conftest import (  # the Xero sandbox fixtures, for tests outside tests/xero
    base_urls,  # noqa: F401
    connect_xero,
    oauth_clients,  # noqa: F401
    xero,  # noqa: F401
)
from vrtx_pipelines.cli.sync import sync_now
from vrtx_pipelines.config import Settings

PAGE = "/marketplace/xero/mappings?entity=contacts"
STATUS_TABLE = [("ACTIVE", "live"), ("ARCHIVED", "gone")]


@pytest.fixture
def acme(api: TestClient, settings: Settings) -> str:
    token = make_tenant(settings, "acme")
    connect_xero(settings, "acme")
    open_marketplace(api, token)
    return token


def mapping_form(transform: str, index: str = "", **extra: Any) -> list[tuple[str, str]]:
    form = [
        ("entity", "contacts"),
        ("index", index),
        ("vrtx_field", extra.pop("vrtx_field", "custom_fields.state")),
        ("external_field", extra.pop("external_field", "ContactStatus")),
        ("direction", "pull"),
        ("transform", transform),
        ("expression", extra.pop("expression", "")),
    ]
    for value, replacement in extra.pop("rows", []):
        form += [("lookup_from", value), ("lookup_to", replacement)]
    return form + [(name, str(value)) for name, value in extra.items()]


def stored(api: TestClient, token: str) -> list[dict[str, Any]]:
    answer = api.get("/api/v1/integrations/xero/mappings?entity=contacts", headers=bearer(token)).json()
    return answer["entities"]["contacts"]["mappings"]  # type: ignore[no-any-return]


def test_a_lookup_table_is_edited_as_rows_and_saved_through_the_mapping_api(api: TestClient, acme: str) -> None:
    html = api.get(PAGE).text
    assert '<option value="lookup">Look the value up in a table</option>' in html
    assert html.count('name="lookup_from"') == 2  # empty rows to start a table

    rows = [*STATUS_TABLE, ("", "")]  # an empty row is left out
    form = mapping_form("lookup", rows=rows, lookup_default="unknown", lookup_case_insensitive="true")
    saved = post_form(api, "/marketplace/xero/mappings", [*form, ("action", "save")], page=PAGE)
    assert saved.status_code == 303, saved.text
    [mapping] = stored(api, acme)
    assert mapping["transform_type"] == "lookup"
    assert mapping["transform_config"] == {
        "table": {"ACTIVE": "live", "ARCHIVED": "gone"},
        "default": "unknown",
        "case_insensitive": True,
    }
    listed = api.get(saved.headers["location"]).text
    assert "Lookup (2 values, otherwise “unknown”)" in listed

    edit = api.get(PAGE + "&edit=0").text
    assert re.findall(r'name="lookup_from" type="text" value="([^"]*)"', edit) == ["ACTIVE", "ARCHIVED", "", ""]
    assert re.findall(r'name="lookup_to" type="text" value="([^"]*)"', edit) == ["live", "gone", "", ""]
    assert 'name="lookup_default" type="text" value="unknown"' in edit
    assert 'id="m-case" name="lookup_case_insensitive" value="true" checked' in edit

    asked = [*mapping_form("lookup", "0", rows=rows), ("action", "more_rows")]
    more = post_form(api, "/marketplace/xero/mappings", asked)
    assert more.status_code == 200 and more.text.count('name="lookup_from"') == 2 + 5
    assert len(stored(api, acme)) == 1  # nothing saved by asking for rows


def test_a_bad_lookup_table_is_refused_beside_the_table_and_nothing_is_saved(api: TestClient, acme: str) -> None:
    twice = mapping_form("lookup", rows=[("ACTIVE", "live"), ("ACTIVE", "other")])
    refused = post_form(api, "/marketplace/xero/mappings", [*twice, ("action", "save")], page=PAGE)
    assert refused.status_code == 422 and "“ACTIVE” is in the table twice" in refused.text
    assert 'id="m-lookup-error"' in refused.text and 'value="other"' in refused.text
    empty = post_form(api, "/marketplace/xero/mappings", [*mapping_form("lookup"), ("action", "save")], page=PAGE)
    assert empty.status_code == 422 and "a lookup needs a non-empty table" in empty.text
    assert stored(api, acme) == []


def test_editing_a_lookup_in_the_page_keeps_the_options_it_does_not_show(api: TestClient, acme: str) -> None:
    config = {"table": {"live": "ACTIVE"}, "inverse_table": {"ACTIVE": "live", "ARCHIVED": "gone"}}
    mapping = {"vrtx_field": "custom_fields.state", "external_field": "ContactStatus", "direction": "both"}
    put = api.put(
        "/api/v1/integrations/xero/mappings",
        json={"mappings": {"contacts": [{**mapping, "transform_type": "lookup", "transform_config": config}]}},
        headers=bearer(acme),
    )
    assert put.status_code == 200, put.text
    extra = re.search(r'name="lookup_extra" value="([^"]*)"', api.get(PAGE + "&edit=0").text)
    assert extra and "inverse_table" in extra.group(1).replace("&#34;", '"')
    form = [
        *[(k, v) for k, v in mapping_form("lookup", "0", rows=[("live", "ACTIVE"), ("dead", "ARCHIVED")])],
        ("lookup_extra", extra.group(1).replace("&#34;", '"')),
    ]
    form = [(k, "both" if k == "direction" else v) for k, v in form]
    assert post_form(api, "/marketplace/xero/mappings", [*form, ("action", "save")], page=PAGE).status_code == 303
    [saved] = stored(api, acme)
    assert saved["transform_config"] == {
        "table": {"live": "ACTIVE", "dead": "ARCHIVED"},
        "inverse_table": {"ACTIVE": "live", "ARCHIVED": "gone"},
    }


@pytest.mark.dagster
def test_the_preview_is_a_table_of_fields_before_and_after_with_nested_values_opened(
    api: TestClient, acme: str, settings: Settings, instance: DagsterInstance
) -> None:
    sync_now(settings, "xero", "acme", ["contacts"], instance=instance)  # the sample is the latest contact
    display = mapping_form(
        "formula", vrtx_field="custom_fields.display", external_field="Name",
        expression='concat(Name, " (", ContactStatus, ")")',
    )  # fmt: skip
    previewed = post_form(api, "/marketplace/xero/mappings", [*display, ("action", "preview")], page=PAGE)
    assert previewed.status_code == 200, previewed.text
    preview = previewed.text[previewed.text.index('id="preview"') :]
    row = re.search(r'<tr><th scope="row">custom_fields\.display</th><td>([^<]*)</td><td>([^<]*)</td></tr>', preview)
    assert row, preview
    assert row.group(1) == "—" and re.fullmatch(r".+ \((ACTIVE|ARCHIVED)\)", row.group(2))
    assert "{&#39;" not in preview and "{'" not in preview  # no Python dict

    lookup = mapping_form("lookup", rows=STATUS_TABLE)
    previewed = post_form(api, "/marketplace/xero/mappings", [*lookup, ("action", "preview")], page=PAGE)
    cells = re.search(r'<th scope="row">custom_fields\.state</th><td>([^<]*)</td><td>([^<]*)</td>', previewed.text)
    assert cells and cells.group(1) == "—" and cells.group(2) in ("live", "gone")
