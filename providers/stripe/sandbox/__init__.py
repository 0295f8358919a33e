"""A local stand-in for Stripe: the v1 API (api.stripe.com) and Connect OAuth (connect.stripe.com) on Stripe's
real paths under one origin, assembled from the sandbox kit; the official ``stripe`` SDK works against it unchanged
(tests/providers/test_stripe_sdk.py). Wire facts: the shared reference's section 3 and ``fixtures3.json``.

    sandbox = demo_sandbox()                 # the demo platform (DEMO_SECRET_KEY) and an account to connect
    app = create_app(sandbox)                # app.state.stripe is the sandbox, app.state.sandbox the knobs
    app.state.sandbox.rate_limit_next = 2    # the next two calls get Stripe's 429

What it serves, with Stripe's rules (each module says more):
- Auth: a secret or restricted key as ``Authorization: Bearer`` or HTTP Basic (the key as the username);
  ``Stripe-Account: acct_...`` acts for an account connected to the caller's platform (else 403);
  ``Stripe-Version`` is accepted when it is a version (``2026-10-28.endive``) and echoed.
- Parameters form-encoded with brackets (``metadata[k]``, ``items[0][price]``, ``expand[]``); unknown ones refused.
- Lists (``limit`` 1-100, ``starting_after``, ``ending_before``, ``created[gte|gt|lte|lt]``, filters), newest first,
  and ``expand[]`` (``account``); objects shaped as ``fixtures3.json`` (``objects``).
- Customers, products, prices (``catalog``); invoices with invoice items as lines, finalize/pay/send/void, and
  subscriptions (``billing``); payment intents, charges, refunds, balance transactions, payouts, payment links
  (``payments``); ``/v1/events`` for every change, kept 30 days, each also sent to webhook subscribers signed
  ``Stripe-Signature: t=...,v1=...`` (``webhooks``); Connect OAuth and ``/oauth/deauthorize`` (``connect``).
- Errors as Stripe's error object; 429 with ``Stripe-Should-Retry``; ``Idempotency-Key`` (per account, 24 hours):
  the same request again is the first answer with ``Idempotent-Replayed: true``, another request under the key is
  400 ``idempotency_error``.
Deviations: subscriptions make no invoices; the 429 carries a ``Retry-After`` (the fault knob's), which Stripe does
not send; restricted keys may do everything their account may.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import providers.stripe.sandbox.billing as billing
import providers.stripe.sandbox.catalog as catalog
import providers.stripe.sandbox.payments as payments
from providers.sandbox_kit.edge import RequestIds, request_id
from providers.sandbox_kit.faults import knobs_of
from providers.sandbox_kit.gate import Answers, Call, Gate
from providers.sandbox_kit.idempotency import fingerprint
from providers.sandbox_kit.metering import Refusal
from providers.sandbox_kit.wire import basic_credentials, bearer_token, json_response
from providers.stripe.sandbox.account import StripeAccount
from providers.stripe.sandbox.connect import register_connect_routes
from providers.stripe.sandbox.state import Answer, StripeSandbox, StripeSandboxKnobs, demo_sandbox
from providers.stripe.sandbox.templates import TEMPLATES
from providers.stripe.sandbox.wire import (
    API_VERSION,
    VERSION_FORMAT,
    ParamError,
    StripeError,
    expansions,
    form,
    invalid,
    query,
)
from providers.stripe.sandbox_credentials import DEMO_ACCOUNT_ID as DEMO_ACCOUNT_ID
from providers.stripe.sandbox_credentials import DEMO_CONNECT_CLIENT_ID as DEMO_CONNECT_CLIENT_ID
from providers.stripe.sandbox_credentials import DEMO_CONNECTED_ACCOUNT_ID as DEMO_CONNECTED_ACCOUNT_ID
from providers.stripe.sandbox_credentials import DEMO_RESTRICTED_KEY as DEMO_RESTRICTED_KEY
from providers.stripe.sandbox_credentials import DEMO_SECRET_KEY as DEMO_SECRET_KEY

__all__ = ["StripeSandbox", "StripeSandboxKnobs", "create_app", "demo_sandbox"]
_SUPPORT = "Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
_NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using "
    "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/."
)
_RATE_LIMITED = (
    "Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits."
)
Write = catalog.Write
Handler = Callable[[Write], Any]
IndexHandler = Callable[[Write, int], Any]
# Path segment -> (table, list filters, create, update, delete): https://docs.stripe.com/api
RESOURCES: dict[str, tuple[str, Mapping[str, Callable[[Any, str], bool]], Handler | None, IndexHandler | None,
                           IndexHandler | None]] = {
    "customers": ("customers", catalog.CUSTOMER_FILTERS, catalog.create_customer, catalog.update_customer,
                  catalog.delete_customer),
    "products": ("products", catalog.PRODUCT_FILTERS, catalog.create_product, catalog.update_product,
                 catalog.delete_product),
    "prices": ("prices", catalog.PRICE_FILTERS, catalog.create_price, catalog.update_price, None),
    "invoices": ("invoices", billing.INVOICE_FILTERS, billing.create_invoice, billing.update_invoice,
                 billing.delete_invoice),
    "invoiceitems": ("invoice_items", {"customer": catalog.equals("customer"), "invoice": catalog.equals("invoice")},
                     billing.create_invoice_item, None, None),
    "payment_intents": ("payment_intents", payments.PAYMENT_FILTERS, payments.create_payment_intent, None, None),
    "charges": ("charges", payments.CHARGE_FILTERS, None, None, None),
    "refunds": ("refunds", payments.REFUND_FILTERS, payments.create_refund, None, None),
    "subscriptions": ("subscriptions", billing.SUBSCRIPTION_FILTERS, billing.create_subscription,
                      billing.update_subscription, billing.cancel),
    "balance_transactions": ("balance_transactions", payments.BALANCE_FILTERS, None, None, None),
    "payouts": ("payouts", payments.PAYOUT_FILTERS, payments.create_payout, None, None),
    "payment_links": ("payment_links", {"active": catalog.active_filter}, payments.create_payment_link,
                      payments.update_payment_link, None),
    "events": ("events", {}, None, None, None),
}  # fmt: skip
ACTIONS: dict[tuple[str, str], IndexHandler] = {
    ("invoices", "finalize"): billing.finalize_invoice,
    ("invoices", "pay"): billing.pay_invoice,
    ("invoices", "send"): billing.send_invoice,
    ("invoices", "void"): billing.void_invoice,
    ("payment_intents", "confirm"): payments.confirm_payment_intent,
    ("payment_intents", "cancel"): payments.cancel_payment_intent,
}


@dataclass(frozen=True)
class KeyCaller:
    """Who calls: the account a key belongs to (the kit's ``Caller``: rate limits count per account)."""

    account: str
    key: str

    @property
    def client_id(self) -> str:
        return self.account

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset({"read_write"})


def create_app(sandbox: StripeSandbox | None = None, *, knobs: StripeSandboxKnobs | None = None) -> FastAPI:
    """The sandbox ASGI app. Default sandbox: ``demo_sandbox()``."""
    sandbox = sandbox or demo_sandbox()
    app = FastAPI(title="Stripe sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stripe, app.state.sandbox = sandbox, knobs or StripeSandboxKnobs()
    app.add_middleware(RequestIds, header="request-id", new_id=lambda: f"req_{secrets.token_urlsafe(10)}")
    # Stripe's calls carry API keys: a forced token expiry has no OAuth token to expire.
    gate = Gate.of(
        sandbox, authenticate=lambda request: _caller(sandbox, request), answers=_ANSWERS, expire_tokens=False
    )
    prepare = gate.preparer(lambda: knobs_of(app, StripeSandboxKnobs))

    register_connect_routes(app, sandbox.oauth, sandbox.lock, prepare=prepare, key_owner=sandbox.key_owner)

    @app.exception_handler(StarletteHTTPException)
    async def unrecognized(request: Request, exc: StarletteHTTPException) -> Response:
        return _unrecognized(request)

    def tenant_of(request: Request, caller: Any) -> str | None:
        assert isinstance(caller, KeyCaller)
        named = request.headers.get("stripe-account", "").strip()
        if not named or named == caller.account:
            return caller.account
        return named if named in sandbox.tenants and sandbox.oauth.connected(caller.account, named) else None

    async def api(request: Request) -> Response:
        current = knobs_of(app, StripeSandboxKnobs)
        gate.prepare(current)
        version = request.headers.get("stripe-version")
        if version is not None and not VERSION_FORMAT.match(version.strip()):
            error = invalid(f"Invalid Stripe API version: {version}", None, "api_version_invalid")
            return _error_response(request, error)
        live = (_key(request) or "").startswith(("sk_live_", "rk_live_"))
        call = gate.admit(request, current, limits=current.limits(live), tenant_of=tenant_of)
        if isinstance(call, Response):
            return call
        parts = [p for p in request.url.path.split("/")[2:] if p]
        with call:
            try:
                params = query(request.query_params.multi_items())
                if request.method == "POST":
                    params = {**params, **form(await request.body())}
            except ParamError as exc:
                return _error_response(request, invalid(str(exc), exc.param), call.headers)
            body = await request.body()
            write = request.method != "GET"
            with sandbox.lock:
                page = _page_number(sandbox.tenants[call.tenant_id], parts, params) if not write else None
            answer = await gate.run(
                request, call, current, lambda: _serve(sandbox, call, request, parts, params, body), page=page,
                write=write,
            )  # fmt: skip
        if isinstance(answer, Response):
            return answer
        if answer.status == 200 and write and (lost := gate.lost(request, call, current)) is not None:
            return lost
        if answer.status == 200 and not write and isinstance(answer.body, dict) and answer.body.get("object") == "list":
            with sandbox.lock:
                sandbox.stats.page(call.tenant_id, parts[0])
        if answer.status >= 400:
            return _error_response(request, answer.body, {**call.headers, **dict(answer.headers)})
        headers = {**call.headers, **dict(answer.headers), "Stripe-Version": version or API_VERSION}
        return json_response(answer.status, answer.body, headers)

    app.add_api_route("/v1/{path:path}", api, methods=["GET", "POST", "DELETE"])
    return app


def _serve(
    sandbox: StripeSandbox, call: Call, request: Request, parts: list[str], params: dict[str, Any], body: bytes
) -> Answer:
    key = request.headers.get("idempotency-key")
    method = request.method
    with sandbox.lock:
        account = sandbox.tenants[call.tenant_id]
        ids = (request_id(request) or None, key)
        if method != "POST" or key is None:
            return _answered(lambda: _route(sandbox, account, method, parts, params, ids))
        if not sandbox.idempotency.valid_key(key):
            error = invalid(f"Idempotency-Key must be at most {sandbox.idempotency.max_key} characters", None)
            return Answer(400, error)
        fresh: list[Answer] = []

        def run() -> Answer:
            answer = _answered(lambda: _route(sandbox, account, method, parts, params, ids))
            fresh.append(answer)
            return answer

        answer = sandbox.idempotency.run(
            (account.id, key), fingerprint(method, request.url.path, request.url.query, body), sandbox.clock(), run,
            mismatch=lambda: Answer(400, StripeError(400, "idempotency_error", (
                "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                f"Try using a key other than '{key}' if you meant to execute a different request."))),
        )  # fmt: skip
        echoed = (("Idempotency-Key", key),)
        if fresh or (
            answer.status == 400 and isinstance(answer.body, StripeError) and answer.body.type == "idempotency_error"
        ):
            return Answer(answer.status, answer.body, (*answer.headers, *echoed))
        return Answer(answer.status, answer.body, (*answer.headers, *echoed, ("Idempotent-Replayed", "true")))


def _answered(route: Callable[[], Any]) -> Answer:
    try:
        return Answer(200, route())
    except StripeError as exc:
        return Answer(exc.status, exc)
    except ParamError as exc:
        return Answer(400, invalid(str(exc), exc.param))


def _route(
    sandbox: StripeSandbox, account: StripeAccount, method: str, parts: list[str], params: dict[str, Any],
    ids: tuple[str | None, str | None],
) -> Any:  # fmt: skip
    """One API call under the sandbox's lock: the object or list to answer, or a ``StripeError``."""
    if parts[:1] == ["account"] and len(parts) == 1 and method == "GET":
        return account_object(account)
    if parts[:1] == ["accounts"] and len(parts) == 2 and method == "GET":
        if parts[1] not in sandbox.tenants or not sandbox.oauth.connected(account.id, parts[1]):
            raise StripeError(404, "invalid_request_error", f"No such account: '{parts[1]}'", "account_invalid", "id")
        return account_object(sandbox.tenants[parts[1]])
    if not parts or parts[0] not in RESOURCES or len(parts) > 3:
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({method}: /v1/{'/'.join(parts)}). "
                          f"{_SUPPORT}")  # fmt: skip
    entity, filters, create, update, delete = RESOURCES[parts[0]]
    w = Write(account, params, ids)

    def render(what: str, record: dict[str, Any]) -> dict[str, Any]:
        return payments.rendered_link(record) if what == "payment_links" else record

    def expanded(record: dict[str, Any], nested: bool = False) -> dict[str, Any]:
        paths = [p.removeprefix("data.") for p in expansions(params)] if nested else expansions(params)
        return account.expand(render(entity, record), paths, render) if paths else render(entity, record)

    if len(parts) == 1:
        if method == "GET":
            url = f"/v1/{parts[0]}"
            if entity == "events":
                return _events(account, params, url)
            return account.listing(entity, params, url, where=filters, render=lambda r: expanded(r, True))
        if method == "POST" and create is not None:
            return expanded(create(w))
        raise _unrecognized_error(method, parts)
    index, record = account.get(entity, parts[1]) if entity != "events" else _event(account, parts[1])
    if len(parts) == 3:
        if method == "GET" and (parts[0], parts[2]) == ("invoices", "lines"):
            return billing.invoice_lines(record, params)
        if method == "GET" and (parts[0], parts[2]) == ("payment_links", "line_items"):
            return payments.link_line_items(record)
        action = ACTIONS.get((parts[0], parts[2]))
        if method != "POST" or action is None:
            raise _unrecognized_error(method, parts)
        return expanded(action(w, index))
    if method == "GET":
        return expanded(record)
    if method == "POST" and update is not None:
        return expanded(update(w, index))
    if method == "DELETE" and delete is not None:
        return delete(w, index)
    raise _unrecognized_error(method, parts)


def _event(account: StripeAccount, event_id: str) -> tuple[int, dict[str, Any]]:
    index, event = account.get("events", event_id)
    if not account.event_visible(event):
        raise StripeError(404, "invalid_request_error", f"No such event: '{event_id}'", "resource_missing", "id")
    return index, event


def _events(account: StripeAccount, params: dict[str, Any], url: str) -> dict[str, Any]:
    """``/v1/events``: the last 30 days, ``type`` (``*`` wildcards) or ``types[]`` (up to 20)."""
    wanted: list[str] = []
    if params.get("type"):
        wanted = [str(params["type"])]
    elif params.get("types"):
        sent = params["types"]
        wanted = [str(t) for t in (sent if isinstance(sent, list) else [sent])]
        if len(wanted) > 20:
            raise invalid("You may specify at most 20 event types.", "types")

    def any_type(event: dict[str, Any], _sent: str) -> bool:
        return any(_type_matches(str(event.get("type")), pattern) for pattern in wanted)

    filters = {"types": any_type} if wanted else {}
    chosen = {**{k: v for k, v in params.items() if k not in ("type", "types")}, **({"types": ",".join(wanted)} if
                                                                                     wanted else {})}  # fmt: skip
    return account.listing("events", chosen, url, where=filters, floor_s=account.now() - 30 * 86_400)


def _type_matches(event_type: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern


def _page_number(account: StripeAccount, parts: list[str], params: dict[str, Any]) -> int | None:
    """Which page of a list this is (the fault knobs fail "page N"): from how many objects precede the cursor."""
    if len(parts) != 1 or parts[0] not in RESOURCES:
        return None
    entity = RESOURCES[parts[0]][0]
    cursor = params.get("starting_after")
    index = account.index_of(entity, str(cursor)) if cursor else None
    if index is None:
        return 1
    try:
        limit = max(1, min(int(str(params.get("limit") or 10)), 100))
    except ValueError:
        return 1
    table = account.tables[entity]
    newer = table.window(table.updated_ms(index), None).total
    return newer // limit + 1


def account_object(account: StripeAccount) -> dict[str, Any]:
    """The account object (``fixtures3.json`` ``resources.account``) filled with the account's identity."""
    body = copy.deepcopy(TEMPLATES["account"])
    body.update(id=account.id, email=account.email, country=account.country, default_currency=account.currency,
                created=1_700_000_000, charges_enabled=True, payouts_enabled=True, details_submitted=True,
                type="standard")  # fmt: skip
    body["business_profile"]["name"] = account.name or None
    body["settings"]["dashboard"].update(display_name=account.name or None, timezone="Etc/UTC")
    body["external_accounts"]["url"] = f"/v1/accounts/{account.id}/external_accounts"
    body["requirements"].update(currently_due=[], eventually_due=[], disabled_reason=None)
    return body


def _key(request: Request) -> str | None:
    basic = basic_credentials(request)
    return bearer_token(request) or (basic[0] if basic is not None else None) or None


def _caller(sandbox: StripeSandbox, request: Request) -> KeyCaller | None:
    key = _key(request)
    owner = sandbox.key_owner(key) if key else None
    return KeyCaller(owner, key or "") if owner is not None else None


def _masked(key: str) -> str:
    """How Stripe echoes an unknown key: its prefix, stars, and the last four characters."""
    prefix_end = key.find("_", key.find("_") + 1) + 1 if key.count("_") >= 2 else 0
    prefix, tail = key[:prefix_end], key[prefix_end:]
    return prefix + "*" * max(len(tail) - 4, 0) + tail[-4:] if len(tail) > 4 else "*" * len(key)


def _error_response(request: Request, error: Any, headers: Mapping[str, str] | None = None) -> Response:
    assert isinstance(error, StripeError)
    return json_response(error.status, error.body(request_id(request)), headers)


def _unrecognized_error(method: str, parts: list[str]) -> StripeError:
    return StripeError(404, "invalid_request_error",
                       f"Unrecognized request URL ({method}: /v1/{'/'.join(parts)}). {_SUPPORT}")  # fmt: skip


def _unrecognized(request: Request) -> Response:
    message = f"Unrecognized request URL ({request.method}: {request.url.path}). {_SUPPORT}"
    return _error_response(request, StripeError(404, "invalid_request_error", message))


def _unauthorized(request: Request, insufficient: bool) -> Response:
    key = _key(request)
    message = _NO_KEY if not key else f"Invalid API Key provided: {_masked(key)}"
    return _error_response(request, StripeError(401, "invalid_request_error", message))


def _forbidden(request: Request) -> Response:
    named = request.headers.get("stripe-account", "")
    message = (f"The provided key '{_masked(_key(request) or '')}' does not have access to account '{named}' (or that "
               "account does not exist). Application access may have been revoked.")  # fmt: skip
    return _error_response(request, StripeError(403, "invalid_request_error", message, "account_invalid"))


def _rate_limited(request: Request, refusal: Refusal) -> Response:
    knobs = knobs_of(request.app, StripeSandboxKnobs)
    headers = {"Retry-After": str(refusal.retry_after_s)}
    if knobs.should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if knobs.should_retry else "false"
    error = StripeError(429, "invalid_request_error", _RATE_LIMITED, "rate_limit")
    return _error_response(request, error, headers)


def _server_error(request: Request, status: int) -> Response:
    error = StripeError(status, "api_error", "An unknown error occurred. Please try again later.")
    return _error_response(request, error, {"Stripe-Should-Retry": "true"})


_ANSWERS = Answers(
    unauthorized=_unauthorized, forbidden=_forbidden, rate_limited=_rate_limited, server_error=_server_error,
    storm_problem="second",
)  # fmt: skip
