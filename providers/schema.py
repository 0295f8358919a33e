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
