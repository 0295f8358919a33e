"""The two-way sync rules on their own: what each side changed, which conflicts each policy settles, the merge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vrtx_pipelines.push.two_way import FieldRule, Policy, Side, comparable, compare, merged, parse_time, settle

BASE = {"name": "Ada Ltd", "email": "ada@example.com", "phone": "111"}
EARLY = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LATE = EARLY + timedelta(minutes=5)


def test_empty_strings_missing_values_and_empty_addresses_compare_equal() -> None:
    pulled = {"name": "Ada Ltd", "external_id": "x", "updated_at": "2026-03-01T09:00:00Z", "archived": False}
    pushed = {"name": " Ada Ltd ", "email": "", "addresses": [{"line1": "", "city": None}], "id": "crm-1"}
    assert comparable("contacts", pulled) == comparable("contacts", pushed)


def test_a_field_both_sides_changed_to_the_same_value_is_agreement_not_conflict() -> None:
    both = compare("contacts", BASE, {**BASE, "name": "Ada Two"}, {**BASE, "name": "Ada Two", "phone": "222"})
    assert both.crm_changed == {"name"} and both.provider_changed == {"name", "phone"}
    assert both.conflicting == () and both.provider_only == {"phone"}


def test_a_field_both_sides_changed_differently_is_a_conflict() -> None:
    comparison = compare("contacts", BASE, {**BASE, "name": "CRM"}, {**BASE, "name": "Xero", "phone": "2"})
    assert comparison.conflicting == ("name",)


@pytest.mark.parametrize(
    ("policy", "rules", "crm_time", "provider_time", "winners", "undecided"),
    [
        (Policy.CRM_WINS, {}, None, None, {"name": Side.CRM}, ()),
        (Policy.PROVIDER_WINS, {}, None, None, {"name": Side.PROVIDER}, ()),
        (Policy.LATEST_WINS, {}, LATE, EARLY, {"name": Side.CRM}, ()),
        (Policy.LATEST_WINS, {}, EARLY, LATE, {"name": Side.PROVIDER}, ()),
        (Policy.LATEST_WINS, {}, None, LATE, {}, ("name",)),
        (Policy.LATEST_WINS, {}, LATE, LATE, {}, ("name",)),
        (Policy.PER_FIELD, {"name": FieldRule.PROVIDER_WINS}, LATE, EARLY, {"name": Side.PROVIDER}, ()),
        (Policy.PER_FIELD, {"name": FieldRule.MANUAL}, LATE, EARLY, {}, ("name",)),
        (Policy.PER_FIELD, {"email": FieldRule.MANUAL}, LATE, EARLY, {"name": Side.CRM}, ()),
    ],
)
def test_each_policy_settles_or_holds_a_conflicting_field(
    policy: Policy,
    rules: dict[str, FieldRule],
    crm_time: datetime | None,
    provider_time: datetime | None,
    winners: dict[str, Side],
    undecided: tuple[str, ...],
) -> None:
    settlement = settle(("name",), policy, rules, crm_time, provider_time)
    assert settlement.winners == winners and settlement.undecided == undecided
    assert settlement.held == bool(undecided)


def test_the_merge_keeps_the_crms_record_with_the_providers_side_of_what_it_changed_alone_or_won() -> None:
    crm = {"id": "crm-1", **BASE, "name": "CRM", "email": "new@example.com"}
    provider = {"external_id": "x", **BASE, "name": "Xero", "phone": "222"}
    comparison = compare("contacts", BASE, crm, provider)
    sent = merged("contacts", crm, provider, comparison, {"name": Side.PROVIDER})
    assert (sent["id"], sent["name"], sent["email"], sent["phone"]) == ("crm-1", "Xero", "new@example.com", "222")
    kept = merged("contacts", crm, provider, comparison, {"name": Side.CRM})
    assert kept["name"] == "CRM" and kept["phone"] == "222"


def test_modification_times_without_an_offset_are_utc() -> None:
    assert parse_time("2026-03-01T09:00:00") == EARLY
    assert parse_time("2026-03-01T09:00:00Z") == EARLY
    assert parse_time("yesterday") is None and parse_time(None) is None
