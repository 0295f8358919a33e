"""Each integration's mark in the marketplace: a small inline SVG, its initials or short wordmark in white or
near-black on its brand colour. Drawn from text, not a copied logo file, and independent of the emoji font the
catalog's ``icon`` needs (without one, emoji render as empty boxes): the pages look the same everywhere."""

from __future__ import annotations

import colorsys
import hashlib
from functools import lru_cache
from html import escape

from markupsafe import Markup

from api.pages.theme import readable_on
from providers.base import Provider

# slug -> (text, brand colour). The colours are each brand's published primary; the text is ours.
MARKS: dict[str, tuple[str, str]] = {
    "xero": ("xero", "#13b5ea"),
    "quickbooks": ("qb", "#2ca01c"),
    "stripe": ("S", "#635bff"),
    "google_workspace": ("G", "#4285f4"),
    "microsoft365": ("365", "#d83b01"),
    "slack": ("S", "#4a154b"),
    "mailchimp": ("M", "#ffe01b"),
    "hubspot": ("HS", "#ff7a59"),
    "calendly": ("C", "#006bff"),
    "twilio": ("T", "#f22f46"),
    "docusign": ("DS", "#4c00ff"),
    "salesforce": ("SF", "#00a1e0"),
    "netsuite": ("NS", "#125580"),
    "sage": ("S", "#00d639"),
    "freshbooks": ("FB", "#0075dd"),
    "zapier": ("Z", "#ff4f00"),
    "make": ("M", "#6d00cc"),
}
# Text size in the 40-unit box by the number of characters, so a wordmark fits as well as an initial.
FONT_SIZE = {1: 20, 2: 16, 3: 13, 4: 11}


def fallback(provider: Provider) -> tuple[str, str]:
    """A provider not listed above (a new folder, a plug-in package) gets its initial on a colour of its own,
    derived from its slug, until it is given its mark."""
    hue = int(hashlib.sha256(provider.slug.encode()).hexdigest()[:4], 16) / 0xFFFF
    red, green, blue = colorsys.hls_to_rgb(hue, 0.38, 0.55)
    return provider.name[:1].upper() or "?", "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (red, green, blue)))


@lru_cache(maxsize=128)
def _svg(text: str, colour: str, size: int) -> str:
    font = FONT_SIZE.get(len(text), 10)
    return (
        f'<svg class="mark" width="{size}" height="{size}" viewBox="0 0 40 40" aria-hidden="true" focusable="false">'
        f'<rect width="40" height="40" rx="9" fill="{colour}"/>'
        f'<text x="20" y="20" dy="0.35em" text-anchor="middle" font-family="system-ui, -apple-system, Segoe UI, '
        f'Roboto, Helvetica, Arial, sans-serif" font-weight="700" font-size="{font}" fill="{readable_on(colour)}">'
        f"{escape(text)}</text></svg>"
    )


def mark(provider: Provider, size: int = 40) -> Markup:
    """The provider's mark as inline SVG (decorative: its name is always written beside it)."""
    text, colour = MARKS.get(provider.slug) or fallback(provider)
    return Markup(_svg(text, colour, size))  # noqa: S704 -- built here from escaped text and a known colour
