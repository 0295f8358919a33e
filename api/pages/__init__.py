"""The marketplace pages: server-rendered, white-labelled, embeddable in the CRM (see docs/marketplace.md)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api.pages import mappings_page, marketplace, settings_page, sync_page
from api.pages.common import abilities, sections
from api.pages.marks import mark
from api.pages.render import ENVIRONMENT, install_page_handlers
from api.pages.session import SessionStarted, api_router

STATIC = Path(__file__).resolve().parent.parent / "static"
# Every template can ask what an integration can do (a connect-only one shows no sync or mapping parts).
ENVIRONMENT.globals.update(abilities=abilities, sections=sections, mark=mark)

router = APIRouter()
router.include_router(api_router)
router.include_router(settings_page.router)
router.include_router(sync_page.router)
router.include_router(mappings_page.router)
router.include_router(marketplace.router)


def install_pages(app: FastAPI) -> None:
    """Mount the pages, their static files and their HTML error handler on the API app."""
    install_page_handlers(app)

    @app.exception_handler(SessionStarted)
    async def _session_started(_request: Request, exc: SessionStarted) -> Response:
        return exc.response

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)
