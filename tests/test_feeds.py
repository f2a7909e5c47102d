"""fetch_feed against real loopback servers: conditional GET, redirects, 410, backoff, freshness, parsing."""

from __future__ import annotations

import gc
import random
import sys
from datetime import timedelta
from email.utils import format_datetime
from types import FrameType
from typing import Any

import httpx
import pytest

from bot.demo import render_atom
from bot.errors import FetchError
from bot.feeds.parse import parse_entries
from bot.feeds.poll import MAX_BACKOFF, backoff_delay, fetch_feed
from bot.models import FeedState
from bot.net.client import Limits
from tests.conftest import (
    DATA,
    NOW,
    LoopbackServer,
    conditional,
    reply,
    rss,
    rss_item,
    seed_items,
)

INTERVAL = 600.0


def fetch(http: httpx.Client, state: FeedState, **kw: Any) -> Any:
    return fetch_feed(http, state, source="Test", interval=INTERVAL, now=NOW, rng=random.Random(1), **kw)


def count_calls(name: str, func: Any) -> tuple[Any, int]:
    """Run func() and count calls of functions named `name` in this thread (a profiler, not a mock)."""
    calls = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_name == name:
            calls += 1

    sys.setprofile(profile)
    try:
        result = func()
    finally:
        sys.setprofile(None)
    return result, calls


def test_second_poll_is_conditional_and_its_304_costs_no_parsing(
    server: LoopbackServer, http: httpx.Client
) -> None:
    server.routes["/feed.xml"] = conditional((DATA / "feeds" / "ttl.xml").read_bytes())
    first, parses_first = count_calls(
        "parse_entries", lambda: fetch(http, FeedState(server.url("/feed.xml")))
    )
    second, parses_second = count_calls("parse_entries", lambda: fetch(http, first.state))

    assert len(first.entries) == 1 and first.state.etag and first.state.last_modified
    sent = server.requests_for("/feed.xml")[1].headers
    assert sent["if-none-match"] == first.state.etag
    assert sent["if-modified-since"] == first.state.last_modified
    assert second.not_modified and second.status == 304 and second.entries == ()
    assert (parses_first, parses_second) == (1, 0)


def test_last_modified_alone_is_sent_back_as_if_modified_since(
    server: LoopbackServer, http: httpx.Client
) -> None:
    body = (DATA / "feeds" / "ttl.xml").read_bytes()
    stamp = "Mon, 26 Jul 2021 10:00:00 GMT"

    def handle(request: Any) -> None:
        if request.headers.get("If-Modified-Since") == stamp:
            reply(b"", 304)(request)
        else:
            reply(body, 200, {"Last-Modified": stamp})(request)

    server.routes["/feed.xml"] = handle
    first = fetch(http, FeedState(server.url("/feed.xml")))
    second = fetch(http, first.state)
    assert first.state.etag is None and first.state.last_modified == stamp
    assert "if-none-match" not in server.requests_for("/feed.xml")[1].headers
    assert second.not_modified


def test_atom_feed_of_the_seed_reports(server: LoopbackServer, http: httpx.Client) -> None:
    items = seed_items()
    server.routes["/atom.xml"] = reply(
        render_atom(items, server.base_url), content_type="application/atom+xml"
    )
    result = fetch(http, FeedState(server.url("/atom.xml")))
    assert result.error is None
    assert [e.title for e in result.entries] == [i.entry.title for i in items]
    assert result.entries[0].source == items[0].entry.source
    assert result.entries[0].published == items[0].entry.published
    assert "46 members of the Afghanistan forces" in result.entries[0].summary


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_updates_the_feed_url(
    server: LoopbackServer, http: httpx.Client, status: int
) -> None:
    server.routes["/old.xml"] = reply(b"", status, {"Location": "/new.xml"})
    server.routes["/new.xml"] = conditional((DATA / "feeds" / "ttl.xml").read_bytes())
    result = fetch(http, FeedState(server.url("/old.xml")))
    assert result.state.url == server.url("/new.xml") and result.moved_to == server.url("/new.xml")
    again = fetch(http, result.state)
    assert again.not_modified and server.hits("/old.xml") == 1


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_keeps_the_feed_url(
    server: LoopbackServer, http: httpx.Client, status: int
) -> None:
    server.routes["/feed.xml"] = reply(b"", status, {"Location": "/elsewhere.xml"})
    server.routes["/elsewhere.xml"] = reply((DATA / "feeds" / "ttl.xml").read_bytes())
    result = fetch(http, FeedState(server.url("/feed.xml")))
    assert len(result.entries) == 1
    assert result.state.url == server.url("/feed.xml") and result.moved_to is None


def test_permanent_then_temporary_hop_is_not_a_move(server: LoopbackServer, http: httpx.Client) -> None:
    server.routes["/a.xml"] = reply(b"", 301, {"Location": "/b.xml"})
    server.routes["/b.xml"] = reply(b"", 302, {"Location": "/c.xml"})
    server.routes["/c.xml"] = reply((DATA / "feeds" / "ttl.xml").read_bytes())
    result = fetch(http, FeedState(server.url("/a.xml")))
    assert len(result.entries) == 1 and result.state.url == server.url("/a.xml")


def test_410_retires_the_feed(server: LoopbackServer, http: httpx.Client) -> None:
    server.routes["/feed.xml"] = reply(b"gone", 410, content_type="text/plain")
    result = fetch(http, FeedState(server.url("/feed.xml")))
    assert result.gone and result.state.retired and result.state.next_poll is None
    assert result.error == "410 Gone: feed retired"


def test_backoff_grows_with_consecutive_errors_and_is_capped(
    server: LoopbackServer, http: httpx.Client
) -> None:
    server.routes["/feed.xml"] = reply(b"oops", 500, content_type="text/plain")
    state = FeedState(server.url("/feed.xml"))
    delays = []
    for _ in range(4):
        result = fetch(http, state)
        state = result.state
        assert result.error == "HTTP 500" and result.status == 500
        delays.append((state.next_poll - NOW).total_seconds())
    assert state.consecutive_errors == 4
    assert delays == sorted(delays) and delays[-1] > 4 * delays[0]
    assert backoff_delay(INTERVAL, 30, random.Random(1)) <= MAX_BACKOFF * 1.2


def test_success_resets_the_error_count(server: LoopbackServer, http: httpx.Client) -> None:
    server.routes["/feed.xml"] = reply((DATA / "feeds" / "ttl.xml").read_bytes())
    failing = FeedState(server.url("/feed.xml"), consecutive_errors=3, last_error="HTTP 500")
    result = fetch(http, failing)
    assert result.state.consecutive_errors == 0 and result.state.last_error is None


@pytest.mark.parametrize(
    ("header", "at_least"),
    [
        ("7200", timedelta(hours=2)),
        (format_datetime(NOW + timedelta(hours=3), usegmt=True), timedelta(hours=3)),
    ],
)
def test_retry_after_pushes_next_poll(
    server: LoopbackServer, http: httpx.Client, header: str, at_least: timedelta
) -> None:
    server.routes["/feed.xml"] = reply(b"busy", 503, {"Retry-After": header}, content_type="text/plain")
    result = fetch(http, FeedState(server.url("/feed.xml")))
    assert result.error == "HTTP 503"
    assert result.state.next_poll >= NOW + at_least


def test_cache_control_max_age_pushes_next_poll(server: LoopbackServer, http: httpx.Client) -> None:
    body = rss(rss_item("Zyzzyva", "http://example.org/1", "Zyzzyva text"))
    server.routes["/feed.xml"] = reply(body, headers={"Cache-Control": "public, max-age=5400"})
    result = fetch(http, FeedState(server.url("/feed.xml")))
    assert result.state.next_poll == NOW + timedelta(seconds=5400)


def test_rss_ttl_pushes_next_poll(server: LoopbackServer, http: httpx.Client) -> None:
    server.routes["/feed.xml"] = reply((DATA / "feeds" / "ttl.xml").read_bytes())
    result = fetch(http, FeedState(server.url("/feed.xml")))
    assert result.state.next_poll == NOW + timedelta(minutes=180)


def test_plain_feed_polls_again_after_its_interval(server: LoopbackServer, http: httpx.Client) -> None:
    server.routes["/feed.xml"] = reply(rss(rss_item("Zyzzyva", "http://example.org/1", "Zyzzyva text")))
    result = fetch(http, FeedState(server.url("/feed.xml")))
    assert result.state.next_poll == NOW + timedelta(seconds=INTERVAL)


def test_future_dates_are_clamped_and_missing_dates_stay_empty(
    server: LoopbackServer, http: httpx.Client
) -> None:
    server.routes["/feed.xml"] = reply((DATA / "feeds" / "dates.xml").read_bytes())
    result = fetch(http, FeedState(server.url("/feed.xml")))
    dates = {e.guid: e.published for e in result.entries}
    assert dates == {"d-future": NOW, "d-none": None}


def test_duplicate_guids_are_deduplicated_or_dropped() -> None:
    entries, _ = parse_entries(
        (DATA / "feeds" / "duplicate_guids.xml").read_bytes(), {}, "T", "http://example.org/"
    )
    assert [(e.link.rsplit("/", 1)[1], e.guid) for e in entries] == [
        ("one", None),
        ("two", None),
        ("three", None),
    ]


def test_limits_parse_seconds_is_passed_down(server: LoopbackServer, http: httpx.Client) -> None:
    # 200,000 unclosed tags send feedparser to its slow lenient parser; a tiny budget must stop it.
    body = rss(rss_item("Zyzzyva", "http://example.org/1", "x") + "<a <b <c " * 200_000)
    server.routes["/feed.xml"] = reply(body)
    result = fetch(http, FeedState(server.url("/feed.xml")), limits=Limits(parse_seconds=0.05))
    assert result.error == "feed took longer than 0.05s to parse"


def test_feed_html_is_read_by_an_html_parser() -> None:
    """Issue 11: comments, scripts, styles and attribute values never reach the entry's text."""
    description = (
        "<!-- desk: crossing > closed --><p>Torkham <b>reopened</b> &amp; traders crossed.</p>"
        '<img alt="crossing > closed" src="/x.jpg"><script>var a = "b > c";</script>'
        "<style>p > a {color: red}</style><ul><li>one</li><li>two</li></ul>Trade &lt; 10 trucks<br>end"
    )
    body = rss(rss_item("Torkham", "http://example.org/1", description))
    entries, _ = parse_entries(body, {}, "T", "http://example.org/feed.xml")
    assert entries[0].summary == "Torkham reopened & traders crossed.\none\ntwo\nTrade < 10 trucks\nend"


def test_deeply_nested_broken_markup_keeps_its_text() -> None:
    """Unclosed inline tags nest past libxml2's default limit of 256 levels; the text after them stays."""
    description = "<p>Torkham reopened.</p>" + "<font>x" * 600 + "<p>Traders crossed.</p>"
    entries, _ = parse_entries(rss(rss_item("Torkham", "http://example.org/1", description)), {}, "T", "u")
    assert entries[0].summary.startswith("Torkham reopened.\nx") and entries[0].summary.endswith(
        "\nTraders crossed."
    )


def test_entries_without_a_link_are_addressed_within_the_feed() -> None:
    """Issue 11: kept, by GUID, else by content; an item with nothing in it is still no entry."""
    items = (
        "<item><title>Zyzzyva one</title><guid isPermaLink='false'>cms-1</guid><description>a</description></item>"
        "<item><title>Zyzzyva two</title><description>b</description></item>"
        "<item><description></description></item>"
    )
    feed = "http://example.org/feed.xml"
    entries, _ = parse_entries(rss(items), {}, "T", feed)
    again, _ = parse_entries(rss(items), {}, "T", feed)
    assert [e.link for e in entries] == [e.link for e in again]
    assert [e.link.split("#")[0] for e in entries] == [feed, feed]
    assert entries[0].link == feed + "#item=cms-1" and entries[0].guid == "cms-1"
    assert entries[1].link.startswith(feed + "#item=sha256-") and entries[1].guid is None


def test_a_parse_interrupt_swallowed_mid_parse_is_sent_again() -> None:
    # The time-limit interrupt can land in code that swallows exceptions and run on in the parse: a
    # finaliser or a gc callback ("Exception ignored in ..."). Here a real gc callback, run by a collection
    # the parse triggers, waits for the interrupt and swallows it once; the limit must still hold.
    body = rss(rss_item("Zyzzyva", "http://example.org/1", "x") + "<a <b <c " * 200_000)
    swallowed: list[str] = []

    def swallow_once(phase: str, info: dict[str, int]) -> None:
        # Only a collection inside this thread's parse (its time-limit timer is what ends the spin).
        if phase != "start" or swallowed or not _inside("_parse_within"):
            return
        try:
            while True:  # until the interrupt arrives (the test's timeout is the only bound)
                pass
        except BaseException as exc:  # noqa: B036 - swallowing it is the point
            swallowed.append(type(exc).__name__)

    thresholds = gc.get_threshold()
    gc.set_threshold(100)
    gc.callbacks.append(swallow_once)
    try:
        with pytest.raises(FetchError, match=r"feed took longer than 0\.05s to parse"):
            parse_entries(body, {}, "T", "http://example.org/feed.xml", parse_seconds=0.05)
    finally:
        gc.callbacks.remove(swallow_once)
        gc.set_threshold(*thresholds)
    assert swallowed == ["_ParseTimeout"]


def _inside(function: str) -> bool:
    """True when the calling thread is running inside `function` (somewhere up its stack)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False
