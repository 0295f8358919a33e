"""Requests to URLs a tenant chose (its event callback) never reach the platform's own network.

Without this, a tenant could point its callback at the cloud metadata service, Dagster's GraphQL or a database
port and learn from the delivery report what answered. The guard applies twice: when a URL is accepted (its
literal address, or what its name resolves to then), and on every connection, to the address actually dialled.
At delivery the name is resolved once, every address it gives is checked, and the connection goes to a checked
address, so a DNS answer that changes between the check and the connect (rebinding) cannot slip through. The
client built here never follows redirects and ignores proxy settings (a proxy would dial for us, unchecked).

``allow_private`` (``VRTX_ALLOW_PRIVATE_CALLBACKS``, off by default; ``vrtx dev`` turns it on) lets loopback and
private addresses through for a receiver on this machine or a trusted network. Metadata, multicast and
unspecified addresses are refused even then: no legitimate callback lives there.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpcore
import httpx

from vrtx_pipelines.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]
# httpcore's SOCKET_OPTION, which it does not export.
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack
        "fd00:ec2::254",  # AWS over IPv6
        "169.254.170.2",  # AWS ECS task credentials
        "100.100.100.200",  # Alibaba Cloud
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationRefused(ValidationFailed):
    """The URL leads to an address on the platform's own side (loopback, private, link-local, metadata ...)."""

    code = "destination_refused"

    def __init__(self, reason: str) -> None:
        message = f"destination refused: the callback URL {reason}; events go only to public addresses"
        super().__init__(message, details=[{"field": "url", "message": message}])


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 form carries (mapped ``::ffff:a.b.c.d``, 6to4, NAT64): it is what gets reached."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why a connection to ``address`` is refused (a phrase), or None when it may go ahead."""
    reached = _embedded_ipv4(address)
    if reached in METADATA_ADDRESSES or address in METADATA_ADDRESSES:
        return "points at a cloud metadata address"
    if reached.is_multicast:
        return "points at a multicast address"
    if reached.is_unspecified:
        return "points at an unspecified address"
    if allow_private:
        return None
    if reached.is_loopback:
        return "points at a loopback address"
    if reached.is_link_local:
        return "points at a link-local address"
    site_local = isinstance(reached, ipaddress.IPv6Address) and reached.is_site_local
    if not reached.is_global or reached.is_reserved or site_local:
        return "points at a private or reserved address"
    return None


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (IPv4 and IPv6), in the resolver's order, without duplicates."""
    found: dict[IPAddress, None] = {}
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        found[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    return list(found)


def _metadata(host: str) -> bool:
    return host.lower().rstrip(".") in METADATA_HOSTS


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True)
class OutboundGuard:
    allow_private: bool = False
    resolve: Resolver = field(default=system_resolver)

    def _refuse_any(self, host: str, addresses: Iterable[IPAddress]) -> None:
        if _metadata(host):
            raise DestinationRefused("points at a cloud metadata service")
        for address in addresses:
            reason = refusal(address, allow_private=self.allow_private)
            if reason is not None:
                raise DestinationRefused(reason)

    def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses to connect to for ``host``, every one checked: ``DestinationRefused`` when any is refused
        (a name answering with a public and a private address is trusted with neither). ``OSError`` when the
        name does not resolve."""
        literal = _literal(host)
        addresses = [literal] if literal is not None else ([] if _metadata(host) else self.resolve(host, port))
        self._refuse_any(host, addresses)
        if not addresses:
            raise OSError(f"no address for {host}")
        return addresses

    def check_url(self, url: str) -> None:
        """Refuse a URL whose host is, or now resolves to, a refused address. A name that does not resolve yet is
        let through: every delivery checks it again."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            self.addresses(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (OSError, UnicodeError):
            return
        except ValueError:  # the port is not a number
            raise ValidationFailed(
                "the callback URL's port is not valid", details=[{"field": "url", "message": "invalid port"}]
            ) from None


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves and checks each connection's host, then dials a checked address (never the name again)."""

    def __init__(self, guard: OutboundGuard) -> None:
        self.guard = guard
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.guard.addresses(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"could not resolve the host ({type(exc).__name__})") from None
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return self.inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        raise DestinationRefused("names a local socket")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with every connection dialled through the guard. TLS still verifies the URL's own name
    (httpcore passes it as the server name), so pinning the address changes nothing about certificates."""

    def __init__(self, guard: OutboundGuard, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits()
        super().__init__(trust_env=False, limits=limits)
        # The one seam httpx leaves for choosing how connections are dialled is httpcore's network backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(guard),
        )


def guarded_client(guard: OutboundGuard, *, timeout: float) -> httpx.Client:
    """An httpx client for tenant-chosen URLs: guarded connections, no redirects, no proxies from the environment."""
    return httpx.Client(transport=GuardedTransport(guard), timeout=timeout, follow_redirects=False, trust_env=False)
