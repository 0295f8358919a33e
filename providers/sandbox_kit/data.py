"""Deterministic data: records generated from (seed, index) on demand, so a sandbox of any size costs nothing
until it is served, and the same seed gives the same data on any machine and any day.

- ``stable_key`` and ``mix64`` turn names and numbers into well-spread 64-bit keys (``hash`` differs per process).
- ``IdCodec`` maps an index to a UUID-looking id and back (a keyed Feistel permutation), so ``GET /things/{id}``
  finds the record's index without a lookup table and ids of different seeds or entities never collide.
- ``Timeline`` spreads seeded change times evenly (strictly increasing with the index) over a fixed span.
- Names: ``person_name(j)`` and ``company_name(j)`` are unique for every ``j`` by construction (providers that
  require unique contact names get them free); the pools behind them are ``providers.sandbox_kit.pools``.
"""

from __future__ import annotations

import hashlib
import random
import uuid

from providers.sandbox_kit import pools

_M64 = (1 << 64) - 1
_M31 = (1 << 31) - 1
_M62 = (1 << 62) - 1


def stable_key(*parts: object) -> int:
    """A 64-bit key from parts, stable across processes (unlike ``hash``)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def mix64(x: int, key: int) -> int:
    """splitmix64-style mixing: cheap, well spread, deterministic."""
    x = ((x ^ key) * 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def record_rng(key: int, index: int) -> random.Random:
    """The random source of one generated record: the same (key, index), the same draws."""
    return random.Random(mix64(index, key))


class IdCodec:
    """Index <-> version-4-looking UUID: a 4-round Feistel network over 62 bits plus a keyed 64-bit check half."""

    def __init__(self, key: int) -> None:
        self._rounds = tuple(mix64(n, key) for n in range(4))
        self._check = mix64(99, key)

    def encode(self, index: int) -> str:
        left, right = index >> 31, index & _M31
        for round_key in self._rounds:
            left, right = right, left ^ _feistel(right, round_key)
        low = (left << 31) | right
        h = f"{(self._high(low) << 64) | (2 << 62) | low:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def decode(self, value: str) -> int | None:
        """The index ``value`` encodes, or None for anything this codec did not make (any case accepted)."""
        try:
            number = uuid.UUID(value).int
        except (ValueError, AttributeError, TypeError):
            return None
        low, high = number & _M62, number >> 64
        if (number >> 62) & 3 != 2 or high != self._high(low):
            return None
        left, right = low >> 31, low & _M31
        for round_key in reversed(self._rounds):
            left, right = right ^ _feistel(left, round_key), left
        return (left << 31) | right

    def _high(self, low: int) -> int:
        return (mix64(low, self._check) & ~0xF000) | 0x4000  # the version nibble reads 4


def _feistel(half: int, round_key: int) -> int:
    """A cheap keyed round function (31 bits out); any function keeps the network invertible."""
    x = ((half ^ round_key) * 0x9E3779B97F4A7C15) & _M64
    x ^= x >> 29
    return (((x * 0xBF58476D1CE4E5B9) & _M64) >> 33) & _M31


class Timeline:
    """Seeded change times (ms) by index: strictly increasing, evenly spread over ``span`` (start, end)."""

    def __init__(self, span: tuple[int, int], count: int) -> None:
        self.start = span[0]
        self.step = max(1, (span[1] - span[0]) // max(count, 1))

    def __call__(self, index: int) -> int:
        return self.start + index * self.step


def money(cents: int) -> float:
    """An amount kept in integer cents, as the JSON number APIs send (``46.0``)."""
    return cents / 100


def cents(amount: float) -> int:
    return round(amount * 100)


def person_name(j: int) -> tuple[str, str, str]:
    """(first, last, full name) of the ``j``-th person: every (first, last) pair once, then again numbered."""
    n_first, n_last = len(pools.FIRST_NAMES), len(pools.LAST_NAMES)
    space = n_first * n_last
    scrambled = (j % space) * 1117 % space  # 1117 is prime to the 40 x 43 space: a permutation of it
    # s -> (s % 40, (s // 40 + s) % 43) is one-to-one because 41 is prime to 43.
    first = pools.FIRST_NAMES[scrambled % n_first]
    last = pools.LAST_NAMES[(scrambled // n_first + scrambled) % n_last]
    return first, last, f"{first} {last}" + (f" {j // space + 1}" if j >= space else "")


def company_name(j: int) -> str:
    """The ``j``-th company: every (word, trade) pair once, then again numbered, with a rotating suffix."""
    n_word, n_trade = len(pools.COMPANY_WORDS), len(pools.COMPANY_TRADES)
    space = n_word * n_trade
    scrambled = (j % space) * 7919 % space  # 7919 is prime to the 30 x 31 space
    word, trade = pools.COMPANY_WORDS[scrambled % n_word], pools.COMPANY_TRADES[scrambled // n_word]
    suffix = pools.COMPANY_SUFFIXES[j % len(pools.COMPANY_SUFFIXES)]
    return f"{word} {trade} {suffix}" + (f" {j // space + 1}" if j >= space else "")


def any_person(rng: random.Random) -> tuple[str, str]:
    """(first, last) for a contact person, drawn from ``rng``: not unique."""
    return rng.choice(pools.FIRST_NAMES), rng.choice(pools.LAST_NAMES)


def person_email(first: str, last: str, rng: random.Random) -> str:
    # RFC 2606 example domains: nothing generated here can reach a real mailbox.
    return f"{first}.{last}@example.{rng.choice(('com', 'net', 'org'))}".lower()


def company_email(name: str, mailbox: str = "accounts") -> str:
    slug = "".join(ch for ch in name.lower() if ch.isalnum())[:24]
    return f"{mailbox}@{slug}.example.com"


def enquiry(k: int) -> dict[str, str]:
    """The ``k``-th new message a mailbox sandbox's ``create`` delivers: from a sender the mailbox has not seen."""
    return {"sender": f"New Sender {k} <new.sender{k}@example.org>", "subject": f"Enquiry {k}",
            "text": f"Hello, enquiry number {k}."}  # fmt: skip
