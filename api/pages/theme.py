"""White label: a tenant's branding (name, logo, colours, whether VRTX shows) validated, and turned into CSS
variables whose text colours always keep a contrast of at least 4.5:1, whatever colours the tenant picks."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vrtx_pipelines.db.models import Tenant

HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
DATA_LOGO = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,([A-Za-z0-9+/=]+)$")
# SVG is left out on purpose: an SVG can carry script, and the logo is the tenant's input shown to its admins.
MAX_LOGO_BYTES = 64 * 1024
MAX_LOGO_URL = 2000
MIN_CONTRAST = 4.5

DEFAULTS = {"primary": "#1d4ed8", "accent": "#0f766e", "background": "#ffffff", "text": "#1f2937"}


def _normalise_hex(value: str) -> str:
    if not HEX_COLOUR.match(value):
        raise ValueError("a colour is a hex value such as #1d4ed8 or #fff")
    value = value.lower()
    if len(value) == 4:
        value = "#" + "".join(c * 2 for c in value[1:])
    return value


class BrandColours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    primary: str | None = Field(None, description="Buttons and links, as #rrggbb or #rgb.")
    accent: str | None = Field(None, description="Highlights such as the connected badge.")
    background: str | None = Field(None, description="Page background.")
    text: str | None = Field(None, description="Body text; darkened or lightened if it would be hard to read.")

    @field_validator("primary", "accent", "background", "text")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        return None if value is None else _normalise_hex(value)


class Branding(BaseModel):
    """What ``PUT /api/v1/tenant/branding`` takes and ``tenants.branding`` stores."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100, description="Shown instead of the tenant's name.")
    logo_url: str | None = Field(
        None,
        description="An https URL, or a data: URL of a PNG, JPEG, GIF or WebP image "
        f"up to {MAX_LOGO_BYTES // 1024} KB.",
    )
    colours: BrandColours = Field(default_factory=BrandColours)
    hide_vrtx_branding: bool = Field(False, description="Leave out every mention of VRTX on the pages.")

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("logo_url")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith("data:"):
            match = DATA_LOGO.match(value)
            if match is None:
                raise ValueError("a data: logo must be a base64 PNG, JPEG, GIF or WebP image")
            try:
                size = len(base64.b64decode(match.group(2), validate=True))
            except binascii.Error as exc:
                raise ValueError("the data: logo is not valid base64") from exc
            if size > MAX_LOGO_BYTES:
                raise ValueError(f"the logo is {size} bytes; at most {MAX_LOGO_BYTES} are accepted")
            return value
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.netloc or len(value) > MAX_LOGO_URL:
            raise ValueError(f"a logo URL must be an https:// URL of at most {MAX_LOGO_URL} characters")
        return value


def branding_of(tenant: Tenant) -> Branding:
    """The tenant's stored branding; anything stored that no longer validates falls back to the defaults."""
    try:
        return Branding.model_validate(tenant.branding or {})
    except ValueError:
        return Branding()


def display_name(tenant: Tenant, branding: Branding) -> str:
    return branding.name or tenant.name


@dataclass(frozen=True)
class Brand:
    """What a page shows of the tenant, read once per request (pages render after the database session closed)."""

    name: str
    logo_url: str | None
    show_vrtx: bool
    css: str


def brand_of(tenant: Tenant) -> Brand:
    branding = branding_of(tenant)
    return Brand(
        name=display_name(tenant, branding),
        logo_url=branding.logo_url,
        show_vrtx=not branding.hide_vrtx_branding,
        css=theme_css(branding),
    )


# --- colour maths (WCAG 2.x) ------------------------------------------------------------------------


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def readable_on(background: str) -> str:
    """White or near-black, whichever reads better on ``background``."""
    return max(("#ffffff", "#111827"), key=lambda fg: contrast(fg, background))


def ensure_contrast(foreground: str, background: str, minimum: float = MIN_CONTRAST) -> str:
    """``foreground`` moved towards black or white (whichever the background needs) until it reads at ``minimum``."""
    if contrast(foreground, background) >= minimum:
        return foreground
    target = (0.0, 0.0, 0.0) if luminance(background) > 0.18 else (255.0, 255.0, 255.0)
    start = _rgb(foreground)
    for step in range(1, 21):
        t = step / 20
        mixed = _hex(tuple(s + (e - s) * t for s, e in zip(start, target, strict=True)))  # type: ignore[arg-type]
        if contrast(mixed, background) >= minimum:
            return mixed
    return readable_on(background)


def css_variables(branding: Branding) -> dict[str, str]:
    colours = {**DEFAULTS, **branding.colours.model_dump(exclude_none=True)}
    background = colours["background"]
    # A button's own colour may be anything; its label, and the brand colour used as text, must stay readable.
    primary_for_buttons = ensure_contrast(colours["primary"], background, 3.0)
    return {
        "--bg": background,
        "--text": ensure_contrast(colours["text"], background, 7.0),
        "--muted": ensure_contrast("#4b5563", background),
        "--brand": primary_for_buttons,
        "--brand-contrast": readable_on(primary_for_buttons),
        "--brand-text": ensure_contrast(colours["primary"], background),
        "--accent": ensure_contrast(colours["accent"], background),
        "--surface": _mix(background, colours["text"], 0.04),
        "--border": ensure_contrast(_mix(background, colours["text"], 0.35), background, 3.0),
    }


def _mix(base: str, other: str, amount: float) -> str:
    return _hex(tuple(b + (o - b) * amount for b, o in zip(_rgb(base), _rgb(other), strict=True)))  # type: ignore[arg-type]


def theme_css(branding: Branding) -> str:
    lines = "".join(f"  {name}: {value};\n" for name, value in css_variables(branding).items())
    return f":root {{\n{lines}}}\n"


def branding_out(tenant: Tenant) -> dict[str, Any]:
    branding = branding_of(tenant)
    return {**branding.model_dump(mode="json"), "display_name": display_name(tenant, branding)}
