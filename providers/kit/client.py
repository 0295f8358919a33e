"""One HTTP client base for every provider: calls for one connection over the core's ``httpx.Client``.

Every call takes a slot of the connection's rate-limit governor; a 401 refreshes the token once and is replayed, and
a refusal no refresh cures (after the refresh, or with no token to refresh) tells the core the credentials are dead
(``on_refused``);
a 429 is waited out through the governor (which holds every call of the connection, not just this one) a bounded
number of times, for a bounded time; 5xx answers and transport failures are retried with jittered exponential
backoff, writes only under an idempotency key (without one a write that failed may still have been applied);
a provider's error answers become ``providers.errors`` types carrying its own words, and no error message ever
carries a credential. Counters (``api_calls``, ``pages`` per stream, ``rate_limited``, ``retries``,
``token_refreshes``) are the run's metadata.

A provider subclasses ``ApiClient`` and overrides only its hooks: ``auth_headers``, ``refuses_credentials`` (which
answers refuse the credentials), ``should_retry`` (whether any other failed answer is worth trying again: the one
retry decision, for 429s and 5xx alike), ``observe_limits``, ``decode``, ``error_words``, ``error_in_answer``,
``with_idempotency_key``, ``encode``; and declares ``default_params`` (sent with every call: QuickBooks'
``minorversion``) and, where the provider-side tenant is part of every path, a ``{tenant_id}`` placeholder in
``api_base_url`` (QuickBooks' ``/v3/company/{realmId}``).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Self, TypeVar
from urllib.parse import quote

import httpx

from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from providers.kit.governor import DayBudgetExhausted, RateGovernor
from providers.kit.http_errors import retry_after_seconds
from providers.kit.paginators import Page, PageRequest, Paginator
from providers.kit.redaction import redact

if TYPE_CHECKING:
    from providers.base import ProviderConnection

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_RETRY_AFTER_S = 1.0  # when a 429 names no Retry-After
E = TypeVar("E", bound=ProviderError)


@dataclass(frozen=True)
class Retry:
    """How patient a client is with one call."""

    max_attempts: int = 4  # tries of a call that meets 5xx or transport failures
    max_rate_limit_waits: int = 10  # 429s waited out in one call
    base_delay_s: float = 0.5  # the first backoff; each further one doubles, jittered
    max_wait_s: float = 120.0  # a 429 asking for longer is raised, for the caller to come back later


PATIENT = Retry()
# The webhook fast path: a targeted pull follows anyway, so one retry and no waiting out a 429.
GIVE_UP_FAST = Retry(max_attempts=2, max_rate_limit_waits=0, base_delay_s=0.2)


def equal_jitter(delay: float) -> float:
    """Half the delay plus up to half again at random: clients failing together do not retry together."""
    return delay / 2 + random.uniform(0, delay / 2)  # spreading retries, not cryptography


@dataclass(frozen=True)
class ErrorWords:
    """What a provider's error body says: its message, its own error code, field-level messages."""

    message: str | None = None
    code: str | None = None
    details: tuple[str, ...] = ()


@dataclass
class Call:
    """One request as the client is about to send it (hooks may add to it)."""

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


class ApiClient:
    """Calls to ``<base_url>/<path>`` for one connection. Subclasses set ``name`` (used in messages),
    ``api_base_url`` (the real production base, mapped through the connection's ``url``) and ``tenant_noun``
    (when set, every call needs the provider-side tenant chosen at connect, e.g. Xero's "organisation"). A
    ``{tenant_id}`` in the base URL is that tenant's id (path-quoted)."""

    name: ClassVar[str] = "The provider"
    api_base_url: ClassVar[str] = ""
    other_base_urls: ClassVar[tuple[str, ...]] = ()  # the provider's other API hosts, as real URLs
    tenant_noun: ClassVar[str | None] = None
    default_headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}
    default_params: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        governor: RateGovernor,
        access_token: Callable[[], str] | None = None,
        on_unauthorized: Callable[[], str] | None = None,
        on_refused: Callable[[str], None] | None = None,
        tenant_id: str | None = None,
        credentials: Mapping[str, str] | None = None,
        retry: Retry = PATIENT,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float], float] = equal_jitter,
        settings: Mapping[str, Any] | None = None,
        other_base_urls: Sequence[str] = (),
        seal: Callable[[str, str, str, str], str] | None = None,
    ) -> None:
        self._http = http
        if tenant_id is not None:
            base_url = base_url.replace("{tenant_id}", quote(tenant_id, safe=""))
        self.base_url = base_url.rstrip("/")
        self._base = httpx.URL(self.base_url)
        self.governor = governor
        self._access_token = access_token
        self._on_unauthorized = on_unauthorized
        self._on_refused = on_refused
        self._refusal_told = False
        self.tenant_id = tenant_id
        self.credentials: Mapping[str, str] = credentials or {}
        self.settings: Mapping[str, Any] = settings or {}
        self.seal = seal  # ProviderConnection.seal: private fields are kept only when it is set
        # The provider's other API hosts (Google Calendar beside Gmail): absolute URLs there get the credentials too.
        self.other_bases = tuple(httpx.URL(url.rstrip("/")) for url in other_base_urls)
        self.retry = retry
        self._sleep = sleep
        self._jitter = jitter
        self._lock = threading.Lock()
        # After a refresh, keep using the new token while access_token() still returns the rejected one.
        self._rejected_token: str | None = None
        self._refreshed_token: str | None = None
        self._last_token: str | None = None
        # Set when a successful answer said the day's budget is now spent: its data is kept, the next call refused.
        self._day_spent: DayBudgetExhausted | None = None
        self.api_calls = 0
        self.pages: Counter[str] = Counter()
        self.rate_limited = 0
        self.retries = 0
        self.token_refreshes = 0
        # Streams whose listing started over from scratch this run, and why (a change token too old to use).
        self.full_listings: dict[str, str] = {}

    @classmethod
    def for_connection(cls, connection: ProviderConnection, retry: Retry = PATIENT) -> Self:
        """The client of a connection as the core hands it over (``Provider.client``)."""
        return cls(
            connection.http,
            base_url=connection.url(cls.api_base_url),
            governor=connection.governor,
            access_token=connection.access_token,
            on_unauthorized=connection.refresh_access_token,
            on_refused=connection.credentials_refused,
            tenant_id=connection.external_tenant_id,
            credentials=connection.credentials,
            retry=retry,
            settings=connection.settings,
            other_base_urls=tuple(connection.url(url) for url in cls.other_base_urls),
            seal=connection.seal,
        )

    @property
    def stats(self) -> dict[str, Any]:
        """The counters as plain data, for a run's metadata."""
        with self._lock:
            return {
                "api_calls": self.api_calls,
                "pages": dict(self.pages),
                "rate_limited": self.rate_limited,
                "retries": self.retries,
                "token_refreshes": self.token_refreshes,
                "full_listings": dict(self.full_listings),
            }

    # --- hooks -----------------------------------------------------------------------------------------------

    def auth_headers(self, token: str | None) -> dict[str, str]:
        """The headers that authenticate a call (``token`` is the connection's access token, if it has one)."""
        return {"Authorization": f"Bearer {token}"} if token else {}

    def refuses_credentials(self, response: httpx.Response) -> bool:
        """True when an answer refuses the connection's credentials (default: a 401): the token is refreshed once
        and the call replayed; refused again, the grant is dead or no longer reaches the organisation."""
        return response.status_code == 401

    def observe_limits(self, response: httpx.Response) -> None:
        """Read the provider's rate-limit headers into ``self.governor`` (``observe`` raises
        ``DayBudgetExhausted`` when the day's budget is spent)."""

    def should_retry(self, response: httpx.Response) -> bool | None:
        """Whether a failed answer that does not refuse the credentials is worth trying again, when the provider
        says so itself (Stripe's ``Stripe-Should-Retry``). None: the rule of thumb, a 429 waited out and a 5xx
        retried with backoff, any other 4xx final. False raises the answer at once (a 429 too: Stripe asking not
        to retry now); True retries even a 4xx (a 409 lock timeout). A 429 that says the day's budget is spent is
        ``observe_limits``' to raise (``DayBudgetExhausted``): it is no retry decision but the governor's."""
        return None

    def decode(self, response: httpx.Response) -> Any:
        """A body as data (raises ``ValueError`` when it is not JSON). Convert while decoding, never after: a
        second walk over a page costs as much as the decode."""
        return json.loads(response.content)

    def error_words(self, body: Any) -> ErrorWords:
        """The provider's own words in an error body. This default reads the common shapes: an ``error`` object
        (Stripe, Google, Graph), OAuth's ``error``/``error_description``, and a top-level message, detail or
        title (RFC 7807)."""
        if not isinstance(body, Mapping):
            return ErrorWords()
        error = body.get("error")
        if isinstance(error, Mapping):
            code = _text(error.get("code")) or _text(error.get("type")) or _text(error.get("status"))
            return ErrorWords(_text(error.get("message")), code)
        if _text(error):
            return ErrorWords(_text(body.get("error_description")) or error, error)
        detail = _first_text(body, "message", "Message", "detail", "Detail")
        title = _first_text(body, "title", "Title")
        message = f"{title}: {detail}" if title and detail and title != detail else detail or title
        return ErrorWords(message, _first_text(body, "code", "Type", "type", "Title", "title"))

    def error_in_answer(self, body: Any, call: Call) -> ProviderError | None:
        """An error a provider reports inside a 2xx answer (QuickBooks' ``Fault`` with HTTP 200), or None."""
        return None

    def with_idempotency_key(self, call: Call, key: str) -> None:
        """Put a write's idempotency key where the provider reads it (QuickBooks: the ``requestid`` parameter)."""
        call.headers["Idempotency-Key"] = key

    def encode(self, body: Mapping[str, Any]) -> tuple[bytes, str]:
        """A write's body and its content type."""
        return json.dumps(body, default=str, separators=(",", ":")).encode(), "application/json"

    # --- calls -----------------------------------------------------------------------------------------------

    def get(
        self, path: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """One GET; the decoded JSON object."""
        call = self._call("GET", path, params, headers, None)
        return self._object(self._send(call, retry_safe=True, write=False), call)

    def write(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One write of ``body``; the decoded JSON object. With an idempotency key the provider answers a repeat
        with the first write's answer, so the write is retried like a read; without one, a 5xx or a transport
        failure is raised at once. Refusals (4xx) are ``ProviderRejected`` in the provider's words."""
        content, content_type = self.encode(body)
        call = self._call(method, path, params, {"Content-Type": content_type}, content)
        if idempotency_key:
            self.with_idempotency_key(call, idempotency_key)
        return self._object(self._send(call, retry_safe=bool(idempotency_key), write=True), call)

    def paginate(
        self,
        path: str,
        records: str | Callable[[Any], list[dict[str, Any]]],
        *,
        paginator: Paginator | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: str | None = None,
        method: str = "GET",
        json: Mapping[str, Any] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Every record of a listing, a page (list) at a time; empty pages are not yielded.

        ``records`` is the dotted key of the records list in each body ("" for the body itself) or a function
        selecting them; ``paginator`` (one instance per listing) asks for the pages; pages are counted under
        ``stream`` (default: the path); a search POSTs ``json`` (``method="POST"``). A paginator that reads ahead
        gets the next page requested from one thread while this one decodes, so the client's token, counters and
        governor are used by that thread.
        """
        pager = paginator if paginator is not None else Paginator()
        counted = stream or path
        with ExitStack() as stack:
            pool = None
            if pager.reads_ahead:
                pool = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="pages"))

            def fetch(request: PageRequest) -> Future[tuple[httpx.Response, Call]] | _Later:
                return pool.submit(self._fetch, request) if pool is not None else _Later(self._fetch, request)

            search = dict(json) if json is not None else None
            current = pager.first(PageRequest(self._url(path), dict(params or {}), dict(headers or {}), method, search))
            pending: Future[tuple[httpx.Response, Call]] | _Later | None = fetch(current)
            while pending is not None:
                response, call = pending.result()
                ahead = pager.ahead(current)
                pending = fetch(ahead) if ahead is not None else None
                body = self._decoded(response, call)
                rows = records(body) if callable(records) else self._records_at(body, records, call)
                with self._lock:
                    self.pages[counted] += 1
                if rows:
                    yield rows
                following = pager.next(Page(current, response, body, rows))
                if ahead is not None:
                    current = ahead
                elif following is not None:
                    current, pending = following, fetch(following)

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        idempotency_key: str | None = None,
        read_only: bool = False,
    ) -> httpx.Response:
        """One call with every rule applied; its 2xx answer, undecoded. ``read_only`` marks a POST that only
        reads (a query or a search): retried like a GET, its refusals mapped like a read's."""
        call = self._call(method, path, params, headers, content)
        if idempotency_key:
            self.with_idempotency_key(call, idempotency_key)
        safe = read_only or call.method in SAFE_METHODS
        return self._send(call, retry_safe=safe or bool(idempotency_key), write=not safe)

    # --- one request, with auth refresh, rate limits and retries ----------------------------------------------

    def _fetch(self, request: PageRequest) -> tuple[httpx.Response, Call]:
        content = self.encode(request.json)[0] if request.json is not None else None
        headers = {"Content-Type": self.encode({})[1], **request.headers} if content is not None else request.headers
        call = self._call(request.method, request.url, request.params, headers, content)
        return self._send(call, retry_safe=True, write=False), call

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        content: bytes | None,
    ) -> Call:
        return Call(
            method.upper(), self._url(path), {**self.default_params, **(params or {})}, dict(headers or {}), content
        )

    def _url(self, path: str) -> str:
        if "://" not in path:
            return f"{self.base_url}/{path.lstrip('/')}"
        url = httpx.URL(path)
        # A next-page link elsewhere would be sent this connection's credentials.
        origins = {(base.scheme, base.host, base.port) for base in (self._base, *self.other_bases)}
        if (url.scheme, url.host, url.port) not in origins:
            raise ProviderError(f"{self.name} named a page on another host ({url.host}); it was not called.")
        return path

    def _where(self, call: Call) -> str:
        """``GET /Invoices``: the path under the base URL, never the query (it can hold credentials)."""
        path = httpx.URL(call.url).path
        base = self._base.path.rstrip("/")
        if base and path.startswith(base):
            path = path[len(base) :] or "/"
        return f"{call.method} {path}"

    def _send(self, call: Call, *, retry_safe: bool, write: bool) -> httpx.Response:
        """The call, with token refresh, 429 waits and retries; the first 2xx answer, or a typed error."""
        if self._day_spent is not None:
            raise self._day_spent
        retry = self.retry
        refreshed = False
        rate_limit_waits = 0
        failures = 0
        while True:
            token = self._token()
            headers = {**self.default_headers, **self.auth_headers(token), **call.headers}
            with self.governor.slot():
                try:
                    with self._lock:
                        self.api_calls += 1
                    response = self._http.request(
                        call.method, call.url, params=call.params or None, headers=headers, content=call.content
                    )
                except httpx.TransportError as exc:  # connection refused or reset, timeouts
                    failures += 1
                    if failures >= retry.max_attempts or not retry_safe:
                        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                        raise self._redacted(
                            ProviderUnavailable(f"Could not reach {self.name} ({self._where(call)}): {reason}")
                        ) from exc
                    response = None
                except httpx.HTTPError as exc:  # not a transient failure: retrying would not help
                    raise self._redacted(
                        ProviderUnavailable(f"{self.name} call failed ({self._where(call)}): {type(exc).__name__}")
                    ) from exc
            if response is None:
                self._pause(failures)
                continue
            self._observe(response)
            status = response.status_code
            if 200 <= status < 300:
                return response
            refused = self.refuses_credentials(response)
            if refused and not refreshed and self._on_unauthorized is not None:
                refreshed = True  # the access token expired: refresh once and replay
                self._refresh(token)
                continue
            if refused and (refreshed or self._on_unauthorized is None):
                self._raise_refused(response, call)  # no refresh cures it: the credentials are dead
            told = self.should_retry(response)
            if status == 429 and told is not False:
                retry_after = retry_after_seconds(response)
                wait = retry_after if retry_after is not None else DEFAULT_RETRY_AFTER_S
                rate_limit_waits += 1
                if wait > retry.max_wait_s:
                    message = f"{self.name} asked to wait {wait:.0f} s before {self._where(call)}."
                    raise ProviderRateLimited(message, retry_after=retry_after)
                if rate_limit_waits > retry.max_rate_limit_waits:
                    message = f"{self.name} kept answering 429 to {self._where(call)}."
                    raise ProviderRateLimited(message, retry_after=retry_after)
                with self._lock:
                    self.rate_limited += 1
                # The governor holds every call of this connection (not just this one) until the wait is over.
                self.governor.backoff(wait)
                continue
            if told is True or (told is None and status >= 500):
                failures += 1
                if failures < retry.max_attempts and retry_safe:
                    self._pause(failures)
                    continue
            self._raise_for(response, call, write=write)

    def day_spent(self, response: httpx.Response) -> DayBudgetExhausted:
        """The error for a spent daily budget; the answer's Retry-After says when it resets."""
        message = f"{self.name}'s daily API limit for this {self.tenant_noun or 'connection'} is spent."
        return DayBudgetExhausted(message, retry_after=retry_after_seconds(response))

    def _observe(self, response: httpx.Response) -> None:
        try:
            self.observe_limits(response)
        except DayBudgetExhausted:
            spent = self.day_spent(response)
            if not response.is_success:  # the provider's refusal says when the day resets: pass that on
                raise spent from None
            self._day_spent = spent  # this answer was the day's last: keep it, refuse the next call

    def _token(self) -> str | None:
        if self.tenant_noun and not self.tenant_id:
            raise ProviderRejected(f"The {self.name} connection has no {self.tenant_noun} chosen.")
        token = self._access_token() if self._access_token is not None else None
        with self._lock:
            if self._refreshed_token is not None and token == self._rejected_token:
                token = self._refreshed_token
            self._last_token = token
        return token

    def _refresh(self, rejected: str | None) -> None:
        assert self._on_unauthorized is not None
        with self._lock:
            if self._refreshed_token is not None and rejected == self._rejected_token:
                return  # another call refreshed it meanwhile: replay with that token
            self.token_refreshes += 1
            self._rejected_token = rejected
            self._refreshed_token = self._on_unauthorized()

    def _raise_refused(self, response: httpx.Response, call: Call) -> NoReturn:
        """Refused even with a fresh token: an auth failure whatever the method, told to the core once."""
        try:
            self._raise_for(response, call, write=False)
        except ProviderError as exc:
            error = ProviderAuthError(exc.message, status=exc.status, provider_code=exc.provider_code)
        with self._lock:
            tell, self._refusal_told = not self._refusal_told, True
        if tell and self._on_refused is not None:
            self._on_refused(error.message)
        raise error

    def _pause(self, failures: int) -> None:
        with self._lock:
            self.retries += 1
        self._sleep(self._jitter(self.retry.base_delay_s * 2 ** (failures - 1)))

    # --- answers ---------------------------------------------------------------------------------------------

    def _decoded(self, response: httpx.Response, call: Call) -> Any:
        try:
            body = self.decode(response)
        except ValueError:
            status = response.status_code
            message = f"{self.name} answered {self._where(call)} without a JSON object."
            raise ProviderError(message, status=status) from None
        error = self.error_in_answer(body, call)
        if error is not None:
            raise self._redacted(error)
        return body

    def _object(self, response: httpx.Response, call: Call) -> dict[str, Any]:
        body = self._decoded(response, call)
        if not isinstance(body, dict):
            status = response.status_code
            raise ProviderError(f"{self.name} answered {self._where(call)} without a JSON object.", status=status)
        return body

    def _records_at(self, body: Any, key: str, call: Call) -> list[dict[str, Any]]:
        records = body
        for part in key.split(".") if key else ():
            records = records.get(part) if isinstance(records, Mapping) else None
        if not isinstance(records, list):
            # Never read a changed envelope as "no records": that would end a pull early, silently.
            what = f"no {key} list" if key else "no list"
            raise ProviderError(f"{self.name}'s answer to {self._where(call)} has {what}.", status=200)
        return records

    def _raise_for(self, response: httpx.Response, call: Call, *, write: bool) -> NoReturn:
        """A refusal as a typed error in the provider's words: 401 (after a refresh) and a read's 403 are auth
        failures, 429 and 5xx worth retrying later; a write's other 4xx are final (``ProviderRejected``), a
        read's a plain ``ProviderError``."""
        status = response.status_code
        try:
            body = self.decode(response)
        except ValueError:
            body = None
        words = self.error_words(body)
        text = response.text.strip() if body is None and len(response.text) <= 200 else ""
        message = words.message or text or f"{self.name} answered HTTP {status} to {self._where(call)}."
        code = words.code
        error: ProviderError
        if status == 401 or (status == 403 and not write):
            error = ProviderAuthError(message, status=status, provider_code=code)
        elif status == 429:
            error = ProviderRateLimited(message, retry_after=retry_after_seconds(response))
        elif status >= 500:
            error = ProviderUnavailable(message, status=status, provider_code=code)
        elif write and status >= 400:
            error = ProviderRejected(message, status=status, provider_code=code, details=list(words.details))
        else:
            error = ProviderError(message, status=status, provider_code=code)
        raise self._redacted(error)

    def _redacted(self, error: E) -> E:
        secrets = [self._last_token, self._refreshed_token, self._rejected_token, *self.credentials.values()]
        error.message = redact(error.message, secrets)
        error.args = (error.message,)
        if isinstance(error, ProviderRejected):
            error.details = [redact(detail, secrets) for detail in error.details]
        return error


class _Later:
    """A request made when its result is wanted (paging without reading ahead), shaped like a ``Future``."""

    def __init__(self, fetch: Callable[[PageRequest], tuple[httpx.Response, Call]], request: PageRequest) -> None:
        self._fetch = fetch
        self._request = request

    def result(self) -> tuple[httpx.Response, Call]:
        return self._fetch(self._request)


def header_int(response: httpx.Response, name: str) -> int | None:
    """An integer header (a rate-limit counter), or None when absent or not a number."""
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_text(body: Mapping[str, Any], *keys: str) -> str | None:
    return next((text for key in keys if (text := _text(body.get(key)))), None)
