"""The webhook receiving path: verify on the event loop, store through one writer that commits deliveries in groups.

Each delivery is acknowledged only once its events are committed, as before; what changes under load is that the
deliveries which arrived while one commit was in flight share the next one (group commit). A commit per delivery
costs a transaction, a WAL flush and a thread hand-off each; a group pays them once, so throughput rises with
concurrency instead of queueing on the database, and a quiet endpoint still commits each delivery at once.

The connection lookup is cached (``TargetCache``) and the decrypted secret too (``SecretCache``); on a miss the
lookup runs on the thread pool. Everything else (signature, parsing, filtering) is CPU work on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from providers.base import Provider
from vrtx_pipelines.config import Settings
from vrtx_pipelines.credentials.vault import Vault
from vrtx_pipelines.db.models import utcnow
from vrtx_pipelines.db.session import session_factory
from vrtx_pipelines.webhooks.inbox import (
    MAX_BODY_BYTES,
    Delivery,
    IngestResult,
    SecretCache,
    Target,
    TargetCache,
    WebhookKeysUnavailable,
    WebhookRejected,
    WebhookTooLarge,
    app_delivery,
    delivery,
    insert_ignoring_duplicates,
    organisations_of,
    signature_verifies,
    touch_received,
    verified_app_events,
)
from vrtx_pipelines.webhooks.keys import KeysUnavailable, PublicKeys

log = logging.getLogger("vrtx.webhooks")

# Rows per commit: large enough that a burst is a few commits, small enough that one statement stays quick.
MAX_GROUP_ROWS = 500


@dataclass
class _Pending:
    rows: list[dict[str, Any]]
    touch: tuple[int, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int]
    keys: list[tuple[int, str]] = field(default_factory=list)


def _settle(future: asyncio.Future[int], value: int | BaseException) -> None:
    if future.done():  # the request went away (client disconnected): nothing to answer
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)


class InboxWriter:
    """One thread that writes queued deliveries to the inbox, many per transaction, and settles each delivery's
    future with how many of its events were new once the transaction has committed."""

    def __init__(self, engine: Engine, *, max_rows: int = MAX_GROUP_ROWS) -> None:
        self.sessions = session_factory(engine)
        self.max_rows = max_rows
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.commits = 0  # for operators and tests: how many transactions stored how many deliveries
        self.deliveries = 0

    async def write(self, rows: list[dict[str, Any]], touch: tuple[int, ...] = ()) -> int:
        """Store one delivery's inbox rows (and refresh ``last_received_at`` of the ``touch`` webhook rows); returns
        how many rows were new (the rest were stored before)."""
        if not rows and not touch:
            return 0
        loop = asyncio.get_running_loop()
        pending = _Pending(rows, touch, loop, loop.create_future())
        self._start()
        self._queue.put(pending)
        return await pending.future

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vrtx-webhook-inbox", daemon=True)
                self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, rows, stop = [first], len(first.rows), False
            while rows < self.max_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
                rows += len(item.rows)
            self._write_group(group)
            if stop:
                return

    def _write_group(self, group: list[_Pending]) -> None:
        try:
            new = self._commit_once_more_if_disconnected(group)
        except Exception as exc:  # noqa: BLE001 -- one bad delivery must not fail the others with it
            self._isolate(group, exc)
            return
        self.commits += 1
        self.deliveries += len(group)
        for pending in group:
            stored = 0
            for key in pending.keys:
                if key in new:
                    new.discard(key)  # the same event in two deliveries of one group is new for the first only
                    stored += 1
            pending.loop.call_soon_threadsafe(_settle, pending.future, stored)

    def _isolate(self, group: list[_Pending], exc: BaseException) -> None:
        if len(group) == 1:
            log.error("webhook delivery not stored (%s): the provider will retry it", type(exc).__name__)
            pending = group[0]
            pending.loop.call_soon_threadsafe(_settle, pending.future, exc)
            return
        for pending in group:
            self._write_group([pending])

    def _commit_once_more_if_disconnected(self, group: list[_Pending]) -> set[tuple[int, str]]:
        try:
            return self._commit(group)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return self._commit(group)  # a pooled connection the database had closed: once more on a new one

    def _commit(self, group: list[_Pending]) -> set[tuple[int, str]]:
        rows: dict[tuple[int, str], dict[str, Any]] = {}
        touch: set[int] = set()
        now: datetime = utcnow()
        for pending in group:
            pending.keys = []
            for row in pending.rows:
                key = (row["tenant_integration_id"], row["provider_event_id"])
                pending.keys.append(key)
                rows.setdefault(key, row)
            touch.update(pending.touch)
        session = self.sessions()
        try:
            new = insert_ignoring_duplicates(session, list(rows.values()))
            touch_received(session, touch, now)
            session.commit()
            return new
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


class WebhookReceiver:
    """Verifies, parses and stores deliveries for one API process (see the module's docstring)."""

    def __init__(self, engine: Engine, vault: Vault, settings: Settings) -> None:
        self.vault = vault
        self.settings = settings
        self.sessions = session_factory(engine)
        self.targets = TargetCache()
        self.secrets = SecretCache()
        self.writer = InboxWriter(engine)
        self.keys = PublicKeys()

    async def receive(
        self, provider: Provider, tenant_id: str, body: bytes, headers: Mapping[str, str]
    ) -> IngestResult:
        """``WebhookRejected`` (401) for anything that fails authentication, ``WebhookMalformed`` (400) for a
        verified body that does not parse; nothing is stored in either case."""
        spec = provider.webhooks
        if spec is None:
            raise WebhookRejected()
        if len(body) > MAX_BODY_BYTES:
            raise WebhookTooLarge()
        target = await self._verified(provider, tenant_id, body, headers)
        return await self._store(delivery(provider, spec, target, body, headers=headers, targets=self.targets))

    async def receive_for_app(self, provider: Provider, body: bytes, headers: Mapping[str, str]) -> IngestResult:
        """A delivery to the platform app's URL, routed by each event's organisation; same errors as ``receive``."""
        if len(body) > MAX_BODY_BYTES:
            raise WebhookTooLarge()
        keys = await self._keys(provider)
        try:
            events = verified_app_events(provider, self.settings, body, headers, keys)
        except WebhookRejected:
            fresh = await self._fresh_keys(provider)
            if fresh is None:
                raise
            events = verified_app_events(provider, self.settings, body, headers, fresh)
        organisations = organisations_of(events)
        targets, missing = self.targets.cached_organisations(provider.slug, organisations)
        if missing:
            targets.update(await run_in_threadpool(self._lookup_organisations, provider.slug, missing))
        return await self._store(app_delivery(provider, events, targets, cache=self.targets))

    async def _store(self, item: Delivery) -> IngestResult:
        stored = await self.writer.write(item.rows, item.touch_webhook_ids)
        return IngestResult(stored, item.kept - stored, item.dropped, item.receiving)

    async def _verified(self, provider: Provider, tenant_id: str, body: bytes, headers: Mapping[str, str]) -> Target:
        assert provider.webhooks is not None
        keys = await self._keys(provider)
        hit, target = self.targets.cached(provider.slug, tenant_id)
        if hit and target is not None and self._verifies(provider, target, body, headers, keys):
            return target
        # Not cached, or cached and not verifying: a fresh lookup, so a rotated secret applies at once.
        target = await run_in_threadpool(self._lookup, provider.slug, tenant_id)
        if target is not None and self._verifies(provider, target, body, headers, keys):
            return target
        if (
            target is not None
            and (fresh := await self._fresh_keys(provider)) is not None
            and self._verifies(provider, target, body, headers, fresh)
        ):
            return target
        raise WebhookRejected()

    def _verifies(
        self,
        provider: Provider,
        target: Target,
        body: bytes,
        headers: Mapping[str, str],
        keys: Mapping[str, Any] | None,
    ) -> bool:
        assert provider.webhooks is not None
        return signature_verifies(
            self.vault, self.settings, provider.webhooks, provider.slug, target, body, headers, self.secrets, keys
        )

    def _keys_url(self, provider: Provider) -> str | None:
        url = provider.webhooks.public_keys_url if provider.webhooks is not None else None
        return self.settings.provider_url(provider.slug, url) if url else None

    async def _keys(self, provider: Provider) -> Mapping[str, Any] | None:
        """The provider's signing keys where it signs with its own (cached; a fetch runs off the event loop)."""
        url = self._keys_url(provider)
        if url is None:
            return None
        keys = self.keys.cached(url)
        if keys is not None:
            return keys
        try:
            return await run_in_threadpool(self.keys.get, url)
        except KeysUnavailable as exc:
            log.warning("%s webhook keys: %s", provider.name, exc)
            raise WebhookKeysUnavailable() from exc

    async def _fresh_keys(self, provider: Provider) -> Mapping[str, Any] | None:
        """Keys fetched again after a delivery did not verify (it may name a key published since); None when the
        provider signs with no keys of its own, or they were fetched under a minute ago."""
        url = self._keys_url(provider)
        if url is None:
            return None
        try:
            return await run_in_threadpool(self.keys.refetch, url)
        except KeysUnavailable as exc:
            log.warning("%s webhook keys: %s", provider.name, exc)
            return None

    def _lookup_organisations(self, slug: str, organisations: set[str]) -> dict[str, list[Target]]:
        session = self.sessions()
        try:
            return self.targets.load_organisations(session, slug, organisations)
        finally:
            session.close()

    def _lookup(self, slug: str, tenant_id: str) -> Target | None:
        session = self.sessions()
        try:
            return self.targets.load(session, slug, tenant_id)
        finally:
            session.close()
