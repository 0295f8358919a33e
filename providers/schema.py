"""Building blocks for a provider's ``config_schema`` (JSON Schema 2020-12 of a tenant's settings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# The VRTX events an integration can forward (Slack messages, Zapier and Make hooks).
VRTX_EVENTS = ("contact.created", "contact.updated", "invoice.created", "invoice.paid", "sync.completed", "sync.failed")


def events_setting(title: str, description: str, default: Sequence[str], *, min_items: int = 0) -> dict[str, Any]:
    """A setting choosing which VRTX events to forward."""
    schema: dict[str, Any] = {
        "type": "array",
        "title": title,
        "description": description,
        "items": {"type": "string", "enum": list(VRTX_EVENTS)},
        "uniqueItems": True,
        "default": list(default),
    }
    if min_items:
        schema["minItems"] = min_items
    return schema


SYNC_FREQUENCY_MINUTES: dict[str, Any] = {
    "type": "integer",
    "title": "Sync frequency (minutes)",
    "description": "How often scheduled incremental syncs run for this connection.",
    "minimum": 5,
    "maximum": 1440,
    "default": 60,
}


def text_setting(
    title: str, description: str, default: str = "", *, pattern: str | None = None, max_length: int | None = None
) -> dict[str, Any]:
    """A text setting; ``pattern`` must match the whole value."""
    schema: dict[str, Any] = {"type": "string", "title": title, "description": description}
    if pattern is not None:
        schema["pattern"] = pattern
    if max_length is not None:
        schema["maxLength"] = max_length
    return {**schema, "default": default}


def choice_setting(title: str, description: str, choices: Sequence[str], default: str) -> dict[str, Any]:
    """A setting that takes one of ``choices``."""
    return {"type": "string", "title": title, "description": description, "enum": list(choices), "default": default}


def conflict_settings(provider: str, fields: Sequence[str], entity: str = "contact") -> dict[str, dict[str, Any]]:
    """Two-way sync's settings: which side wins a field changed in VRTX and at ``provider`` since the last sync
    (``conflict_policy``), and per-field rules over ``fields`` (``conflict_fields``)."""
    return {
        "conflict_policy": {
            "type": "string",
            "title": f"When a {entity} changed in VRTX and in {provider}",
            "description": (
                "Which side a field changed on both sides since the last sync takes: crm_wins, provider_wins, "
                "latest_wins (the later modification time; held for you to resolve when one is missing) or "
                "per_field (each field as conflict_fields says, latest_wins for the rest). Fields changed on "
                "one side only always merge."
            ),
            "enum": ["crm_wins", "provider_wins", "latest_wins", "per_field"],
            "default": "latest_wins",
        },
        "conflict_fields": {
            "type": "object",
            "title": "Per-field conflict rules",
            "description": (
                f"With per_field: {entity} field -> crm_wins, provider_wins, latest_wins or manual (always "
                "held for you to resolve)."
            ),
            "propertyNames": {"enum": list(fields)},
            "additionalProperties": {"enum": ["crm_wins", "provider_wins", "latest_wins", "manual"]},
            "default": {},
        },
    }


def settings_schema(
    *,
    entities: Sequence[str],
    default_entities: Sequence[str] | None = None,
    properties: Mapping[str, Mapping[str, Any]] | None = None,
    required: Sequence[str] = (),
    title: str = "Settings",
) -> dict[str, Any]:
    """A closed object schema with the settings every provider shares plus its own ``properties``."""
    entity_list = list(entities)
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "sync_enabled": {
                "type": "boolean",
                "title": "Scheduled sync",
                "description": "Run scheduled syncs for this connection.",
                "default": True,
            },
            "sync_frequency_minutes": SYNC_FREQUENCY_MINUTES,
            "entities": {
                "type": "array",
                "title": "Entities to sync",
                "items": {"type": "string", "enum": entity_list},
                "uniqueItems": True,
                "default": list(default_entities if default_entities is not None else entity_list),
            },
            **{name: dict(spec) for name, spec in (properties or {}).items()},
        },
    }
    if required:
        schema["required"] = list(required)
    return schema


def defaults_from_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a new connection starts with: every top-level property's ``default``."""
    props: Mapping[str, Mapping[str, Any]] = schema.get("properties", {})
    return {name: spec["default"] for name, spec in props.items() if "default" in spec}
