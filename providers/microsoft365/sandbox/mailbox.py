"""An Outlook mailbox: well-known folders, deterministic seeded messages made on demand (a 50,000-message mailbox
costs nothing until it is read), messages delivered later, and the changes delta queries answer.

Seeded messages come in threads of up to three, alternating between a demo contact (the Google sandbox's demo
people, the CRM's contacts) and the mailbox's owner, so replies reference earlier Internet message ids and both
directions exist: received ones in the inbox (a few in Deleted Items), sent ones in Sent Items (a few drafts).
Every change takes the mailbox's next sequence number; an item remembers the sequence of its last change, and a
folder the messages that left it, which is what a delta round since a sequence reads.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from providers.google_workspace.sandbox_credentials import ALIAS_SPELLINGS, DEMO_CONTACTS
from providers.microsoft365.sandbox.ids import MailboxIds

Person = tuple[str, str]  # (name, address)
# Outlook's well-known folders the sandbox keeps (https://learn.microsoft.com/en-us/graph/api/resources/mailfolder),
# by well-known name. Deviation: Junk Email, Outbox, Conversation History and child folders are not kept.
FOLDERS = {"inbox": "Inbox", "sentitems": "Sent Items", "drafts": "Drafts", "deleteditems": "Deleted Items",
           "archive": "Archive"}  # fmt: skip
ROOT = "msgfolderroot"
_THREAD = 3
_TOPICS = (
    "Renewal of the service agreement", "Quote for the spring order", "Meeting next week", "Invoice question",
    "Project kickoff", "Follow-up on our call", "Delivery schedule", "Pricing update",
)  # fmt: skip


@dataclass(frozen=True)
class Content:
    """What a message says; it never changes after it is made."""

    subject: str
    text: str
    sender: Person
    to: tuple[Person, ...]
    cc: tuple[Person, ...]
    thread: int  # the conversation: the seq of its first message
    position: int  # 0: the conversation's first message
    message_id: str  # the Internet message id
    references: tuple[str, ...]  # the earlier messages' Internet message ids, oldest first
    attachments: int
    is_draft: bool
    # What a client writes (drafts, sends: ``drafts``); seeded and delivered messages keep the defaults.
    bcc: tuple[Person, ...] = ()
    body: tuple[str, str] | None = None  # (contentType, content) as written; None: ``text`` as html
    headers: tuple[tuple[str, str], ...] = ()  # custom x- Internet message headers
    sent_ms: int | None = None


@dataclass
class Item:
    """A message's state: where it is and what may change."""

    seq: int
    folder: str  # a well-known name
    received_ms: int
    created_ms: int
    is_read: bool
    flagged: bool
    categories: tuple[str, ...]
    modified_ms: int
    version: int = 0  # bumped by every change: the changeKey's
    moves: int = 0  # folder moves so far: part of the REST id
    changed: int = 0  # the mailbox sequence of its last change (0: as seeded)
    born: int = 0  # the mailbox sequence it arrived at (0: seeded)
    content: Content | None = None  # None: a seeded message, made again from its seq


@dataclass(frozen=True)
class Departure:
    """A message that left ``folder`` (moved or deleted) at ``sequence``, as it was known there."""

    sequence: int
    seq: int
    folder: str
    moves: int


@dataclass
class Mailbox:
    address: str
    owner: str  # the owner's display name
    seed: int
    size: int
    newest_ms: int  # the seeded messages' newest date; they go back ``spacing_ms`` each
    spacing_ms: int
    ids: MailboxIds = field(init=False)
    items: dict[int, Item] = field(default_factory=dict)  # messages changed or delivered since seeding, by seq
    deleted: set[int] = field(default_factory=set)
    departures: list[Departure] = field(default_factory=list)
    sequence: int = 0  # the last change's number
    epoch: int = 0  # bumped to void every delta token given so far
    next_seq: int = 0
    # Told of every change under the sandbox's lock, (item, folder before, folder after) with None for "not in
    # the mailbox" (delivered; deleted): what change notifications are made from.
    on_change: Callable[[Item, str | None, str | None], None] | None = field(default=None, repr=False, compare=False)
    _listing: dict[str, list[tuple[list[int], int]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.ids = MailboxIds(self.seed, self.address)
        self.next_seq = self.next_seq or self.size + 1

    # --- seeded messages ------------------------------------------------------------------------------------

    def _shape(self, seq: int) -> tuple[int, int, int, bool]:
        """(index, thread index, position, outbound) of seeded message ``seq`` (index 0 is the newest)."""
        index = self.size - seq
        thread_first = min(index - index % _THREAD + _THREAD - 1, self.size - 1)
        position = thread_first - index
        return index, index // _THREAD, position, position % 2 == 1

    def seeded(self, seq: int) -> Item:
        index, thread, _, outbound = self._shape(seq)
        if outbound:
            folder = "drafts" if index % 29 == 5 else "sentitems"
        else:
            folder = "deleteditems" if index % 17 == 8 else "inbox"
        received = (self.newest_ms - index * self.spacing_ms) // 1000 * 1000
        categories = ("Customers",) if thread % 6 == 0 else ()
        return Item(seq, folder, received, received, outbound or index % 4 != 0, index % 11 == 3, categories,
                    received)  # fmt: skip

    def seeded_content(self, seq: int) -> Content:
        index, thread, position, outbound = self._shape(seq)
        name, address = DEMO_CONTACTS[(thread * 7 + self.seed) % len(DEMO_CONTACTS)]
        contact = (name, ALIAS_SPELLINGS.get(address, address) if thread % 4 == 1 else address)
        owner = (self.owner, self.address)
        cc: tuple[Person, ...] = ()
        if thread % 5 == 2:
            cc = (DEMO_CONTACTS[(thread * 7 + self.seed + 3) % len(DEMO_CONTACTS)],)
        topic = _TOPICS[thread % len(_TOPICS)]
        greeting = (name if outbound else self.owner).split()[0]
        reference = hashlib.sha256(f"{self.seed}:{seq}".encode()).hexdigest()[:12]
        text = (
            f"Hi {greeting},\n\nAbout {topic.lower()}: message {seq} of the thread with {name}.\n"
            f"Reference {reference}.\n\nWe have reviewed the figures you sent and will come back with the revised "
            "schedule shortly.\n\nBest regards\n\nP.S. The full terms are in the body only, past any preview.\n"
        )
        return Content(
            topic if position == 0 else f"Re: {topic}", text, owner if outbound else contact,
            (contact,) if outbound else (owner,), cc, seq - position, position, self.message_id(seq),
            tuple(self.message_id(seq - k) for k in range(position, 0, -1)), 1 if seq % 10 == 0 else 0,
            outbound and index % 29 == 5,
        )  # fmt: skip

    def message_id(self, seq: int) -> str:
        digest = hashlib.sha1(self.address.encode()).hexdigest()[:8]  # noqa: S324 -- a name, not a secret
        return f"<{seq}.{self.seed}.{digest}@sandbox.vrtx-demo.example>"

    # --- reads ----------------------------------------------------------------------------------------------

    def item(self, seq: int) -> Item | None:
        if seq in self.deleted:
            return None
        if seq in self.items:
            return self.items[seq]
        return self.seeded(seq) if 1 <= seq <= self.size else None

    def content(self, item: Item) -> Content:
        return item.content or self.seeded_content(item.seq)

    def listing(self, folder: str) -> list[tuple[list[int], int]]:
        """The folder's messages newest first, as ([-received ms, -seq], seq); cached until a change."""
        cached = self._listing.get(folder)
        if cached is None:
            entries = [([-i.received_ms, -i.seq], i.seq) for i in self.items.values() if i.folder == folder]
            for seq in range(1, self.size + 1):
                if seq not in self.items and seq not in self.deleted:
                    seeded = self.seeded(seq)
                    if seeded.folder == folder:
                        entries.append(([-seeded.received_ms, -seq], seq))
            cached = self._listing[folder] = sorted(entries)
        return cached

    def received_since(self, folder: str, lo_ms: int | None, strict: bool) -> list[tuple[list[int], int]]:
        """The folder's listing cut to messages received at or after (``strict``: after) ``lo_ms``."""
        entries = self.listing(folder)
        if lo_ms is None:
            return entries
        cut = bisect.bisect_left if strict else bisect.bisect_right  # keys hold -received: newest first
        return entries[: cut(entries, -lo_ms, key=lambda entry: entry[0][0])]

    # --- changes --------------------------------------------------------------------------------------------

    def _changed(self, item: Item, now_ms: int, was: str | None) -> Item:
        self.sequence += 1
        item.changed, item.version, item.modified_ms = self.sequence, item.version + 1, now_ms
        self.items[item.seq] = item
        self._recorded(item, was, item.folder)
        return item

    def _recorded(self, item: Item, was: str | None, now: str | None) -> None:
        """Where every change ends, whichever write made it: listings are stale and the listener is told."""
        self._listing.clear()
        if self.on_change is not None:
            self.on_change(item, was, now)

    def _own(self, seq: int) -> Item:
        item = self.item(seq)
        if item is None:
            raise KeyError(seq)
        return replace(item)

    def deliver(self, content: Content, folder: str, now_ms: int) -> Item:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        if content.thread == 0:
            content = replace(content, thread=seq)
        item = self._changed(Item(seq, folder, now_ms, now_ms, folder != "inbox", False, (), now_ms, content=content),
                             now_ms, None)  # fmt: skip
        item.born = item.changed
        return item

    def update(self, seq: int, now_ms: int, *, is_read: bool | None = None, flagged: bool | None = None) -> Item:
        item = self._own(seq)
        item.is_read = item.is_read if is_read is None else is_read
        item.flagged = item.flagged if flagged is None else flagged
        return self._changed(item, now_ms, item.folder)

    def move(self, seq: int, folder: str, now_ms: int) -> Item:
        item = self._own(seq)
        if folder == item.folder:
            return item
        self.departures.append(Departure(self.sequence + 1, seq, item.folder, item.moves))
        was, item.folder, item.moves = item.folder, folder, item.moves + 1
        return self._changed(item, now_ms, was)

    def revise(self, seq: int, now_ms: int, content: Content, folder: str | None = None) -> Item:
        """A written message's new content (a draft edited, or sent: ``folder`` sentitems), as one change."""
        item = self._own(seq)
        was = item.folder
        if folder is not None and folder != item.folder:
            self.departures.append(Departure(self.sequence + 1, seq, item.folder, item.moves))
            item.folder, item.moves, item.received_ms = folder, item.moves + 1, now_ms
        item.content = content
        return self._changed(item, now_ms, was)

    def delete(self, seq: int) -> None:
        """Deleted for good (Graph's DELETE: out of every folder, into Recoverable Items)."""
        item = self._own(seq)
        self.sequence += 1
        self.departures.append(Departure(self.sequence, seq, item.folder, item.moves))
        self.items.pop(seq, None)
        self.deleted.add(seq)
        self._recorded(item, item.folder, None)
