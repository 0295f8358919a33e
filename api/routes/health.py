"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import SessionDep
from vrtx_pipelines import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Health check (the database answers)")
def healthz(session: SessionDep) -> JSONResponse:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable", "version": __version__}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok", "version": __version__})
