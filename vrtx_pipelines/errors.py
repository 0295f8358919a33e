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


class ConnectionGone(Conflict):
    """The connection was disconnected while a sync of it ran."""

    code = "connection_disconnected"


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


class MissingIdempotencyKey(IntegrationError):
    code = "idempotency_key_required"


class IdempotencyKeyReused(Conflict):
    """The same Idempotency-Key came back with a different request."""

    code = "idempotency_key_reused"


class PushNotSupported(Conflict):
    """The integration takes no pushes (yet)."""

    code = "push_not_supported"


class UnknownPushEntity(NotFound):
    code = "unknown_push_entity"


class ConnectionUnusable(Conflict):
    """The connection exists but cannot be used until the tenant acts (expired, ...)."""

    code = "connection_unusable"


class OrchestratorUnavailable(IntegrationError):
    """Dagster (its webserver, for launching runs) cannot be reached right now; trying again later may work."""

    code = "orchestrator_unavailable"
    http_status = 503


class ConflictNotFound(NotFound):
    code = "conflict_not_found"


class ConflictAlreadyResolved(Conflict):
    """A sync conflict that was settled already (by a person, or superseded by a newer push)."""

    code = "conflict_already_resolved"
