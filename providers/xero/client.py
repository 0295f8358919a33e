"""Xero Accounting API 2.0 client for one connection (one organisation, one token) over a given ``httpx.Client``.

API doc: https://developer.xero.com/documentation/api/accounting/overview
Limits: https://developer.xero.com/documentation/guides/oauth2/limits/
Errors: https://developer.xero.com/documentation/api/accounting/responsecodes
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn

import httpx

from providers.errors import ProviderError, ProviderRateLimited, ProviderRejected, ProviderUnavailable
from providers.http_errors import json_object, raise_for_provider_status, retry_after_seconds
from providers.xero.dates import convert_dates_hook, format_if_modified_since
from vrtx_pipelines.governor import DayBudgetExhausted, RateGovernor

DEFAULT_PAGE_SIZE = 1000  # Xero's maximum; the default of 100 would cost ten times the calls
DEFAULT_RETRY_AFTER_S = 1.0  # when a 429 names no Retry-After
_DAY_SPENT = "Xero's daily API limit for this organisation is spent."


class XeroClient:
    """GETs against ``<base_url>/<Endpoint>`` with the tenant header, paced by the connection's governor.

    Counters for run metadata: ``api_calls`` (HTTP requests sent), ``pages`` (pages served, per endpoint),
    ``rate_limited`` (429s waited out), ``retries`` (5xx and transport failures retried), ``token_refreshes``.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        tenant_id: str,
        access_token: Callable[[], str],
        on_unauthorized: Callable[[], str] | None = None,
        governor: RateGovernor,
        max_rate_limit_waits: int = 10,
        max_attempts: int = 4,
        retry_base_delay_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self._access_token = access_token
        self._on_unauthorized = on_unauthorized
        self._governor = governor
        self._max_rate_limit_waits = max_rate_limit_waits
        self._max_attempts = max_attempts
        self._retry_base_delay_s = retry_base_delay_s
        self._sleep = sleep
        # After a refresh, keep using the new token while access_token() still returns the rejected one.
        self._rejected_token: str | None = None
        self._refreshed_token: str | None = None
        # Set when a successful answer said the day's budget is now spent: its data is kept, the next call refused.
        self._day_spent: DayBudgetExhausted | None = None
        self.api_calls = 0
        self.pages: Counter[str] = Counter()
        self.rate_limited = 0
        self.retries = 0
        self.token_refreshes = 0

    @property
    def stats(self) -> dict[str, Any]:
        """The counters as plain data, for a run's metadata."""
        return {
            "api_calls": self.api_calls,
            "pages": dict(self.pages),
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "token_refreshes": self.token_refreshes,
        }

    def get(
        self, endpoint: str, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """One GET, retried as Xero's rules allow; the decoded envelope (numbers with decimals as ``Decimal``)."""
        return self._decoded(self._send("GET", endpoint, params=params, headers=headers), "GET", endpoint)

    def write(
        self,
        method: str,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """One PUT (create) or POST (update) of a JSON body; the decoded envelope.

        Xero keeps the answer to an ``Idempotency-Key`` for a while and replays it, so with a key the write is
        retried in-call like a read (5xx, transport failures, 429): a retry can never write twice. Without a key a
        5xx is raised at once, since Xero may have written before failing. Refusals become ``ProviderRejected`` with
        Xero's own messages (400 ValidationException, 403, 404); a 401 refreshes the token once, then is
        ``ProviderAuthError``.
        """
        headers = {"Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        content = json.dumps(body, default=str, separators=(",", ":")).encode()
        response = self._send(method, endpoint, headers=headers, content=content, retry_5xx=bool(idempotency_key))
        return self._decoded(response, method, endpoint)

    def iter_pages(
        self,
        endpoint: str,
        collection_key: str,
        *,
        params: Mapping[str, Any] | None = None,
        modified_since: datetime | None = None,
        paged: bool = True,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[list[dict[str, Any]]]:
        """Every record of a list endpoint, one page (list) at a time; empty pages are not yielded.

        ``modified_since`` becomes ``If-Modified-Since`` (records created or changed after it). Unpaged endpoints
        (Items, Accounts, TaxRates) answer everything in one call.
        """
        headers = {"If-Modified-Since": format_if_modified_since(modified_since)} if modified_since else {}
        if not paged:
            envelope = self.get(endpoint, params=params, headers=headers)
            self.pages[endpoint] += 1
            records = self._records(envelope, endpoint, collection_key)
            if records:
                yield records
            return

        def fetch(page: int) -> httpx.Response:
            query = {**(params or {}), "page": page, "pageSize": page_size}
            return self._send("GET", endpoint, params=query, headers=headers)

        # Requests go out from one thread (the client's token, counters and governor are used by it alone); a page
        # Xero said exists is asked for before the one just received is decoded, so Xero's time and ours overlap.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xero-pages") as requests:
            page = 1
            pending: Future[httpx.Response] | None = requests.submit(fetch, page)
            known_pages = 0  # the pageCount of the latest pagination block
            while pending is not None:
                response = pending.result()
                pending = requests.submit(fetch, page + 1) if page < known_pages else None
                envelope = self._decoded(response, "GET", endpoint)
                self.pages[endpoint] += 1
                records = self._records(envelope, endpoint, collection_key)
                if records:
                    yield records
                pagination = envelope.get("pagination")
                known_pages = _page_count(pagination) or 0
                # A page asked for ahead is read even when this one turns out to be the last (the total shrank
                # while paging): it holds either nothing or records that now belong to the pull.
                if pending is None and not _is_last_page(pagination, page, len(records), page_size):
                    pending = requests.submit(fetch, page + 1)
                page += 1

    def _records(self, envelope: Mapping[str, Any], endpoint: str, collection_key: str) -> list[dict[str, Any]]:
        records = envelope.get(collection_key)
        if not isinstance(records, list):
            # Never read a changed envelope as "no records": that would end a pull early, silently.
            raise ProviderError(f"Xero's answer to GET /{endpoint} has no {collection_key} list.", status=200)
        return records

    # --- one request, with auth refresh, rate limits and retries --------------------------------------------

    def _decoded(self, response: httpx.Response, method: str, endpoint: str) -> dict[str, Any]:
        body = json_object(response, parse_float=Decimal, object_hook=convert_dates_hook)  # money stays exact
        if body is None:
            status = response.status_code
            raise ProviderError(f"Xero answered {method} /{endpoint} without a JSON object.", status=status)
        return body

    def _send(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        retry_5xx: bool = True,
    ) -> httpx.Response:
        """One call, with token refresh, 429 waits and retries; the first 2xx answer, or a typed error."""
        if self._day_spent is not None:
            raise self._day_spent
        url = f"{self._base_url}/{endpoint.lstrip('/')}"
        refreshed = False
        rate_limit_waits = 0
        failures = 0
        while True:
            token = self._token()
            request_headers = {
                "Authorization": f"Bearer {token}",
                "xero-tenant-id": self.tenant_id,
                "Accept": "application/json",
                **(headers or {}),
            }
            with self._governor.slot():
                try:
                    self.api_calls += 1
                    response = self._http.request(method, url, params=params, headers=request_headers, content=content)
                except httpx.TransportError as exc:  # connection refused or reset, timeouts
                    failures += 1
                    if failures >= self._max_attempts or not retry_5xx:
                        raise ProviderUnavailable(
                            f"Could not reach Xero ({method} /{endpoint}): {type(exc).__name__}"
                        ) from exc
                    response = None
                except httpx.HTTPError as exc:  # not a transient failure: retrying would not help
                    raise ProviderUnavailable(f"Xero call failed ({method} /{endpoint}): {type(exc).__name__}") from exc
            if response is None:
                self._retry_pause(failures)
                continue
            status = response.status_code
            try:
                self._governor.observe(
                    minute_remaining=_int_header(response, "X-MinLimit-Remaining"),
                    day_remaining=_int_header(response, "X-DayLimit-Remaining"),
                )
            except DayBudgetExhausted as exc:
                if not 200 <= status < 300:  # Xero's 429 says when the day resets: pass that on
                    raise DayBudgetExhausted(_DAY_SPENT, retry_after=retry_after_seconds(response)) from None
                self._day_spent = exc  # this answer was the day's last: keep it
            if 200 <= status < 300:
                return response
            if status == 401 and not refreshed and self._on_unauthorized is not None:
                # The access token expired (they live 30 minutes): refresh once and replay.
                refreshed = True
                self._refresh(token)
                continue
            if status == 429:
                retry_after = retry_after_seconds(response)
                if response.headers.get("X-Rate-Limit-Problem", "").lower() == "day":
                    raise DayBudgetExhausted(_DAY_SPENT, retry_after=retry_after)
                rate_limit_waits += 1
                if rate_limit_waits > self._max_rate_limit_waits:
                    raise ProviderRateLimited(
                        f"Xero kept answering 429 to {method} /{endpoint}.", retry_after=retry_after
                    )
                self.rate_limited += 1
                # The governor holds every call of this connection (not just this one) until Xero's wait is over.
                self._governor.backoff(retry_after if retry_after is not None else DEFAULT_RETRY_AFTER_S)
                continue
            if status >= 500:
                failures += 1
                if failures < self._max_attempts and retry_5xx:
                    self._retry_pause(failures)
                    continue
            if content is not None:
                _raise_for_write_status(response, method, endpoint)
            _raise_for_status(response, method, endpoint)

    def _token(self) -> str:
        token = self._access_token()
        if self._refreshed_token is not None and token == self._rejected_token:
            return self._refreshed_token
        return token

    def _refresh(self, rejected: str) -> None:
        assert self._on_unauthorized is not None
        self.token_refreshes += 1
        self._rejected_token = rejected
        self._refreshed_token = self._on_unauthorized()

    def _retry_pause(self, failures: int) -> None:
        self.retries += 1
        self._sleep(self._retry_base_delay_s * 2 ** (failures - 1))


def _page_count(pagination: Any) -> int | None:
    if isinstance(pagination, Mapping) and isinstance(pagination.get("pageCount"), int | Decimal):
        return int(pagination["pageCount"])
    return None


def _is_last_page(pagination: Any, page: int, count: int, page_size: int) -> bool:
    # pageCount saves the extra call for an empty page when the total is an exact multiple of pageSize.
    page_count = _page_count(pagination)
    if page_count is not None:
        return page >= page_count
    # The page size Xero applied, should it cap the one asked for: a short page must really be the last.
    applied = pagination.get("pageSize") if isinstance(pagination, Mapping) else None
    if isinstance(applied, int | Decimal) and int(applied) > 0:
        page_size = int(applied)
    return count < page_size


def _raise_for_status(response: httpx.Response, method: str, endpoint: str) -> NoReturn:
    """Map Xero's error answers to typed errors (messages carry no token: Xero never echoes it)."""
    status = response.status_code
    body = json_object(response, parse_float=Decimal, object_hook=convert_dates_hook) or {}
    provider_code = _str(body.get("Type")) or _str(body.get("title"))
    message = _error_message(body) or f"Xero answered HTTP {status} to {method} /{endpoint}."
    # 401: the token is invalid or expired (and a refresh did not help); 403: the organisation
    # (xero-tenant-id) has not authorised this app, or the token lacks the scope.
    raise_for_provider_status(response, message, provider_code=provider_code)


def _raise_for_write_status(response: httpx.Response, method: str, endpoint: str) -> None:
    """A write's refusal: 400/403/404/409/422 are final (``ProviderRejected`` with Xero's words), 401 after a
    refresh is an auth failure and the rest (429, 5xx) stay retryable, as ``_raise_for_status`` maps them."""
    status = response.status_code
    if status == 401 or status == 429 or status >= 500 or status < 400:
        return
    body = json_object(response, parse_float=Decimal, object_hook=convert_dates_hook) or {}
    details = _validation_messages(body)
    provider_code = _str(body.get("Type")) or _str(body.get("Title")) or _str(body.get("title"))
    text = response.text.strip() if not body and len(response.text) <= 200 else ""
    message = _error_message(body) or text or f"Xero answered HTTP {status} to {method} /{endpoint}."
    raise ProviderRejected(message, status=status, provider_code=provider_code, details=details)


def _validation_messages(body: Mapping[str, Any]) -> list[str]:
    return [
        message
        for element in body.get("Elements") or []
        if isinstance(element, Mapping)
        for error in element.get("ValidationErrors") or []
        if isinstance(error, Mapping) and (message := _str(error.get("Message")))
    ]


def _error_message(body: Mapping[str, Any]) -> str | None:
    """Xero's own words: the ValidationErrors of a ValidationException, else its Message (or RFC 7807 detail)."""
    validation = _validation_messages(body)
    if validation:
        return "; ".join(dict.fromkeys(validation))  # the same message repeats once per element
    detail = _str(body.get("Message")) or _str(body.get("Detail")) or _str(body.get("detail"))
    title = _str(body.get("title")) or _str(body.get("Title"))
    if title and detail and title != detail:
        return f"{title}: {detail}"
    return detail or title


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
