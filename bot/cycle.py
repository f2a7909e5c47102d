"""The whole flow, top to bottom: feed → entry → article → claims → incident → alert. No SQL here.

`run_cycle` polls every due feed once and delivers what is pending; `poll_feed` is one feed's share
(the scheduler runs it per feed, through `poll_feed_safely`); `process_entry` takes one entry (from a
feed or from `ingest`) through fingerprinting, storage and analysis, in one transaction so that a
crash never leaves half an article or an alert without its article; `attach_report` joins a stored
report to its incident and returns the alerts it raises.
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

import httpx
from sqlite_utils import Database

from bot import store
from bot.config import Config
from bot.errors import FetchError, StoreError
from bot.extract import extract_claims
from bot.extract.knowledge import Knowledge
from bot.feeds.pages import fetch_article_text
from bot.feeds.poll import fetch_feed
from bot.fingerprint import entry_key, fingerprint, is_item_address
from bot.incidents import kinds
from bot.incidents.attach import opening_alert, report_claims, with_incident_sides
from bot.incidents.compare import ReportMeta, detect_changes
from bot.incidents.grouping import (
    MAX_CANDIDATES,
    WINDOW,
    choose_incident,
    grow_profile,
    joinable_types,
    main_place,
)
from bot.models import AlertDraft, Entry, Report
from bot.net.client import Limits
from bot.store.feeds import FeedHealth
from bot.watch import Watch

logger = logging.getLogger("borderwatch")


@dataclass
class Pipeline:
    """Everything a cycle needs, built once at start-up (by `bot.app.build_pipeline`)."""

    cfg: Config
    db: Database
    http: httpx.Client
    page_http: httpx.Client
    watch: Watch
    knowledge: Knowledge
    limits: Limits
    rng: random.Random = field(default_factory=random.Random)
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: Set on SIGTERM/SIGINT (`run`): polls stop between entries and before each page fetch (issue 11).
    stopping: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        """Close the HTTP clients (only once no poll is running: a closed client fails the fetch in hand)."""
        self.http.close()
        self.page_http.close()


class StopRequested(Exception):
    """The pipeline is stopping: the entry in hand is left unstored, for the next run (never a BorderwatchError)."""


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
    #: The first store error of the cycle (a full disk): every feed stops at its next entry.
    store_error: StoreError | None = None

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

    One article, one text (issue 11): each feed's item is compared with what the same feed carried
    before (`article_entries`), never with another feed's item. Two feeds carrying one article with two
    summaries would otherwise make a version on every poll, each feed's text in turn. So an article
    seen in a second feed keeps its text (the item's hash is only recorded), and a version is made when
    one feed's own item changes (then its text, compared as always by content hash). An entry with a
    new address whose text its outlet already published (some CMSs renew GUIDs and links on every
    poll) is that article: nothing new when title and text are the same, a version when the title is the
    same and the text a near-duplicate (`store.find_republished`). Copies from other outlets are still
    stored for their outlet, as duplicates.
    """
    on_topic = pipe.watch.matches(entry.title, entry.summary if text is None else text)
    if not on_topic and not keep_all:
        return EntryOutcome()
    if entry.fetch_page and is_item_address(entry.link):
        entry = replace(entry, fetch_page=False)  # an item without a link has no page: its feed text is all
    key = entry_key(entry)
    with pipe.lock:
        existing = store.find_article(pipe.db, key.canonical_url, entry.guid, feed_id)
    if existing is not None and text is None:
        if existing.feed_entry_hash == key.entry_hash:
            return EntryOutcome()  # this feed's item is unchanged
        if existing.feed_entry_hash is None:
            # The first time this feed carries the article: another feed's (or a file's) text stays.
            with pipe.lock:
                store.set_entry_hash(pipe.db, existing.id, feed_id, key.entry_hash)
            return EntryOutcome()
    summary_only = False
    if text is None:
        text, summary_only = _article_text(pipe, entry)
    if existing is not None and existing.summary_only and summary_only and entry.fetch_page:
        # The page still cannot be had: the stored text stays; a changed summary is no edit of the article.
        # (A feed with fetch_articles: false has only its own text, so there a changed text is an edit.)
        with pipe.lock:
            store.set_entry_hash(pipe.db, existing.id, feed_id, key.entry_hash)
        return EntryOutcome()
    prints = fingerprint(key, entry.title, text)
    published = entry.published or now
    outcome = EntryOutcome()
    with pipe.lock, store.transaction(pipe.db):
        if existing is None:
            existing = store.find_republished(pipe.db, prints, entry.title, entry.source)
            if existing is not None and existing.text_hash == prints.text_hash:
                return EntryOutcome()  # republished under a new address, unchanged
        if existing is not None:
            store.set_entry_hash(pipe.db, existing.id, feed_id, key.entry_hash)
            if existing.text_hash == prints.text_hash:
                return EntryOutcome()
            version = store.add_article_version(pipe.db, existing, entry.title, text, prints.text_hash, now)
            report = Report(
                existing.id,
                version,
                existing.url,
                existing.source,
                entry.title,
                text,
                existing.published or published,
                existing.duplicate_of,
                summary_only,
            )
            outcome.new_version = True
        else:
            duplicate_of = store.find_near_duplicate(pipe.db, prints.signature, entry.source)
            article_id = store.insert_article(
                pipe.db, entry, prints, text, feed_id=feed_id, published=published, now=now,
                duplicate_of=duplicate_of, on_topic=on_topic, summary_only=summary_only,
            )  # fmt: skip
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
            drafts = attach_report(pipe.db, pipe.knowledge, report, now)
            outcome.alerts = sum(1 for draft in drafts if store.record_alert(pipe.db, draft, now) is not None)
    return outcome


def attach_report(db: Database, knowledge: Knowledge, report: Report, now: datetime) -> list[AlertDraft]:
    """Attach a report to its incident (opening one if needed), store its claims, return the alerts it raises.

    Runs inside the caller's transaction: the article, its claims, its incident update and its alerts
    are committed together or not at all.
    """
    if report.duplicate_of is not None:
        # Syndicated copy: it belongs where the original is, and counts as the same source.
        incident_id, in_scope = store.article_incident(db, report.duplicate_of)
        store.set_article_incident(db, report.article_id, incident_id, in_scope)
        return []
    claims = extract_claims(report.title, report.text, knowledge)
    incident_id = store.article_incident(db, report.article_id)[0] if report.version > 1 else None
    if incident_id is None and not claims.in_scope:
        store.set_article_incident(db, report.article_id, None, False)
        return []
    gazetteer = knowledge.gazetteer
    place = _place_row(knowledge, main_place(claims, gazetteer))
    drafts: list[AlertDraft] = []
    if incident_id is None:
        kin = sorted(joinable_types(claims.incident_type)) if claims.incident_type is not None else []
        candidates = store.candidate_profiles(db, report.published, WINDOW, kin, MAX_CANDIDATES)
        incident_id = choose_incident(claims, report.published, candidates, gazetteer)
    if incident_id is None:
        if claims.incident_type is None:
            store.set_article_incident(db, report.article_id, None, True)
            return []
        incident_id = store.insert_incident(
            db, report.title, claims.incident_type, place, report.published, now
        )
        drafts.append(opening_alert(incident_id, place[1] if place else None, claims, report))
    store.set_article_incident(db, report.article_id, incident_id, True)
    existing = store.load_claims(db, incident_id)
    new = with_incident_sides(report_claims(claims, report, knowledge), existing)
    meta = ReportMeta(report.article_id, report.url, report.source, report.published)
    drafts += detect_changes(incident_id, existing, new, meta, lambda a, b: gazetteer.compatible(a, b))
    store.insert_claims(db, incident_id, report.article_id, report.version, new, now)
    profile = grow_profile(store.load_profile(db, incident_id), claims, gazetteer)
    store.save_incident(db, profile, report.published, now, place)
    return drafts


def _place_row(
    knowledge: Knowledge, place_id: str | None
) -> tuple[str, str, float | None, float | None] | None:
    """A gazetteer place as the incident stores it: id, name, latitude, longitude."""
    place = knowledge.gazetteer.places.get(place_id) if place_id else None
    return (place.id, place.name, place.lat, place.lon) if place else None


def _article_text(pipe: Pipeline, entry: Entry) -> tuple[str, bool]:
    """The page's main text when the feed wants pages fetched, else (or on failure) the feed's text.

    Raises StopRequested when the pipeline is stopping, before the fetch or when it failed meanwhile:
    a page lost to the shutdown must not be stored as a page that could not be had (issue 11).
    """
    if entry.fetch_page:
        if pipe.stopping.is_set():
            raise StopRequested(entry.link)
        try:
            return fetch_article_text(pipe.page_http, entry.link, pipe.limits), False
        except (httpx.HTTPError, FetchError, OSError) as exc:
            if pipe.stopping.is_set():
                raise StopRequested(entry.link) from exc
            logger.warning("article %s not fetched (%s); using the feed's summary", entry.link, exc)
    return entry.summary, True


def poll_feed(pipe: Pipeline, index: int, now: datetime, summary: CycleSummary, force: bool = False) -> None:
    """Poll feed number `index` of the config once if it is due (or `force`), and process its entries.

    The fetch runs outside the store lock, so several feeds can be fetched at once; everything that
    touches the store runs under it. It stops between entries when the pipeline is stopping or another
    feed of the cycle met a store error, and raises a StoreError at the first write the store refuses;
    either way the feed's validators are not advanced, so the entries not processed come back, in order.
    """
    feed = pipe.cfg.feeds[index]
    if pipe.stopping.is_set() or summary.store_error is not None:
        return
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
        health = store.save_feed_state(
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
            _notice_failing(pipe, health, now)
            return
        if result.warning:
            logger.info("feed %s parsed with a warning: %s", feed.name, result.warning)
        summary.entries += len(result.entries)
    seen: set[str] = set()
    unfinished = False  # an entry not processed (failed, or the poll stopped): validators stay
    for entry in result.entries:
        if pipe.stopping.is_set() or summary.store_error is not None:
            unfinished = True
            break
        key = entry.guid or entry.link
        if key in seen:
            continue
        seen.add(key)
        entry = replace(entry, feed_url=result.state.url, fetch_page=feed.fetch_articles)
        try:
            outcome = process_entry(pipe, entry, now, feed_id=feed_id)
        except StopRequested:
            unfinished = True
            break
        except StoreError as exc:
            _mark_feed_waiting(pipe, feed_id, exc)
            raise  # the store refuses writes: going on would store later entries before this one
        except Exception:
            logger.exception("entry %s of feed %s not processed", entry.link, feed.name)
            summary.errors += 1
            unfinished = True
            continue
        with pipe.lock:
            summary.new += int(outcome.stored)
            summary.versions += int(outcome.new_version)
            summary.alerts += outcome.alerts
    if pending and not unfinished:
        with pipe.lock:
            store.save_validators(pipe.db, feed_id, result.state.etag, result.state.last_modified)


def _mark_feed_waiting(pipe: Pipeline, feed_id: int, exc: StoreError) -> None:
    """Show on the feed that its entries wait for the store (`borderwatch feeds` says failing, and why),
    where the store still takes this small update; a store that refuses it has said so already."""
    with pipe.lock:
        try:
            store.record_feed_error(pipe.db, feed_id, f"entries not stored: {exc}")
        except StoreError:
            pass


def poll_feed_safely(
    pipe: Pipeline, index: int, now: datetime, summary: CycleSummary, force: bool = False
) -> None:
    """`poll_feed`, with any failure counted and logged: one bad feed never stops the others.

    A StoreError (a full disk) is the exception: it is kept in `summary.store_error`, not logged, and
    stops the whole cycle; the caller reports it once (`run_cycle` raises it).
    """
    try:
        poll_feed(pipe, index, now, summary, force=force)
    except StoreError as exc:
        with pipe.lock:
            summary.errors += 1
            if summary.store_error is None:
                summary.store_error = exc
    except Exception:
        with pipe.lock:
            summary.errors += 1
        logger.exception("feed %s: poll failed", pipe.cfg.feeds[index].name)


def _notice_failing(pipe: Pipeline, feed: FeedHealth, now: datetime) -> None:
    """Queue one feed-failing notice when a feed keeps failing; it is re-armed by a success."""
    if feed.consecutive_errors < pipe.cfg.failing_after or feed.failing_notified:
        return
    kind = kinds.FEED_FAILING
    draft = AlertDraft(
        kind=kind.name,
        incident_id=None,
        summary=f"Feed {feed.name} has failed {feed.consecutive_errors} times in a row: {feed.last_error}",
        evidence=(),
        dedupe_key=f"{kind.name}:{feed.id}:{feed.last_ok or 'never'}",
        details={"feed": feed.name, "url": feed.url},
    )
    with store.transaction(pipe.db):
        store.record_alert(pipe.db, draft, now)
        store.mark_failing_notified(pipe.db, feed.id)


def run_cycle(
    pipe: Pipeline,
    now: datetime | None = None,
    deliver: Callable[[], int] | None = None,
    force: bool = True,
    workers: int = 8,
) -> CycleSummary:
    """Poll every feed once (only those due, unless `force`), then deliver pending alerts.

    Raises the cycle's first StoreError (a full disk) once every feed has stopped; nothing is delivered.
    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    summary = CycleSummary(feeds=len(pipe.cfg.feeds))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pipe.cfg.feeds)))) as pool:
        list(
            pool.map(
                lambda index: poll_feed_safely(pipe, index, now, summary, force), range(len(pipe.cfg.feeds))
            )
        )
    if summary.store_error is not None:
        raise summary.store_error
    if deliver is not None:
        summary.delivered = deliver()
    summary.elapsed = time.monotonic() - started
    logger.info(summary.line())
    return summary
