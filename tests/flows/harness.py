"""What a provider hands the generic flow tests: its sandbox with known data, how a tenant connects to it, and
the records it pushes. One ``Flows`` per provider (``FLOWS``); the test bodies in this package are parametrised
over every provider whose ``implemented`` lists the flow's capability, and a provider that implements one without
a ``Flows`` fails ``test_every_implemented_flow_has_fixtures``.

The sandbox is the kit's (``providers.sandbox_kit.sandbox.Sandbox``): ``count``/``touch``/``create`` for data,
``subscribe_webhooks`` and its ``webhooks`` sender for its signed deliveries (``Flows`` adapts sandboxes whose
announcements go another way), and the fault knobs on its app.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from fastapi.testclient import TestClient

from providers.base import AuthType, Provider
from providers.sandbox_kit.faults import FaultKnobs, knobs_of
from providers.sandbox_kit.serve import load_sandbox
from providers.sandbox_kit.webhooks import WebhookSender
from tests.helpers import bearer
from vrtx_pipelines.connect.consent import _ConsentForm
from vrtx_pipelines.registry import get_provider


@dataclass
class Started:
    """A fresh sandbox: its app (to serve), its data (None for providers whose sandbox holds none yet) and the
    provider-side tenant a connection reaches."""

    app: Any
    sandbox: Any = None
    tenant: str | None = None

    @property
    def knobs(self) -> FaultKnobs:
        return knobs_of(self.app)


@dataclass
class Pending:
    """A connection under way: what finishing it sends (an API-key form, or the OAuth callback's query)."""

    credentials: Mapping[str, str] | None = None
    callback: str | None = None


@dataclass(frozen=True)
class PushCase:
    """One pushed entity: the record created, then the same record updated (``changes`` names the canonical field
    the update changes), read back in the pull entity ``pulled_as``. Cases are pushed in order, so a later one
    may name an earlier one's VRTX id (an invoice's contact)."""

    pulled_as: str
    create: dict[str, Any]
    update: dict[str, Any] | None = None
    changes: str = ""


@dataclass
class Flows:
    """The fixtures of one provider. Entities are the pull entities; ``sandbox_entities`` renames those the
    sandbox keeps under its provider's own name (Xero's items are the products pull)."""

    slug: str
    rejected_credentials: Mapping[str, str] = field(default_factory=dict)  # well-formed, refused by the provider
    oauth_app: Mapping[str, str] = field(default_factory=dict)  # VRTX_OAUTH_CLIENTS entry for the sandbox's app
    sandbox_entities: Mapping[str, str] = field(default_factory=dict)
    incremental: tuple[str, ...] = ()  # entities whose pulls are incremental
    paged: tuple[str, int] = ("", 0)  # an entity and its page size: a 5xx on page 2 needs more than one page
    pushes: Mapping[str, PushCase] = field(default_factory=dict)  # push entity -> its case, in push order
    push_settings: Mapping[str, Any] = field(default_factory=dict)  # connection settings the pushes need
    webhook_entity: str = ""  # a pull entity whose changes the provider announces by webhook
    webhook_names_record: bool = True  # whether a notification names the changed record, or only its entity

    @property
    def provider(self) -> Provider:
        return get_provider(self.slug)

    @property
    def oauth(self) -> bool:
        """Whether a tenant connects through the provider's OAuth consent (else an API key)."""
        return self.provider.auth.oauth2 is not None and self.provider.auth.type is AuthType.OAUTH2

    def start(self) -> Started:
        return Started(load_sandbox(self.provider))

    def subscribe_webhooks(self, started: Started, url: str, secret: str) -> None:
        """Have the sandbox announce ``started.tenant``'s changes of ``webhook_entity`` to ``url`` with ``secret``."""
        started.sandbox.subscribe_webhooks(url, secret, [started.tenant])

    def webhook_sender(self, started: Started) -> WebhookSender:
        """The sandbox's sender of those announcements."""
        sender: WebhookSender = started.sandbox.webhooks
        return sender

    def sandbox_entity(self, entity: str) -> str:
        return self.sandbox_entities.get(entity, entity)

    def pull_entities(self) -> tuple[str, ...]:
        pulls = self.provider.pulls
        return pulls.entities if pulls is not None else ()

    # --- connect ------------------------------------------------------------------------------------------

    def begin_connect(self, api: TestClient, token: str, *, accept: bool = True) -> Pending:
        """Everything before the platform calls the provider with the tenant's grant or key."""
        if not self.oauth:  # Stripe: a key, or OAuth (own tests)
            good = dict(self.provider.sandbox_credentials)
            return Pending(credentials=good if accept else dict(self.rejected_credentials))
        answer = api.get(f"/api/v1/integrations/{self.slug}/oauth/url", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        return Pending(callback=consent(str(answer.json()["url"]), accept=accept))

    def finish_connect(self, api: TestClient, token: str, pending: Pending) -> httpx.Response:
        if pending.credentials is not None:
            posted: httpx.Response = api.post(
                f"/api/v1/integrations/{self.slug}/connect",
                json={"credentials": dict(pending.credentials)},
                headers=bearer(token),
            )
            return posted
        assert pending.callback is not None
        parts = urlsplit(pending.callback)
        answer: httpx.Response = api.get(f"{parts.path}?{parts.query}")
        return answer

    def connect(self, api: TestClient, token: str) -> None:
        answer = self.finish_connect(api, token, self.begin_connect(api, token))
        assert answer.status_code in (200, 201), answer.text


def consent(url: str, *, accept: bool = True) -> str:
    """The user on a sandbox's consent page (the kit's format): every tenant offered, allow or deny; returns the
    redirect back to the platform's callback."""
    page = httpx.get(url)
    assert page.status_code == 200, page.text
    form = _ConsentForm()
    form.feed(page.text)
    assert form.action, page.text
    data = [*form.fields, *(("tenant_id", t) for t in form.organisations), ("decision", "allow" if accept else "deny")]
    answer = httpx.post(
        urljoin(str(page.url), form.action),
        content="&".join(f"{httpx.QueryParams({k: v})}" for k, v in data),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code in (302, 303), answer.text
    location = answer.headers["location"]
    assert "state" in parse_qs(urlsplit(location).query), location
    return location
