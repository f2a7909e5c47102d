"""The overall fetch deadline: inside `fetch_deadline(seconds)` every connect, read and write is cut short.

Both HTTP clients (feeds and pages) run on a `DeadlineBackend`: inside `fetch_deadline(seconds)` every
connect, read and write of the calling thread is cut to the time left, so a server that trickles one
byte a second cannot hold a fetch past its total deadline (issue 6).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore

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
        """Unix sockets are never used (httpx reports this as a ConnectError)."""
        raise httpcore.ConnectError("refused unix socket")

    def sleep(self, seconds: float) -> None:
        """Delegate to the default backend."""
        self.inner.sleep(seconds)
