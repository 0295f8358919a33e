"""The Microsoft identity platform's and Microsoft Graph's error bodies.

Identity platform (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes): ``{"error",
"error_description": "AADSTS<n>: <text>\\r\\nTrace ID: ...\\r\\nCorrelation ID: ...\\r\\nTimestamp: ...",
"error_codes": [n], "timestamp", "trace_id", "correlation_id", "error_uri"}``, plus ``suberror`` for some (65001:
``consent_required``). Graph (https://learn.microsoft.com/en-us/graph/errors): ``{"error": {"code", "message",
"innerError": {"date", "request-id", "client-request-id"}}}``.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

# What the kit's OAuth errors are at Microsoft, when the server raised them without an AADSTS code of its own.
AADSTS_BY_ERROR = {
    "invalid_grant": (
        70008,
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive "
        "authorization request for this user and resource.",
    ),
    "invalid_client": (
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        "not the client secret ID.",
    ),
    "unsupported_grant_type": (70003, "The app requested an unsupported grant type."),
    "invalid_scope": (70011, "The provided value for the input parameter 'scope' is not valid."),
    "unauthorized_client": (700016, "The application was not found in the directory."),
    "invalid_request": (900144, "The request body must contain the following parameter: 'grant_type'."),
}
# ...and the kit's descriptions that have a code of their own there.
AADSTS_BY_DESCRIPTION = {
    "invalid code_verifier": (
        501481,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    ),
}
_CODED = re.compile(r"^AADSTS(\d+): ")
SUBERRORS = {65001: "consent_required"}


def aadsts(code: int, text: str) -> str:
    """An error description as the identity platform starts one."""
    return f"AADSTS{code}: {text}"


def identity_error_body(error: str, description: str, now: float) -> dict[str, Any]:
    """The token endpoint's error body for ``error``; ``description`` is used when it carries an AADSTS code."""
    found = _CODED.match(description)
    if found is not None:
        code, text = int(found.group(1)), description[found.end() :]
    else:
        fallback = AADSTS_BY_ERROR.get(error, (90014, "A required field is missing from the request."))
        code, text = AADSTS_BY_DESCRIPTION.get(description, fallback)
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    timestamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body: dict[str, Any] = {
        "error": error,
        "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\n"
        f"Timestamp: {timestamp}",
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    if code in SUBERRORS:
        body["suberror"] = SUBERRORS[code]
    return body


class GraphError(Exception):
    """A Graph error answer: HTTP ``status``, Graph's ``code`` and ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self, now: float, client_request_id: str | None = None) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        inner = {
            "date": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id,
            "client-request-id": client_request_id or request_id,
        }
        return {"error": {"code": self.code, "message": self.message, "innerError": inner}}


TOKEN_EMPTY = GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
TOKEN_EXPIRED = GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
TOKEN_INVALID = GraphError(401, "InvalidAuthenticationToken", "Access token validation failure.")
INSUFFICIENT_PRIVILEGES = GraphError(
    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
)


MAX_REQUEST = (
    4 * 1024 * 1024
)  # Graph's limit on a JSON request body (https://learn.microsoft.com/en-us/graph/api/user-post-messages)
TOO_LARGE = GraphError(413, "RequestEntityTooLarge", "The request body is larger than 4 MB.")
UNREADABLE = GraphError(400, "RequestBodyRead", "Unable to read JSON request payload. Please ensure Content-Type "
                        "header is set and payload is of valid JSON format.")  # fmt: skip
