"""Fetch and parse feeds: conditional GET over httpx, bounded in size and time, parsed by feedparser.

`fetch_feed(http, url, state, limits, now)` never raises for a network or HTTP problem: it returns a
`FetchResult` whose `error` says what went wrong in one line, so one bad feed never stops the others.
"""

from __future__ import annotations

import html
import io
import random
import re
import time
from calendar import timegm
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
import httpx

from bot import __version__
from bot.models import Entry, FeedState

USER_AGENT = f"borderwatch/{__version__} (+https://github.com/borderwatch/borderwatch; news monitor)"
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, */*;q=0.1"
)
MAX_BACKOFF = timedelta(hours=6)
_PERMANENT = {301, 308}
_REDIRECT = {301, 302, 303, 307, 308}
# Entity declarations (billion laughs, external entities) are removed before parsing, whatever their layout.
_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*(\[.*?\])?\s*>", re.IGNORECASE | re.DOTALL)
_ENTITY = re.compile(rb"<!ENTITY[^>]*>", re.IGNORECASE | re.DOTALL)
_MAX_AGE = re.compile(r"max-age=(\d+)")


class FetchError(Exception):
    """A fetch that failed; the message is one line fit for `borderwatch feeds`."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one fetch."""

    max_bytes: int = 5_000_000
    deadline: float = 30.0
    max_redirects: int = 5


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one poll of one feed."""

    state: FeedState
    entries: tuple[Entry, ...] = ()
    not_modified: bool = False
    error: str | None = None
    status: int | None = None
    gone: bool = False
    moved_to: str | None = None
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Body:
    """A response read within its limits."""

    url: str
    status: int
    headers: httpx.Headers
    content: bytes
    permanent_url: str | None


def make_client(timeout: float = 20.0, user_agent: str | None = None) -> httpx.Client:
    """The one shared HTTP client: explicit timeouts, no automatic redirects (we follow them ourselves)."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        follow_redirects=False,
        headers={"User-Agent": user_agent or USER_AGENT},
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )


def read_limited(
    http: httpx.Client,
    url: str,
    limits: Limits,
    headers: dict[str, str] | None = None,
    check_url: Any = None,
) -> Body:
    """GET `url`, following redirects up to the limit, reading at most `max_bytes` within `deadline`.

    `check_url(url)` (optional) is called before every hop and may raise FetchError to refuse it.
    The size cap applies to decompressed bytes, so a gzip bomb stops at the cap.
    """
    started = time.monotonic()
    all_permanent = True
    current = url
    for _hop in range(limits.max_redirects + 1):
        if check_url is not None:
            check_url(current)
        with http.stream("GET", current, headers=headers) as response:
            if response.status_code in _REDIRECT and "location" in response.headers:
                all_permanent = all_permanent and response.status_code in _PERMANENT
                current = urljoin(current, response.headers["location"])
                continue
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise FetchError(f"response larger than {limits.max_bytes} bytes")
                if time.monotonic() - started > limits.deadline:
                    raise FetchError(f"took longer than {limits.deadline:.0f}s")
                chunks.append(chunk)
            moved = current if all_permanent and current != url else None
            return Body(current, response.status_code, response.headers, b"".join(chunks), moved)
    raise FetchError(f"more than {limits.max_redirects} redirects")


def strip_entity_declarations(content: bytes) -> bytes:
    """The document with its DOCTYPE internal subset and ENTITY declarations removed."""
    if b"<!" not in content[:4096] and b"<!ENTITY" not in content:
        return content
    content = _DOCTYPE.sub(b"", content, count=1)
    return _ENTITY.sub(b"", content)


def _conditional_headers(state: FeedState) -> dict[str, str]:
    headers = {"Accept": ACCEPT}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _retry_after(headers: httpx.Headers, now: datetime) -> datetime | None:
    value = headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return now + timedelta(seconds=min(int(value), 86400))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(when, now + timedelta(days=1))


def backoff_delay(interval: float, errors: int, rng: random.Random | None = None) -> timedelta:
    """Capped exponential backoff with jitter: interval * 2^errors, at most MAX_BACKOFF, +-20%."""
    rng = rng or random.Random()
    base = min(interval * (2 ** min(errors, 16)), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=base * rng.uniform(0.8, 1.2))


def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(timegm(value), tz=UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _entry_text(entry: Any) -> str:
    contents = entry.get("content") or []
    best = max((c.get("value", "") for c in contents), key=len, default="")
    summary = entry.get("summary", "") or ""
    return best if len(best) > len(summary) else summary


def parse_entries(
    content: bytes, headers: dict[str, str], source: str, feed_url: str
) -> tuple[list[Entry], str]:
    """Entries of a feed document (bytes + response headers) and feedparser's warning, if any."""
    parsed = feedparser.parse(io.BytesIO(strip_entity_declarations(content)), response_headers=headers)
    warning = ""
    if parsed.get("bozo"):
        warning = str(parsed.get("bozo_exception", "malformed feed")).splitlines()[0][:200]
        if not parsed.entries:
            raise FetchError(f"not a feed: {warning}")
    entries = []
    for item in parsed.entries:
        link = item.get("link") or ""
        if not link:
            continue
        entries.append(
            Entry(
                link=urljoin(feed_url, link)[:2000],
                guid=(item.get("id") or None),
                title=_html_to_text(item.get("title", ""))[:1000],
                summary=_html_to_text(_entry_text(item)),
                published=_when(item),
                source=_item_source(item) or source,
                feed_url=feed_url,
            )
        )
    return entries, warning


def _item_source(item: Any) -> str | None:
    """The outlet an aggregator's item names in its <source> element."""
    origin = item.get("source")
    title = origin.get("title") if hasattr(origin, "get") else None
    return str(title).strip()[:200] if title and str(title).strip() else None


_TAG = re.compile(r"<[^>]+>")


def _html_to_text(value: str) -> str:
    """Feed HTML reduced to text, paragraphs kept as lines."""
    if "<" not in value and "&" not in value:
        return value.strip()
    value = re.sub(r"(?i)<\s*(br|/p|/div|/li|/h\d)\s*/?>", "\n", value)
    text = html.unescape(_TAG.sub("", value))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def fetch_feed(
    http: httpx.Client,
    state: FeedState,
    *,
    source: str,
    interval: float,
    now: datetime,
    limits: Limits | None = None,
    rng: random.Random | None = None,
) -> FetchResult:
    """Poll one feed once: conditional GET, parse, and the feed's next state (never raises on I/O)."""
    limits = limits or Limits()
    try:
        body = read_limited(http, state.url, limits, _conditional_headers(state))
    except (httpx.HTTPError, FetchError, OSError) as exc:
        return _failed(state, _one_line(exc), interval, now, rng)
    url = body.permanent_url or state.url
    if body.status == 304:
        fresh = max(interval, _freshness(body))
        new_state = replace(
            state, url=url, consecutive_errors=0, last_error=None, next_poll=now + timedelta(seconds=fresh)
        )
        return FetchResult(new_state, not_modified=True, status=304, moved_to=body.permanent_url)
    if body.status == 410:
        gone = replace(state, url=url, retired=True, last_error="410 Gone: feed retired", next_poll=None)
        return FetchResult(gone, error="410 Gone: feed retired", status=410, gone=True)
    if body.status >= 400:
        failed = _failed(state, f"HTTP {body.status}", interval, now, rng, _retry_after(body.headers, now))
        return replace(failed, status=body.status)
    try:
        headers = {k.lower(): v for k, v in body.headers.items()}
        entries, warning = parse_entries(body.content, headers, source, url)
    except FetchError as exc:
        return replace(_failed(state, str(exc), interval, now, rng), status=body.status)
    wait = max(interval, _freshness(body))
    new_state = FeedState(
        url=url,
        etag=body.headers.get("etag"),
        last_modified=body.headers.get("last-modified"),
        consecutive_errors=0,
        next_poll=now + timedelta(seconds=wait),
        retired=False,
        last_error=None,
    )
    return FetchResult(
        new_state,
        entries=tuple(entries),
        status=body.status,
        moved_to=body.permanent_url,
        warning=warning or None,
    )


_TTL = re.compile(rb"<ttl>\s*(\d+)\s*</ttl>", re.IGNORECASE)


def _freshness(body: Body) -> float:
    """Seconds the publisher asks us to wait (Cache-Control max-age, RSS <ttl> in minutes)."""
    seconds = 0.0
    match = _MAX_AGE.search(body.headers.get("cache-control", ""))
    if match:
        seconds = float(match.group(1))
    ttl = _TTL.search(body.content[:20000])
    if ttl:
        seconds = max(seconds, float(ttl.group(1)) * 60)
    return min(seconds, 86400.0)


def _failed(
    state: FeedState,
    reason: str,
    interval: float,
    now: datetime,
    rng: random.Random | None,
    not_before: datetime | None = None,
) -> FetchResult:
    errors = state.consecutive_errors + 1
    next_poll = now + backoff_delay(interval, errors, rng)
    if not_before is not None:
        next_poll = max(next_poll, not_before)
    return FetchResult(
        replace(state, consecutive_errors=errors, last_error=reason, next_poll=next_poll), error=reason
    )


def _one_line(exc: BaseException) -> str:
    kind = type(exc).__name__
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({kind})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {text or kind}"
    return f"{text or kind}"[:300]
