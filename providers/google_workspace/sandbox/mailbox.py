"""A Gmail mailbox: deterministic seeded messages made on demand (a 50,000-message mailbox costs nothing until it
is read), messages delivered or sent later, labels, and the history Gmail's incremental sync reads.

Ids follow Gmail's shape (16 hex digits, growing with time); history ids grow with every change and are not
contiguous. Seeded messages come in threads of up to three, alternating between a demo contact and the mailbox's
owner, so replies carry ``In-Reply-To``/``References`` and both directions exist.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, parsedate_to_datetime

from providers.google_workspace.sandbox_credentials import ALIAS_SPELLINGS, DEMO_CONTACTS

SYSTEM_LABELS = ("INBOX", "SENT", "UNREAD", "STARRED", "IMPORTANT", "TRASH", "SPAM", "DRAFT", "CATEGORY_UPDATES")
_ID_BASE = 0x18F0_0000_0000_0000
_HISTORY_BASE = 9_000_000
_THREAD = 3
_TOPICS = (
    "Renewal of the service agreement", "Quote for the spring order", "Meeting next week", "Invoice question",
    "Project kickoff", "Follow-up on our call", "Delivery schedule", "Pricing update",
)  # fmt: skip


@dataclass
class Message:
    id: str
    thread_id: str
    internal_ms: int
    labels: set[str]
    mime: bytes  # the RFC 5322 message as stored
    history_id: int

    def parsed(self) -> EmailMessage:
        from email import message_from_bytes, policy

        found = message_from_bytes(self.mime, policy=policy.default)
        assert isinstance(found, EmailMessage)
        return found


@dataclass
class Change:
    history_id: int
    kind: str  # messageAdded | messageDeleted | labelAdded | labelRemoved
    message_id: str
    thread_id: str
    labels: tuple[str, ...]  # the message's labels after the change (for label changes: the labels changed)
    message_labels: tuple[str, ...] = ()


@dataclass
class Watch:
    topic: str
    label_ids: tuple[str, ...]
    behaviour: str
    expiration_ms: int


@dataclass
class Mailbox:
    address: str
    seed: int
    size: int
    newest_ms: int  # the seeded messages' newest date; they go back ``spacing_ms`` each
    spacing_ms: int
    added: dict[str, Message] = field(default_factory=dict)  # delivered, sent or changed later, by id
    deleted: set[str] = field(default_factory=set)
    history: list[Change] = field(default_factory=list)
    history_id: int = 0
    history_floor: int = 0  # a startHistoryId below this is out of date (404)
    next_seq: int = 0
    watch: Watch | None = None
    # Told of every change (under the sandbox's lock): a watched mailbox's changes are published to its topic.
    on_change: Callable[[Mailbox, Change], None] | None = field(default=None, repr=False)
    _listing: dict[tuple[object, ...], list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.history_id = self.history_id or _HISTORY_BASE + self.size * 3
        self.next_seq = self.next_seq or self.size + 1
        self.history_floor = self.history_floor or _HISTORY_BASE  # ids from before the mailbox existed

    # --- seeded messages ------------------------------------------------------------------------------------

    def seq_of(self, message_id: str) -> int | None:
        try:
            value = int(message_id, 16) - _ID_BASE
        except ValueError:
            return None
        return value if value > 0 else None

    @staticmethod
    def id_of(seq: int) -> str:
        return f"{_ID_BASE + seq:016x}"

    def seeded_meta(self, index: int) -> Message:
        """Seeded message ``index`` without its content (ids, date, labels): what listing by date and label needs,
        at a fraction of the cost of building the message."""
        seq = self.size - index
        thread_first = min(index - index % _THREAD + _THREAD - 1, self.size - 1)
        outbound = (thread_first - index) % 2 == 1
        labels = {"SENT"} if outbound else {"INBOX", *(("UNREAD",) if index % 4 == 0 else ())}
        internal_ms = (self.newest_ms - index * self.spacing_ms) // 1000 * 1000  # the Date header's whole seconds
        return Message(self.id_of(seq), self.id_of(self.size - thread_first), internal_ms, labels, b"",
                       _HISTORY_BASE + seq * 3)  # fmt: skip

    def seeded(self, index: int) -> Message:
        """Seeded message ``index`` (0 is the newest)."""
        seq = self.size - index
        thread_first = min(index - index % _THREAD + _THREAD - 1, self.size - 1)
        position = thread_first - index  # 0: the thread's first message
        thread = index // _THREAD
        name, address = DEMO_CONTACTS[(thread * 7 + self.seed) % len(DEMO_CONTACTS)]
        spelled = ALIAS_SPELLINGS.get(address, address) if thread % 4 == 1 else address
        owner = formataddr((_owner_name(self.address), self.address))
        contact = formataddr((name, spelled))
        outbound = position % 2 == 1
        mail = EmailMessage()
        mail["From"], mail["To"] = (owner, contact) if outbound else (contact, owner)
        if thread % 5 == 2:
            cc_name, cc_address = DEMO_CONTACTS[(thread * 7 + self.seed + 3) % len(DEMO_CONTACTS)]
            mail["Cc"] = formataddr((cc_name, cc_address))
        topic = _TOPICS[thread % len(_TOPICS)]
        mail["Subject"] = topic if position == 0 else f"Re: {topic}"
        when = datetime.fromtimestamp((self.newest_ms - index * self.spacing_ms) / 1000, UTC)
        mail["Date"] = format_datetime(when)
        mail["Message-ID"] = self._message_id(seq)
        if position > 0:
            previous = self._message_id(seq - 1)
            mail["In-Reply-To"] = previous
            mail["References"] = " ".join(self._message_id(seq - k) for k in range(position, 0, -1))
        greeting = name.split()[0] if outbound else _owner_name(self.address).split()[0]
        text = (
            f"Hi {greeting},\n\nAbout {topic.lower()}: message {seq} of the thread with {name}.\n"
            f"Reference {hashlib.sha256(f'{self.seed}:{seq}'.encode()).hexdigest()[:12]}.\n\n"
            "We have reviewed the figures you sent and will come back with the revised schedule shortly.\n\n"
            "Best regards\n\nP.S. The full terms are in the body only, past any snippet.\n"
        )
        mail.set_content(text)
        mail.add_alternative(f"<p>Hi {greeting},</p><p>About {topic.lower()}: message {seq}.</p>", subtype="html")
        if seq % 10 == 0:
            mail.add_attachment(b"%PDF-1.4 sandbox " + str(seq).encode(), maintype="application", subtype="pdf",
                                filename=f"quote-{seq}.pdf")  # fmt: skip
        labels = {"SENT"} if outbound else {"INBOX", *(("UNREAD",) if index % 4 == 0 else ())}
        return Message(
            self.id_of(seq), self.id_of(self.size - thread_first), int(when.timestamp()) * 1000, labels,
            bytes(mail), _HISTORY_BASE + seq * 3,
        )  # fmt: skip

    def _message_id(self, seq: int) -> str:
        return f"<{seq}.{self.seed}.{hashlib.sha1(self.address.encode()).hexdigest()[:8]}@sandbox.vrtx-demo.example>"  # noqa: S324

    # --- reads ----------------------------------------------------------------------------------------------

    def get(self, message_id: str) -> Message | None:
        if message_id in self.deleted:
            return None
        if message_id in self.added:
            return self.added[message_id]
        seq = self.seq_of(message_id)
        if seq is None or seq > self.size or self.id_of(seq) != message_id:
            return None
        return self.seeded(self.size - seq)

    def listing(self, key: tuple[object, ...], keep: object, *, content: bool = True) -> list[str]:
        """Ids newest first that ``keep`` (a predicate on ``Message``) accepts; cached per key until a change.
        ``content`` False: ``keep`` reads only ids, dates and labels (seeded messages are not built for it)."""
        cached = self._listing.get(key)
        if cached is None:
            later = sorted(self.added.values(), key=lambda m: (m.internal_ms, m.id), reverse=True)
            ids = [m.id for m in later if keep(m)]  # type: ignore[operator]
            for index in range(self.size):
                message_id = self.id_of(self.size - index)
                if message_id in self.added or message_id in self.deleted:
                    continue
                if keep(self.seeded(index) if content else self.seeded_meta(index)):  # type: ignore[operator]
                    ids.append(message_id)
            cached = self._listing[key] = ids
        return cached

    def total(self) -> int:
        return self.size + sum(1 for m in self.added if (self.seq_of(m) or 0) > self.size) - len(self.deleted)

    # --- changes --------------------------------------------------------------------------------------------

    def changed(self) -> None:
        self._listing.clear()

    def record(self, kind: str, message: Message, labels: tuple[str, ...]) -> int:
        self.history_id += 1 + (self.history_id % 3)  # growing, not contiguous
        message.history_id = self.history_id
        change = Change(self.history_id, kind, message.id, message.thread_id, labels, tuple(sorted(message.labels)))
        self.history.append(change)
        self.changed()
        if self.on_change is not None:
            self.on_change(self, change)
        return self.history_id

    def add(self, mime: bytes, labels: set[str], now_ms: int, thread_id: str | None = None) -> Message:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        message_id = self.id_of(seq)
        message = Message(message_id, thread_id or message_id, now_ms, labels, mime, 0)
        self.added[message_id] = message
        self.record("messageAdded", message, tuple(sorted(labels)))
        return message

    def thread_of_reply(self, mime_ids: list[str]) -> str | None:
        """The thread a message answering these Message-IDs belongs to (searched among later messages, then the
        seeded ones by their shape)."""
        for wanted in mime_ids:
            for message in self.added.values():
                if message.parsed().get("Message-ID", "").strip() == wanted:
                    return message.thread_id
            head = wanted.strip("<>").split(".", 1)[0]
            if head.isdigit() and 0 < int(head) <= self.size and self._message_id(int(head)) == wanted:
                return self.seeded(self.size - int(head)).thread_id
        return None

    def delete(self, message_id: str) -> bool:
        message = self.get(message_id)
        if message is None:
            return False
        self.added.pop(message_id, None)
        self.deleted.add(message_id)
        self.record("messageDeleted", message, ())
        return True

    def relabel(self, message_id: str, add: set[str], remove: set[str]) -> Message | None:
        message = self.get(message_id)
        if message is None:
            return None
        message = self.added[message_id] = Message(
            message.id, message.thread_id, message.internal_ms, set(message.labels), message.mime, message.history_id
        )
        if added := add - message.labels:
            message.labels |= added
            self.record("labelAdded", message, tuple(sorted(added)))
        if removed := remove & message.labels:
            message.labels -= removed
            self.record("labelRemoved", message, tuple(sorted(removed)))
        return message


def _owner_name(address: str) -> str:
    return " ".join(part.title() for part in address.split("@")[0].split("."))


def raw(message: Message) -> str:
    return base64.urlsafe_b64encode(message.mime).decode()


def addresses(header: str | None) -> list[str]:
    return [address.lower() for _, address in getaddresses([header or ""]) if address]


def header_ms(mail: EmailMessage, fallback_ms: int) -> int:
    try:
        return int(parsedate_to_datetime(str(mail["Date"])).timestamp() * 1000)
    except (TypeError, ValueError):
        return fallback_ms
