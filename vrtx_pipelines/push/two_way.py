"""Two-way sync rules: what each side changed since the last sync, and which side a conflicting field takes.

Pure functions over canonical JSON (no database, no provider): ``vrtx_pipelines.push.conflicts`` applies them when a
CRM change is about to be pushed. Three versions of a record meet there:

- the *base*: the record as last synced, when both sides last agreed (``EntityLink.synced_data``);
- the *CRM's* version: the pushed payload;
- the *provider's* current version.

A field one side changed and the other did not simply takes that side's value (a merge, not a conflict); a field
both sides changed to different values is a conflict, settled by the connection's ``conflict_policy``. Fields are
compared after normalising what the two sides spell differently for the same thing (an empty string and a missing
value; an address with nothing in it and no address).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from vrtx_pipelines.records.canonical import Contact


class Policy(StrEnum):
    CRM_WINS = "crm_wins"
    PROVIDER_WINS = "provider_wins"
    LATEST_WINS = "latest_wins"
    PER_FIELD = "per_field"


class FieldRule(StrEnum):
    """How ``per_field`` settles one field (``conflict_fields``); fields not named there use latest_wins."""

    CRM_WINS = "crm_wins"
    PROVIDER_WINS = "provider_wins"
    LATEST_WINS = "latest_wins"
    MANUAL = "manual"


class Side(StrEnum):
    CRM = "crm"
    PROVIDER = "provider"


DEFAULT_POLICY = Policy.LATEST_WINS

# The contact fields both sides own and a provider round-trips faithfully. Left out: ids and stamps, ``company``
# (Xero derives it from the name), ``is_customer``/``is_supplier`` (Xero sets them from transactions).
CONTACT_FIELDS = ("name", "first_name", "last_name", "email", "phone", "mobile", "tax_number", "addresses", "archived")

# Records entity -> (canonical model, fields synced both ways). Other entities are pushed one way, as before.
TWO_WAY: dict[str, tuple[type[BaseModel], tuple[str, ...]]] = {"contacts": (Contact, CONTACT_FIELDS)}


def is_two_way(entity_type: str) -> bool:
    return entity_type in TWO_WAY


def sync_fields(entity_type: str) -> tuple[str, ...]:
    return TWO_WAY[entity_type][1]


def comparable(entity_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The two-way fields of a record, with the model's defaults filled in and empty values made equal."""
    model, fields = TWO_WAY[entity_type]
    try:
        full: Mapping[str, Any] = model.model_validate(
            {k: v for k, v in data.items() if k in model.model_fields}
        ).model_dump(mode="json")
    except ValidationError:
        full = data  # a partial record (e.g. only an id): compare what there is
    return {name: _normalised(full.get(name)) for name in fields}


def _normalised(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, Mapping):
        items = {k: v for k, item in value.items() if (v := _normalised(item)) is not None}
        return items or None
    if isinstance(value, list | tuple):
        listed = [v for item in value if (v := _normalised(item)) is not None]
        return listed or None
    return value


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


@dataclass(frozen=True)
class Comparison:
    base: dict[str, Any]
    crm: dict[str, Any]
    provider: dict[str, Any]
    crm_changed: frozenset[str]
    provider_changed: frozenset[str]

    @property
    def conflicting(self) -> tuple[str, ...]:
        """Fields both sides changed, to different values (the same new value on both sides is agreement)."""
        both = self.crm_changed & self.provider_changed
        return tuple(sorted(name for name in both if self.crm.get(name) != self.provider.get(name)))

    @property
    def provider_only(self) -> frozenset[str]:
        return self.provider_changed - self.crm_changed


def compare(
    entity_type: str, base: Mapping[str, Any], crm: Mapping[str, Any], provider: Mapping[str, Any]
) -> Comparison:
    base_view, crm_view, provider_view = (comparable(entity_type, side) for side in (base, crm, provider))
    return Comparison(
        base=base_view,
        crm=crm_view,
        provider=provider_view,
        crm_changed=changed_fields(base_view, crm_view),
        provider_changed=changed_fields(base_view, provider_view),
    )


@dataclass(frozen=True)
class Settlement:
    """What the policy made of the conflicting fields: a winning side per field, and the fields it could not
    settle (the push is then held for a person to decide)."""

    winners: dict[str, Side]
    undecided: tuple[str, ...]

    @property
    def held(self) -> bool:
        return bool(self.undecided)


def settle(
    conflicting: Sequence[str],
    policy: Policy,
    field_rules: Mapping[str, FieldRule],
    crm_updated_at: datetime | None,
    provider_updated_at: datetime | None,
) -> Settlement:
    latest = _latest(crm_updated_at, provider_updated_at)
    winners: dict[str, Side] = {}
    undecided: list[str] = []
    for name in conflicting:
        rule = _rule_for(name, policy, field_rules)
        if rule is FieldRule.CRM_WINS:
            winners[name] = Side.CRM
        elif rule is FieldRule.PROVIDER_WINS:
            winners[name] = Side.PROVIDER
        elif rule is FieldRule.LATEST_WINS and latest is not None:
            winners[name] = latest
        else:  # manual, or latest_wins without two comparable modification times
            undecided.append(name)
    return Settlement(winners, tuple(undecided))


def _rule_for(name: str, policy: Policy, field_rules: Mapping[str, FieldRule]) -> FieldRule:
    if policy is Policy.PER_FIELD:
        return field_rules.get(name, FieldRule.LATEST_WINS)
    return FieldRule(policy.value)


def _latest(crm: datetime | None, provider: datetime | None) -> Side | None:
    """The side changed last; None when a time is missing or both are equal (nothing to go by)."""
    if crm is None or provider is None or crm == provider:
        return None
    return Side.CRM if crm > provider else Side.PROVIDER


def merged(
    entity_type: str,
    crm: Mapping[str, Any],
    provider: Mapping[str, Any],
    comparison: Comparison,
    winners: Mapping[str, Side],
) -> dict[str, Any]:
    """The CRM's record with the provider's side of every field it changed alone or won: what is sent."""
    model, _fields = TWO_WAY[entity_type]
    from_provider = set(comparison.provider_only) | {name for name, side in winners.items() if side is Side.PROVIDER}
    provider_full = model.model_validate({k: v for k, v in provider.items() if k in model.model_fields}).model_dump(
        mode="json"
    )
    record = dict(crm)
    for name in from_provider:
        record[name] = provider_full.get(name)
    result: dict[str, Any] = model.model_validate(record).model_dump(mode="json")
    return result


def parse_time(value: Any) -> datetime | None:
    """A modification time; one without an offset is taken as UTC (canonical times are UTC)."""
    parsed = value if isinstance(value, datetime) else None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
