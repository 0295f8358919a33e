"""Forms generated from a provider's declarations: its settings (``config_schema``, JSON Schema) and its
credential fields (``AuthField``). Parsing turns a posted form back into typed values; validation stays with
``vrtx_pipelines.connect.connections`` so a page and the JSON API can never disagree."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.pages.session import Form
from providers.base import AuthField


@dataclass
class Choice:
    value: str
    label: str
    selected: bool


@dataclass
class FormField:
    name: str
    label: str
    kind: str  # text | password | number | checkbox | select | checkboxes | json
    description: str = ""
    value: str = ""
    checked: bool = False
    choices: list[Choice] = field(default_factory=list)
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    pattern: str | None = None
    max_length: int | None = None
    error: str = ""


def _label(value: str) -> str:
    return value.replace("_", " ").capitalize()


def settings_fields(schema: Mapping[str, Any], values: Mapping[str, Any], errors: Mapping[str, str]) -> list[FormField]:
    """One field per top-level property, in the schema's order, showing ``values`` and any error beside it."""
    fields = []
    required = set(schema.get("required", ()))
    for name, spec in schema.get("properties", {}).items():
        kind = spec.get("type")
        current = values.get(name, spec.get("default"))
        form_field = FormField(
            name=name,
            label=str(spec.get("title") or _label(name)),
            kind="text",
            description=str(spec.get("description", "")),
            required=name in required,
            error=errors.get(name, ""),
        )
        if kind == "boolean":
            form_field.kind, form_field.checked = "checkbox", current is True
        elif kind == "array" and "enum" in spec.get("items", {}):
            chosen = set(current or ())
            form_field.kind = "checkboxes"
            form_field.choices = [Choice(str(v), _label(str(v)), v in chosen) for v in spec["items"]["enum"]]
        elif "enum" in spec:
            form_field.kind = "select"
            form_field.choices = [Choice(str(v), str(v), v == current) for v in spec["enum"]]
        elif kind == "integer":
            form_field.kind = "number"
            form_field.minimum, form_field.maximum = spec.get("minimum"), spec.get("maximum")
            form_field.value = "" if current is None else str(current)
        elif kind in ("object", "array"):
            # No widget fits every shape a schema can take: structured settings are edited as JSON.
            form_field.kind = "json"
            empty: Any = {} if kind == "object" else []
            form_field.value = current if isinstance(current, str) else json.dumps(current or empty)
        else:
            form_field.value = "" if current is None else str(current)
            form_field.max_length = spec.get("maxLength")
        fields.append(form_field)
    return fields


def parse_settings(schema: Mapping[str, Any], form: Form) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted settings as JSON values, and the fields that could not even be read (e.g. '12x' for a number).

    Unreadable values are kept as typed so the page shows them back; the schema validation reports the rest."""
    values: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    for name, spec in schema.get("properties", {}).items():
        kind = spec.get("type")
        if kind == "boolean":
            # An unticked checkbox sends nothing; every settings form renders every field, so absent means off.
            values[name] = form.get(name) == "true"
        elif kind == "array" and "enum" in spec.get("items", {}):
            values[name] = form.getlist(name)
        elif kind in ("object", "array"):
            raw = form.get(name).strip()
            if not raw:
                continue  # left empty: the setting's default applies
            try:
                values[name] = json.loads(raw)
            except ValueError:
                values[name] = raw
                unreadable[name] = "Enter valid JSON, e.g. " + ("{}" if kind == "object" else "[]")
        elif kind == "integer":
            raw = form.get(name).strip()
            try:
                values[name] = int(raw)
            except ValueError:
                values[name] = raw
                unreadable[name] = "Enter a whole number" + (
                    f" from {spec['minimum']} to {spec['maximum']}" if "minimum" in spec and "maximum" in spec else ""
                )
        elif raw := form.get(name):
            values[name] = raw
        # else left empty: the setting is unset (its default applies), not an empty string checked against a pattern
    return values, unreadable


def field_errors(details: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Validation details (``{"field": "a.b", "message": ...}``) keyed by their top-level field."""
    errors: dict[str, str] = {}
    for detail in details:
        top = str(detail.get("field", "")).split(".", 1)[0]
        errors.setdefault(top, _sentence(str(detail.get("message", "is not valid"))))
    return errors


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def credential_fields(fields: tuple[AuthField, ...], errors: Mapping[str, str]) -> list[FormField]:
    """The provider's credential fields; values are never echoed back, secret or not."""
    return [
        FormField(
            name=f.name,
            label=f.label,
            kind="password" if f.secret else "text",
            description=f.description,
            required=f.required,
            error=errors.get(f.name, ""),
        )
        for f in fields
    ]
