"""run_cycle end to end against loopback feeds: what is stored once, what is a version, what survives."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlite_utils import Database

from bot.config import Config
from bot.cycle import Pipeline, run_cycle
from tests.conftest import (
    DATA,
    NOW,
    LoopbackServer,
    article_count,
    conditional,
    reply,
    rss,
    rss_item,
    seed_items,
    serve_seeds,
)

MakeConfig = Callable[..., Config]
MakePipeline = Callable[[Config], Pipeline]

ARTICLE = "http://news.example.org/2021/07/afghan-soldiers-cross"
BODY = seed_items()[0].body


def serve_items(server: LoopbackServer, path: str, *items: str) -> None:
    server.routes[path] = conditional(rss("".join(items)))


def rows(db: Database, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_polling_twice_sends_a_conditional_get_and_stores_nothing_new(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    pipe = make_pipeline(make_config([("Loopback News", serve_seeds(server))]))
    first = run_cycle(pipe, now=NOW)
    second = run_cycle(pipe, now=NOW + timedelta(minutes=10))

    assert (first.new, second.new, second.not_modified, second.entries) == (5, 0, 1, 0)
    assert article_count(db) == 5
    assert server.requests_for("/feed.xml")[1].headers["if-none-match"].startswith('"')
    feed = rows(db, "select polls, not_modified, etag from feeds")[0]
    assert feed["polls"] == 2 and feed["not_modified"] == 1 and feed["etag"]


def test_atom_feed_of_the_seeds_is_stored_with_outlets(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    pipe = make_pipeline(make_config([("Atom News", serve_seeds(server, feed_path="/atom.xml", atom=True))]))
    assert run_cycle(pipe, now=NOW).new == 5
    sources = {r["source"] for r in rows(db, "select source from articles")}
    assert sources == {i.entry.source for i in seed_items()}


def test_tracking_variants_of_one_url_are_one_article(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    serve_items(server, "/feed.xml", rss_item("Afghan soldiers cross", ARTICLE, BODY, guid="g0"))
    pipe = make_pipeline(make_config([("News", server.url("/feed.xml"))]))
    run_cycle(pipe, now=NOW)
    variants = [
        ARTICLE + "?utm_source=twitter&utm_medium=social&utm_campaign=x",
        ARTICLE + "?fbclid=IwAR0abcdef",
        ARTICLE + "?gclid=Cj0KCQjw",
        ARTICLE + "#comments",
        ARTICLE + "/amp",
        ARTICLE + "/?outputType=amp",
        ARTICLE.replace("news.example.org", "NEWS.Example.ORG"),
        ARTICLE.replace("http://news.", "http://www.news."),
        ARTICLE.replace("news.example.org", "news.example.org:80"),
    ]
    items = [rss_item("Afghan soldiers cross", url, BODY, guid=f"g{n}") for n, url in enumerate(variants, 1)]
    serve_items(server, "/feed.xml", *items)
    summary = run_cycle(pipe, now=NOW + timedelta(minutes=10))

    assert summary.entries == len(variants) and summary.new == 0 and summary.versions == 0
    assert rows(db, "select url, version from articles") == [{"url": ARTICLE, "version": 1}]


def test_syndicated_copy_is_stored_for_its_outlet_as_a_duplicate_without_alert(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    serve_items(server, "/wire.xml", rss_item("Afghan soldiers cross into Pakistan", ARTICLE, BODY))
    serve_items(server, "/other.xml")
    pipe = make_pipeline(
        make_config([("Wire Daily", server.url("/wire.xml")), ("Other Outlet", server.url("/other.xml"))])
    )
    run_cycle(pipe, now=NOW)
    alerts_before = rows(db, "select id from alerts")

    copy = BODY.replace("Dozens of", "Scores of").replace("Monday", "on Monday").replace("slipped", "crossed")
    copy_url = "http://other.example.com/world/asia/afghan-troops"
    serve_items(server, "/other.xml", rss_item("Afghan troops cross into Pakistan", copy_url, copy))
    summary = run_cycle(pipe, now=NOW + timedelta(minutes=10))

    stored = rows(db, "select id, url, source, duplicate_of from articles order by id")
    assert summary.new == 1 and len(stored) == 2
    assert stored[1] == {
        "id": stored[1]["id"],
        "url": copy_url,
        "source": "Other Outlet",
        "duplicate_of": stored[0]["id"],
    }
    assert stored[0]["duplicate_of"] is None
    assert rows(db, "select id from alerts") == alerts_before and alerts_before


def test_silent_edit_adds_a_version_but_whitespace_and_punctuation_do_not(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    text = "Afghan officials said 46 soldiers crossed the border near Chitral on Sunday night."
    serve_items(server, "/feed.xml", rss_item("Afghan soldiers cross", ARTICLE, text, guid="a1"))
    pipe = make_pipeline(make_config([("News", server.url("/feed.xml"))]))
    run_cycle(pipe, now=NOW)

    cosmetic = "Afghan officials said  46 soldiers crossed the border, near Chitral, on Sunday night!\n"
    serve_items(server, "/feed.xml", rss_item("Afghan soldiers cross ", ARTICLE, cosmetic, guid="a1"))
    cosmetic_summary = run_cycle(pipe, now=NOW + timedelta(minutes=10))
    assert cosmetic_summary.entries == 1 and cosmetic_summary.versions == 0

    edited = text.replace("46 soldiers", "about 50 soldiers")
    serve_items(server, "/feed.xml", rss_item("Afghan soldiers cross", ARTICLE, edited, guid="a1"))
    edit_summary = run_cycle(pipe, now=NOW + timedelta(minutes=20))

    assert edit_summary.versions == 1 and edit_summary.new == 0
    versions = rows(db, "select version, text from article_versions order by version")
    assert [v["version"] for v in versions] == [1, 2] and "about 50 soldiers" in versions[1]["text"]
    assert rows(db, "select version, text from articles") == [{"version": 2, "text": edited}]


def test_regenerated_guid_with_the_same_url_is_one_article(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    serve_items(server, "/feed.xml", rss_item("Afghan soldiers cross", ARTICLE, BODY, guid="urn:uuid:1111"))
    pipe = make_pipeline(make_config([("News", server.url("/feed.xml"))]))
    run_cycle(pipe, now=NOW)
    serve_items(server, "/feed.xml", rss_item("Afghan soldiers cross", ARTICLE, BODY, guid="urn:uuid:2222"))
    summary = run_cycle(pipe, now=NOW + timedelta(minutes=10))
    assert summary.new == 0 and article_count(db) == 1


def test_same_guid_under_a_new_url_is_the_same_article(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    serve_items(server, "/feed.xml", rss_item("Afghan soldiers cross", ARTICLE, BODY, guid="story-77"))
    pipe = make_pipeline(make_config([("News", server.url("/feed.xml"))]))
    run_cycle(pipe, now=NOW)
    serve_items(
        server,
        "/feed.xml",
        rss_item("Afghan soldiers cross", ARTICLE + "-updated-slug", BODY, guid="story-77"),
    )
    summary = run_cycle(pipe, now=NOW + timedelta(minutes=10))
    assert summary.new == 0 and article_count(db) == 1


def test_permanent_redirect_is_stored_and_temporary_is_not(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    serve_items(server, "/new.xml", rss_item("Afghan a", ARTICLE + "/a", "Afghan a"))
    serve_items(server, "/elsewhere.xml", rss_item("Afghan b", ARTICLE + "/b", "Afghan b"))
    server.routes["/moved.xml"] = reply(b"", 308, {"Location": "/new.xml"})
    server.routes["/visiting.xml"] = reply(b"", 302, {"Location": "/elsewhere.xml"})
    pipe = make_pipeline(
        make_config([("Moved", server.url("/moved.xml")), ("Visiting", server.url("/visiting.xml"))])
    )
    run_cycle(pipe, now=NOW)
    run_cycle(pipe, now=NOW + timedelta(minutes=10))

    urls = {r["name"]: r["url"] for r in rows(db, "select name, url from feeds")}
    assert urls == {"Moved": server.url("/new.xml"), "Visiting": server.url("/visiting.xml")}
    assert server.hits("/moved.xml") == 1 and server.hits("/visiting.xml") == 2 and article_count(db) == 2


def test_410_retires_the_feed_for_good(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    server.routes["/gone.xml"] = reply(b"gone", 410, content_type="text/plain")
    pipe = make_pipeline(make_config([("Gone", server.url("/gone.xml"))]))
    run_cycle(pipe, now=NOW)
    run_cycle(pipe, now=NOW + timedelta(days=2))
    feed = rows(db, "select retired, last_status, last_error from feeds")[0]
    assert feed == {"retired": 1, "last_status": 410, "last_error": "410 Gone: feed retired"}
    assert server.hits("/gone.xml") == 1


def test_broken_feeds_do_not_stop_the_healthy_one_in_the_same_cycle(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    def slow(request: Any) -> None:
        time.sleep(1.5)  # past the 0.3 s client timeout
        reply(rss(""))(request)

    server.routes["/malformed.xml"] = reply((DATA / "feeds" / "not_xml.xml").read_bytes())
    server.routes["/error.xml"] = reply(b"boom", 500, content_type="text/plain")
    server.routes["/slow.xml"] = slow
    feeds = [("Malformed", server.url("/malformed.xml")), ("Error", server.url("/error.xml")),
             ("Slow", server.url("/slow.xml")), ("Healthy", serve_seeds(server))]  # fmt: skip
    pipe = make_pipeline(make_config(feeds, network={"timeout": 0.3}))
    summary = run_cycle(pipe, now=NOW)

    assert summary.new == 5 and summary.errors == 3 and article_count(db) == 5
    errors = {r["name"]: r["last_error"] for r in rows(db, "select name, last_error from feeds")}
    assert errors["Healthy"] is None
    assert errors["Error"] == "HTTP 500"
    assert errors["Slow"] == "timed out (ReadTimeout)"
    assert errors["Malformed"].startswith("not a feed: ")


def test_backoff_grows_and_feed_failing_is_queued_once(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    server.routes["/error.xml"] = reply(b"boom", 500, content_type="text/plain")
    pipe = make_pipeline(make_config([("Flaky", server.url("/error.xml"))], failing_after=3))
    waits, failing_alerts = [], []
    for n in range(5):
        now = NOW + timedelta(hours=n)
        run_cycle(pipe, now=now)
        feed = rows(db, "select consecutive_errors, next_poll from feeds")[0]
        assert feed["consecutive_errors"] == n + 1
        waits.append((store_time(feed["next_poll"]) - now).total_seconds())
        failing_alerts.append(len(rows(db, "select id from alerts where kind = 'feed_failing'")))

    assert waits == sorted(waits) and waits[-1] > 8 * waits[0]
    assert failing_alerts == [0, 0, 1, 1, 1]
    alert = rows(db, "select summary, details, incident_id from alerts")[0]
    assert "Flaky" in alert["summary"] and "HTTP 500" in alert["summary"] and alert["incident_id"] is None
    assert json.loads(alert["details"])["url"] == server.url("/error.xml")


def test_a_feed_is_not_polled_before_its_next_poll_unless_forced(
    server: LoopbackServer, make_config: MakeConfig, make_pipeline: MakePipeline, db: Database
) -> None:
    server.routes["/busy.xml"] = reply(b"busy", 503, {"Retry-After": "7200"}, content_type="text/plain")
    server.routes["/ttl.xml"] = reply((DATA / "feeds" / "ttl.xml").read_bytes())
    pipe = make_pipeline(make_config([("Busy", server.url("/busy.xml")), ("TTL", server.url("/ttl.xml"))]))
    run_cycle(pipe, now=NOW)
    run_cycle(pipe, now=NOW + timedelta(minutes=90), force=False)
    assert (server.hits("/busy.xml"), server.hits("/ttl.xml")) == (1, 1)
    run_cycle(pipe, now=NOW + timedelta(hours=4), force=False)
    assert (server.hits("/busy.xml"), server.hits("/ttl.xml")) == (2, 2)


def store_time(text: str) -> Any:
    from bot.store import from_iso

    return from_iso(text)
