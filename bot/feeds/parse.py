"""Feed bytes to entries: declarations stripped, feedparser run within a time limit, HTML reduced to text."""

from __future__ import annotations

import ctypes
import io
import re
import threading
from calendar import timegm
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser
import lxml.html
from lxml import etree

from bot.errors import FetchError
from bot.fingerprint import content_hash, item_address
from bot.models import Entry
from bot.net.client import DEFAULT_LIMITS
from bot.net.decode import correct_charset_header, correct_xml_encoding

MAX_TITLE = 1000
MAX_TEXT = 200_000
MAX_LINK = 2000
# Entity declarations (billion laughs, external entities) are removed before parsing, whatever their layout:
# feedparser's own stripping misses declarations written on the `<!DOCTYPE` line itself (issue 6).
_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# Inside a declaration: quoted strings and comments are skipped whole, so a `>` or `]` in them ends nothing.
_DECLARATION_TOKEN = re.compile(rb"\"[^\"]*\"|'[^']*'|<!--.*?-->|[\[\]<>]", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# Characters libxml2 refuses (controls, lone surrogates, non-characters): replaced by a blank before parsing.
_NOT_XML_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_DROPPED_TAGS = ("script", "style", "noscript", "template")
#: Elements that stand on lines of their own (the old text kept `<br>`, `</p>`, `</div>`, `</li>`, `</hN>`).
_BLOCK_TAGS = ("br", "p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote", "pre",
               "ul", "ol", "dl", "dt", "dd", "table", "section", "article", "header", "footer", "figure",
               "figcaption", "aside", "nav", "hr")  # fmt: skip
_PARSERS = threading.local()


def parse_entries(
    content: bytes,
    headers: dict[str, str],
    source: str,
    feed_url: str,
    parse_seconds: float = DEFAULT_LIMITS.parse_seconds,
) -> tuple[list[Entry], str]:
    """Entries of a feed document (bytes + response headers) and feedparser's warning, if any.

    Raises FetchError with a one-line reason for an empty body, an HTML page, a document that is no
    RSS or Atom, or one that takes longer than `parse_seconds` to parse.
    """
    if not content.strip():
        raise FetchError("empty response body")
    if _is_html(content, headers):
        raise FetchError("not a feed: got an HTML page")
    document = correct_xml_encoding(strip_entity_declarations(content))
    parsed = _parse_within(document, correct_charset_header(document, headers), parse_seconds)
    warning = ""
    if parsed.get("bozo"):
        warning = flatten_text(str(parsed.get("bozo_exception", "malformed feed")), 200)
        if not parsed.entries:
            raise FetchError(f"not a feed: {warning}")
    if not parsed.entries and not parsed.get("version"):
        raise FetchError("not a feed: no RSS or Atom document")
    entries = []
    for item in parsed.entries:
        guid = str(item.get("id") or "")[:MAX_LINK] or None
        title = _html_to_text(item.get("title", ""))[:MAX_TITLE]
        summary = _html_to_text(_entry_text(item))[:MAX_TEXT]
        if not (item.get("link") or guid or title or summary):
            continue  # no link, no GUID, no text: nothing to store (what a junk document parses into)
        entries.append(
            Entry(
                link=_entry_link(item, feed_url, guid, title, summary),
                guid=guid,
                title=title,
                summary=summary,
                published=_when(item),
                source=_item_source(item) or source,
                feed_url=feed_url,
            )
        )
    if warning and not entries:
        raise FetchError(f"not a feed: {warning}")
    return _distinct(entries), warning


def flatten_text(text: str, limit: int = 300) -> str:
    """`text` as one printable line of at most `limit` characters (it ends up in `borderwatch feeds`)."""
    line = _CONTROL.sub(" ", text).strip()
    return line if len(line) <= limit else line[: limit - 3] + "..."


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


def _is_html(content: bytes, headers: dict[str, str]) -> bool:
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    start = content[:512].lstrip().lower()
    return media in ("text/html", "application/xhtml+xml") or start.startswith((b"<!doctype html", b"<html"))


#: How often a parse that ran out of time is interrupted again, until it stops.
_RESEND_SECONDS = 0.05


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
    done = threading.Event()
    finished = fired = False

    def _interrupt() -> None:
        # Sent again until the parse ends: an interrupt can land in code that swallows exceptions (a
        # finaliser or gc callback run mid-parse: "Exception ignored in ..."), and the parse goes on.
        nonlocal fired
        while True:
            with lock:
                if finished:
                    return
                fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread_id), ctypes.py_object(_ParseTimeout)
                )
            if done.wait(_RESEND_SECONDS):
                return

    timer = threading.Timer(seconds, _interrupt)
    timer.daemon = True
    try:
        timer.start()
        try:
            # No HTML sanitising or URI resolution: entries are reduced to plain text right after, and
            # skipping both saves about a third of the parse time.
            parsed = feedparser.parse(
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
            done.set()
            if interrupted:
                _take_pending_interrupt()
        if interrupted:
            raise _ParseTimeout  # the parse overran, though every interrupt was swallowed: still too slow
        return parsed
    except _ParseTimeout:
        raise FetchError(f"feed took longer than {seconds:g}s to parse") from None


def _take_pending_interrupt() -> None:
    """Run bytecode until a pending asynchronous `_ParseTimeout` is raised (it is raised at a loop jump)."""
    for _ in range(10_000):
        pass


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


def _entry_link(item: Any, feed_url: str, guid: str | None, title: str, summary: str) -> str:
    """The item's link, made absolute; for an item without one, its address within the feed.

    Such items used to be dropped unseen (issue 11). The address is the feed's URL with the GUID as
    fragment (GUIDs are only trusted within their feed), or, without a GUID either, the hash of the
    item's title and text: the same item is then the same article on every poll.
    """
    link = str(item.get("link") or "")
    if link:
        return urljoin(feed_url, link)[:MAX_LINK]
    return item_address(feed_url, guid or "sha256-" + content_hash(title + "\n" + summary))


def _item_source(item: Any) -> str | None:
    """The outlet an aggregator's item names in its <source> element."""
    origin = item.get("source")
    title = origin.get("title") if hasattr(origin, "get") else None
    return str(title).strip()[:200] if title and str(title).strip() else None


def _html_to_text(value: str) -> str:
    """Feed HTML reduced to text by an HTML parser, paragraphs kept as lines.

    Comments, processing instructions, scripts and styles go whole, and attribute values are never text:
    a regular expression left `closed" src=...` of `<img alt="crossing > closed" src=...>` in the article,
    where keyword matching and claims read it (issue 11).
    """
    if "<" not in value and "&" not in value:
        return value.strip()
    # Bytes with the encoding named: an XML declaration in the text then neither fails nor misleads.
    data = _NOT_XML_CHARACTER.sub(" ", value).encode("utf-8")
    try:
        root = lxml.html.document_fromstring(data, parser=_html_parser())
    except (etree.ParserError, ValueError):  # nothing but blanks and markup
        return ""
    for node in list(root.iter(*_DROPPED_TAGS)):
        node.drop_tree()
    for node in root.iter(*_BLOCK_TAGS):
        node.tail = "\n" + (node.tail or "")
        if node.tag != "br":
            node.text = "\n" + (node.text or "")
    text = root.text_content()
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def _html_parser() -> lxml.html.HTMLParser:
    """This thread's HTML parser (an lxml parser must not be shared by threads that parse at once)."""
    parser: lxml.html.HTMLParser | None = getattr(_PARSERS, "html", None)
    if parser is None:
        # huge_tree: libxml2 otherwise stops at 256 levels of nesting and drops the rest of the text, and
        # broken CMS markup (unclosed <font> or <b>) nests that deep; the input is bounded by max_bytes.
        parser = lxml.html.HTMLParser(
            encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True, huge_tree=True
        )
        _PARSERS.html = parser
    return parser
