"""Clicking "Allow" on a provider sandbox's consent page, for `vrtx connect` and `vrtx dev`.

Only sandboxes are automated: a real provider's consent page needs a person. The flow is the real one end to
end (authorise URL with state and PKCE, consent form, redirect to our callback with the code), so what gets
stored is exactly what a browser-driven connection stores.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx

from providers.base import Provider
from vrtx_pipelines.connect.context import ConnectionContext
from vrtx_pipelines.connect.oauth import CallbackResult, complete_authorization, start_authorization
from vrtx_pipelines.errors import IntegrationError


class ConsentFailed(IntegrationError):
    code = "consent_failed"


class _ConsentForm(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []
        self.organisations: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and values.get("method", "").lower() == "post" and self.action is None:
            self.action = values.get("action")
        elif tag == "input" and values.get("name"):
            if values.get("type") == "checkbox" and values["name"] == "tenant_id":
                self.organisations.append(values.get("value", ""))
            elif values.get("type") in ("hidden", None, "text"):
                self.fields.append((values["name"], values.get("value", "")))


def consent_in_sandbox(
    ctx: ConnectionContext, tenant_id: str, provider: Provider, organisations: list[str] | None = None
) -> CallbackResult:
    """Authorise ``provider`` for ``tenant_id`` through its sandbox's consent page, granting ``organisations``
    (default: every organisation the sandbox's demo user has)."""
    url = start_authorization(ctx, tenant_id, provider)
    ctx.session.commit()
    with httpx.Client(timeout=ctx.settings.http_timeout_s, follow_redirects=False) as client:
        page = client.get(url)
        if page.status_code != 200:
            raise ConsentFailed(f"the {provider.name} sandbox refused the authorisation request ({page.status_code})")
        form = _ConsentForm()
        form.feed(page.text)
        if not form.action:
            raise ConsentFailed(f"no consent form on the {provider.name} sandbox's page")
        chosen = organisations if organisations is not None else form.organisations
        data = [*form.fields, *(("tenant_id", org) for org in chosen), ("decision", "allow")]
        body = urlencode(data)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = client.post(urljoin(str(page.url), form.action), content=body, headers=headers)
    location = answer.headers.get("location")
    if answer.status_code not in (302, 303) or not location:
        raise ConsentFailed(f"the {provider.name} sandbox did not redirect back after consent ({answer.status_code})")
    params = dict(parse_qsl(urlsplit(location).query))
    result = complete_authorization(ctx, provider, params)
    ctx.session.commit()
    return result
