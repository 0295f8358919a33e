"""The error answers routes declare in the OpenAPI document, all in the one JSON shape ``api.errors`` sends.

Each router declares what all its routes answer (``INTEGRATION_ROUTE``: the tenant's token, an integration named
in the path, parameters to validate), a route with a JSON body adds ``JSON_BODY``, and a route adds what its own
logic answers (``errors(409)``). tests/contract/test_openapi_contract.py holds the document to the truth: a status
a route answers and does not declare fails the build.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(description="Stable: branch on it (`validation_failed`, `not_connected`, ...).")
    message: str = Field(description="For a person.")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field problems (`field`, `message`) or the provider's status and code."
    )


class ErrorOut(BaseModel):
    error: ErrorBody


DESCRIPTIONS = {
    400: "The request cannot be used: a body that is not acceptable JSON (`invalid_json`), or a refusal that "
    "says why in its code",
    401: "No valid API token (`unauthorized`)",
    404: "No such integration, connection or row (`integration_not_found`, `not_connected`, `not_found`, ...)",
    409: "The request conflicts with the current state (its code says which)",
    413: "The body is larger than the API takes (`payload_too_large`)",
    422: "A parameter or the body does not validate (`validation_failed`, with `details`)",
    502: "The provider answered with an error (`provider_*` codes)",
    503: "The provider or the orchestrator is not available right now; trying again later may work",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for these statuses, each with the JSON error model."""
    return {status: {"model": ErrorOut, "description": DESCRIPTIONS[status]} for status in statuses}


TENANT_ROUTE = errors(401, 422)  # behind the tenant's token, with parameters to validate
INTEGRATION_ROUTE = errors(401, 404, 422)  # ... and naming an integration ({slug}) or a connection
JSON_BODY = errors(400, 413)  # taking a JSON body (api.json_bodies)
