"""Opaque ids shaped like Exchange's: base64 with Exchange's leading bytes (REST ids read ``AAMkAD...``, immutable
ids ``AAkALg...``), each carrying a record's number through the kit's keyed ``IdCodec``, so an id finds its record
without a lookup table and an id of another mailbox or seed reads as unknown.

Exchange's REST id of a message names its folder: it changes when the message moves, unless the client asks for
immutable ids (``Prefer: IdType="ImmutableId"``, https://learn.microsoft.com/en-us/graph/outlook-immutable-id). The
sandbox folds the number of moves into the REST id to the same effect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid

from providers.sandbox_kit.data import IdCodec, stable_key

_REST = b"\x00\x03\x24\x00\x30\x00\x46"  # base64 "AAMkADAARg": a mailbox item's REST id
_IMMUTABLE = base64.urlsafe_b64decode("AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A")
_TAIL = b"\x00\x00"
_MOVES = 1 << 16  # a REST id's room for moves


class MailboxIds:
    """The ids of one mailbox's messages, events, folders and conversations."""

    def __init__(self, seed: int, address: str) -> None:
        self.seed, self.address = seed, address
        self._rest = IdCodec(stable_key("graph-rest", seed, address))
        self._immutable = IdCodec(stable_key("graph-immutable", seed, address))
        self._event = IdCodec(stable_key("graph-event", seed, address))

    def message(self, seq: int, moves: int, *, immutable: bool) -> str:
        if immutable:
            return _encode(_IMMUTABLE, self._immutable.encode(seq))
        return _encode(_REST, self._rest.encode(seq * _MOVES + moves % _MOVES))

    def message_seq(self, message_id: str) -> tuple[int, int | None] | None:
        """(seq, moves) of a REST id, (seq, None) of an immutable id; None for anything else."""
        found = _decode(_IMMUTABLE, message_id, self._immutable)
        if found is not None:
            return found, None
        found = _decode(_REST, message_id, self._rest)
        return None if found is None else (found // _MOVES, found % _MOVES)

    def event(self, seq: int) -> str:
        return _encode(_REST, self._event.encode(seq))

    def event_seq(self, event_id: str) -> int | None:
        return _decode(_REST, event_id, self._event)

    def folder(self, name: str) -> str:
        digest = hashlib.blake2b(f"folder|{self.seed}|{self.address}|{name}".encode(), digest_size=30).digest()
        return base64.urlsafe_b64encode(b"\x00\x03\x24\x00\x30" + digest + b"\x00\x01\x00").decode()

    def conversation(self, thread: int) -> str:
        digest = hashlib.blake2b(f"conv|{self.seed}|{self.address}|{thread}".encode(), digest_size=32).digest()
        return base64.urlsafe_b64encode(b"\x00\x04\x24\x00" + digest).decode()


def change_key(kind: str, seq: int, version: int) -> str:
    """A ``changeKey`` (Exchange's version of an item): new with every change."""
    digest = hashlib.blake2b(f"{kind}|{seq}|{version}".encode(), digest_size=22).digest()
    return base64.b64encode(b"\x09\x00\x00\x00\x16\x00\x00\x00" + digest).decode()


def _encode(prefix: bytes, codec_id: str) -> str:
    return base64.urlsafe_b64encode(prefix + uuid.UUID(codec_id).bytes + _TAIL).decode()


def _decode(prefix: bytes, value: str, codec: IdCodec) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        return None
    if len(raw) != len(prefix) + 16 + len(_TAIL) or not raw.startswith(prefix):
        return None
    return codec.decode(str(uuid.UUID(bytes=raw[len(prefix) : len(prefix) + 16])))


def well_formed(value: str) -> bool:
    """Whether ``value`` could be an Exchange id at all (else Graph answers ErrorInvalidIdMalformed)."""
    try:
        return len(base64.urlsafe_b64decode(value.encode())) >= 16
    except (binascii.Error, ValueError):
        return False
