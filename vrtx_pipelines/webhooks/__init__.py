"""Inbound webhooks: configuration, receiving, dispatch to targeted pulls, and the fast path."""
