"""Fetch and parse feeds: conditional GET over httpx, bounded in size and time, parsed by feedparser.

`fetch_feed(http, url, state, limits, now)` never raises for a network or HTTP problem: it returns a
`FetchResult` whose `error` says what went wrong in one line, so one bad feed never stops the others.
"""

from __future__ import annotations

import ctypes
import html
import io
import random
import re
import threading
import time
import zlib
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
from bot.netguard import DeadlineBackend, fetch_deadline, make_transport

USER_AGENT = f"borderwatch/{__version__} (+https://github.com/borderwatch/borderwatch; news monitor)"
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, application/xml;q=0.8, */*;q=0.1"
)
MAX_BACKOFF = timedelta(hours=6)
MAX_TITLE = 1000
MAX_TEXT = 200_000
MAX_LINK = 2000
_PERMANENT = {301, 308}
_REDIRECT = {301, 302, 303, 307, 308}
# Entity declarations (billion laughs, external entities) are removed before parsing, whatever their layout:
# feedparser's own stripping misses declarations written on the `<!DOCTYPE` line itself (issue 6).
_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# Inside a declaration: quoted strings and comments are skipped whole, so a `>` or `]` in them ends nothing.
_DECLARATION_TOKEN = re.compile(rb"\"[^\"]*\"|'[^']*'|<!--.*?-->|[\[\]<>]", re.DOTALL)
_MAX_AGE = re.compile(r"max-age=(\d+)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_OR_GZIP_WBITS = 32 + zlib.MAX_WBITS


class FetchError(Exception):
    """A fetch that failed; the message is one line fit for `borderwatch feeds`."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one fetch."""

    max_bytes: int = 5_000_000
    deadline: float = 30.0
    max_redirects: int = 5
    parse_seconds: float = 20.0


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
        transport=make_transport(
            DeadlineBackend(), httpx.Limits(max_connections=20, max_keepalive_connections=10)
        ),
        timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        follow_redirects=False,
        headers={"User-Agent": user_agent or USER_AGENT, "Accept-Encoding": "gzip, deflate"},
    )


class _Inflater:
    """Decodes a gzip or deflate body chunk by chunk, never producing more than `limit` bytes in all.

    httpx's own decoders inflate a whole network chunk at once (64 KiB of a gzip bomb is 64 MiB);
    here `max_length` stops zlib at the cap, so memory stays bounded whatever the ratio (issue 6).
    """

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.produced = 0
        self.encoding = encoding
        if encoding in ("", "identity"):
            self._zlib = None
        elif encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(_GZIP_WBITS)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(_ZLIB_OR_GZIP_WBITS)
        else:
            raise FetchError(f"unsupported content encoding {encoding[:40]!r}")
        self._first = True

    def feed(self, data: bytes) -> bytes:
        """The decoded bytes of one raw chunk; FetchError once the total passes the limit."""
        room = self.limit - self.produced
        if self._zlib is None:
            out = data
        else:
            try:
                out = self._zlib.decompress(data, room + 1)
            except zlib.error:
                if not (self._first and self.encoding == "deflate"):
                    raise FetchError(f"corrupt {self.encoding} body") from None
                # Some servers send raw deflate without the zlib header.
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._zlib.decompress(data, room + 1)
        self._first = False
        self.produced += len(out)
        if self.produced > self.limit:
            suffix = " once decompressed" if self._zlib is not None else ""
            raise FetchError(f"response larger than {self.limit} bytes{suffix}")
        return out


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
    check_url: Any = None,
) -> Body:
    """GET `url`, following redirects up to the limit, reading at most `max_bytes` within `deadline`.

    `check_url(url)` (optional) is called before every hop and may raise FetchError to refuse it.
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
                content = _read_body(response, limits)
                moved = current if all_permanent and current != url else None
                return Body(current, response.status_code, response.headers, content, moved)
    except httpx.TimeoutException:
        if time.monotonic() - started >= limits.deadline:
            raise FetchError(f"took longer than {limits.deadline:g}s") from None
        raise
    raise FetchError(f"more than {limits.max_redirects} redirects")


def _read_body(response: httpx.Response, limits: Limits) -> bytes:
    """The decoded body, refusing it as soon as it passes `max_bytes`."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    declared = response.headers.get("content-length", "")
    if encoding in ("", "identity") and declared.isdigit() and int(declared) > limits.max_bytes:
        raise FetchError(f"response larger than {limits.max_bytes} bytes (Content-Length {declared})")
    inflater = _Inflater(encoding, limits.max_bytes)
    chunks = [inflater.feed(raw) for raw in response.iter_raw()]
    return b"".join(chunks)


def strip_entity_declarations(content: bytes) -> bytes:
    """The document with every DOCTYPE (and its internal subset) and ENTITY declaration removed.

    Quoted strings and comments are skipped whole, so a `]>` inside an entity's value cannot end the
    DOCTYPE early and leave declarations behind. Nothing is expanded and nothing external is read.
    """
    for _ in range(100):
        match = _DECLARATION.search(content)
        if match is None:
            return content
        content = content[: match.start()] + content[_declaration_end(content, match.end()) :]
    raise FetchError("too many DOCTYPE or ENTITY declarations")


def _declaration_end(content: bytes, position: int) -> int:
    """Where the declaration opened just before `position` ends (after its `>`), or the end of the text."""
    depth = 0
    for token in _DECLARATION_TOKEN.finditer(content, position):
        mark = token.group()
        if mark in (b"[", b"<"):
            depth += 1
        elif mark == b"]":
            depth = max(0, depth - 1)
        elif mark == b">":
            if depth == 0:  # the `>` that closes the declaration
                return token.end()
            depth -= 1
    return len(content)


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


class _ParseTimeout(BaseException):
    """Raised inside a parse that ran out of time (a BaseException, so feedparser cannot swallow it)."""


def _parse_within(content: bytes, headers: dict[str, str], seconds: float) -> Any:
    """feedparser's result for `content`, or FetchError when parsing takes longer than `seconds`.

    feedparser's lenient fallback parser is pure Python and can take minutes on crafted input (issue 6).
    A timer raises `_ParseTimeout` in this thread when time is up; the lock decides whether the timer
    or the parse finished first, and an interrupt that lost the race is taken here, never later.
    """
    thread_id = threading.get_ident()
    lock = threading.Lock()
    finished = fired = False

    def _interrupt() -> None:
        nonlocal fired
        with lock:
            if not finished:
                fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread_id), ctypes.py_object(_ParseTimeout)
                )

    timer = threading.Timer(seconds, _interrupt)
    timer.daemon = True
    try:
        timer.start()
        try:
            # No HTML sanitising or URI resolution: entries are reduced to plain text right after, and
            # skipping both saves about a third of the parse time.
            return feedparser.parse(
                io.BytesIO(content),
                response_headers=headers,
                sanitize_html=False,
                resolve_relative_uris=False,
            )
        finally:
            timer.cancel()
            with lock:
                finished = True
                interrupted = fired
            if interrupted:
                _take_pending_interrupt()
    except _ParseTimeout:
        raise FetchError(f"feed took longer than {seconds:g}s to parse") from None


def _take_pending_interrupt() -> None:
    """Run bytecode until a pending asynchronous `_ParseTimeout` is raised (it is raised at a loop jump)."""
    for _ in range(10_000):
        pass


def _is_html(content: bytes, headers: dict[str, str]) -> bool:
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    start = content[:512].lstrip().lower()
    return media in ("text/html", "application/xhtml+xml") or start.startswith((b"<!doctype html", b"<html"))


def _decoding_headers(content: bytes, headers: dict[str, str]) -> dict[str, str]:
    """Headers for feedparser, the charset corrected when the body is plainly UTF-8.

    A server that says `charset=iso-8859-1` (or an XML declaration that says windows-1256) over UTF-8
    bytes would turn Urdu and Pashto text into mojibake; valid non-ASCII UTF-8 is almost never meant
    as anything else, so it wins over what the headers claim.
    """
    if content.isascii():
        return headers
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return headers
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    media = media if media.endswith("xml") else "application/xml"
    return {**headers, "content-type": f"{media}; charset=utf-8"}


def _without_utf8_claims(content: bytes) -> bytes:
    """The XML declaration's encoding made utf-8 when the bytes are UTF-8 (see `_decoding_headers`)."""
    head = content[:200]
    match = re.match(rb"(\s*<\?xml[^>]*?encoding=)([\"'])([^\"']*)\2", head)
    if match is None or match.group(3).lower() == b"utf-8" or content.isascii():
        return content
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return content
    return content[: match.start(3)] + b"utf-8" + content[match.end(3) :]


def parse_entries(
    content: bytes, headers: dict[str, str], source: str, feed_url: str, parse_seconds: float = 20.0
) -> tuple[list[Entry], str]:
    """Entries of a feed document (bytes + response headers) and feedparser's warning, if any.

    Raises FetchError with a one-line reason for an empty body, an HTML page, a document that is no
    RSS or Atom, or one that takes longer than `parse_seconds` to parse.
    """
    if not content.strip():
        raise FetchError("empty response body")
    if _is_html(content, headers):
        raise FetchError("not a feed: got an HTML page")
    document = _without_utf8_claims(strip_entity_declarations(content))
    parsed = _parse_within(document, _decoding_headers(document, headers), parse_seconds)
    warning = ""
    if parsed.get("bozo"):
        warning = _one_line_text(str(parsed.get("bozo_exception", "malformed feed")), 200)
        if not parsed.entries:
            raise FetchError(f"not a feed: {warning}")
    if not parsed.entries and not parsed.get("version"):
        raise FetchError("not a feed: no RSS or Atom document")
    entries = []
    for item in parsed.entries:
        link = item.get("link") or ""
        if not link:
            continue
        entries.append(
            Entry(
                link=urljoin(feed_url, link)[:MAX_LINK],
                guid=(str(item.get("id") or "")[:MAX_LINK] or None),
                title=_html_to_text(item.get("title", ""))[:MAX_TITLE],
                summary=_html_to_text(_entry_text(item))[:MAX_TEXT],
                published=_when(item),
                source=_item_source(item) or source,
                feed_url=feed_url,
            )
        )
    if warning and not entries:
        raise FetchError(f"not a feed: {warning}")
    return _distinct(entries), warning


def _distinct(entries: list[Entry]) -> list[Entry]:
    """Entries without repeats; a GUID the feed gives to different links identifies nothing and is dropped."""
    links_of: dict[str, set[str]] = {}
    for entry in entries:
        if entry.guid:
            links_of.setdefault(entry.guid, set()).add(entry.link)
    seen: set[tuple[str | None, str]] = set()
    result = []
    for entry in entries:
        if entry.guid and len(links_of[entry.guid]) > 1:
            entry = replace(entry, guid=None)
        key = (entry.guid, entry.link)
        if key not in seen:
            seen.add(key)
            result.append(entry)
    return result


def _item_source(item: Any) -> str | None:
    """The outlet an aggregator's item names in its <source> element."""
    origin = item.get("source")
    title = origin.get("title") if hasattr(origin, "get") else None
    return str(title).strip()[:200] if title and str(title).strip() else None


_TAG = re.compile(r"<[^>]+>")


_SCRIPT = re.compile(r"(?is)<(script|style|noscript|template)\b.*?(</\1\s*>|$)")


def _html_to_text(value: str) -> str:
    """Feed HTML reduced to text, paragraphs kept as lines."""
    if "<" not in value and "&" not in value:
        return value.strip()
    value = _SCRIPT.sub(" ", value)
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
    except (httpx.HTTPError, httpx.InvalidURL, FetchError, OSError, ValueError) as exc:
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
    if body.status >= 300:
        return replace(_failed(state, f"HTTP {body.status} without a usable Location", interval, now, rng),
                       status=body.status)  # fmt: skip
    try:
        headers = {k.lower(): v for k, v in body.headers.items()}
        entries, warning = parse_entries(body.content, headers, source, url, limits.parse_seconds)
    except FetchError as exc:
        return replace(_failed(state, _one_line_text(str(exc)), interval, now, rng), status=body.status)
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


def _one_line_text(text: str, limit: int = 300) -> str:
    """`text` as one printable line of at most `limit` characters (it ends up in `borderwatch feeds`)."""
    line = _CONTROL.sub(" ", text).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _one_line(exc: BaseException) -> str:
    kind = type(exc).__name__
    text = _one_line_text(str(exc))
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({kind})"
    if isinstance(exc, httpx.ConnectError):
        return _one_line_text(f"cannot connect: {text or kind}")
    if isinstance(exc, UnicodeError) and "idna" in str(exc):
        return _one_line_text(f"cannot resolve host: {text}")
    return text or kind
