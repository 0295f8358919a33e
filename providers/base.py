"""The provider contract: what a provider folder declares, and the seed's interfaces as protocols.

A provider folder exports ``PROVIDER = Provider(...)`` from its ``__init__.py`` and registers it under the
``vrtx.providers`` entry-point group. Nothing in ``providers/`` imports Dagster: providers know their API,
the core knows orchestration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import httpx

from providers.errors import ProviderRejected

if TYPE_CHECKING:
    from providers.kit.client import ApiClient, Retry
    from providers.kit.governor import RateGovernor
    from providers.kit.streams import Stream
    from vrtx_pipelines.records.canonical import Account, Contact, Invoice, InvoicePayment, Product, TaxRate

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,48}$")


class Category(StrEnum):
    ACCOUNTING = "accounting"
    PAYMENT = "payment"
    EMAIL = "email"
    COMMUNICATION = "communication"
    MARKETING = "marketing"
    CRM = "crm"
    SCHEDULING = "scheduling"
    DOCUMENTS = "documents"
    ERP = "erp"
    AUTOMATION = "automation"


class AuthType(StrEnum):
    OAUTH2 = "oauth2"
    API_KEY = "api_key"
    BASIC = "basic"


@dataclass(frozen=True)
class AuthField:
    """One credential a tenant types in (API-key and basic-auth providers)."""

    name: str
    label: str
    secret: bool = True
    pattern: str | None = None  # a regular expression the value must match in full
    description: str = ""
    required: bool = True


@dataclass(frozen=True)
class OAuth2Spec:
    """The provider's real OAuth 2.0 endpoints and rules."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    revoke_url: str | None = None
    pkce: bool = False
    # True when every refresh returns a new refresh token the platform must store (most providers retire the old
    # one: Xero after a grace; Microsoft leaves it valid until its own expiry).
    refresh_token_rotates: bool = False
    access_token_lifetime_s: int | None = None
    scope_separator: str = " "
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)
    # How the provider-side tenant (organisation, realm, workspace ...) is found after the callback.
    tenant_discovery: str = ""
    # How the app authenticates at the token endpoint (RFC 6749 2.3.1): HTTP Basic, or client_secret_post (Stripe
    # Connect takes the platform's key as ``client_secret`` in the body).
    token_auth: str = "client_secret_basic"  # noqa: S105 -- a method name, not a secret
    # Revoking a grant the provider's own way when it is not RFC 7009's form body at ``revoke_url``: Intuit's JSON
    # ``{"token": ...}``, Stripe Connect's ``/oauth/deauthorize``. None: RFC 7009 at ``revoke_url``.
    revoke: GrantRevoker | None = None
    # Whether a refusal (the OAuth ``error`` and its ``error_description``, at the callback or the token endpoint)
    # says an administrator of the user's organisation must consent to the app first (Microsoft's AADSTS65001): the
    # tenant is told that, not only that the provider refused. None: no provider answer means it.
    needs_admin_consent: Callable[[str, str], bool] | None = None


@dataclass(frozen=True)
class AuthSpec:
    type: AuthType
    oauth2: OAuth2Spec | None = None
    fields: tuple[AuthField, ...] = ()

    def __post_init__(self) -> None:
        if self.type is AuthType.OAUTH2 and self.oauth2 is None:
            raise ValueError("an oauth2 auth spec needs its OAuth2Spec")
        if self.type is not AuthType.OAUTH2 and not self.fields:
            raise ValueError(f"a {self.type} auth spec needs at least one field")


@dataclass(frozen=True)
class RateLimit:
    """A published provider limit; the governor paces calls under the tightest one."""

    requests: int
    per_seconds: int
    scope: str  # what the budget is counted against: "tenant", "app", "user", "account" ...
    description: str = ""


@dataclass
class ProviderConnection:
    """What the core hands a provider for one connection (pulls, pushes, webhooks): never a Dagster object.

    ``Provider.client`` turns it into the provider's ``ApiClient``; the core reads that client's ``stats``.
    """

    http: httpx.Client
    url: Callable[[str], str]  # a real provider URL -> the one to call (sandbox overrides)
    external_tenant_id: str | None
    access_token: Callable[[], str]
    refresh_access_token: Callable[[], str]
    governor: RateGovernor
    credentials: Mapping[str, str] = field(default_factory=dict)
    # Told (with the provider's words) when the provider still refuses the credentials after a refresh: the grant
    # is dead or no longer reaches the organisation, and the core marks the connection so.
    credentials_refused: Callable[[str], None] | None = None
    # For a connection made through OAuth, the platform's OAuth app (client_id, client_secret): Stripe Connect
    # calls with the platform's key on behalf of the connected account. Empty otherwise.
    app_credentials: Mapping[str, str] = field(default_factory=dict)
    # The connection's settings, schema defaults applied: what a pull reads of them (Google's labels, calendars,
    # history window and privacy choice) travels with the client.
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Set while the connection keeps its private fields (``PullSpec.sealing``): (entity, record id, field, text)
    # -> the sealed value a row carries instead of the text. None: the fields are not kept at all.
    seal: Callable[[str, str, str, str], str] | None = None


class ClientFactory(Protocol):
    """A connection's ``ApiClient`` (``ApiClient.for_connection``); ``retry`` says how patient it is."""

    def __call__(self, connection: ProviderConnection, retry: Retry = ...) -> ApiClient: ...


@dataclass(frozen=True)
class Sealing:
    """Private fields a tenant may choose to keep (``vrtx_pipelines.records.sealed``): kept, sealed under the
    connection's own key, while its setting ``setting`` is ``keep``; never fetched into a row otherwise.
    ``fields``: entity -> the row and canonical fields holding them."""

    setting: str
    keep: Any
    fields: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class PullSpec:
    """A provider's pulls: its streams (``providers.kit.streams``: the dlt source and fetches by id are built from
    them), and how each resource's rows become canonical VRTX entities."""

    streams: tuple[Stream, ...]
    # resource name -> raw provider row -> a canonical model (pydantic)
    mappers: Mapping[str, Callable[[Mapping[str, Any]], Any]]
    max_concurrent_calls: int | None = None
    # resource name -> the provider record's fields as dotted paths ("Contact.Name") -> their type (string,
    # number, boolean, date, datetime, object, array; "LineItems[].TaxType" is a field of a list's items).
    # Field mappings are checked against it, and re-deriving reads the warehouse's columns back by it.
    record_fields: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # resource name -> the canonical model its mapper produces (``vrtx_pipelines.records.canonical``): field
    # mappings are offered for these entities, checked against the model's fields. One name is one model for every
    # provider (Xero's and QuickBooks' "contacts" and Stripe's "customers" are all Contact).
    models: Mapping[str, type[Any]] = field(default_factory=dict)
    sealing: Sealing | None = None

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(stream.name for stream in self.streams)

    @property
    def fetchable(self) -> frozenset[str]:
        """The entities whose records can be read back by id (``providers.kit.streams.fetch_by_ids``): the records
        a webhook named, for their own entity or the one that hangs off them (Xero: an invoice's payments)."""
        return frozenset(stream.name for stream in self.streams if stream.by_id is not None)


@dataclass(frozen=True)
class PushRequest:
    """One validated canonical write for a provider, as the core hands it over."""

    entity: str  # "contact" | "invoice" | "payment" ...
    operation: str  # "create" | "update" | "upsert" | "approve" | "void"
    payload: Mapping[str, Any]  # the canonical model's JSON (``model_dump(mode="json")``)
    external_id: str | None  # the linked provider id when the VRTX record is already linked
    idempotency_key: str  # stable across retries of this push: send it where the provider accepts one
    settings: Mapping[str, Any]  # the connection's settings (defaults applied)
    # (entity, VRTX id) -> the linked provider id, for references (an invoice's contact, a payment's invoice).
    linked_id: Callable[[str, str], str | None]
    # The tenant's push-direction field mappings: provider field path ("Reference", "Contact.Name") -> the JSON
    # value to send there, set over what the provider's own push mapping wrote.
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # The provider's version of the linked record as VRTX last stored it (canonical ``version``: QuickBooks'
    # SyncToken), for providers whose updates must name it; None when unknown (the provider reads it first).
    version: str | None = None


@dataclass(frozen=True)
class PushOutcome:
    external_id: str
    remote_version: str | None = None  # the provider's modification stamp after the write
    remote_hash: str | None = None  # hash of the provider's record as written: a pull of it is no new change
    canonical: Mapping[str, Any] | None = None  # the written record as canonical data, kept in the records API
    # The written record as the provider returned it, decoded like a pull's rows: the core maps it through the
    # tenant's pull mappings too, so the next pull of the same content is no change.
    raw: Mapping[str, Any] | None = None
    response_sample: Mapping[str, Any] = field(default_factory=dict)  # redacted, for the sync log


# One write's answer within a batch: what the provider now holds, or its refusal of that write alone.
PushResult = PushOutcome | ProviderRejected


@dataclass(frozen=True)
class PushSpec:
    """A provider's writes. ``push`` raises ``providers.errors.ProviderRejected`` for a write the provider refuses
    (4xx: final) and ``ProviderUnavailable`` / ``ProviderRateLimited`` for ones worth retrying.

    A provider whose API takes many creates in one call declares ``batched_creates`` (entity -> at most that many
    per call) and ``push_many``: (client, the creates, the call's idempotency key) -> one ``PushResult`` per
    create, in order. It raises as ``push`` does when the call as a whole fails. Only creates of records that
    name no other record belong there: a reference would tie the whole call to its slowest link."""

    # entity -> (canonical pydantic model, operations it supports)
    entities: Mapping[str, tuple[type[Any], frozenset[str]]]
    # (the client the core built from ``Provider.client``, the write) -> what the provider now holds
    push: Callable[[ApiClient, PushRequest], PushOutcome]
    batched_creates: Mapping[str, int] = field(default_factory=dict)
    push_many: Callable[[ApiClient, Sequence[PushRequest], str], Sequence[PushResult]] | None = None

    def __post_init__(self) -> None:
        if bool(self.batched_creates) != (self.push_many is not None):
            raise ValueError("batched creates and push_many come together")
        if any(size < 2 for size in self.batched_creates.values()):
            raise ValueError("a batch holds at least two creates")

    def batch_size(self, entity: str) -> int:
        """How many creates of ``entity`` one call takes (1: each is its own call)."""
        return self.batched_creates.get(entity, 1)


@dataclass(frozen=True)
class WebhookEvent:
    """One verified provider event, addressed to an entity the pulls know."""

    # The provider's own id for the event, where it sends one; None: the core derives the event's identity from its
    # organisation, type, resource and parsed instant (vrtx_pipelines.webhooks.inbox.event_identity).
    event_id: str | None
    event_type: str  # e.g. "invoice.update"
    entity: str | None  # the pull entity to refresh ("invoices"), or None when no pull follows
    external_id: str | None
    external_tenant_id: str | None  # the provider organisation the event is about
    occurred_at: datetime | None
    data: Mapping[str, Any] = field(default_factory=dict)
    # The changed record itself, as the pull of ``entity`` would load it, when the event carries all of it
    # (Stripe's event object): the fast path applies it without a fetch. None: the record is fetched by id.
    record: Mapping[str, Any] | None = None
    # The provider asks for the connection's watch to be started again now (Graph: a subscription removed, or its
    # authorisation due for renewal): the webhook worker renews it before the pull follows.
    renews_watch: bool = False


@dataclass(frozen=True)
class WebhookProof:
    """What a delivery is verified against: the shared secret (the connection's, or the platform app's for its
    app-level URL; None where there is none), the provider's public signing keys when it signs with keys of its own
    (``WebhookSpec.public_keys_url``: a JWK set, fetched and cached by the core), and the platform app's
    configuration for the provider (``VRTX_OAUTH_CLIENTS``: e.g. the audience a push token must name)."""

    secret: str | None
    keys: Mapping[str, Any] | None = None
    app: Mapping[str, str] = field(default_factory=dict)


def with_shared_secret(
    check: Callable[[bytes, Mapping[str, str], str], bool],
) -> Callable[[bytes, Mapping[str, str], WebhookProof], bool]:
    """A ``WebhookSpec.verify`` from a check of a signature made with a shared secret (HMAC over the body)."""

    def verify(body: bytes, headers: Mapping[str, str], proof: WebhookProof) -> bool:
        return proof.secret is not None and check(body, headers, proof.secret)

    return verify


@dataclass(frozen=True)
class WatchChannel:
    """Where a connection's notifications are to be sent when the platform names the address itself: the
    connection's webhook URL, and the token the provider is to send back with each (the connection's webhook
    secret, checked by ``WebhookSpec.verify``); ``previous``: what the last ``start`` answered (its subscriptions,
    to close once the new ones are open)."""

    address: str
    token: str
    previous: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Watching:
    """What a ``WatchSpec.start`` opened: when the first of it ends, and its state (subscription ids, JSON) that
    the next ``start`` and a disconnect's ``RevocationSpec`` read from the connection's metadata."""

    until: datetime
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WatchSpec:
    """Change notifications a provider sends only while the platform keeps subscriptions alive (Gmail's
    ``users.watch``, Calendar's channels, Microsoft Graph's subscriptions). ``start`` opens or renews the
    connection's, calling as the connection with the platform app's configuration (``VRTX_OAUTH_CLIENTS``: e.g. the
    Pub/Sub topic) and the ``WatchChannel``; None when there is nothing to watch (the schedule's pulls alone keep
    the connection fresh). The core starts them for each connected connection, again ``renew_within_s`` before
    they end, and keeps the answer in the connection's metadata (``watch``)."""

    start: Callable[[ProviderConnection, Mapping[str, str], WatchChannel], Watching | None]
    renew_within_s: float = 86_400.0


def from_body(parse: Callable[[bytes], list[WebhookEvent]]) -> Callable[[bytes, Mapping[str, str]], list[WebhookEvent]]:
    """A ``WebhookSpec.parse`` from a parse of the body alone (every event is in it)."""

    def parse_delivery(body: bytes, _headers: Mapping[str, str]) -> list[WebhookEvent]:
        return parse(body)

    return parse_delivery


@dataclass(frozen=True)
class WebhookSpec:
    """How a provider signs and shapes its webhooks. ``verify`` gets the raw body, headers (lower-cased names) and
    the ``WebhookProof`` and must compare in constant time; ``parse`` raises ``ValueError`` when the body is
    malformed. An empty event list from a verified body is a handshake (Xero's intent to receive)."""

    verify: Callable[[bytes, Mapping[str, str], WebhookProof], bool]
    # (raw body, headers) -> events; headers matter where a notification says what changed in them (Google's
    # Calendar channels); ``from_body`` adapts a parse of the body alone.
    parse: Callable[[bytes, Mapping[str, str]], list[WebhookEvent]]
    # Where the provider publishes the public keys it signs deliveries with (a JWKS URL; Google's Pub/Sub push
    # tokens), for providers that sign with keys of their own instead of a shared secret.
    public_keys_url: str | None = None
    # Events older than this are refused as stale (where the provider stamps events).
    tolerance_s: float = 3600.0
    # Pull entity -> the other pull entities an event about it also refreshes (records the provider sends no
    # events of its own for).
    refreshes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A delivery that only proves the endpoint is ours (Graph's ``validationToken``): (query parameters, headers)
    # -> the answer to give at once, before any verification, or None for an ordinary delivery.
    handshake: Callable[[Mapping[str, str], Mapping[str, str]], HandshakeAnswer | None] | None = None
    # The status a stored delivery is answered with (Graph: 202, "accepted, processed later").
    accepted_status: int = 200


@dataclass(frozen=True)
class HandshakeAnswer:
    """What a webhook endpoint answers a provider's handshake: a status, a content type and the body."""

    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class ConnectionInfo:
    """What a successful connection test learned (safe to store and show: never a secret)."""

    external_account_id: str | None = None
    external_account_name: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExternalTenant:
    """One provider-side organisation a grant can reach (a Xero organisation, a QBO realm ...)."""

    id: str
    name: str
    kind: str = "organisation"
    connection_id: str | None = None  # the provider's id for the grant-to-tenant link, if it has one
    # Where the tenant is one user's mailbox: the provider-side organisation it belongs to (Microsoft's tenant id).
    directory_id: str | None = None


@dataclass(frozen=True)
class Grant:
    """What an OAuth callback yielded, for finding the provider-side tenants it reaches: the access token, the
    token endpoint's whole answer (Stripe Connect names the account there, Microsoft's id_token its tenant) and
    the callback's own query parameters (QuickBooks sends ``realmId`` beside the code). Never stored as is."""

    access_token: str
    token: Mapping[str, Any] = field(default_factory=dict)
    callback: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Holdings:
    """What one stored connection holds at the provider, as a disconnect must know it (never a secret).

    ``grant``: the provider-side grant its tokens belong to; stored connections with the same value share it, and
    revoking it ends it for all of them. None: only connections holding the very same token share it.
    ``links``: the provider's ids of the connection's own ties to organisations (Xero's connection ids), each
    removable without revoking the grant.
    """

    grant: str | None = None
    links: tuple[str, ...] = ()


@dataclass(frozen=True)
class RevocationSpec:
    """How a disconnect gives back what a connection holds at the provider without breaking another stored
    connection (another tenant may have connected the same organisation with the same user). The core removes
    each of ``held``'s links that no other stored connection holds (``unlink``), then revokes the grant (at
    ``OAuth2Spec.revoke_url``, or by ``OAuth2Spec.revoke``) only if no other stored connection holds the same one."""

    # (the connection's stored tokens, its metadata) -> what it holds
    held: Callable[[Mapping[str, Any], Mapping[str, Any]], Holdings]
    # Remove one link, calling as the connection; an already removed link is not an error (raise nothing).
    unlink: Callable[[ProviderConnection, str], None] | None = None


class GrantRevoker(Protocol):
    """Revokes an OAuth grant at the provider: ``app`` is the OAuth app (client_id, client_secret), ``tokens`` the
    connection's stored tokens, ``account`` the provider-side tenant chosen at connect. Raises
    ``providers.errors.ProviderError`` when the provider refuses or cannot be reached."""

    def __call__(
        self, client: httpx.Client, url: Callable[[str], str], app: Mapping[str, str], tokens: Mapping[str, Any],
        account: str | None,
    ) -> None: ...  # fmt: skip


class TenantDiscoverer(Protocol):
    """Lists the organisations an OAuth grant reaches. ``url`` maps a real provider URL to the one to call."""

    def __call__(self, client: httpx.Client, url: Callable[[str], str], grant: Grant) -> list[ExternalTenant]: ...


class ConnectionTester(Protocol):
    """Checks credentials against the provider with one cheap authenticated call.

    Raises ``providers.errors.ProviderAuthError`` for rejected credentials and
    ``providers.errors.ProviderUnavailable`` when the provider cannot be reached or fails.
    """

    def __call__(self, credentials: Mapping[str, str], base_url: str, client: httpx.Client) -> ConnectionInfo: ...


@dataclass(frozen=True)
class Provider:
    """Everything the platform knows about one service; one instance per provider folder."""

    slug: str
    name: str
    category: Category
    tier: int
    description: str
    icon: str  # an emoji shown in the catalog until a brand asset is licensed
    docs_url: str
    auth: AuthSpec
    config_schema: Mapping[str, Any]
    # The roadmap: what this integration is meant to do ("pull:contacts", "push:invoice", "webhooks", ...).
    capabilities: tuple[str, ...]
    display_order: int
    api_base_url: str
    rate_limits: tuple[RateLimit, ...] = ()
    # What works today. A capability appears here only when it is built and tested end to end.
    implemented: frozenset[str] = frozenset()
    connection_tester: ConnectionTester | None = None
    discover_tenants: TenantDiscoverer | None = None
    # What disconnecting releases at the provider (OAuth); None: the token is revoked unless another stored
    # connection holds the very same one.
    revocation: RevocationSpec | None = None
    # The provider's ApiClient for a connection: every pull, push and fetch by id calls through it.
    client: ClientFactory | None = None
    pulls: PullSpec | None = None
    pushes: PushSpec | None = None
    webhooks: WebhookSpec | None = None
    watches: WatchSpec | None = None
    # The factory of the provider's local stand-in (an ASGI app) for demos and tests, as an import string
    # ("providers.xero.sandbox:create_app", loaded by providers.sandbox_kit.serve.load_sandbox), so that importing
    # a provider imports neither its sandbox nor the web framework.
    sandbox: str | None = None
    # Credentials the sandbox accepts for the primary auth type (the demo OAuth app for OAuth2, else the connection's
    # fields), so `vrtx dev` can connect its demo tenant with no provider account.
    sandbox_credentials: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not SLUG_PATTERN.match(self.slug):
            raise ValueError(f"invalid provider slug {self.slug!r}")
        if not 1 <= self.tier <= 3:
            raise ValueError(f"{self.slug}: tier must be 1, 2 or 3")
        unknown = self.implemented - set(self.capabilities) - {"connect"}
        if unknown:
            raise ValueError(f"{self.slug}: implemented capabilities not on its roadmap: {sorted(unknown)}")
        if "connect" in self.implemented and not self.can_connect_with_fields:
            raise ValueError(f"{self.slug}: 'connect' needs a connection tester (or, for OAuth, tenant discovery)")
        if (self.pulls is not None or self.pushes is not None) and self.client is None:
            raise ValueError(f"{self.slug}: pulls and pushes call the provider through its client")

    @property
    def can_connect_with_fields(self) -> bool:
        if self.auth.type is AuthType.OAUTH2:
            return self.discover_tenants is not None
        return self.connection_tester is not None

    @property
    def connectable(self) -> bool:
        """True when a tenant can connect this integration today."""
        return "connect" in self.implemented

    @property
    def auth_type(self) -> AuthType:
        return self.auth.type


# --- The seed's PHP interfaces, as protocols -------------------------------------------------------------
# Provider implementations grow into these as their capabilities are built; the core checks them with
# isinstance() (runtime_checkable) before offering a flow.


@dataclass(frozen=True)
class SyncResult:
    entity_type: str
    direction: str  # "pull" | "push" | "both"
    created: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    errors: Sequence[str] = ()


@runtime_checkable
class Integration(Protocol):
    """IntegrationInterface: identity, connection lifecycle and OAuth."""

    provider: Provider

    def connect(self, credentials: Mapping[str, str]) -> ConnectionInfo: ...
    def disconnect(self) -> None: ...
    def is_connected(self) -> bool: ...
    def test_connection(self) -> ConnectionInfo: ...
    def auth_url(self, state: str, redirect_uri: str, code_challenge: str | None = None) -> str: ...
    def handle_callback(self, params: Mapping[str, str]) -> Mapping[str, Any]: ...
    def refresh_token(self) -> bool: ...


@runtime_checkable
class AccountingIntegration(Integration, Protocol):
    """AccountingIntegrationInterface: contacts, invoices, payments, products, tax rates, accounts."""

    def sync_contacts(self, direction: str = "both") -> SyncResult: ...
    def push_contact(self, contact: Contact) -> str | None: ...
    def pull_contact(self, external_id: str) -> Contact | None: ...
    def sync_invoices(self, direction: str = "both") -> SyncResult: ...
    def push_invoice(self, invoice: Invoice) -> str | None: ...
    def pull_invoice(self, external_id: str) -> Invoice | None: ...
    def push_payment(self, payment: InvoicePayment) -> str | None: ...
    def pull_payments(self, invoice_external_id: str) -> list[InvoicePayment]: ...
    def sync_products(self, direction: str = "both") -> SyncResult: ...
    def pull_products(self) -> list[Product]: ...
    def pull_tax_rates(self) -> list[TaxRate]: ...
    def pull_accounts(self) -> list[Account]: ...


@runtime_checkable
class PaymentIntegration(Integration, Protocol):
    """PaymentIntegrationInterface: payments and subscriptions."""

    def pull_payments(self, invoice_external_id: str) -> list[InvoicePayment]: ...
    def sync_subscriptions(self, direction: str = "pull") -> SyncResult: ...


@runtime_checkable
class EmailIntegration(Integration, Protocol):
    """EmailIntegrationInterface: mailbox and calendar sync."""

    def sync_messages(self, since: datetime | None = None) -> SyncResult: ...
    def sync_calendar(self, since: datetime | None = None) -> SyncResult: ...
    def send_message(self, to: Sequence[str], subject: str, body: str) -> str: ...


@runtime_checkable
class Syncable(Protocol):
    """SyncableInterface: a VRTX record's link to its copy at a provider (kept in entity links)."""

    def get_external_id(self, integration: str) -> str | None: ...
    def set_external_id(self, integration: str, external_id: str) -> None: ...
    def get_last_synced_at(self, integration: str) -> datetime | None: ...
    def mark_synced(self, integration: str) -> None: ...
