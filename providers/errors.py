"""Errors a provider raises; the core maps them to stable API error codes."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed. ``message`` is safe to show: it never carries a credential."""

    code = "provider_error"

    def __init__(self, message: str, *, status: int | None = None, provider_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.provider_code = provider_code


class ProviderAuthError(ProviderError):
    """The provider rejected the credentials (401/403 or its equivalent)."""

    code = "provider_auth_failed"


class ProviderRejected(ProviderError):
    """The provider refused the request as invalid (400/404/409/422 ...): retrying the same request cannot help.
    ``message`` is the provider's own words; ``details`` its field-level messages when it gives them."""

    code = "provider_rejected"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider_code: str | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message, status=status, provider_code=provider_code)
        self.details = details or []


class ProviderConflict(ProviderRejected):
    """The write named a version of the record the provider no longer holds (QuickBooks' stale SyncToken): the
    record changed there since it was read. The core fetches it, re-plans the push and retries once."""

    code = "provider_conflict"


class ProviderUnavailable(ProviderError):
    """The provider could not be reached, timed out, or answered with a server error."""

    code = "provider_unavailable"


class ProviderRateLimited(ProviderError):
    """The provider answered 429; ``retry_after`` is what it asked us to wait, in seconds."""

    code = "provider_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
