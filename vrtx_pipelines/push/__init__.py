"""Pushes: the outbox, sending to the provider, and the two-way rules that settle conflicts first."""
