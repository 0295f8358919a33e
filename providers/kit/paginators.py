"""Paginators: one small object per listing, deciding the next request from the page just read.

``ApiClient.paginate`` drives them: ``first`` shapes the first request, ``ahead`` may name the next page before the
current one is decoded (only page numbers can: the total came with an earlier page), and ``next`` reads the decoded
page (the body is decoded once, by the client) and returns the next request or None. A listing that ends with a
token to resume from (Graph's delta link, Google's sync token) leaves it in ``token``.

Where dlt's REST paginators fit they are used through ``Dlt`` (they read ``response.json()`` and mutate a requests
``Request``: they get a shim of each); ours cover what they cannot do (see each class).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from dlt.sources.helpers.rest_client import paginators as dlt_paginators

if TYPE_CHECKING:
    from dlt.sources.helpers.rest_client.paginators import BasePaginator


@dataclass
class PageRequest:
    """One page's request: an absolute URL, its query parameters, headers, and a JSON body for POSTed searches."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    json: dict[str, Any] | None = None

    def with_params(self, **params: Any) -> PageRequest:
        return replace(self, params={**self.params, **params})


@dataclass(frozen=True)
class Page:
    """A page as read: the request that asked for it, the answer, its decoded body and the records selected."""

    request: PageRequest
    response: httpx.Response
    body: Any
    records: list[dict[str, Any]]


class Paginator:
    """The base: a listing of one page. Subclasses keep their state on the instance (one per listing)."""

    reads_ahead: ClassVar[bool] = False
    token: str | None = None  # what the last page said to resume the next listing from

    def first(self, request: PageRequest) -> PageRequest:
        return request

    def ahead(self, current: PageRequest) -> PageRequest | None:
        """The next page's request when it is known to exist before ``current``'s answer is decoded."""
        return None

    def next(self, page: Page) -> PageRequest | None:
        """The next page's request after ``page``, or None when the listing ends (or ``ahead`` asked already)."""
        return None


SinglePage = Paginator


def value_at(body: Any, path: str) -> Any:
    """The value at a dotted path (``pagination.pageCount``), or None where the body has no such value."""
    value = body
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _count(value: Any) -> int | None:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return int(value)
    return None


class PageNumber(Paginator):
    """Page numbers, reading ahead. Once an answer's page count says page N+1 exists, it is asked for as soon as page
    N arrives, before N is decoded, so the provider's time and ours overlap (dlt's paginators only decide after
    decoding). A page asked for ahead is read even when the total shrank meanwhile (it holds nothing, or records
    that now belong to the listing); pages added while paging are read to the new end. Without a page count, pages
    are asked for one after the other until a short one: the page size the answer says it applied, should it cap
    the one asked for."""

    reads_ahead = True

    def __init__(
        self,
        page_size: int,
        *,
        page_param: str = "page",
        size_param: str | None = "pageSize",
        first_page: int = 1,
        page_count: str | None = None,  # dotted path of the answer's page count
        applied_size: str | None = None,  # dotted path of the page size the answer applied
    ) -> None:
        self.page_size = page_size
        self.page_param = page_param
        self.size_param = size_param
        self.first_page = first_page
        self.page_count = page_count
        self.applied_size = applied_size
        self._page = 1  # the ordinal of the page being read
        self._known = 0  # the latest page count
        self._asked_ahead = False

    def _at(self, request: PageRequest, ordinal: int) -> PageRequest:
        params: dict[str, Any] = {self.page_param: self.first_page + ordinal - 1}
        if self.size_param:
            params[self.size_param] = self.page_size
        return request.with_params(**params)

    def first(self, request: PageRequest) -> PageRequest:
        self._page, self._known = 1, 0
        return self._at(request, 1)

    def ahead(self, current: PageRequest) -> PageRequest | None:
        self._asked_ahead = self._page < self._known
        return self._at(current, self._page + 1) if self._asked_ahead else None

    def next(self, page: Page) -> PageRequest | None:
        count = _count(value_at(page.body, self.page_count)) if self.page_count else None
        self._known = count or 0
        following = None
        if not self._asked_ahead and not self._is_last(page, count):
            following = self._at(page.request, self._page + 1)
        self._page += 1
        return following

    def _is_last(self, page: Page, count: int | None) -> bool:
        if count is not None:  # saves the call for an empty page when the total is an exact multiple of the size
            return self._page >= count
        applied = _count(value_at(page.body, self.applied_size)) if self.applied_size else None
        return len(page.records) < (applied if applied and applied > 0 else self.page_size)


class Offset(Paginator):
    """Offsets: ``offset``/``limit`` parameters, or any rendering of them (QuickBooks puts STARTPOSITION and
    MAXRESULTS inside its query statement, which dlt's OffsetPaginator cannot write). ``render(params, offset,
    limit)`` returns the page's parameters from the listing's own. The listing ends at a short page, or at
    ``total`` (a dotted path of the answer's record count) when the provider gives one."""

    def __init__(
        self,
        limit: int,
        *,
        start: int = 0,
        offset_param: str = "offset",
        limit_param: str = "limit",
        total: str | None = None,
        render: Callable[[Mapping[str, Any], int, int], Mapping[str, Any]] | None = None,
    ) -> None:
        self.limit = limit
        self.start = start
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.total = total
        self.render = render
        self._offset = start
        self._params: dict[str, Any] = {}

    def _at(self, request: PageRequest) -> PageRequest:
        if self.render is not None:
            params = dict(self.render(self._params, self._offset, self.limit))
        else:
            params = {**self._params, self.offset_param: self._offset, self.limit_param: self.limit}
        return replace(request, params=params)

    def first(self, request: PageRequest) -> PageRequest:
        self._offset, self._params = self.start, dict(request.params)
        return self._at(request)

    def next(self, page: Page) -> PageRequest | None:
        if len(page.records) < self.limit:
            return None
        self._offset += self.limit
        total = _count(value_at(page.body, self.total)) if self.total else None
        if total is not None and self._offset - self.start >= total:
            return None
        return self._at(page.request)


class Stamped(Paginator):
    """Another paginator's listing, keeping the value at ``key`` of its *first* page's body as the token to resume
    the next listing from: the provider's clock when the listing began (QuickBooks' ``time``), so whatever changed
    while it was read is listed again next time rather than missed."""

    def __init__(self, inner: Paginator, key: str) -> None:
        if inner.reads_ahead:
            raise ValueError("a stamped listing asks for its pages one after the other")
        self.inner, self.key = inner, key
        self._stamped = False

    def first(self, request: PageRequest) -> PageRequest:
        self.token, self._stamped = None, False
        return self.inner.first(request)

    def next(self, page: Page) -> PageRequest | None:
        if not self._stamped:
            value = value_at(page.body, self.key)
            self.token, self._stamped = (str(value) if value else None), True
        return self.inner.next(page)


class ChangedSince(Paginator):
    """A listing of what changed since a time, capped per call (QuickBooks' change data capture: up to ``cap``
    records per entity): while a call comes back full, the next asks again from the last record's change time
    (``field``, dotted; sent as ``param`` through ``format``). Records at that time come again: the merge keeps one
    of each. A full call whose last record did not move the time forward ends the listing (nothing new to ask)."""

    def __init__(self, param: str, field: str, cap: int, *, format: Callable[[Any], str] = str) -> None:
        self.param, self.field, self.cap, self.format = param, field, cap, format

    def next(self, page: Page) -> PageRequest | None:
        if len(page.records) < self.cap:
            return None
        last = value_at(page.records[-1], self.field)
        since = self.format(last) if last is not None else None
        if since is None or since == page.request.params.get(self.param):
            return None
        return page.request.with_params(**{self.param: since})


class AfterLastRecord(Paginator):
    """A cursor that is the last record's id (Stripe: ``starting_after=<id>`` while ``has_more``). dlt's cursor
    paginators read the cursor from a place in the body; this one is a field of the page's last record."""

    def __init__(
        self,
        limit: int | None = None,
        *,
        param: str = "starting_after",
        id_field: str = "id",
        has_more: str = "has_more",
        limit_param: str = "limit",
    ) -> None:
        self.limit = limit
        self.param = param
        self.id_field = id_field
        self.has_more = has_more
        self.limit_param = limit_param

    def first(self, request: PageRequest) -> PageRequest:
        return request.with_params(**{self.limit_param: self.limit}) if self.limit else request

    def next(self, page: Page) -> PageRequest | None:
        if value_at(page.body, self.has_more) is not True or not page.records:
            return None
        last = page.records[-1].get(self.id_field)
        return page.request.with_params(**{self.param: last}) if last else None


# --- dlt's paginators, through an adapter ------------------------------------------------------------------------


class _RequestShim:
    """What dlt's paginators touch of a requests ``Request``."""

    def __init__(self, request: PageRequest) -> None:
        self.url = request.url
        self.params: dict[str, Any] | None = dict(request.params)
        self.json = copy.deepcopy(request.json)
        self.headers = dict(request.headers)

    def page_request(self, method: str) -> PageRequest:
        return PageRequest(self.url, dict(self.params or {}), self.headers, method, self.json)


class _ResponseShim:
    """What dlt's paginators read of a requests ``Response``: the body the client decoded once, headers, links."""

    def __init__(self, page: Page) -> None:
        self._body = page.body
        self.headers = page.response.headers
        self.links = page.response.links
        self.status_code = page.response.status_code
        self.url = str(page.response.request.url)

    def json(self) -> Any:
        return self._body


class Dlt(Paginator):
    """One of dlt's paginators (``dlt.sources.helpers.rest_client.paginators``) over the client's decoded pages.
    ``resume_key``: a top-level key of the last page holding what to resume the next listing from."""

    def __init__(self, paginator: BasePaginator, *, resume_key: str | None = None) -> None:
        self.paginator = paginator
        self.resume_key = resume_key

    def first(self, request: PageRequest) -> PageRequest:
        shim = _RequestShim(request)
        self.paginator.init_request(shim)  # type: ignore[arg-type]  # the parts of a Request it touches
        return shim.page_request(request.method)

    def next(self, page: Page) -> PageRequest | None:
        self.paginator.update_state(_ResponseShim(page), page.records)  # type: ignore[arg-type]
        if not self.paginator.has_next_page:
            token = page.body.get(self.resume_key) if self.resume_key and isinstance(page.body, Mapping) else None
            self.token = str(token) if token else None
            return None
        shim = _RequestShim(page.request)
        self.paginator.update_request(shim)  # type: ignore[arg-type]
        return shim.page_request(page.request.method)


class BodyCursor(Dlt):
    """A cursor found in the body, sent as a parameter or a JSON body field (HubSpot: ``paging.next.after`` ->
    ``after``): dlt's JSONResponseCursorPaginator."""

    def __init__(self, cursor_path: str, param: str | None = None, *, body_path: str | None = None) -> None:
        super().__init__(
            dlt_paginators.JSONResponseCursorPaginator(
                cursor_path=cursor_path, cursor_param=param, cursor_body_path=body_path
            )
        )


class NextLink(Dlt):
    """The next page's URL in the body, called as given (Graph: ``@odata.nextLink``); the last page's
    ``resume_key`` (Graph: ``@odata.deltaLink``) is kept to resume from: dlt's JSONLinkPaginator."""

    def __init__(self, key: str = "@odata.nextLink", *, resume_key: str | None = "@odata.deltaLink") -> None:
        super().__init__(dlt_paginators.JSONLinkPaginator(next_url_path=f"['{key}']"), resume_key=resume_key)


class PageToken(Dlt):
    """A page token in the body sent back as a parameter (Google: ``nextPageToken`` -> ``pageToken``); the last
    page's ``resume_key`` (``nextSyncToken``, Gmail's ``historyId``) is kept: dlt's JSONResponseCursorPaginator."""

    def __init__(
        self, key: str = "nextPageToken", param: str = "pageToken", *, resume_key: str | None = "nextSyncToken"
    ) -> None:
        super().__init__(
            dlt_paginators.JSONResponseCursorPaginator(cursor_path=key, cursor_param=param), resume_key=resume_key
        )


class LinkHeader(Dlt):
    """The ``Link: <...>; rel="next"`` header (RFC 8288): dlt's HeaderLinkPaginator."""

    def __init__(self, rel: str = "next") -> None:
        super().__init__(dlt_paginators.HeaderLinkPaginator(links_next_key=rel))
