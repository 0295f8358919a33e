"""Google's JSON error shape (https://cloud.google.com/apis/design/errors#http_mapping), as every Google API
answers it: ``{"error": {"code", "message", "errors": [{"message", "domain", "reason"}], "status"}}``."""

from __future__ import annotations

from typing import Any

_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ALREADY_EXISTS", 410: "FAILED_PRECONDITION", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED",
           500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip


class GoogleError(Exception):
    def __init__(self, code: int, message: str, reason: str, domain: str = "global") -> None:
        super().__init__(message)
        self.code, self.message, self.reason, self.domain = code, message, reason, domain

    @classmethod
    def not_found(cls) -> GoogleError:
        return cls(404, "Requested entity was not found.", "notFound")

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}],
                "status": _STATUS.get(self.code, "UNKNOWN"),
            }
        }


UNAUTHENTICATED = GoogleError(
    401,
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    "authError",
)
INSUFFICIENT_SCOPE = GoogleError(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
