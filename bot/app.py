"""The composition root: builds the pipeline and the sink, holds the single-instance lock, and runs the
flow once (`poll_once`, `ingest_entries`) or on a schedule (`run_forever`).

`bot.cli` parses options and prints; everything it runs is here. Every failure a user can act on is a
`BorderwatchError` (see `bot.errors`), which the CLI prints as one line.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from bot import __version__, store
from bot.alerts.console import ConsoleSink
from bot.alerts.outbox import Sink, deliver_pending
from bot.config import Config, load_config, parse_config
from bot.cycle import CycleSummary, Pipeline, poll_feed_safely, process_entry, run_cycle
from bot.errors import StoreAccessError, StoreError
from bot.extract.knowledge import Knowledge, load_knowledge
from bot.models import Entry
from bot.net.client import Limits, make_client
from bot.net.guard import make_guarded_client, parse_networks
from bot.watch import compile_watch

logger = logging.getLogger("borderwatch")


def load_knowledge_of(cfg: Config) -> Knowledge:
    """The gazetteer and actors: the shipped files, extended by the user's (`data:` in the config)."""
    for path in cfg.unlisted_data_files():
        logger.warning(
            "%s is not read: list it under `data:` in %s to extend the shipped one", path, cfg.path
        )
    return load_knowledge(cfg.data_files("places"), cfg.data_files("actors"))


def check_config(path: Path) -> tuple[Config, Knowledge]:
    """Load a config and every data file it names, as `poll` would: any problem is a ConfigError."""
    cfg = load_config(path)
    return cfg, load_knowledge_of(cfg)


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
        knowledge=load_knowledge_of(cfg),
        limits=Limits(
            max_bytes=net.max_bytes, deadline=max(net.timeout * 2, 10.0), max_redirects=net.max_redirects
        ),
    )


@contextmanager
def open_pipeline(cfg: Config, db_path: Path) -> Iterator[Pipeline]:
    """The store at `db_path` and a pipeline on it, closed afterwards."""
    pipe = build_pipeline(cfg, store.open_db(db_path))
    try:
        yield pipe
    finally:
        pipe.close()


def make_sink(cfg: Config, db: Database) -> Sink:
    """Slack when SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL is set, else the console."""
    if os.environ.get("SLACK_BOT_TOKEN") or os.environ.get("SLACK_WEBHOOK_URL"):
        from bot.alerts.slack import make_slack_sink  # slack_sdk loads only when Slack is used

        return make_slack_sink(cfg, db)
    return ConsoleSink()


@contextmanager
def single_instance(db_path: Path) -> Iterator[None]:
    """Refuse a second poller on the same store (a lock file beside it, held while the block runs).

    A lock file that cannot be made (a directory in its place, a folder this user cannot write) is a
    StoreAccessError that names it and says what to do (issue 11).
    """
    lock_path = db_path.with_name(db_path.name + ".lock")
    store.make_store_folder(db_path)
    try:
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the life of the block
    except IsADirectoryError:
        raise StoreAccessError(
            f"{lock_path}: is a directory, not the lock file of {db_path.name}: move it aside "
            "(borderwatch makes the lock file itself)"
        ) from None
    except OSError as exc:
        raise StoreAccessError(
            f"{lock_path}: cannot create or open the lock file ({exc.strerror}): make {lock_path.parent} "
            "and the files in it writable for this user, or pass --db a path in a writable folder"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StoreError(f"another borderwatch run is already using {db_path} (lock {lock_path})") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def poll_once(cfg: Config, db_path: Path) -> CycleSummary:
    """One cycle over every feed, then deliver pending alerts (`borderwatch poll --once`)."""
    with single_instance(db_path), open_pipeline(cfg, db_path) as pipe:
        sink = make_sink(cfg, pipe.db)
        summary = run_cycle(pipe, deliver=lambda: deliver_pending(pipe.db, sink))
        _log_backlog(pipe.db)
        return summary


def _log_backlog(db: Database) -> None:
    """Say what is left undelivered and when it is tried next: an error is logged once, not at every poll,
    so a cron `poll --once` would otherwise be silent about a queue that waits (issue 11)."""
    backlog = store.delivery_backlog(db)
    if not backlog.alerts:
        return
    plural = "" if backlog.alerts == 1 else "s"
    when = f"; next attempt at {store.iso(backlog.next_attempt)}" if backlog.next_attempt else ""
    logger.info("%d alert%s not yet delivered%s (`borderwatch alerts --pending` shows why, "
                "`borderwatch alerts --retry` tries now)", backlog.alerts, plural, when)  # fmt: skip


def run_forever(cfg: Config, db_path: Path) -> None:
    """Poll each feed on its own interval and deliver alerts, until SIGTERM or SIGINT.

    On a stop signal the polls stop between entries and before each page fetch, the entry in hand is
    finished, and the clients and the store close only once every job has ended (issue 11). A store
    error (a full disk) is one line per poll, and `run` goes on: it recovers when there is room again.
    """
    from bot.scheduler import build_scheduler, run_until_stopped  # apscheduler loads only for `run`

    with single_instance(db_path), open_pipeline(cfg, db_path) as pipe:
        sink = make_sink(cfg, pipe.db)

        def poll_one(index: int) -> None:
            summary = CycleSummary(feeds=1)
            started = time.monotonic()
            poll_feed_safely(pipe, index, datetime.now(UTC), summary)
            if summary.store_error is not None:
                logger.error("feed %s not polled to the end: %s", cfg.feeds[index].name, summary.store_error)
            elif summary.polled or summary.errors:
                summary.elapsed = time.monotonic() - started
                logger.info("%s (%s)", summary.line(), cfg.feeds[index].name)

        def deliver() -> None:
            with pipe.lock:
                try:
                    deliver_pending(pipe.db, sink)
                except StoreError as exc:
                    logger.error("alerts not delivered: %s", exc)
                except Exception:
                    logger.exception("delivery failed")
                try:
                    store.checkpoint(pipe.db)
                except StoreError:
                    pass  # a full disk: the write-ahead log keeps every write until a later checkpoint

        def stop(signal_name: str) -> None:
            pipe.stopping.set()
            logger.info("borderwatch stopping (%s): finishing the entries in hand", signal_name)

        scheduler = build_scheduler(cfg, poll_one, deliver)
        logger.info("borderwatch %s running: %d feeds, store %s", __version__, len(cfg.feeds), db_path)
        run_until_stopped(scheduler, stop, finish=deliver)
        logger.info("borderwatch stopped")


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What `ingest` did."""

    files: int
    stored: int
    alerts: int
    delivered: int


def ingest_entries(
    cfg: Config,
    db_path: Path,
    entries: Sequence[Entry],
    deliver: bool = True,
    advance: Callable[[], None] = lambda: None,
) -> IngestSummary:
    """Replay entries (read from article files, in published order) through the pipeline; `advance` is
    called after each one (a progress bar).

    It takes no single-instance lock: it can run beside `run`, each entry's write waiting for the other
    process's (see `store.transaction`). A StoreError stops it at that entry (each entry is one
    transaction, so none is half-written) and says how far it got.
    """
    stored = alerts = delivered = 0
    with open_pipeline(cfg, db_path) as pipe:
        for done, entry in enumerate(entries):
            now = entry.published or datetime.now(UTC)
            try:
                outcome = process_entry(pipe, entry, now, text=entry.summary, keep_all=True)
            except StoreError as exc:
                progress = (
                    f"ingest stopped after {done} of {len(entries)} files; those are stored, and "
                    "ingesting them again changes nothing"
                    if done
                    else "nothing was ingested"
                )
                raise type(exc)(f"{exc} ({progress})") from None
            stored += int(outcome.stored or outcome.new_version)
            alerts += outcome.alerts
            advance()
        if deliver:
            delivered = deliver_pending(pipe.db, make_sink(cfg, pipe.db))
    return IngestSummary(len(entries), stored, alerts, delivered)


def run_demo(
    config_path: Path,
    db_path: Path | None,
    delay: float,
    say: Callable[[str], None],
    headline: Callable[[str], None],
) -> None:
    """The demo: the bundled seed reports served on 127.0.0.1, one revealed per poll cycle, the alerts on
    the console; the store is a temporary file unless `db_path` is given."""
    from bot.demo import FeedServer, demo_items

    items = demo_items()
    with FeedServer(items) as server, tempfile.TemporaryDirectory() as tmp:
        db_path = db_path or Path(tmp) / "demo.db"
        cfg = parse_config(
            {
                "feeds": [{"name": "Loopback News", "url": server.feed_url, "interval": "1m"}],
                "watch": {"keywords": ["Afghan*", "Taliban"]},
                "network": {"allow_private": ["127.0.0.0/8"], "timeout": 10},
            },
            config_path,
        )
        say(f"demo: serving {len(items)} seed reports at {server.feed_url}; store {db_path}\n")
        sink = ConsoleSink()
        with open_pipeline(cfg, db_path) as pipe:
            for shown, item in enumerate(items, start=1):
                server.reveal(shown)
                headline(f"--- poll {shown}: the feed now shows {item.entry.source}: {item.entry.title}")
                summary = run_cycle(
                    pipe, now=item.entry.published, deliver=lambda: deliver_pending(pipe.db, sink)
                )
                say(f"    ({summary.new} new article, {summary.alerts} alerts)\n")
                time.sleep(delay)
            summary = run_cycle(pipe, deliver=lambda: deliver_pending(pipe.db, sink))
            headline(f"--- poll {len(items) + 1}: nothing new (not modified: {summary.not_modified})")
            articles, alerts = store.count_articles_and_alerts(pipe.db)
        say(f"\ndemo done: {articles} articles, {alerts} alerts.")
