"""Poll one feed: conditional GET within the limits, capped backoff with jitter, and the feed's next state.

`fetch_feed(http, state, ...)` never raises for a network or HTTP problem: it returns a `FetchResult`
whose `error` says what went wrong in one line, so one bad feed never stops the others.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from bot.errors import FetchError
from bot.feeds.parse import flatten_text, parse_entries
from bot.models import Entry, FeedState
from bot.net.client import DEFAULT_LIMITS, Body, Limits, read_limited

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, */*;q=0.1"
)
MAX_BACKOFF = timedelta(hours=6)
_MAX_AGE = re.compile(r"max-age=(\d+)")
_TTL = re.compile(rb"<ttl>\s*(\d+)\s*</ttl>", re.IGNORECASE)


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
    limits = limits or DEFAULT_LIMITS
    try:
        body = read_limited(http, state.url, limits, _conditional_headers(state))
    except (httpx.HTTPError, httpx.InvalidURL, FetchError, OSError, ValueError) as exc:
        return _failed(state, _describe_error(exc), interval, now, rng)
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
    if body.status >= 300:
        return replace(_failed(state, f"HTTP {body.status} without a usable Location", interval, now, rng),
                       status=body.status)  # fmt: skip
    try:
        headers = {k.lower(): v for k, v in body.headers.items()}
        entries, warning = parse_entries(body.content, headers, source, url, limits.parse_seconds)
    except FetchError as exc:
        return replace(_failed(state, flatten_text(str(exc)), interval, now, rng), status=body.status)
    # A date in the future (a wrong clock or time zone at the publisher) is taken as "now" (issue 6).
    entries = [e if e.published is None or e.published <= now else replace(e, published=now) for e in entries]
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


def backoff_delay(interval: float, errors: int, rng: random.Random | None = None) -> timedelta:
    """Capped exponential backoff with jitter: interval * 2^errors, at most MAX_BACKOFF, +-20%."""
    rng = rng or random.Random()
    base = min(interval * (2 ** min(errors, 16)), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=base * rng.uniform(0.8, 1.2))


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


def _describe_error(exc: BaseException) -> str:
    """A fetch's exception as the one-line reason `borderwatch feeds` shows."""
    kind = type(exc).__name__
    text = flatten_text(str(exc))
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({kind})"
    if isinstance(exc, httpx.ConnectError):
        return flatten_text(f"cannot connect: {text or kind}")
    if isinstance(exc, UnicodeError) and "idna" in str(exc):
        return flatten_text(f"cannot resolve host: {text}")
    return text or kind
