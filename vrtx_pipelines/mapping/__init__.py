"""Per-tenant field mappings: VRTX canonical fields <-> provider record fields, applied to pulls and pushes.

The rules (docs/field-mappings.md says the same for users):

- A mapping belongs to a connection and a canonical entity (the pull entity names: contacts, invoices, payments,
  products, tax_rates, accounts). ``vrtx_field`` is a top-level canonical field or ``custom_fields.<name>``;
  ``external_field`` is a field of the provider's record, dotted when nested (Xero: ``Contact.Name``). Provider
  fields are checked against the provider's published list (``PullSpec.record_fields``) when it has one, else for
  syntax only.
- Pull (provider -> VRTX): after the provider's mapper made the canonical record, every active mapping with
  direction ``both``/``pull`` sets ``vrtx_field`` from the raw provider row. Push (VRTX -> provider): every mapping
  with direction ``both``/``push`` sets ``external_field`` in what is sent (``PushRequest.overrides``).
- ``direct`` copies (types must agree: date and datetime convert, text and numbers do not). ``lookup`` uses
  ``{"table": {from: to}, "default"?, "case_insensitive"?}``; ``formula`` uses ``{"expression": ...}`` in the
  safe language of ``expressions``. Tables and formulas are written in the mapping's direction; a two-way
  mapping's read VRTX -> provider, and its pull side uses ``inverse`` / ``inverse_table`` (or the table inverted).
- A lookup that finds nothing and has no default yields no value: the field keeps what the provider's mapper (pull)
  or push mapping made. A pull mapping that fails on a record leaves that field unmapped (logged once, the record
  still syncs); a push mapping that fails fails the push with the mapping named (nothing half-mapped is sent).
- Replacing an entity's mappings writes a version (who, when, the whole set); ``rederive`` re-applies the current
  pull mappings to the records in the warehouse without calling the provider.
"""

from vrtx_pipelines.mapping.engine import (
    EntityMappings,
    FieldMappingSpec,
    InvalidMappings,
    MappingProblem,
    compile_mappings,
)
from vrtx_pipelines.mapping.store import MappingFailed, mapped_mappers, pull_mapper, push_overrides

__all__ = [
    "EntityMappings",
    "FieldMappingSpec",
    "InvalidMappings",
    "MappingFailed",
    "MappingProblem",
    "compile_mappings",
    "mapped_mappers",
    "pull_mapper",
    "push_overrides",
]
