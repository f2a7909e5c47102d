"""The whole flow, top to bottom: feed → entry → article → claims → incident → alert.

`run_cycle` polls every due feed once and delivers what is pending; `poll_feed` is one feed's share
(the scheduler runs it per feed); `process_entry` takes one entry (from a feed or from `ingest`)
through fingerprinting, storage and analysis, in one transaction so that a crash never leaves half
an article or an alert without its article.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlite_utils import Database

from bot import analysis, store
from bot.config import Config
from bot.feeds import FetchError, Limits, fetch_feed, make_client
from bot.fingerprint import canonical_url, content_hash, minhash_signature
from bot.models import AlertDraft, Entry, Report
from bot.netguard import make_guarded_client, parse_networks
from bot.pages import fetch_article_text
from bot.watch import Watch, compile_watch

logger = logging.getLogger("borderwatch")


@dataclass
class Pipeline:
    """Everything a cycle needs, built once at start-up."""

    cfg: Config
    db: Database
    http: httpx.Client
    page_http: httpx.Client
    watch: Watch
    knowledge: analysis.Knowledge
    limits: Limits
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def close(self) -> None:
        """Close the HTTP clients."""
        self.http.close()
        self.page_http.close()


def build_pipeline(cfg: Config, db: Database) -> Pipeline:
    """A Pipeline for this config and store."""
    net = cfg.network
    return Pipeline(
        cfg=cfg,
        db=db,
        http=make_client(net.timeout, net.user_agent),
        page_http=make_guarded_client(
            parse_networks(net.allow_private), net.timeout, net.user_agent or "borderwatch"
        ),
        watch=compile_watch(cfg.watch.keywords, cfg.watch.exclude),
        knowledge=analysis.load_knowledge(cfg),
        limits=Limits(
            max_bytes=net.max_bytes, deadline=max(net.timeout * 2, 10.0), max_redirects=net.max_redirects
        ),
    )


@dataclass
class EntryOutcome:
    """What happened to one entry."""

    stored: bool = False
    new_version: bool = False
    duplicate: bool = False
    alerts: int = 0


@dataclass
class CycleSummary:
    """Counts for the one log line of a cycle."""

    feeds: int = 0
    polled: int = 0
    not_modified: int = 0
    entries: int = 0
    new: int = 0
    versions: int = 0
    alerts: int = 0
    errors: int = 0
    delivered: int = 0
    elapsed: float = 0.0

    def line(self) -> str:
        """The cycle's log line."""
        return (
            f"cycle done: feeds={self.feeds} polled={self.polled} not_modified={self.not_modified} "
            f"entries={self.entries} new={self.new} versions={self.versions} alerts={self.alerts} "
            f"delivered={self.delivered} errors={self.errors} elapsed={self.elapsed:.1f}s"
        )


def process_entry(
    pipe: Pipeline,
    entry: Entry,
    now: datetime,
    *,
    text: str | None = None,
    keep_all: bool = False,
    feed_id: int | None = None,
) -> EntryOutcome:
    """Store an entry (if on-topic, or always with `keep_all`) and analyse it; one transaction.

    `feed_id` is the feed the entry came from (None for replayed files); GUIDs are only trusted within it.
    """
    on_topic = pipe.watch.matches(entry.title, entry.summary if text is None else text)
    if not on_topic and not keep_all:
        return EntryOutcome()
    canonical = canonical_url(entry.link)
    with pipe.lock:
        existing = store.find_article(pipe.db, canonical, entry.guid, feed_id)
    entry_hash = content_hash(entry.title + "\n" + entry.summary)
    if existing is not None and existing["entry_hash"] == entry_hash and text is None:
        return EntryOutcome()
    summary_only = False
    if text is None:
        text, summary_only = _article_text(pipe, entry)
    if existing is not None and existing["summary_only"] and summary_only and entry.fetch_page:
        # The page still cannot be had: the stored text stays; a changed summary is no edit of the article.
        # (A feed with fetch_articles: false has only its own text, so there a changed text is an edit.)
        with pipe.lock:
            pipe.db.table("articles").update(existing["id"], {"entry_hash": entry_hash})
        return EntryOutcome()
    text_hash = content_hash(entry.title + "\n" + text)
    published = entry.published or now
    outcome = EntryOutcome()
    with pipe.lock, store.transaction(pipe.db):
        if existing is not None:
            pipe.db.table("articles").update(existing["id"], {"entry_hash": entry_hash})
            if existing["text_hash"] == text_hash:
                return EntryOutcome()
            version = store.add_article_version(pipe.db, existing, entry.title, text, text_hash, now)
            report = Report(
                existing["id"],
                version,
                existing["url"],
                existing["source"],
                entry.title,
                text,
                store.from_iso(existing["published"]) or published,
                existing["duplicate_of"],
                summary_only,
            )
            outcome.new_version = True
        else:
            signature = minhash_signature(entry.title + "\n" + text)
            duplicate_of = store.find_near_duplicate(pipe.db, signature, entry.source)
            record: dict[str, Any] = {
                "url": entry.link,
                "canonical_url": canonical,
                "guid": entry.guid,
                "feed_id": feed_id,
                "source": entry.source,
                "title": entry.title,
                "published": store.iso(published),
                "fetched": store.iso(now),
                "text": text,
                "text_hash": text_hash,
                "signature": signature,
                "duplicate_of": duplicate_of,
                "on_topic": int(on_topic),
                "version": 1,
                "summary_only": int(summary_only),
                "entry_hash": entry_hash,
            }
            article_id = store.insert_article(pipe.db, record)
            report = Report(
                article_id,
                1,
                entry.link,
                entry.source,
                entry.title,
                text,
                published,
                duplicate_of,
                summary_only,
            )
            outcome.stored = True
            outcome.duplicate = duplicate_of is not None
        if on_topic:
            drafts = analysis.analyse_report(pipe.db, pipe.knowledge, report, now)
            outcome.alerts = _record(pipe.db, drafts, now)
    return outcome


def _record(db: Database, drafts: list[AlertDraft], now: datetime) -> int:
    return sum(1 for draft in drafts if store.record_alert(db, draft, now) is not None)


def _article_text(pipe: Pipeline, entry: Entry) -> tuple[str, bool]:
    """The page's main text when the feed wants pages fetched, else (or on failure) the feed's text."""
    if entry.fetch_page:
        try:
            return fetch_article_text(pipe.page_http, entry.link, pipe.limits), False
        except (httpx.HTTPError, FetchError, OSError) as exc:
            logger.warning("article %s not fetched (%s); using the feed's summary", entry.link, exc)
    return entry.summary, True


def poll_feed(pipe: Pipeline, index: int, now: datetime, summary: CycleSummary, force: bool = False) -> None:
    """Poll feed number `index` of the config once if it is due (or `force`), and process its entries.

    The fetch runs outside the store lock, so several feeds can be fetched at once; everything that
    touches the store runs under it.
    """
    feed = pipe.cfg.feeds[index]
    with pipe.lock:
        feed_id, state = store.load_feed_state(pipe.db, feed.name, feed.url)
    if state.retired or not feed.enabled:
        return
    if not force and state.next_poll is not None and state.next_poll > now:
        return
    result = fetch_feed(
        pipe.http, state, source=feed.name, interval=feed.interval, now=now, limits=pipe.limits, rng=pipe.rng
    )
    # Crash safety (issue 6): the new ETag/Last-Modified are stored only after every entry is processed,
    # so a crash in between makes the next poll fetch the whole feed again instead of getting a 304.
    pending = bool(result.entries) and not result.error
    saved = (
        replace(result.state, etag=state.etag, last_modified=state.last_modified) if pending else result.state
    )
    with pipe.lock:
        summary.polled += 1
        row = store.save_feed_state(
            pipe.db, feed_id, saved, now, result.status, len(result.entries), result.not_modified
        )
        if result.moved_to:
            logger.info("feed %s moved permanently to %s", feed.name, result.moved_to)
        if result.not_modified:
            summary.not_modified += 1
            return
        if result.error:
            summary.errors += 1
            logger.warning("feed %s failed: %s", feed.name, result.error)
            _notice_failing(pipe, feed_id, row, now)
            return
        if result.warning:
            logger.info("feed %s parsed with a warning: %s", feed.name, result.warning)
        summary.entries += len(result.entries)
    seen: set[str] = set()
    failed = False
    for entry in result.entries:
        key = entry.guid or entry.link
        if key in seen:
            continue
        seen.add(key)
        entry = Entry(
            entry.link,
            entry.guid,
            entry.title,
            entry.summary,
            entry.published,
            entry.source,
            result.state.url,
            feed.fetch_articles,
        )
        try:
            outcome = process_entry(pipe, entry, now, feed_id=feed_id)
        except Exception:
            logger.exception("entry %s of feed %s not processed", entry.link, feed.name)
            summary.errors += 1
            failed = True
            continue
        with pipe.lock:
            summary.new += int(outcome.stored)
            summary.versions += int(outcome.new_version)
            summary.alerts += outcome.alerts
    if pending and not failed:
        with pipe.lock:
            validators = {"etag": result.state.etag, "last_modified": result.state.last_modified}
            pipe.db.table("feeds").update(feed_id, validators)


def _notice_failing(pipe: Pipeline, feed_id: int, row: dict[str, Any], now: datetime) -> None:
    """Queue one `feed_failing` notice when a feed keeps failing; it is re-armed by a success."""
    if row["consecutive_errors"] < pipe.cfg.failing_after or row["failing_notified"]:
        return
    draft = AlertDraft(
        kind="feed_failing",
        incident_id=None,
        summary=f"Feed {row['name']} has failed {row['consecutive_errors']} times in a row: {row['last_error']}",
        evidence=(),
        dedupe_key=f"feed_failing:{feed_id}:{row['last_ok'] or 'never'}",
        details={"feed": row["name"], "url": row["url"]},
    )
    with store.transaction(pipe.db):
        store.record_alert(pipe.db, draft, now)
        pipe.db.table("feeds").update(feed_id, {"failing_notified": 1})


def run_cycle(
    pipe: Pipeline,
    now: datetime | None = None,
    deliver: Callable[[], int] | None = None,
    force: bool = True,
    workers: int = 8,
) -> CycleSummary:
    """Poll every feed once (only those due, unless `force`), then deliver pending alerts."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    summary = CycleSummary(feeds=len(pipe.cfg.feeds))

    def _poll(index: int) -> None:
        try:
            poll_feed(pipe, index, now, summary, force=force)
        except Exception:
            with pipe.lock:
                summary.errors += 1
            logger.exception("feed %s: poll failed", pipe.cfg.feeds[index].name)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pipe.cfg.feeds)))) as pool:
        list(pool.map(_poll, range(len(pipe.cfg.feeds))))
    if deliver is not None:
        summary.delivered = deliver()
    summary.elapsed = time.monotonic() - started
    logger.info(summary.line())
    return summary
