"""HTTP clients and the bounded GET; every limit on a fetch and its default is in `Limits`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import httpcore
import httpx

from bot import __version__
from bot.errors import FetchError
from bot.net.deadline import DeadlineBackend, fetch_deadline
from bot.net.decode import read_body

USER_AGENT = f"borderwatch/{__version__} (+https://github.com/borderwatch/borderwatch; news monitor)"
_PERMANENT = {301, 308}
_REDIRECT = {301, 302, 303, 307, 308}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one fetch and on the clients that make it: the one place their defaults live."""

    max_bytes: int = 5_000_000  # body bytes, counted after decompression
    deadline: float = 30.0  # seconds for the whole fetch, redirects included
    max_redirects: int = 5
    parse_seconds: float = 20.0  # seconds feedparser may take over one document
    timeout: float = 20.0  # a client's timeout for each connect, read, write and pool wait
    connect_timeout: float = 10.0  # the connect timeout's cap
    max_connections: int = 20  # connections in a client's pool
    max_keepalive_connections: int = 10


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Body:
    """A response read within its limits."""

    url: str
    status: int
    headers: httpx.Headers
    content: bytes
    permanent_url: str | None


def make_transport(backend: httpcore.NetworkBackend, limits: Limits = DEFAULT_LIMITS) -> httpx.HTTPTransport:
    """An httpx transport whose connections all go through `backend` (no retries)."""
    pool = httpx.Limits(
        max_connections=limits.max_connections, max_keepalive_connections=limits.max_keepalive_connections
    )
    transport = httpx.HTTPTransport(retries=0, limits=pool)
    # httpx takes no backend argument; the pool's is replaced so every connection (redirect hops too) uses ours.
    transport._pool._network_backend = backend
    return transport


def make_timeout(timeout: float | None, limits: Limits = DEFAULT_LIMITS) -> httpx.Timeout:
    """A client's timeouts: `timeout` (or the limits' own) for each step, the connect capped as well."""
    seconds = limits.timeout if timeout is None else timeout
    return httpx.Timeout(seconds, connect=min(limits.connect_timeout, seconds))


def make_client(
    timeout: float | None = None, user_agent: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> httpx.Client:
    """The one shared feed client: explicit timeouts, no automatic redirects (we follow them ourselves)."""
    return httpx.Client(
        transport=make_transport(DeadlineBackend(), limits),
        timeout=make_timeout(timeout, limits),
        follow_redirects=False,
        headers={"User-Agent": user_agent or USER_AGENT, "Accept-Encoding": "gzip, deflate"},
    )


def _request_timeout(http: httpx.Client, left: float) -> httpx.Timeout:
    """The client's timeouts, none longer than `left` seconds."""
    base = http.timeout
    return httpx.Timeout(
        connect=min(base.connect or left, left),
        read=min(base.read or left, left),
        write=min(base.write or left, left),
        pool=min(base.pool or left, left),
    )


def read_limited(
    http: httpx.Client,
    url: str,
    limits: Limits,
    headers: dict[str, str] | None = None,
    check_url: Callable[[str], None] | None = None,
) -> Body:
    """GET `url`, following redirects up to the limit, reading at most `max_bytes` within `deadline`.

    `check_url(url)` (optional) is called before every hop and may raise to refuse it.
    The size cap applies to decompressed bytes, so a gzip bomb stops at the cap. The deadline bounds
    the whole fetch, redirects included: every connect and read is cut to the time left, so a server
    trickling a byte a second is cut off at the deadline, not at the next byte.
    """
    started = time.monotonic()
    all_permanent = True
    current = url
    seen = {url}
    try:
        for _hop in range(limits.max_redirects + 1):
            if check_url is not None:
                check_url(current)
            left = limits.deadline - (time.monotonic() - started)
            if left <= 0:
                raise FetchError(f"took longer than {limits.deadline:g}s")
            with (
                fetch_deadline(left),
                http.stream(
                    "GET", current, headers=headers, timeout=_request_timeout(http, left)
                ) as response,
            ):
                if response.status_code in _REDIRECT and "location" in response.headers:
                    all_permanent = all_permanent and response.status_code in _PERMANENT
                    current = urljoin(current, response.headers["location"])
                    if current in seen:
                        raise FetchError(f"redirect loop at {current[:200]}")
                    seen.add(current)
                    continue
                content = read_body(response, limits.max_bytes)
                moved = current if all_permanent and current != url else None
                return Body(current, response.status_code, response.headers, content, moved)
    except httpx.TimeoutException:
        if time.monotonic() - started >= limits.deadline:
            raise FetchError(f"took longer than {limits.deadline:g}s") from None
        raise
    raise FetchError(f"more than {limits.max_redirects} redirects")
