"""Canonical VRTX records: the models every provider maps to, and their store with a change cursor."""
