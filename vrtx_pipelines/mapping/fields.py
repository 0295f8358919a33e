"""The two sides of a mapping: canonical fields (from the pydantic models) and provider fields (from the
provider's published ``PullSpec.record_fields``), their types, paths, and value conversions between them."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from vrtx_pipelines.errors import ConfigurationError
from vrtx_pipelines.mapping.expressions import ANY, BOOLEAN, DATE, DATETIME, NULL, NUMBER, STRING
from vrtx_pipelines.registry import load_providers

CUSTOM_PREFIX = "custom_fields."
# A record's identity is the platform's, not a mapping's to change.
UNMAPPABLE_CANONICAL = frozenset({"id", "external_id", "custom_fields", "version"})
OBJECT, ARRAY = "object", "array"
SCALARS = frozenset({STRING, NUMBER, BOOLEAN, DATE, DATETIME})

_VRTX_PATH = re.compile(r"^(?:[a-z][a-z0-9_]{0,60}|custom_fields\.[A-Za-z0-9_]{1,80})$")
_EXTERNAL_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,60}(?:\.[A-Za-z_][A-Za-z0-9_]{0,60}){0,4}$")


@dataclass(frozen=True)
class CanonicalField:
    name: str
    type: str  # string | number | boolean | date | datetime | any | object | array
    choices: tuple[str, ...] | None  # a Literal's values (invoice status)
    required: bool
    annotation: Any


@cache
def canonical_models() -> dict[str, type[BaseModel]]:
    """Pull entity name -> its canonical model, as the installed providers declare them (``PullSpec.models``):
    mappings, canonical records and entity links are kept under these names. A name two providers declare with
    different models is a configuration error: a saved mapping must mean the same for either."""
    found: dict[str, type[BaseModel]] = {}
    for provider in load_providers().values():
        for entity, model in (provider.pulls.models if provider.pulls is not None else {}).items():
            if found.setdefault(entity, model) is not model:
                raise ConfigurationError(
                    f"{provider.slug} declares {entity!r} as {model.__name__}, another provider as "
                    f"{found[entity].__name__}: one entity name is one canonical model"
                )
    return found


def is_mappable(entity: str) -> bool:
    return entity in canonical_models()


@cache
def canonical_fields(entity: str) -> dict[str, CanonicalField]:
    model = canonical_models()[entity]
    found = {}
    for name, info in model.model_fields.items():
        kind, choices = _type_of(info.annotation)
        found[name] = CanonicalField(name, kind, choices, info.is_required(), info.annotation)
    return found


def _type_of(annotation: Any) -> tuple[str, tuple[str, ...] | None]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _type_of(inner[0]) if len(inner) == 1 else (ANY, None)
    if origin is typing.Literal:
        return STRING, tuple(str(arg) for arg in typing.get_args(annotation))
    if origin in (list, tuple):
        return ARRAY, None
    if origin is dict:
        return OBJECT, None
    simple = {str: STRING, bool: BOOLEAN, Decimal: NUMBER, int: NUMBER, float: NUMBER, datetime: DATETIME}
    if annotation in simple:
        return simple[annotation], None
    if annotation is date:
        return DATE, None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return OBJECT, None
    return ANY, None


def valid_vrtx_path(path: str) -> bool:
    return bool(_VRTX_PATH.match(path))


def valid_external_path(path: str) -> bool:
    return bool(_EXTERNAL_PATH.match(path))


def canonical_type(entity: str, path: str) -> str | None:
    """The type of a canonical field path; None when the model has no such field."""
    if path.startswith(CUSTOM_PREFIX):
        return ANY
    found = canonical_fields(entity).get(path)
    return found.type if found else None


def compatible(target: str, source: str) -> bool:
    """Can a value of type ``source`` be written to a field of type ``target``?"""
    if ANY in (target, source) or source == NULL or target == source:
        return True
    return {target, source} <= {DATE, DATETIME}


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """A dotted path's value in nested mappings; None where any step is missing. Only mappings are walked:
    nothing here reaches an attribute of a Python object."""
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def set_path(record: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    current = record
    for part in parts[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):
            child = current[part] = {}
        current = child
    current[parts[-1]] = value


def json_value(value: Any) -> Any:
    """A formula's value as JSON: integral numbers stay integers (no float noise), dates are ISO text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class CoercionError(ValueError):
    pass


@cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def to_canonical(entity: str, path: str, value: Any) -> Any:
    """``value`` as the canonical field's type; raises ``CoercionError`` with a message fit for a person."""
    if path.startswith(CUSTOM_PREFIX):
        return json_value(value)
    field = canonical_fields(entity)[path]
    if field.type == DATE and isinstance(value, datetime):
        value = value.date()
    if field.type == STRING and not isinstance(value, str) and value is not None:
        raise CoercionError(f"{path} takes text, not {type(value).__name__}")
    if field.type == NUMBER and isinstance(value, str | bool):
        raise CoercionError(f"{path} takes a number, not text")
    if value is None and field.required:
        raise CoercionError(f"{path} is required and cannot be empty")
    try:
        return _adapter(field.annotation).validate_python(value)
    except ValueError as exc:
        allowed = f" (one of {', '.join(field.choices)})" if field.choices else ""
        raise CoercionError(f"{str(value)[:60]!r} is not a valid {path}{allowed}") from exc
