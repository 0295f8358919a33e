"""Every error leaves the API as ``{"error": {"code": ..., "message": ..., "details": [...]}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from providers.errors import ProviderAuthError, ProviderError, ProviderRateLimited
from vrtx_pipelines.errors import IntegrationError

log = logging.getLogger("vrtx.api")


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _provider_status(exc: ProviderError) -> int:
    if isinstance(exc, ProviderAuthError):
        return 400
    if isinstance(exc, ProviderRateLimited):
        return 503
    return 502


def integration_error_response(exc: IntegrationError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    return error_response(exc.http_status, exc.code, exc.message, exc.details, headers)


def unexpected_error_response(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(500, "internal_error", "something went wrong on our side; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IntegrationError)
    async def _integration_error(_request: Request, exc: IntegrationError) -> JSONResponse:
        return integration_error_response(exc)

    @app.exception_handler(ProviderError)
    async def _provider_error(_request: Request, exc: ProviderError) -> JSONResponse:
        headers = None
        if isinstance(exc, ProviderRateLimited) and exc.retry_after is not None:
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
        details = [{"provider_status": exc.status, "provider_code": exc.provider_code}] if exc.status else None
        return error_response(_provider_status(exc), exc.code, exc.message, details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "(body)",
                "message": error.get("msg", "invalid"),
            }
            for error in exc.errors()
        ]
        return error_response(422, "validation_failed", "the request is not valid", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error_response(request, exc)
