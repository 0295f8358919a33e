"""What the mailbox bench (bench/mailbox.py) must know of each provider; everything else there is shared.

Per provider: its sandbox with the bench's mailbox (limits off) and how many messages it holds in the folders the
platform syncs by default, the raw baseline's calls (the same ones the provider's source makes, with the same
selection, window and page size, read from the provider's own constants), and the row shape it COPYs. Sandbox imports
stay inside the functions: the sandbox's own process builds the mailbox, the bench's only talks to it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx

from providers.microsoft365.client import prefer
from providers.microsoft365.source import DEFAULT_FOLDERS, MESSAGE_FIELDS, PAGE_SIZE

Record = dict[str, Any]


@dataclass(frozen=True)
class MailboxBench:
    slug: str
    name: str
    folders: str  # the folders (labels) the platform syncs by default, as the headline names them
    # The mailbox's messages fall within the last ``days``: inside the first sync's window (``history_days``).
    days: int
    sandbox: Callable[[int, int], tuple[Any, int]]  # (messages, days) -> app, messages held in the synced folders
    # (client with the bearer, sandbox base URL, window start) -> the rows, as the provider's source shapes them
    fetch: Callable[[httpx.Client, str, datetime], list[Record]]
    columns: tuple[str, str, str]  # the row's id, thread and subject keys: the baseline table's own columns
    calls: str  # what the baseline does, for the headline


def history_days(slug: str) -> int:
    """The first sync's window: the provider's ``history_days`` default."""
    from vrtx_pipelines.registry import get_provider

    return int(get_provider(slug).config_schema["properties"]["history_days"]["default"])


# --- Google Workspace (Gmail) ------------------------------------------------------------------------------------

GMAIL_LABELS = ("INBOX", "SENT")  # the source's default mailbox_labels
GMAIL_GETS_IN_FLIGHT = 8  # as the platform's messages.get calls


def _gmail_sandbox(messages: int, days: int) -> tuple[Any, int]:
    from providers.google_workspace.sandbox import GoogleKnobs, GoogleSandbox, create_app
    from providers.google_workspace.sandbox_credentials import DEMO_MAILBOX

    sandbox = GoogleSandbox(seed=1)
    sandbox.add_mailbox(DEMO_MAILBOX, messages=messages, days=days, events=0)
    box = sandbox.mailbox(DEMO_MAILBOX)
    held = box.listing(("bench",), lambda m: bool(m.labels & set(GMAIL_LABELS)), content=False)
    return create_app(sandbox, knobs=GoogleKnobs(enforce_quotas=False)), len(held)


def _gmail_messages(client: httpx.Client, base_url: str, since: datetime) -> list[Record]:
    """``messages.list`` pages of 500 ids per label in the window, then ``messages.get`` (full) for each."""
    from providers.google_workspace.source import message_row

    gmail = f"{base_url}/gmail/v1/users/me"
    ids: list[str] = []
    for label in GMAIL_LABELS:
        params: dict[str, Any] = {"q": f"after:{int(since.timestamp())}", "labelIds": label, "maxResults": 500}
        while True:
            page = client.get(f"{gmail}/messages", params=params).raise_for_status().json()
            ids += [ref["id"] for ref in page.get("messages", [])]
            if not page.get("nextPageToken"):
                break
            params["pageToken"] = page["nextPageToken"]

    def one(message_id: str) -> Record:
        found = client.get(f"{gmail}/messages/{message_id}", params={"format": "full"}).raise_for_status().json()
        return message_row(found, "bench")

    with ThreadPoolExecutor(max_workers=GMAIL_GETS_IN_FLIGHT) as pool:
        return list(pool.map(one, dict.fromkeys(ids)))


GMAIL = MailboxBench(
    slug="google_workspace",
    name="Gmail",
    folders=" and ".join(GMAIL_LABELS),
    days=80,
    sandbox=_gmail_sandbox,
    fetch=_gmail_messages,
    columns=("id", "thread_id", "subject"),
    calls=f"messages.list pages of 500 ids per label, messages.get for each, {GMAIL_GETS_IN_FLIGHT} in flight",
)


# --- Microsoft 365 (Outlook mail through Graph) --------------------------------------------------------------------


def _graph_sandbox(messages: int, days: int) -> tuple[Any, int]:
    from providers.microsoft365.sandbox import MicrosoftKnobs, create_app, demo_sandbox
    from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX

    sandbox = demo_sandbox(seed=1)  # the demo organisation and user; their mailbox replaced by the bench's
    sandbox.add_mailbox(DEMO_MAILBOX, messages=messages, days=days, events=0)
    return create_app(sandbox, knobs=MicrosoftKnobs(enforce_limits=False)), sandbox.count(DEMO_MAILBOX, "messages")


def _graph_messages(client: httpx.Client, base_url: str, since: datetime) -> list[Record]:
    """Each default folder's ``messages/delta`` from the window's start, with the source's ``$select``, page size
    and ``Prefer`` preferences, ``@odata.nextLink`` to the ``@odata.deltaLink``."""
    from providers.microsoft365.sandbox_credentials import DEMO_MAILBOX
    from providers.microsoft365.source import message_row

    no_bodies: Any = SimpleNamespace(seal=None)  # the row as a connection that keeps no bodies shapes it
    headers = {"Accept": "application/json", **prefer(f"odata.maxpagesize={PAGE_SIZE}")}
    first = {"$select": ",".join(MESSAGE_FIELDS), "$filter": f"receivedDateTime ge {since:%Y-%m-%dT%H:%M:%SZ}"}
    rows: list[Record] = []
    for folder in DEFAULT_FOLDERS:
        url: str | None = f"{base_url}/v1.0/me/mailFolders/{folder}/messages/delta"
        params: dict[str, str] | None = first
        while url:
            page = client.get(url, params=params, headers=headers).raise_for_status().json()
            rows += [message_row(m, DEMO_MAILBOX.lower(), folder, no_bodies) for m in page["value"]
                     if "@removed" not in m]  # fmt: skip
            url, params = page.get("@odata.nextLink"), None  # the links carry the first request's options
    return rows


MICROSOFT365 = MailboxBench(
    slug="microsoft365",
    name="Microsoft 365",
    folders=" and ".join(DEFAULT_FOLDERS),
    days=25,
    sandbox=_graph_sandbox,
    fetch=_graph_messages,
    columns=("id", "conversation_id", "subject"),
    calls=f"each folder's messages/delta in pages of {PAGE_SIZE} (Prefer: odata.maxpagesize) to its delta link",
)

PROVIDERS = {bench.slug: bench for bench in (GMAIL, MICROSOFT365)}


def window_start(bench: MailboxBench) -> datetime:
    """Where the platform's first sync starts reading: ``history_days`` before now."""
    return datetime.now(UTC) - timedelta(days=history_days(bench.slug))
