"""Article identity across polls and feeds (issue 11): each case serves real feeds from a loopback server,
polls them several times with `run_cycle`, then counts articles, versions and alerts against a clean run
of the same reports.

- query parameters that name the story (`story.php?cid=101`) keep two stories apart;
- one article carried by two feeds keeps one text (a version is an edit, not a change of feed);
- a feed that renews its GUIDs and links on every poll republishes, it does not publish again;
- entries without a link are kept, known by their GUID or their content;
- feed HTML is read by an HTML parser: no comment or attribute text reaches the stored article.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from bot import store
from bot.app import build_pipeline
from bot.config import Config
from bot.cycle import run_cycle
from bot.demo import Item, render_page
from bot.store import schema
from tests.conftest import NOW, FaultTally, LoopbackServer, reply, rss, rss_item, seed_items

MakeConfig = Callable[..., Config]
POLLS = 4


@dataclass(frozen=True)
class Counts:
    """What a store holds after some polls."""

    articles: int
    versions: int
    alerts: int
    texts: tuple[str, ...]
    urls: tuple[str, ...]


def poll(
    cfg: Config, db_path: Path, polls: int = POLLS, before: Callable[[int], None] | None = None
) -> Counts:
    """Run `polls` cycles (one feed after the other, ten minutes apart) on the store at `db_path`."""
    db = store.open_db(db_path)
    pipe = build_pipeline(cfg, db)
    try:
        for n in range(polls):
            if before is not None:
                before(n)
            run_cycle(pipe, now=NOW + timedelta(minutes=10 * n), workers=1)
        return counts(db)
    finally:
        pipe.close()
        db.close()


def counts(db: Any) -> Counts:
    """Articles, versions and incident alerts (feed notices aside) of a store."""

    def one(sql: str) -> int:
        return int(db.execute(sql).fetchone()[0])

    rows = db.execute("select text, url from articles order by id").fetchall()
    return Counts(
        articles=one("select count(*) from articles"),
        versions=one("select count(*) from article_versions"),
        alerts=one("select count(*) from alerts where incident_id is not null"),
        texts=tuple(r[0] for r in rows),
        urls=tuple(r[1] for r in rows),
    )


def feed(name: str, url: str, fetch_articles: bool = False) -> dict[str, Any]:
    return {"name": name, "url": url, "fetch_articles": fetch_articles}


def serve(server: LoopbackServer, path: str, items_xml: str) -> str:
    """Serve a feed without validators, so that every poll reads (and processes) every entry again."""
    server.routes[path] = reply(rss(items_xml), content_type="application/rss+xml; charset=utf-8")
    return server.url(path)


def item_xml(item: Item, link: str, guid: str | None, body: str | None = None) -> str:
    return rss_item(item.entry.title, link, item.body if body is None else body, guid=guid,
                    published=item.entry.published)  # fmt: skip


def tally(fault_tally: FaultTally, name: str, faults: int, clean: Counts, got: Counts) -> None:
    """Record a case: articles and alerts missing from, or extra to, what the clean run stored."""
    fault_tally.record(
        f"identity: {name}",
        faults=faults,
        articles_lost=max(0, clean.articles - got.articles),
        articles_duplicated=max(0, got.articles - clean.articles) + max(0, got.versions - clean.versions),
        alerts_lost=max(0, clean.alerts - got.alerts),
        alerts_duplicated=max(0, got.alerts - clean.alerts),
    )


@pytest.fixture
def stores(tmp_path: Path) -> Callable[[str], Path]:
    """stores(name) -> the path of a fresh store for one run (the clean run and the faulty run apart)."""
    return lambda name: tmp_path / f"{name}.db"


# --- 1. query parameters that name the story -----------------------------------------------------------


def test_story_ids_in_the_query_keep_stories_apart(
    server: LoopbackServer, make_config: MakeConfig, stores: Callable[[str], Path], fault_tally: FaultTally
) -> None:
    items = seed_items()
    base = "http://news.example.org"
    by_query = ["/story.php?cid=101", "/story.php?cid=202", "/story.php?cid=303",
                "/show.php?src=11&utm_source=rss", "/show.php?src=12&fbclid=IwAR0"]  # fmt: skip
    by_path = [f"/stories/{n}" for n in range(len(items))]
    clean_xml = "".join(item_xml(i, base + p, None) for i, p in zip(items, by_path, strict=True))
    query_xml = "".join(item_xml(i, base + p, None) for i, p in zip(items, by_query, strict=True))
    clean_url, query_url = serve(server, "/clean.xml", clean_xml), serve(server, "/query.xml", query_xml)

    clean = poll(make_config([feed("News", clean_url)]), stores("clean"))
    got = poll(make_config([feed("News", query_url)]), stores("query"))
    tally(fault_tally, "story ids in the query string", len(by_query), clean, got)

    assert clean.articles == len(items) and clean.versions == len(items)
    assert got.urls == tuple(base + p for p in by_query)
    assert (got.articles, got.versions, got.alerts) == (clean.articles, clean.versions, clean.alerts)


# --- 2. one article, two feeds -------------------------------------------------------------------------

LINK = "http://news.example.org/2021/07/afghan-soldiers-cross"
TEXT_A = "Afghan officials said 46 soldiers crossed the border near Chitral on Sunday night."
TEXT_B = "Pakistani officials said about 50 Afghan soldiers crossed into Chitral after Taliban attacks."
TITLE = "Afghan soldiers cross into Pakistan"


def test_one_article_in_two_feeds_keeps_one_text(
    server: LoopbackServer, make_config: MakeConfig, stores: Callable[[str], Path], fault_tally: FaultTally
) -> None:
    url_a = serve(server, "/a.xml", rss_item(TITLE, LINK, TEXT_A, guid="a-1"))
    url_b = serve(server, "/b.xml", rss_item(TITLE, LINK + "?utm_source=b", TEXT_B, guid="b-1"))

    clean = poll(make_config([feed("Wire", url_a)]), stores("clean"))
    got = poll(make_config([feed("Wire", url_a), feed("Wire Asia", url_b)]), stores("two"))
    tally(fault_tally, "one article in two feeds", POLLS, clean, got)

    assert (clean.articles, clean.versions) == (1, 1)
    assert (got.articles, got.versions, got.alerts) == (1, 1, clean.alerts)
    assert got.texts == (TEXT_A,)


def test_an_edit_in_either_feed_is_one_version_and_then_stays(
    server: LoopbackServer, make_config: MakeConfig, stores: Callable[[str], Path]
) -> None:
    url_a = serve(server, "/a.xml", rss_item(TITLE, LINK, TEXT_A, guid="a-1"))
    url_b = serve(server, "/b.xml", rss_item(TITLE, LINK, TEXT_B, guid="b-1"))
    edited_b = TEXT_B.replace("about 50", "about 55")

    def edit(n: int) -> None:
        if n == 2:  # the second feed's own item changes: that is an edit of the article
            serve(server, "/b.xml", rss_item(TITLE, LINK, edited_b, guid="b-1"))

    got = poll(make_config([feed("Wire", url_a), feed("Wire Asia", url_b)]), stores("edit"), 5, edit)
    assert (got.articles, got.versions, got.texts) == (1, 2, (edited_b,))


# --- 3. GUIDs and links renewed on every poll ----------------------------------------------------------


class Renewing:
    """A feed of the seed reports whose GUIDs and links change on every request (as some CMSs do)."""

    def __init__(self, server: LoopbackServer, renew: bool, edit_on: int | None = None) -> None:
        self.server, self.renew, self.edit_on, self.requests = server, renew, edit_on, 0
        self.items = seed_items()
        for item in self.items:
            server.routes[f"/articles/{item.slug}.html"] = reply(
                render_page(item), content_type="text/html; charset=utf-8"
            )

    def __call__(self, request: BaseHTTPRequestHandler) -> None:
        self.requests += 1
        rev = self.requests if self.renew else 0
        parts = []
        for item in self.items:
            body = item.body
            if self.edit_on is not None and self.requests >= self.edit_on and item is self.items[0]:
                body = body.replace("Dozens of", "Scores of")  # a light edit: a near-duplicate
            link = f"{self.server.base_url}/articles/{item.slug}.html?rev={rev}"
            parts.append(item_xml(item, link, f"urn:uuid:{rev}-{item.slug}", body))
        reply(rss("".join(parts)), content_type="application/rss+xml; charset=utf-8")(request)


@pytest.mark.parametrize("fetch_articles", [False, True], ids=["feed text", "pages"])
def test_renewed_guids_and_links_are_the_same_articles(
    server: LoopbackServer,
    make_config: MakeConfig,
    stores: Callable[[str], Path],
    fault_tally: FaultTally,
    fetch_articles: bool,
) -> None:
    server.routes["/stable.xml"] = Renewing(server, renew=False)
    server.routes["/renewing.xml"] = Renewing(server, renew=True)

    clean = poll(make_config([feed("CMS", server.url("/stable.xml"), fetch_articles)]), stores("clean"))
    got = poll(make_config([feed("CMS", server.url("/renewing.xml"), fetch_articles)]), stores("renew"))
    mode = "pages" if fetch_articles else "feed text"
    tally(fault_tally, f"GUIDs and links renewed every poll ({mode})", POLLS - 1, clean, got)

    assert clean.articles == len(seed_items()) and clean.alerts > 0
    assert (got.articles, got.versions, got.alerts) == (clean.articles, clean.versions, clean.alerts)


def test_a_republished_light_edit_is_a_version_of_the_same_article(
    server: LoopbackServer, make_config: MakeConfig, stores: Callable[[str], Path]
) -> None:
    server.routes["/stable.xml"] = Renewing(server, renew=False, edit_on=3)
    server.routes["/renewing.xml"] = Renewing(server, renew=True, edit_on=3)

    clean = poll(make_config([feed("CMS", server.url("/stable.xml"))]), stores("clean"))
    got = poll(make_config([feed("CMS", server.url("/renewing.xml"))]), stores("renew"))

    assert (clean.articles, clean.versions) == (5, 6)
    assert (got.articles, got.versions, got.alerts) == (clean.articles, clean.versions, clean.alerts)


def test_the_same_text_from_another_outlet_is_still_stored_as_its_duplicate(
    server: LoopbackServer, make_config: MakeConfig, stores: Callable[[str], Path]
) -> None:
    item = seed_items()[0]
    url_a = serve(server, "/a.xml", item_xml(item, "http://wire.example.org/a", "a-1"))
    url_b = serve(server, "/b.xml", item_xml(item, "http://other.example.com/b", "b-1"))
    db_path = stores("wire")
    got = poll(make_config([feed("Wire", url_a), feed("Other Outlet", url_b)]), db_path, 2)
    db = store.open_db(db_path)
    try:
        rows = db.execute("select source, duplicate_of is not null from articles order by id").fetchall()
    finally:
        db.close()
    assert got.articles == 2 and rows == [("Wire", 0), ("Other Outlet", 1)]


# --- 4. entries without a link -------------------------------------------------------------------------


def linkless(items: list[Item], base: str, bare: bool) -> str:
    """The first item with a link; the second with only a GUID, the third with neither (when `bare`)."""
    parts = [item_xml(items[0], base + items[0].slug, "g-0")]
    for n, item in enumerate(items[1:3], 1):
        xml = item_xml(item, base + item.slug, "cms-4411" if n == 1 else None)
        if bare:
            xml = xml.replace(f"<link>{base + item.slug}</link>", "")
        parts.append(xml)
    return "".join(parts)


def test_entries_without_a_link_are_kept_once(
    server: LoopbackServer, make_config: MakeConfig, stores: Callable[[str], Path], fault_tally: FaultTally
) -> None:
    items, base = seed_items(), "http://news.example.org/a/"
    clean_url = serve(server, "/clean.xml", linkless(items, base, bare=False))
    bare_url = serve(server, "/bare.xml", linkless(items, base, bare=True))

    clean = poll(make_config([feed("News", clean_url)]), stores("clean"))
    got = poll(make_config([feed("News", bare_url)]), stores("bare"))
    tally(fault_tally, "entries without a link", 2, clean, got)

    assert clean.articles == 3 and clean.alerts > 0
    assert (got.articles, got.versions, got.alerts) == (clean.articles, clean.versions, clean.alerts)
    assert got.urls[1] == bare_url + "#item=cms-4411"
    assert got.urls[2].startswith(bare_url + "#item=sha256-")


# --- 5. feed HTML read by an HTML parser ----------------------------------------------------------------

LEAKS = ('src="', "-->", 'closed"', "var x", "color:", "Afghan, Taliban")


def hostile_html(body: str) -> str:
    """The same paragraphs wrapped in markup whose comments and attributes hold `>` and keywords."""
    paragraphs = [p.strip() for p in body.split("\n") if p.strip()]
    head = ('<!-- desk note: crossing > closed --><img alt="Torkham crossing > closed" src="/img/1.jpg">'
            '<script>var x = "Taliban attack > 40 dead";</script><style>p > a {color: red}</style>')  # fmt: skip
    return head + "".join(f"<p>{p}</p>" for p in paragraphs)


OFF_TOPIC = (
    "<p>Lahore weather: sunny and hot.</p><!-- tags: weather > Afghan, Taliban -->"
    '<img alt="map > Afghan border" src="/img/map.png">'
)


def test_feed_html_leaks_no_comment_script_or_attribute_text(
    server: LoopbackServer, make_config: MakeConfig, stores: Callable[[str], Path], fault_tally: FaultTally
) -> None:
    items = seed_items()
    base = "http://news.example.org/a/"
    off = rss_item("Weather in Lahore", base + "weather", OFF_TOPIC)
    clean_url = serve(server, "/clean.xml", "".join(item_xml(i, base + i.slug, None) for i in items))
    hostile = "".join(item_xml(i, base + i.slug, None, hostile_html(i.body)) for i in items) + off
    hostile_url = serve(server, "/hostile.xml", hostile)

    clean = poll(make_config([feed("News", clean_url)]), stores("clean"), 2)
    got = poll(make_config([feed("News", hostile_url)]), stores("hostile"), 2)
    tally(fault_tally, "feed HTML with comments, scripts and '>' in attributes", len(items) + 1, clean, got)

    leaked = [leak for text in got.texts for leak in LEAKS if leak in text]
    assert leaked == []
    assert (got.articles, got.versions, got.alerts) == (clean.articles, clean.versions, clean.alerts)


def test_a_store_from_before_article_entries_keeps_each_articles_feed_hash(tmp_path: Path) -> None:
    """m005 copies the hash each article's own feed last carried, so an upgraded store re-reads nothing."""
    path = tmp_path / "old.db"
    old = Database(sqlite3.connect(path))
    schema.migrations.apply(old, stop_before="m005_article_entries")
    old.table("feeds").insert({"id": 3, "name": "Wire", "configured_url": "u", "url": "u"})
    for n, hash_ in ((1, "h1"), (2, None)):
        old.table("articles").insert({"id": n, "url": f"http://e.org/{n}", "canonical_url": f"http://e.org/{n}",
                                      "feed_id": 3, "entry_hash": hash_})  # fmt: skip
    old.table("articles").insert({"id": 9, "url": "x", "canonical_url": "x", "entry_hash": "h9"})  # ingested
    old.conn.commit()
    old.conn.close()

    db = store.open_db(path)
    try:
        assert db.execute("select * from article_entries").fetchall() == [(1, 3, "h1")]
        assert store.find_article(db, "http://e.org/1", None, 3).feed_entry_hash == "h1"  # type: ignore[union-attr]
        assert store.find_article(db, "x", None, None).feed_entry_hash == "h9"  # type: ignore[union-attr]
    finally:
        db.close()
