"""Email address keys: the form under which two spellings of one mailbox compare equal, so messages and meetings
find their CRM contact whatever case, ``+tag`` or (for Gmail) dots the sender used."""

from __future__ import annotations

from email.utils import parseaddr
from functools import lru_cache

# Gmail ignores dots in the local part and treats googlemail.com as gmail.com; other domains may not, so dots
# elsewhere are kept (j.smith@acme.com and jsmith@acme.com can be two people).
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
MAX_ADDRESS_LENGTH = 320


@lru_cache(maxsize=65_536)  # a mailbox's messages name the same few hundred people again and again
def address_key(address: str) -> str | None:
    """The comparison key of an address (``"Ann <Ann.Lee+crm@GMail.com>"`` -> ``"annlee@gmail.com"``), or None
    when it is not an address at all."""
    if not address or len(address) > MAX_ADDRESS_LENGTH * 2:
        return None
    _, bare = parseaddr(address)
    bare = bare.strip().lower()
    local, at, domain = bare.rpartition("@")
    if not at or not local or not domain or "." not in domain or len(bare) > MAX_ADDRESS_LENGTH:
        return None
    local = local.split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        domain = "gmail.com"
        local = local.replace(".", "")
    if not local:
        return None
    return f"{local}@{domain}"
