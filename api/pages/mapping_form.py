"""The mapping editor's form: one mapping as the page edits it (a draft, with the lookup table as rows of inputs),
to and from the API's ``FieldMappingSpec``; and a preview as rows a person reads rather than Python values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from api.pages.session import Form
from vrtx_pipelines.mapping.engine import FieldMappingSpec

DIRECTIONS = ("both", "pull", "push")
TRANSFORMS = ("direct", "lookup", "formula")
EDITED_LOOKUP_OPTIONS = ("table", "default", "case_insensitive")
BLANK_ROWS = 2  # empty rows under a lookup table's entries, to add values without a round trip
MORE_ROWS = 5


class DraftProblem(ValueError):
    """A draft the page cannot even turn into a mapping; ``field`` is where the page shows it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class Draft:
    vrtx_field: str = ""
    external_field: str = ""
    direction: str = "both"
    transform: str = "direct"
    expression: str = ""
    lookup: list[tuple[str, str]] = field(default_factory=list)  # (value, replacement), in the table's order
    default: str = ""  # empty: no default (an unmatched value leaves the field as the provider's mapping made it)
    case_insensitive: bool = False
    # Lookup options the page does not edit (``inverse_table``, ``inverse_default``), as JSON: kept as they were.
    extra: str = ""
    blank_rows: int = BLANK_ROWS

    @classmethod
    def from_form(cls, form: Form) -> Draft:
        values = [v.strip() for v in form.getlist("lookup_from")]
        replacements = [v.strip() for v in form.getlist("lookup_to")]
        rows = [(v, r) for v, r in zip(values, replacements, strict=False) if v or r]
        return cls(
            vrtx_field=form.get("vrtx_field").strip(),
            external_field=form.get("external_field").strip(),
            direction=form.get("direction").strip(),
            transform=form.get("transform").strip(),
            expression=form.get("expression").strip(),
            lookup=rows,
            default=form.get("lookup_default").strip(),
            case_insensitive=form.get("lookup_case_insensitive") == "true",
            extra=form.get("lookup_extra"),
        )

    @classmethod
    def from_spec(cls, spec: FieldMappingSpec) -> Draft:
        config = spec.transform_config or {}
        extra = {k: v for k, v in config.items() if k not in EDITED_LOOKUP_OPTIONS}
        lookup = spec.transform_type == "lookup"
        return cls(
            vrtx_field=spec.vrtx_field,
            external_field=spec.external_field,
            direction=spec.direction,
            transform=spec.transform_type,
            expression=str(config.get("expression", "")) if spec.transform_type == "formula" else "",
            lookup=[(str(k), _text(v)) for k, v in (config.get("table") or {}).items()] if lookup else [],
            default=_text(config["default"]) if lookup and "default" in config else "",
            case_insensitive=bool(config.get("case_insensitive")) if lookup else False,
            extra=json.dumps(extra) if lookup and extra else "",
        )

    def spec(self) -> FieldMappingSpec:
        """The mapping this draft describes; raises DraftProblem for what only the form can get wrong."""
        transform = self.transform if self.transform in TRANSFORMS else "direct"
        config: dict[str, Any] | None = None
        if transform == "formula":
            config = {"expression": self.expression}
        elif transform == "lookup":
            config = {**self._extra(), "table": self._table()}
            if self.default:
                config["default"] = self.default
            if self.case_insensitive:
                config["case_insensitive"] = True
        return FieldMappingSpec(
            vrtx_field=self.vrtx_field,
            external_field=self.external_field,
            direction=self.direction if self.direction in DIRECTIONS else "both",
            transform_type=transform,
            transform_config=config,
        )

    def rows(self) -> list[tuple[str, str]]:
        """The lookup table's rows as the page shows them: the entries, then empty rows to add more."""
        return [*self.lookup, *[("", "")] * self.blank_rows]

    def _table(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for value, replacement in self.lookup:
            if not value:
                raise DraftProblem("transform_config.table", f"“{replacement}” has no value to replace")
            if value in table:
                raise DraftProblem("transform_config.table", f"“{value}” is in the table twice")
            table[value] = replacement
        return table

    def _extra(self) -> dict[str, Any]:
        try:
            extra = json.loads(self.extra) if self.extra.strip() else {}
        except ValueError:
            extra = {}
        if not isinstance(extra, dict):
            return {}
        return {k: v for k, v in extra.items() if k not in EDITED_LOOKUP_OPTIONS}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def readable(value: Any) -> str:
    """A value as a tenant admin reads it in a table cell (never a Python repr)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def changed_rows(before: Mapping[str, Any], after: Mapping[str, Any], names: list[str]) -> list[tuple[str, str, str]]:
    """(field, before, after) for each changed field; a nested object (``custom_fields``) is opened into one row
    per changed key (``custom_fields.display``) instead of being shown whole."""
    rows: list[tuple[str, str, str]] = []
    for name in names:
        old, new = before.get(name), after.get(name)
        if isinstance(old, Mapping) or isinstance(new, Mapping):
            old_map = old if isinstance(old, Mapping) else {}
            new_map = new if isinstance(new, Mapping) else {}
            keys = sorted(k for k in {*old_map, *new_map} if old_map.get(k) != new_map.get(k))
            rows += changed_rows(
                {f"{name}.{k}": old_map.get(k) for k in keys}, {f"{name}.{k}": new_map.get(k) for k in keys},
                [f"{name}.{k}" for k in keys],
            )  # fmt: skip
        else:
            rows.append((name, readable(old), readable(new)))
    return rows
