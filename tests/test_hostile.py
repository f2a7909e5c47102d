"""Hostile feeds and network faults (issue 6), each served by a loopback server, all in one cycle.

One cycle polls every hostile feed at once beside a healthy feed of the five seed reports. Each case
must end with a one-line reason in `borderwatch feeds` (or be read safely when it is only odd), and
the healthy feed must lose nothing: its articles stored once, its alerts exactly those of a clean run.
"""

from __future__ import annotations

import gzip
import json
import random
import socket
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlite_utils import Database

from bot import store
from bot.app import build_pipeline
from bot.cycle import Pipeline, run_cycle
from bot.errors import FetchError
from bot.net.client import Limits, make_client, read_limited
from tests.conftest import (
    DATA,
    NOW,
    FaultTally,
    LoopbackServer,
    config_from,
    reply,
    rss,
    rss_item,
    run_cli,
    serve_seeds,
)

TIMEOUT = 1.0
LIMITS = Limits(max_bytes=3_000_000, deadline=2.5, max_redirects=5, parse_seconds=10.0)
CAP = LIMITS.max_bytes
SECRET = "TOP-SECRET-7f3a9c"


# --- handlers that misbehave --------------------------------------------------------------------------


def trickle_body(request: Any) -> None:
    """Headers at once, then one byte every 0.25 s: no single read ever times out."""
    request.send_response(200)
    request.send_header("Content-Type", "application/rss+xml")
    request.send_header("Content-Length", "100000")
    request.end_headers()
    request.wfile.flush()
    for _ in range(120):
        request.wfile.write(b" ")
        request.wfile.flush()
        time.sleep(0.25)


def trickle_headers(request: Any) -> None:
    """The status line and headers themselves, a byte every 0.25 s (h11 waits for the blank line)."""
    request.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    request.wfile.flush()
    for _ in range(120):
        request.wfile.write(b"a")
        request.wfile.flush()
        time.sleep(0.25)


def stall_mid_body(request: Any) -> None:
    """Half a body, then silence longer than the read timeout."""
    request.send_response(200)
    request.send_header("Content-Type", "application/rss+xml")
    request.send_header("Content-Length", "10000")
    request.end_headers()
    request.wfile.write(b"<?xml version='1.0'?><rss version='2.0'><channel>")
    request.wfile.flush()
    time.sleep(TIMEOUT * 4)


def stream_without_length(request: Any) -> None:
    """More than the cap, with no Content-Length (the body ends when the connection closes)."""
    request.send_response(200)
    request.send_header("Content-Type", "application/rss+xml")
    request.end_headers()
    chunk = b"<!-- padding -->" * 4096
    for _ in range(CAP // len(chunk) + 20):
        request.wfile.write(chunk)


def gzip_bomb(decompressed: int = 200_000_000) -> bytes:
    """A gzip member that inflates to `decompressed` bytes of spaces (about 200 KB on the wire)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * 1_000_000
    parts = [packer.compress(block) for _ in range(decompressed // len(block))]
    return b"".join(parts) + packer.flush()


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FullBacklog:
    """A listening socket whose accept queue is full, so a new connect hangs: a connect timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = int(self.sock.getsockname()[1])
        self.fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(filler)

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.sock.close()


def feed_file(name: str) -> bytes:
    return (DATA / "feeds" / name).read_bytes()


# --- the cases ----------------------------------------------------------------------------------------

# name -> expected last_error: an exact string, a prefix ending in "...", or None for "read, no error".
EXPECTED: dict[str, str | None] = {
    "connection refused": "cannot connect: ...",
    "dns failure": "cannot resolve host: ...",
    "connect timeout": "timed out (ConnectTimeout)",
    "stall mid-body": "timed out (ReadTimeout)",
    "trickled body": "took longer than 2.5s",
    "trickled headers": "took longer than 2.5s",
    "http 500": "HTTP 500",
    "http 503": "HTTP 503",
    "http 404": "HTTP 404",
    "http 410": "410 Gone: feed retired",
    "redirect loop": "redirect loop at http://127.0.0.1:...",
    "long redirect chain": "more than 5 redirects",
    "oversize declared": f"response larger than {CAP} bytes (Content-Length {CAP * 2})",
    "oversize streamed": f"response larger than {CAP} bytes",
    "gzip bomb": f"response larger than {CAP} bytes once decompressed",
    "corrupt gzip": "corrupt gzip body",
    "unknown encoding": "unsupported content encoding 'br'",
    "not xml": "not a feed: ...",
    "html page": "not a feed: got an HTML page",
    "xml but no feed": "not a feed: no RSS or Atom document",
    "empty body": "empty response body",
    "binary junk": "not a feed: ...",
    "truncated feed": None,
    "billion laughs": None,
    "external entity": None,
    "wrong charset": None,
    "missing charset": None,
    "empty channel": None,
    "duplicate guids": None,
    "dates": None,
    "enormous title": None,
}


def install_cases(server: LoopbackServer, secret_path: Path, backlog: FullBacklog) -> dict[str, str]:
    """Routes for every case on `server`; returns each case's feed URL."""
    routes: dict[str, Callable[[Any], None]] = {
        "/trickle-body.xml": trickle_body,
        "/trickle-headers.xml": trickle_headers,
        "/stall.xml": stall_mid_body,
        "/500.xml": reply(b"boom", 500, content_type="text/plain"),
        "/503.xml": reply(b"busy", 503, {"Retry-After": "120"}, content_type="text/plain"),
        "/404.xml": reply(b"no", 404, content_type="text/plain"),
        "/410.xml": reply(b"gone", 410, content_type="text/plain"),
        "/loop-a.xml": reply(b"", 302, {"Location": "/loop-b.xml"}),
        "/loop-b.xml": reply(b"", 301, {"Location": "/loop-a.xml"}),
        "/oversize.xml": reply(b"<" * (CAP * 2)),
        "/streamed.xml": stream_without_length,
        "/bomb.xml": reply(gzip_bomb(), headers={"Content-Encoding": "gzip"}),
        "/corrupt-gzip.xml": reply(
            b"\x1f\x8b\x08\x00garbage-not-deflate" * 10, headers={"Content-Encoding": "gzip"}
        ),
        "/brotli.xml": reply(b"\x0b\x02\x80hello\x03", headers={"Content-Encoding": "br"}),
        "/not-xml.xml": reply(feed_file("not_xml.xml")),
        "/html.xml": reply(feed_file("html_page.html"), content_type="text/html; charset=utf-8"),
        "/sitemap.xml": reply(feed_file("not_a_feed.xml")),
        "/empty.xml": reply(b""),
        "/junk.xml": reply(random.Random(6).randbytes(20_000), content_type="application/octet-stream"),
        "/truncated.xml": reply(feed_file("truncated.xml")),
        "/laughs.xml": reply(feed_file("billion_laughs.xml")),
        "/xxe.xml": reply(
            feed_file("external_entity.xml").replace(b"@SECRET_PATH@", str(secret_path).encode())
        ),
        "/charset.xml": reply(
            feed_file("wrong_charset.xml"), content_type="application/rss+xml; charset=iso-8859-1"
        ),
        "/nocharset.xml": reply(feed_file("no_charset.xml"), content_type="text/xml"),
        "/empty-channel.xml": reply(feed_file("empty_channel.xml")),
        "/dup-guids.xml": reply(feed_file("duplicate_guids.xml")),
        "/dates.xml": reply(feed_file("dates.xml")),
        "/huge-title.xml": reply(
            rss(rss_item("Zyzzyva " * 250_000, "http://example.org/huge", "Zyzzyva body"))
        ),
    }
    for hop in range(8):
        routes[f"/chain-{hop}.xml"] = reply(b"", 307, {"Location": f"/chain-{hop + 1}.xml"})
    server.routes.update(routes)
    url = server.url
    return {
        "connection refused": f"http://127.0.0.1:{closed_port()}/feed.xml",
        # A name that cannot be resolved, refused before any query leaves the machine (a label over 63
        # characters): the tests send no traffic beyond loopback, not even to a DNS resolver.
        "dns failure": f"http://{'x' * 64}.borderwatch.invalid/feed.xml",
        "connect timeout": f"http://127.0.0.1:{backlog.port}/feed.xml",
        "stall mid-body": url("/stall.xml"),
        "trickled body": url("/trickle-body.xml"),
        "trickled headers": url("/trickle-headers.xml"),
        "http 500": url("/500.xml"),
        "http 503": url("/503.xml"),
        "http 404": url("/404.xml"),
        "http 410": url("/410.xml"),
        "redirect loop": url("/loop-a.xml"),
        "long redirect chain": url("/chain-0.xml"),
        "oversize declared": url("/oversize.xml"),
        "oversize streamed": url("/streamed.xml"),
        "gzip bomb": url("/bomb.xml"),
        "corrupt gzip": url("/corrupt-gzip.xml"),
        "unknown encoding": url("/brotli.xml"),
        "not xml": url("/not-xml.xml"),
        "html page": url("/html.xml"),
        "xml but no feed": url("/sitemap.xml"),
        "empty body": url("/empty.xml"),
        "binary junk": url("/junk.xml"),
        "truncated feed": url("/truncated.xml"),
        "billion laughs": url("/laughs.xml"),
        "external entity": url("/xxe.xml"),
        "wrong charset": url("/charset.xml"),
        "missing charset": url("/nocharset.xml"),
        "empty channel": url("/empty-channel.xml"),
        "duplicate guids": url("/dup-guids.xml"),
        "dates": url("/dates.xml"),
        "enormous title": url("/huge-title.xml"),
    }


def make_pipe(feeds: list[tuple[str, str]], db: Database) -> Pipeline:
    cfg = config_from(
        {
            "feeds": [{"name": n, "url": u, "fetch_articles": False} for n, u in feeds],
            "watch": {"keywords": ["Afghan*", "Taliban", "Zyzzyva", "طالبان", "تورخم"]},
            "network": {"timeout": TIMEOUT, "max_bytes": CAP},
        }
    )
    pipe = build_pipeline(cfg, db)
    pipe.limits = LIMITS
    return pipe


def alert_signatures(db: Database) -> Counter[tuple[str, tuple[str, ...]]]:
    """(kind, evidence paths) of the alerts about the healthy feed's articles, with multiplicity."""
    found: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for kind, evidence in db.execute("select kind, evidence from alerts").fetchall():
        paths = tuple(sorted(urlsplit(e["url"]).path for e in json.loads(evidence)))
        if paths and all(p.startswith("/articles/") for p in paths):
            found[(kind, paths)] += 1
    return found


class HostileRun:
    """The outcome of one cycle over every case and the healthy feed."""

    def __init__(self, db: Database, db_path: Path, urls: dict[str, str], reference: Counter[Any]) -> None:
        self.db = db
        self.db_path = db_path
        self.urls = urls
        self.reference = reference
        self.feeds = {r["name"]: r for r in store.rows(db, "select * from feeds")}

    def articles(self, like: str) -> list[dict[str, Any]]:
        return list(store.rows(self.db, "select * from articles where url like ? order by id", [like]))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, fault_tally_module: FaultTally) -> Iterator[HostileRun]:
    tmp = tmp_path_factory.mktemp("hostile")
    secret = tmp / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    server = LoopbackServer().start()
    backlog = FullBacklog()
    try:
        healthy = serve_seeds(server)
        reference_db = store.open_db(tmp / "reference.db")
        reference_pipe = make_pipe([("Healthy", healthy)], reference_db)
        run_cycle(reference_pipe, now=NOW)
        reference_pipe.close()
        reference = alert_signatures(reference_db)

        urls = install_cases(server, secret, backlog)
        db_path = tmp / "hostile.db"
        db = store.open_db(db_path)
        pipe = make_pipe([*urls.items(), ("Healthy", healthy)], db)
        run_cycle(pipe, now=NOW, workers=12)
        pipe.close()

        run = HostileRun(db, db_path, urls, reference)
        stored = [a["canonical_url"] for a in run.articles(f"{server.base_url}/articles/%")]
        alerts = alert_signatures(db)
        lost_alerts = sum((reference - alerts).values())
        extra_alerts = sum((alerts - reference).values())
        for name in urls:
            fault_tally_module.record(f"hostile: {name}")
        fault_tally_module.record(
            "hostile: healthy sibling feed",
            faults=0,
            articles_lost=5 - len(set(stored)),
            articles_duplicated=len(stored) - len(set(stored)),
            alerts_lost=lost_alerts,
            alerts_duplicated=extra_alerts,
        )
        yield run
        db.close()
    finally:
        backlog.close()
        server.stop()


@pytest.fixture(scope="module")
def fault_tally_module() -> FaultTally:
    from tests.conftest import _TALLY

    return _TALLY


# --- the assertions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(EXPECTED))
def test_each_case_ends_with_its_one_line_reason(hostile: HostileRun, case: str) -> None:
    feed = hostile.feeds[case]
    expected = EXPECTED[case]
    error = feed["last_error"]
    if expected is None:
        assert error is None and feed["consecutive_errors"] == 0
    elif expected.endswith("..."):
        assert error is not None and error.startswith(expected[:-3]), error
    else:
        assert error == expected
    if error is not None:
        assert "\n" not in error and len(error) <= 300 and error.isprintable()


def test_the_healthy_feed_loses_nothing(hostile: HostileRun) -> None:
    stored = hostile.articles("%/articles/%")
    assert len(stored) == 5 and len({a["canonical_url"] for a in stored}) == 5
    assert hostile.feeds["Healthy"]["last_error"] is None
    assert alert_signatures(hostile.db) == hostile.reference and hostile.reference


def test_failing_cases_back_off_and_the_503_honours_retry_after(hostile: HostileRun) -> None:
    for name, expected in EXPECTED.items():
        row = hostile.feeds[name]
        if expected is not None and name != "http 410":
            next_poll = store.from_iso(row["next_poll"])
            assert row["consecutive_errors"] == 1 and next_poll is not None and next_poll > NOW, name
    assert hostile.feeds["http 410"]["retired"] == 1


def test_entity_tricks_neither_expand_nor_read_files(hostile: HostileRun) -> None:
    laughs = hostile.articles("http://example.org/laughs/%")
    xxe = hostile.articles("http://example.org/xxe/%")
    assert len(laughs) == 1 and len(xxe) == 1
    assert (
        len(laughs[0]["title"]) < 100 and len(laughs[0]["text"]) < 1000 and "lollol" not in laughs[0]["text"]
    )
    everything = json.dumps(list(store.rows(hostile.db, "select * from articles")), default=str)
    assert SECRET not in everything


def test_charset_lies_do_not_garble_urdu_or_pashto(hostile: HostileRun) -> None:
    assert [a["title"] for a in hostile.articles("http://example.org/charset/%")] == ["طورخم سرحد پر فائرنگ"]
    assert [a["title"] for a in hostile.articles("http://example.org/nocharset/%")] == [
        "د تورخم لاره بیا پرانیستل شوه"
    ]


def test_odd_but_readable_feeds_are_stored_safely(hostile: HostileRun) -> None:
    truncated = [a["title"] for a in hostile.articles("http://example.org/trunc/%")]
    assert truncated[0] == "Zyzzyva whole item" and len(truncated) <= 2
    assert len(hostile.articles("http://example.org/dup/%")) == 3
    dates = {
        a["url"].rsplit("/", 1)[1]: a["published"] for a in hostile.articles("http://example.org/dates/%")
    }
    assert dates == {"future": store.iso(NOW), "none": store.iso(NOW)}
    huge = hostile.articles("http://example.org/huge")
    assert len(huge) == 1 and len(huge[0]["title"]) <= 1000
    assert hostile.feeds["empty channel"]["entries_seen"] == 0


def test_borderwatch_feeds_shows_each_reason_in_one_line(hostile: HostileRun) -> None:
    result = run_cli("--db", str(hostile.db_path), "feeds", "--json")
    assert result.returncode == 0, result.stderr
    shown = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(shown) == {*EXPECTED, "Healthy"}
    for name, row in shown.items():
        assert row["last_error"] == hostile.feeds[name]["last_error"]
        assert row["health"] == (
            "retired" if name == "http 410" else "failing" if EXPECTED.get(name) else "ok"
        )


# --- bounds proven directly ---------------------------------------------------------------------------


def test_gzip_bomb_and_oversize_bodies_keep_memory_bounded(server: LoopbackServer) -> None:
    cap = 1_000_000
    server.routes["/bomb"] = reply(gzip_bomb(100_000_000), headers={"Content-Encoding": "gzip"})
    server.routes["/deflate-bomb"] = reply(
        zlib.compress(b" " * 50_000_000, 9), headers={"Content-Encoding": "deflate"}
    )
    server.routes["/ok"] = reply(gzip.compress(b"<rss/>" * 1000), headers={"Content-Encoding": "gzip"})
    client = make_client(5.0)
    limits = Limits(max_bytes=cap, deadline=10.0)
    try:
        assert read_limited(client, server.url("/ok"), limits).content == b"<rss/>" * 1000
        for path in ("/bomb", "/deflate-bomb"):
            tracemalloc.start()
            with pytest.raises(FetchError, match=f"larger than {cap} bytes once decompressed"):
                read_limited(client, server.url(path), limits)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            # httpx's own decoder would hold a whole 64 KiB network chunk inflated (~64 MB) at once.
            assert peak < 4 * cap, (path, peak)
    finally:
        client.close()


def test_slow_parse_is_cut_off_and_the_cycle_goes_on(
    server: LoopbackServer, db: Database, fault_tally: FaultTally
) -> None:
    # 200,000 unclosed tags send feedparser to its slow lenient parser; the parse budget stops it.
    server.routes["/slow-parse.xml"] = reply(
        rss(rss_item("Zyzzyva", "http://example.org/1", "x") + "<a <b " * 200_000)
    )
    healthy = serve_seeds(server)
    pipe = make_pipe([("Slow parse", server.url("/slow-parse.xml")), ("Healthy", healthy)], db)
    pipe.limits = replace(LIMITS, parse_seconds=0.2)
    try:
        run_cycle(pipe, now=NOW)
    finally:
        pipe.close()
    feeds = {r["name"]: r["last_error"] for r in store.rows(db, "select name, last_error from feeds")}
    stored = {a["canonical_url"] for a in store.rows(db, "select canonical_url from articles")}
    fault_tally.record("hostile: slow parse", articles_lost=5 - len(stored))
    assert feeds == {"Slow parse": "feed took longer than 0.2s to parse", "Healthy": None}
    assert len(stored) == 5
