"""Connecting a tenant to a provider: credentials and OAuth, connection status and settings."""
