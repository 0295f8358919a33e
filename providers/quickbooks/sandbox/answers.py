"""QuickBooks' answers as the sandbox sends them: ``Fault`` bodies, the throttling 429, the lower-case 401.

Shapes per the shared reference (``provider-apis.md`` section 2, "Errors"): ``{"Fault": {"Error": [{"Message",
"Detail", "code", "element"?}], "type"}, "time"}``; python-quickbooks reads ``code`` into its exception classes
(1-499 authorization, 600-1999 general with 610 not found, 2000-4999 validation, 10000+ severe). Codes whose
words were not found in the reference are marked "guess".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from providers.quickbooks.sandbox.records import answer_time
from providers.sandbox_kit.metering import Refusal
from providers.sandbox_kit.wire import json_response

JSON = "application/json;charset=UTF-8"
STALE = (
    "5010",
    "Stale Object Error",
    "You and {user} were working on this at the same time. {user} finished before you did, so your work was not saved.",
)
NOT_FOUND = (
    "610",
    "Object Not Found",
    "Something you're trying to use has been made inactive. Check the fields "
    "with accounts, customers, items, vendors or employees.",
)
SERVER_ERROR = (
    "10000",
    "An application error has occurred while processing your request",
    "System Failure Error: An unexpected error occurred while accessing or saving your data.",
)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class Fault(Exception):
    """A refusal in QuickBooks' words, raised anywhere in a request and answered as its ``Fault`` body."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str = "",
        *,
        status: int = 400,
        kind: str = "ValidationFault",
        element: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.detail, self.status, self.kind, self.element = (
            code,
            message,
            detail,
            status,
            kind,
            element,
        )

    def body(self, now_ms: int) -> dict[str, Any]:
        error: dict[str, Any] = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element is not None:
            error["element"] = self.element
        return {"Fault": {"Error": [error], "type": self.kind}, "time": answer_time(now_ms)}

    def answer(self, now_ms: int) -> Answer:
        return Answer(self.status, self.body(now_ms))


def invalid(message: str, detail: str = "", element: str | None = None, code: str = "2020") -> Fault:
    """A request QuickBooks refuses as invalid (2020 Required param missing, 2500 Invalid Reference Id, ...)."""
    return Fault(code, message, detail, element=element)


def stale(user: str = "another user") -> Fault:
    code, message, detail = STALE
    return Fault(code, message, f"{message} : {detail.format(user=user)}")


def not_found(element: str | None = None) -> Fault:
    code, message, detail = NOT_FOUND
    return Fault(code, message, f"{message} : {detail}", element=element)


def fault_response(fault: Fault, now_ms: int, headers: dict[str, str] | None = None) -> Response:
    return json_response(fault.status, fault.body(now_ms), headers, JSON)


def unauthorized(request: Request, now_ms: int, insufficient_scope: bool = False) -> Response:
    """A 401 as a real sandbox probe recorded it: a lower-case ``fault`` envelope (reference "Errors")."""
    detail = (
        "Token is not authorized for this scope"
        if insufficient_scope
        else ("Token expired or is not a valid bearer token")
    )
    body: dict[str, Any] = {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": detail,
                    "code": "3200",
                }
            ],
            "type": "AUTHENTICATION",
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": now_ms,
        "status": None,
        "cdcresponse": [],
    }
    return json_response(401, body, {"WWW-Authenticate": 'Bearer realm="Intuit"'}, JSON)


def forbidden(now_ms: int) -> Response:
    """A token that does not reach the realm in the path."""
    fault = Fault(
        "3100",
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        "",
        status=403,
        kind="SERVICE",
    )
    return fault_response(fault, now_ms)


def throttled(now_ms: int, refusal: Refusal) -> Response:
    """500 a minute per realm or 10 in flight: HTTP 429, Fault 003001 (reference "Rate limits"). QuickBooks
    documents no Retry-After, so none is sent."""
    fault = Fault(
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.",
        status=429,
        kind="SERVICE",
    )
    return fault_response(fault, now_ms)


def server_error(now_ms: int, status: int) -> Response:
    code, message, detail = SERVER_ERROR
    return fault_response(Fault(code, message, detail, status=status, kind="SystemFault"), now_ms)
