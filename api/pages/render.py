"""Rendering pages: the Jinja environment, the headers every page carries, and errors shown as pages."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.pages.config import pages_settings
from api.pages.theme import Brand
from vrtx_pipelines.config import Settings

log = logging.getLogger("vrtx.pages")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """'2m ago', '3h ago', 'never': how the marketplace says when something last happened."""
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now" if seconds < 10 else f"{seconds}s ago"


def until(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "not scheduled"
    seconds = int((moment - (now or datetime.now(UTC))).total_seconds())
    if seconds <= 60:
        return "within a minute"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return "soon"


def stamp(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _say(brand: Brand | None) -> Callable[[str], str]:
    """Catalog text names VRTX; a tenant that hides VRTX sees its own name there instead."""
    if brand is None or brand.show_vrtx:
        return lambda text: text
    return lambda text: text.replace("VRTX", brand.name)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(ago=ago, until=until, stamp=stamp)
    return env


ENVIRONMENT = _environment()


def security_headers(settings: Settings) -> dict[str, str]:
    # frame-ancestors instead of X-Frame-Options: the CRM embeds these pages in an iframe.
    ancestors = pages_settings().frame_ancestors_value(settings.is_production)
    policy = (
        "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
        f"object-src 'none'; base-uri 'none'; frame-ancestors {ancestors}"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def render(
    request: Request,
    template: str,
    *,
    brand: Brand | None = None,
    csrf_token: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    html = ENVIRONMENT.get_template(template).render(
        brand=brand,
        brand_name=brand.name if brand else "Integrations",
        logo_url=brand.logo_url if brand else None,
        show_vrtx=brand.show_vrtx if brand else True,
        say=_say(brand),
        csrf_token=csrf_token,
        path=request.url.path,
        **context,
    )
    settings: Settings = request.app.state.settings
    return HTMLResponse(html, status_code=status_code, headers=security_headers(settings))


class PageError(Exception):
    """An error a person reads on a page (not JSON): what went wrong and what to do."""

    def __init__(self, status_code: int, title: str, message: str, brand: Brand | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message
        self.brand = brand


def install_page_handlers(app: FastAPI) -> None:
    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return render(
            request, "error.html", brand=exc.brand, status_code=exc.status_code, title=exc.title, message=exc.message
        )
