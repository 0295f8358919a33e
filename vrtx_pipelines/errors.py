"""Typed errors with stable codes; the API turns them into JSON error bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class IntegrationError(Exception):
    """Base error. ``code`` is stable (clients branch on it); ``message`` is for a person."""

    code = "integration_error"
    http_status = 400

    def __init__(self, message: str, *, details: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])


class ConfigurationError(IntegrationError):
    code = "configuration_error"
    http_status = 500


class NotFound(IntegrationError):
    code = "not_found"
    http_status = 404


class UnknownIntegration(NotFound):
    code = "integration_not_found"


class NotConnected(NotFound):
    code = "not_connected"


class Conflict(IntegrationError):
    code = "conflict"
    http_status = 409


class IntegrationNotAvailable(Conflict):
    """The integration is in the catalog but this flow is not built for it yet."""

    code = "integration_not_available"


class OAuthRequired(Conflict):
    """The integration connects through OAuth, not with submitted credentials."""

    code = "oauth_required"


class ValidationFailed(IntegrationError):
    code = "validation_failed"
    http_status = 422


class TenantExists(Conflict):
    code = "tenant_exists"
