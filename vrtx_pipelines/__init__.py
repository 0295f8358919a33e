"""VRTX Integrations: the provider-agnostic core (data, vault, registry, flows, Dagster definitions)."""

__version__ = "0.1.0"
