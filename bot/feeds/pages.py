"""Fetch an article's page and extract its main text with trafilatura (through the SSRF guard)."""

from __future__ import annotations

from typing import Any

import httpx
import trafilatura

from bot.errors import FetchError
from bot.net.client import Limits, read_limited
from bot.net.guard import check_scheme


def extract_main_text(html: bytes | str, url: str | None = None) -> str | None:
    """The main text of an HTML page (boilerplate removed), or None when trafilatura finds none.

    `url` only helps trafilatura with metadata; some it cannot parse (an IPv6 literal such as
    `http://[::1]:8000/a`) make it return nothing, so the text is then extracted without it.
    trafilatura's `deduplicate` stays off: its cache is process-wide, so a syndicated copy of a page
    seen earlier would come back empty instead of being stored as a duplicate.
    """
    options: dict[str, Any] = {"include_comments": False, "include_tables": False, "favor_precision": True,
                               "deduplicate": False}  # fmt: skip
    text = trafilatura.extract(html, url=url, **options)
    if not (text and text.strip()) and url is not None:
        text = trafilatura.extract(html, **options)
    return text.strip() if text and text.strip() else None


def fetch_article_text(http: httpx.Client, url: str, limits: Limits) -> str:
    """Fetch `url` (every hop checked by the client's guard) and return its main text.

    Raises FetchError (or an httpx error) when the page cannot be had; the caller falls back to the
    feed's own summary.
    """
    body = read_limited(
        http, url, limits, {"Accept": "text/html,application/xhtml+xml"}, check_url=check_scheme
    )
    if body.status >= 400:
        raise FetchError(f"HTTP {body.status} for article page")
    content_type = body.headers.get("content-type", "")
    if content_type and "html" not in content_type and "xml" not in content_type:
        raise FetchError(f"article page is {content_type.split(';')[0]}, not HTML")
    text = extract_main_text(body.content, url)
    if text is None:
        raise FetchError("no main text found on article page")
    return text
