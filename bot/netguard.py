"""Server-side request forgery guard for article pages (their links come from strangers' feeds).

Every connection the page client makes goes through `GuardedBackend.connect_tcp`, which resolves the
host, refuses non-public addresses (loopback, private, link-local, CGNAT, multicast, reserved,
IPv4-mapped forms of those) unless the operator allowed their range, and connects to the very address
it checked, so DNS rebinding cannot swap it afterwards. Redirect hops open new connections and are
checked the same way.

Both HTTP clients (feeds and pages) also run on a `DeadlineBackend`: inside `fetch_deadline(seconds)`
every connect, read and write of the calling thread is cut to the time left, so a server that trickles
one byte a second cannot hold a fetch past its total deadline (issue 6).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BlockedAddressError(httpx.ConnectError):
    """A connection refused because its address is not public."""


def parse_networks(ranges: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Networks from text such as `127.0.0.0/8` or `::1`."""
    return tuple(ipaddress.ip_network(r, strict=False) for r in ranges)


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address (IPv4-mapped and 6to4 forms judged by their IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public_address(mapped)
        if address.teredo is not None:
            return False
    return bool(address.is_global) and not address.is_multicast and not address.is_reserved


def is_allowed_address(address: IPAddress, allowed: tuple[IPNetwork, ...] = ()) -> bool:
    """True when `address` is public or inside one of the operator's allowed ranges."""
    if is_public_address(address):
        return True
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(c.version == n.version and c in n for c in candidates for n in allowed)


def check_scheme(url: str) -> None:
    """Refuse anything but http and https."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedAddressError(f"refused scheme {scheme or '(none)'!r}: only http and https are fetched")


def resolve_allowed(host: str, port: int, allowed: tuple[IPNetwork, ...]) -> list[str]:
    """Addresses of `host` that may be connected to; raises BlockedAddressError if none may."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
    addresses = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        if not is_allowed_address(address, allowed):
            raise BlockedAddressError(f"refused non-public address {address} for {host}")
        addresses.append(text)
    if not addresses:
        raise httpx.ConnectError(f"no address for {host}")
    return addresses


_deadline = threading.local()


@contextmanager
def fetch_deadline(seconds: float) -> Iterator[None]:
    """Inside the block, this thread's connects, reads and writes end at most `seconds` from now."""
    previous = getattr(_deadline, "at", None)
    _deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = previous


def _time_left(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """`timeout` cut to what is left of this thread's deadline; raises `expired` once it has passed."""
    at: float | None = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise expired("fetch deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write honours the thread's fetch deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read, waiting no longer than the deadline allows."""
        return self._inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write, waiting no longer than the deadline allows."""
        self._inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        """Close the inner stream."""
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        """TLS over the inner stream, still under the deadline."""
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _time_left(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        """Ask the inner stream."""
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """An httpcore backend whose connections honour `fetch_deadline` (used by the feed client)."""

    def __init__(self) -> None:
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect within the deadline."""
        stream = self.inner.connect_tcp(host, port, _time_left(timeout, httpcore.ConnectTimeout), local_address,
                                        socket_options)  # fmt: skip
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        """Unix sockets are never used."""
        raise BlockedAddressError("refused unix socket")

    def sleep(self, seconds: float) -> None:
        """Delegate to the default backend."""
        self.inner.sleep(seconds)


class GuardedBackend(DeadlineBackend):
    """A deadline backend that connects only to checked addresses (used by the article-page client)."""

    def __init__(self, allowed: tuple[IPNetwork, ...]) -> None:
        super().__init__()
        self.allowed = allowed

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Resolve, check every address, connect to the first checked one that answers."""
        last: Exception | None = None
        for address in resolve_allowed(host.strip("[]"), port, self.allowed):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise httpcore.ConnectError(str(last or f"cannot connect to {host}"))


def make_transport(
    backend: httpcore.NetworkBackend, limits: httpx.Limits | None = None
) -> httpx.HTTPTransport:
    """An httpx transport whose connections all go through `backend` (no retries)."""
    transport = httpx.HTTPTransport(retries=0, limits=limits or httpx.Limits(max_connections=20))
    # httpx takes no backend argument; the pool's is replaced so every connection (redirect hops too) uses ours.
    transport._pool._network_backend = backend
    return transport


def make_guarded_client(
    allowed: tuple[IPNetwork, ...], timeout: float = 20.0, user_agent: str = "borderwatch"
) -> httpx.Client:
    """An httpx client for untrusted URLs: every connection goes through the address guard."""
    return httpx.Client(
        transport=make_transport(GuardedBackend(allowed)),
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        follow_redirects=False,
        headers={"User-Agent": user_agent},
        trust_env=False,
    )
