"""Server-side request forgery guard for article pages (their links come from strangers' feeds).

Every connection the page client makes goes through `GuardedBackend.connect_tcp`, which resolves the
host, refuses non-public addresses (loopback, private, link-local, CGNAT, multicast, reserved,
IPv4-mapped forms of those) unless the operator allowed their range, and connects to the very address
it checked, so DNS rebinding cannot swap it afterwards. Redirect hops open new connections and are
checked the same way.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from bot.net.client import DEFAULT_LIMITS, Limits, make_timeout, make_transport
from bot.net.deadline import DeadlineBackend

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

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        """Unix sockets are never used."""
        raise BlockedAddressError("refused unix socket")


def make_guarded_client(
    allowed: tuple[IPNetwork, ...],
    timeout: float | None = None,
    user_agent: str = "borderwatch",
    limits: Limits = DEFAULT_LIMITS,
) -> httpx.Client:
    """An httpx client for untrusted URLs: every connection goes through the address guard."""
    return httpx.Client(
        transport=make_transport(GuardedBackend(allowed), limits),
        timeout=make_timeout(timeout, limits),
        follow_redirects=False,
        headers={"User-Agent": user_agent},
        trust_env=False,
    )
