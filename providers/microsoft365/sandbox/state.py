"""The Microsoft 365 sandbox's state: its directory (organisations, users and their mailboxes), the identity
platform's apps, grants and tokens, call stats and the knobs."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from providers.microsoft365.sandbox.directory import Organisation, User
from providers.microsoft365.sandbox.identity import AdminConsent, MicrosoftIdentity
from providers.microsoft365.sandbox_credentials import (
    DEMO_APP_NAME,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_DISPLAY_NAME,
    DEMO_MAILBOX,
    DEMO_TENANT_DOMAIN,
    DEMO_TENANT_ID,
    DEMO_USER_PRINCIPAL_NAME,
)
from providers.sandbox_kit.clock import MINUTE_S
from providers.sandbox_kit.faults import FaultKnobs
from providers.sandbox_kit.metering import CallStats, Quota, RateLimits, RateMeter


@dataclass
class MicrosoftKnobs(FaultKnobs):
    """The kit's knobs; Outlook's per-mailbox limits (10,000 requests in 10 minutes, 4 in flight); and an
    organisation whose administrator has not consented to the app: its users are sent back from sign-in with
    AADSTS65001 (``"redirect"``), or the token endpoint refuses code exchanges and refreshes with it (``"token"``,
    as once an administrator withdraws the app's permissions)."""

    admin_consent_required: AdminConsent = None
    enforce_limits: bool = True
    mailbox_requests_per_10_minutes: int = 10_000
    mailbox_concurrency: int = 4

    def mailbox_limits(self) -> RateLimits:
        quota = Quota("MailboxConcurrency", self.mailbox_requests_per_10_minutes, 10 * MINUTE_S)
        return RateLimits((quota,), self.mailbox_concurrency, self.enforce_limits)


class MicrosoftSandbox:
    """Organisations and users, the identity platform; thread-safe (one lock). Reachable as
    ``app.state.microsoft365``; ``users`` by lower-case mail and user principal name."""

    def __init__(self, *, seed: int = 42, clock: Callable[[], float] = time.time) -> None:
        self.seed, self.clock, self.lock = seed, clock, threading.RLock()
        self.stats, self.meter = CallStats(), RateMeter()
        self.organisations: dict[str, Organisation] = {}
        self.users: dict[str, User] = {}
        self.admin_consent: Callable[[], AdminConsent] = lambda: None  # the app's knob, set by create_app
        self._domains: dict[str, str] = {}
        self.oauth = MicrosoftIdentity(clock, self.stats, self.users, self._domains, lambda: self.admin_consent())
        self.oauth.register(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, None, DEMO_APP_NAME)

    def add_organisation(self, tenant_id: str, domain: str) -> Organisation:
        with self.lock:
            organisation = Organisation(tenant_id.lower(), domain.lower())
            self.organisations[organisation.id] = organisation
            self._domains[organisation.id] = organisation.domain
            return organisation

    def add_user(
        self,
        mail: str | None,
        display_name: str,
        *,
        tenant_id: str = DEMO_TENANT_ID,
        user_principal_name: str | None = None,
    ) -> User:
        """A user of organisation ``tenant_id`` (added first if need be) whose object id follows from the seed."""
        with self.lock:
            if tenant_id.lower() not in self.organisations:
                self.add_organisation(tenant_id, f"{tenant_id[:8]}.onmicrosoft.com")
            organisation = self.organisations[tenant_id.lower()]
            local = (mail or display_name.replace(" ", ".")).split("@")[0].lower()
            upn = user_principal_name or f"{local}@{organisation.domain}"
            object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-{self.seed}:{organisation.id}:{upn.lower()}"))
            user = User(object_id, display_name, mail, upn, organisation.id)
            for key in {upn.lower(), (mail or upn).lower()}:
                self.users[key] = user
            return user


def demo_sandbox(seed: int = 42, clock: Callable[[], float] = time.time) -> MicrosoftSandbox:
    """The demo organisation and its user Jordan Lee, whose mailbox the demo app connects."""
    sandbox = MicrosoftSandbox(seed=seed, clock=clock)
    sandbox.add_organisation(DEMO_TENANT_ID, DEMO_TENANT_DOMAIN)
    sandbox.add_user(DEMO_MAILBOX, DEMO_DISPLAY_NAME, user_principal_name=DEMO_USER_PRINCIPAL_NAME)
    return sandbox
