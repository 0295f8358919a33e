"""Compiling a tenant's mappings for one entity, and applying them to records in either direction.

``compile_mappings`` checks every mapping (fields, types, lookup tables, formulas) and raises ``InvalidMappings``
with one detail per problem (``mapping`` index, ``field``, ``position`` for formulas); nothing half-valid is kept.
The result applies mappings to a pulled record (``apply_pull``) or yields the provider fields a push sets
(``push_overrides``). A mapping that fails on one record at run time is a ``MappingProblem``, never an exception
that escapes to the caller's loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vrtx_pipelines.errors import ValidationFailed
from vrtx_pipelines.mapping.expressions import ANY, STRING, ExpressionError, Scope, as_text, to_value, value_type
from vrtx_pipelines.mapping.fields import (
    ARRAY,
    CUSTOM_PREFIX,
    OBJECT,
    UNMAPPABLE_CANONICAL,
    CoercionError,
    canonical_fields,
    canonical_models,
    canonical_type,
    compatible,
    get_path,
    is_mappable,
    json_value,
    to_canonical,
    valid_external_path,
    valid_vrtx_path,
)
from vrtx_pipelines.mapping.formula import Formula, compile_formula
from vrtx_pipelines.records.canonical import Deleted

Direction = Literal["pull", "push"]


class FieldMappingSpec(BaseModel):
    """One mapping as the API takes and gives it (and as version snapshots keep it)."""

    model_config = ConfigDict(extra="forbid")

    vrtx_field: str = Field(description="Canonical field: `name`, `email`, `custom_fields.segment` ...")
    external_field: str = Field(description="The provider record's field, dotted when nested: `Contact.Name`.")
    transform_type: Literal["direct", "lookup", "formula"] = "direct"
    transform_config: dict[str, Any] | None = Field(
        default=None,
        description='lookup: {"table": {from: to}, "default"?, "case_insensitive"?, "inverse_table"?, '
        '"inverse_default"?}; formula: {"expression": "...", "inverse"?: "..."}',
    )
    direction: Literal["both", "pull", "push"] = "both"
    is_active: bool = True


class InvalidMappings(ValidationFailed):
    code = "invalid_mappings"


@dataclass(frozen=True)
class MappingProblem:
    mapping: int
    field: str
    message: str
    position: int | None = None
    entity: str | None = None

    def detail(self) -> dict[str, Any]:
        found: dict[str, Any] = {"mapping": self.mapping, "field": self.field, "message": self.message}
        if self.position is not None:
            found["position"] = self.position
        if self.entity is not None:
            found["entity"] = self.entity
        return found


class _NoValue:
    """A lookup that found nothing and has no default: the field is left as it was."""


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class Transform:
    """One direction of a mapping: reads ``source`` of a record, writes ``target`` of the other side's record."""

    index: int
    source: str
    target: str
    target_type: str
    run: Callable[[Any, Mapping[str, Any]], Any]


@dataclass
class EntityMappings:
    entity: str
    pull: list[Transform] = field(default_factory=list)
    push: list[Transform] = field(default_factory=list)

    def apply_pull(
        self, raw: Mapping[str, Any], record: BaseModel, unmatched: list[int] | None = None
    ) -> tuple[BaseModel, list[MappingProblem]]:
        """The provider mapper's record with the pull mappings applied (values from the raw provider row).
        ``unmatched`` collects the mappings that yielded no value (a lookup without a match or default). A tombstone
        (``records.canonical.Deleted``: an id and a time) has no fields to map; a whole record the provider deleted
        (Stripe's) is mapped as any other."""
        if isinstance(record, Deleted):
            return record, []
        problems: list[MappingProblem] = []
        updates: dict[str, Any] = {}
        custom = dict(getattr(record, "custom_fields", None) or {})
        for transform in self.pull:
            try:
                value = transform.run(get_path(raw, transform.source), raw)
                if value is NO_VALUE:
                    _note(unmatched, transform)
                    continue
                converted = to_canonical(self.entity, transform.target, value)
            except (ExpressionError, CoercionError) as exc:
                problems.append(_runtime_problem(transform, exc))
                continue
            if transform.target.startswith(CUSTOM_PREFIX):
                custom[transform.target.removeprefix(CUSTOM_PREFIX)] = converted
            else:
                updates[transform.target] = converted
        if custom:
            updates["custom_fields"] = custom
        return (record.model_copy(update=updates) if updates else record), problems

    def push_overrides(
        self, payload: Mapping[str, Any], unmatched: list[int] | None = None
    ) -> tuple[dict[str, Any], list[MappingProblem]]:
        """Provider field path -> JSON value for a canonical record (``payload`` is its JSON)."""
        record = typed_canonical(self.entity, payload)
        overrides: dict[str, Any] = {}
        problems: list[MappingProblem] = []
        for transform in self.push:
            try:
                value = transform.run(get_path(record, transform.source), record)
                if value is NO_VALUE:
                    _note(unmatched, transform)
                    continue
                overrides[transform.target] = _external_value(transform, value)
            except (ExpressionError, CoercionError) as exc:
                problems.append(_runtime_problem(transform, exc))
        return overrides, problems


def _note(unmatched: list[int] | None, transform: Transform) -> None:
    if unmatched is not None:
        unmatched.append(transform.index)


def typed_canonical(entity: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A canonical record's JSON with Python types back (Decimal, date) where the model declares them."""
    model = canonical_models()[entity]
    try:
        typed: dict[str, Any] = model.model_validate(dict(payload)).model_dump()
    except ValueError:
        return dict(payload)  # a partial record (preview): the mappings read what is there
    return typed


def _external_value(transform: Transform, value: Any) -> Any:
    if value is not None and transform.target_type not in (ANY, "", None):
        kind = _kind(value)
        if not compatible(transform.target_type, kind):
            raise CoercionError(f"{transform.target} takes {transform.target_type}, not {kind}")
    return json_value(value)


def _kind(value: Any) -> str:
    return value_type(value)


def _runtime_problem(transform: Transform, exc: Exception) -> MappingProblem:
    position = exc.position if isinstance(exc, ExpressionError) else None
    message = exc.message if isinstance(exc, ExpressionError) else str(exc)
    return MappingProblem(transform.index, transform.target, message, position)


# --- compiling --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """What the checks know about the provider side: field path -> type, or None when it publishes nothing."""

    external: Mapping[str, str] | None


def compile_mappings(
    entity: str, specs: Sequence[FieldMappingSpec], catalog: Catalog, *, check: bool = True
) -> EntityMappings:
    """Checked, runnable mappings. ``check=False`` (run time, for mappings checked when saved) skips the name
    and type checks that need the provider's field list, never the language's own safety checks."""
    if not is_mappable(entity):
        raise InvalidMappings(
            f"mappings are kept per entity: one of {', '.join(canonical_models())}",
            details=[{"entity": entity, "message": "unknown entity"}],
        )
    problems: list[MappingProblem] = []
    compiled = EntityMappings(entity)
    builder = _Builder(entity, catalog if check else Catalog(None), check)
    for index, spec in enumerate(specs):
        found = builder.mapping(index, spec)
        problems += found
        if found or not spec.is_active:
            continue
        for direction in ("pull", "push"):
            if spec.direction in ("both", direction):
                transform = builder.transform(index, spec, direction)
                (compiled.pull if direction == "pull" else compiled.push).append(transform)
    problems += _duplicate_targets(compiled)
    if problems:
        raise InvalidMappings(
            f"{len(problems)} problem(s) in the {entity} mappings",
            details=[problem.detail() | {"entity": entity} for problem in problems],
        )
    return compiled


def _duplicate_targets(compiled: EntityMappings) -> list[MappingProblem]:
    problems = []
    for direction, transforms in (("pull", compiled.pull), ("push", compiled.push)):
        seen: dict[str, int] = {}
        for transform in transforms:
            if transform.target in seen:
                side = "vrtx_field" if direction == "pull" else "external_field"
                problems.append(
                    MappingProblem(
                        transform.index,
                        side,
                        f"{transform.target} is already set by mapping {seen[transform.target]} ({direction})",
                    )
                )
            seen.setdefault(transform.target, transform.index)
    return problems


class _Builder:
    def __init__(self, entity: str, catalog: Catalog, check: bool) -> None:
        self.entity = entity
        self.catalog = catalog
        self.check = check

    def vrtx_type(self, path: str) -> str:
        return canonical_type(self.entity, path) or ANY

    def external_type(self, path: str) -> str:
        if self.catalog.external is None:
            return ANY
        return self.catalog.external.get(path, ANY)

    def mapping(self, index: int, spec: FieldMappingSpec) -> list[MappingProblem]:
        problems: list[MappingProblem] = []

        def problem(field_name: str, message: str, position: int | None = None) -> None:
            problems.append(MappingProblem(index, field_name, message, position))

        vrtx_kind = canonical_type(self.entity, spec.vrtx_field) if valid_vrtx_path(spec.vrtx_field) else None
        if not valid_vrtx_path(spec.vrtx_field) or spec.vrtx_field in UNMAPPABLE_CANONICAL or vrtx_kind is None:
            known = ", ".join(n for n in canonical_fields(self.entity) if n not in UNMAPPABLE_CANONICAL)
            problem(
                "vrtx_field",
                f"unknown field {spec.vrtx_field!r} for {self.entity}: one of {known}, or custom_fields.<name>",
            )
        elif vrtx_kind in (OBJECT, ARRAY):
            problem("vrtx_field", f"{spec.vrtx_field} is a list or object: map its parts instead")
        if not valid_external_path(spec.external_field):
            problem("external_field", f"{spec.external_field!r} is not a field path (Name, Contact.Name)")
        elif self.check and self.catalog.external is not None:
            kind = self.catalog.external.get(spec.external_field)
            if kind is None:
                problem("external_field", f"the provider's {self.entity} have no field {spec.external_field!r}")
            elif kind in (OBJECT, ARRAY):
                problem("external_field", f"{spec.external_field} is a list or object: map one of its fields")
        if problems:
            return problems
        for direction in ("pull", "push"):
            if spec.direction in ("both", direction):
                try:
                    self.transform(index, spec, direction)
                except _SpecProblem as exc:
                    problem(exc.field, exc.message, exc.position)
                    break
        return problems

    def transform(self, index: int, spec: FieldMappingSpec, direction: Direction) -> Transform:
        if direction == "pull":
            source, target = spec.external_field, spec.vrtx_field
            source_type, target_type = self.external_type(source), self.vrtx_type(target)
        else:
            source, target = spec.vrtx_field, spec.external_field
            source_type, target_type = self.vrtx_type(source), self.external_type(target)
        # A two-way mapping's table or formula reads VRTX -> provider; its pull side is the inverse.
        inverse = spec.direction == "both" and direction == "pull"
        config = spec.transform_config or {}
        if spec.transform_type == "direct":
            if self.check and not compatible(target_type, source_type):
                raise _SpecProblem(
                    "transform_type",
                    f"{source} ({source_type}) cannot be copied to {target} "
                    f"({target_type}): use a formula such as text() or number()",
                )
            return Transform(index, source, target, target_type, lambda value, _record: value)
        if spec.transform_type == "lookup":
            run = self.lookup(config, inverse, target, target_type, direction)
            return Transform(index, source, target, target_type, run)
        formula = self.formula(config, inverse, direction, target, target_type)
        return Transform(index, source, target, target_type, _formula_runner(formula))

    def lookup(
        self, config: Mapping[str, Any], inverse: bool, target: str, target_type: str, direction: Direction
    ) -> Callable[[Any, Mapping[str, Any]], Any]:
        table = config.get("table")
        if not isinstance(table, Mapping) or not table:
            raise _SpecProblem("transform_config.table", "a lookup needs a non-empty table of {from: to}")
        if len(table) > 1000:
            raise _SpecProblem("transform_config.table", "a lookup table has at most 1000 entries")
        has_default = "inverse_default" in config if inverse else "default" in config
        default = config.get("inverse_default" if inverse else "default")
        if inverse:
            explicit = config.get("inverse_table")
            if explicit is not None:
                if not isinstance(explicit, Mapping) or not explicit:
                    raise _SpecProblem("transform_config.inverse_table", "the inverse table must be {from: to}")
                table = explicit
            else:
                table = self.inverted(table)
        for key, value in table.items():
            self.check_value(value, target, target_type, f"transform_config.table.{key}")
        if has_default:
            self.check_value(default, target, target_type, "transform_config.default")
        fold = bool(config.get("case_insensitive"))
        keys = {_lookup_key(key, fold): to_value(value) for key, value in table.items()}

        def run(value: Any, _record: Mapping[str, Any]) -> Any:
            if value is None:
                return NO_VALUE if not has_default else to_value(default)
            found = keys.get(_lookup_key(as_text(to_value(value)), fold), NO_VALUE)
            if found is NO_VALUE and has_default:
                return to_value(default)
            return found

        return run

    def inverted(self, table: Mapping[str, Any]) -> dict[str, Any]:
        inverse: dict[str, Any] = {}
        for key, value in table.items():
            text = as_text(to_value(value))
            if text in inverse:
                raise _SpecProblem(
                    "transform_config.table",
                    f"two values map to {text!r}, so the pull side cannot tell them apart: give an inverse_table "
                    "or make the mapping push-only",
                )
            inverse[text] = key
        return inverse

    def check_value(self, value: Any, target: str, target_type: str, where: str) -> None:
        if value is None:
            return
        kind = _kind(to_value(value))
        if self.check and not compatible(target_type, kind):
            raise _SpecProblem(where, f"{target} takes {target_type}, not {kind} ({str(value)[:40]!r})")
        if target.startswith(CUSTOM_PREFIX) or target_type != STRING:
            return
        found = canonical_fields(self.entity).get(target)
        if self.check and found is not None and found.choices and str(value) not in found.choices:
            raise _SpecProblem(where, f"{value!r} is not a valid {target} (one of {', '.join(found.choices)})")

    def formula(
        self, config: Mapping[str, Any], inverse: bool, direction: Direction, target: str, target_type: str
    ) -> Formula:
        key = "inverse" if inverse else "expression"
        source = config.get(key)
        if not isinstance(source, str):
            message = (
                "a formula that runs both ways needs an 'inverse' for pulls (provider -> VRTX), "
                "or make the mapping push-only"
                if inverse
                else "a formula needs an 'expression'"
            )
            raise _SpecProblem(f"transform_config.{key}", message)
        variables, check_field = self.scope_types(direction)
        try:
            formula = compile_formula(source, variables, check_field)
        except ExpressionError as exc:
            raise _SpecProblem(f"transform_config.{key}", exc.message, exc.position) from exc
        if self.check and not compatible(target_type, formula.result_type):
            raise _SpecProblem(
                f"transform_config.{key}",
                f"the formula gives {formula.result_type}, but {target} takes {target_type}",
                0,
            )
        return formula

    def scope_types(self, direction: Direction) -> tuple[dict[str, str] | None, Callable[[str, int], str] | None]:
        """The names a formula may read, with their types: the source record's top-level fields and ``value``."""
        if not self.check:
            return None, None
        if direction == "push":
            names = {name: info.type for name, info in canonical_fields(self.entity).items()}
            names["value"] = ANY

            def canonical_path(path: str, position: int) -> str:
                kind = canonical_type(self.entity, path)
                if kind is None:
                    raise ExpressionError(f"{self.entity} have no field {path!r}", position)
                return kind

            return names, canonical_path
        if self.catalog.external is None:
            return None, None
        external = self.catalog.external
        names = {path: kind for path, kind in external.items() if "." not in path and "[" not in path}
        names["value"] = ANY

        def external_path(path: str, position: int) -> str:
            if path not in external:
                raise ExpressionError(f"the provider's {self.entity} have no field {path!r}", position)
            return external[path]

        return names, external_path


class _SpecProblem(Exception):
    def __init__(self, field_name: str, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message
        self.position = position


def _lookup_key(value: Any, fold: bool) -> str:
    text = as_text(to_value(value)) if not isinstance(value, str) else value
    return text.casefold() if fold else text


def _formula_runner(formula: Formula) -> Callable[[Any, Mapping[str, Any]], Any]:
    def run(value: Any, record: Mapping[str, Any]) -> Any:
        variables = {**record, "value": value}
        return formula.evaluate(Scope(variables, lambda path: get_path(record, path)))

    return run
