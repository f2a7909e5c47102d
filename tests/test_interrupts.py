"""Interrupted polls (issue 11): the store runs out of room mid-cycle, or `run` is stopped mid-fetch.

A full store is SQLite's own: `pragma max_page_count` on the store's connection makes SQLite answer
SQLITE_FULL ("database or disk is full") once the file would grow past it, exactly as a full disk does;
for the CLI, a file-size limit (`RLIMIT_FSIZE`, like a disk quota) makes the kernel refuse the write.
The cycle must stop at the first write that fails, with one line, leave the feed's validators so the same
entries come back, and, once there is room, end with exactly the articles and alerts of a clean run.

A stop is a real SIGTERM (or SIGINT) to `borderwatch run` while a loopback page request is held open by
the test (an Event, not a timer): `run` must finish the entry in hand, fetch nothing more, exit 0 without
a traceback, and never store a feed summary in place of a page that exists.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlite_utils import Database

from bot import store
from bot.app import build_pipeline
from bot.config import Config, load_config
from bot.cycle import run_cycle
from bot.errors import StoreFullError
from tests.conftest import (
    NOW,
    ROOT,
    FaultTally,
    LoopbackServer,
    clean_env,
    conditional,
    config_from,
    rss,
    rss_item,
    seed_items,
    serve_seeds,
    write_config,
)

#: Seconds a subprocess may take before the test gives up on it (a safety net only: nothing is timed).
RUN_TIMEOUT = 120

Signatures = Counter[tuple[str, tuple[str, ...]]]


# --- helpers ------------------------------------------------------------------------------------------


def alert_signatures(db_path: Path) -> Signatures:
    """Each stored alert as (kind, the URL paths of its evidence), counted."""
    with sqlite3.connect(db_path) as conn:
        found: Signatures = Counter()
        for kind, evidence in conn.execute("select kind, evidence from alerts"):
            found[(kind, tuple(sorted(urlsplit(e["url"]).path for e in json.loads(evidence))))] += 1
        return found


def stored_paths(db_path: Path) -> list[str]:
    """The URL path of every stored article (one per row, so a duplicate shows twice)."""
    with sqlite3.connect(db_path) as conn:
        return [urlsplit(row[0]).path for row in conn.execute("select url from articles order by id")]


def summary_only_paths(db_path: Path) -> list[str]:
    """Articles stored with the feed's summary because their page could not be had."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("select url from articles where summary_only = 1").fetchall()
        return [urlsplit(row[0]).path for row in rows]


def losses(db_path: Path, expected: list[str], reference: Signatures) -> dict[str, int]:
    """Articles and alerts lost or duplicated against a clean run."""
    paths = stored_paths(db_path)
    alerts = alert_signatures(db_path)
    return {
        "articles_lost": len(set(expected) - set(paths)),
        "articles_duplicated": len(paths) - len(set(paths)),
        "alerts_lost": sum((reference - alerts).values()),
        "alerts_duplicated": sum((alerts - reference).values()),
    }


NOTHING_LOST = {"articles_lost": 0, "articles_duplicated": 0, "alerts_lost": 0, "alerts_duplicated": 0}


def fresh_store(db_path: Path) -> None:
    """A migrated store, closed: its write-ahead log is folded in and gone, so the next run starts one."""
    store.open_db(db_path).close()


class Captured(logging.Handler):
    """Every record the `borderwatch` logger emits while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def problems(self) -> list[str]:
        """Warnings and errors, and anything logged with a traceback."""
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING or r.exc_info]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """The `borderwatch` log, captured whatever handlers a CLI test left on it."""
    logger = logging.getLogger("borderwatch")
    handler = Captured()
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield handler
    logger.handlers[:], level, logger.propagate = saved
    logger.setLevel(level)


# --- a full store, in-process: SQLite's own SQLITE_FULL -------------------------------------------------

SIDE_LINK = "http://side.example.org/2021/07/taliban-trade-talks"
SIDE_TEXT = "A Taliban spokesman said trade talks with traders from Peshawar would go on next week."


def two_feeds(server: LoopbackServer) -> Config:
    """The seed feed (summaries; pages fetched), then a second feed of one on-topic item (feed text)."""
    seeds_url = serve_seeds(server, full_text=False)
    server.routes["/side.xml"] = conditional(
        rss(rss_item("Taliban on trade talks", SIDE_LINK, SIDE_TEXT, "s1"))
    )
    return config_from(
        {
            "feeds": [
                {"name": "Loopback News", "url": seeds_url},
                {"name": "Side News", "url": server.url("/side.xml"), "fetch_articles": False},
            ],
            "watch": {"keywords": ["Afghan*", "Taliban"]},
            "network": {"allow_private": ["127.0.0.0/8"], "timeout": 5},
        }
    )


def seed_paths() -> list[str]:
    """The seed articles' page paths, in the order the feed lists them."""
    return [f"/articles/{item.slug}.html" for item in seed_items()]


def clean_cycle(cfg: Config, db_path: Path) -> tuple[Signatures, int]:
    """One uninterrupted cycle on its own store, feeds one after the other: the alerts to expect, and how
    many pages the store grew by."""
    fresh_store(db_path)
    db = store.open_db(db_path)
    pipe = build_pipeline(cfg, db)
    try:
        pages = db.execute("pragma page_count").fetchone()[0]
        run_cycle(pipe, now=NOW, workers=1)
        grown = db.execute("pragma page_count").fetchone()[0] - pages
    finally:
        pipe.close()
        db.close()
    return alert_signatures(db_path), grown


# Shares of the room a clean cycle needs; today they fill the store at each of the five seed entries in turn.
@pytest.mark.parametrize("share", [0, 35, 50, 75, 90], ids=lambda share: f"room-for-{share}pc")
def test_full_store_stops_the_cycle_and_the_next_one_ends_as_a_clean_run(
    tmp_path: Path, server: LoopbackServer, captured: Captured, fault_tally: FaultTally, share: int
) -> None:
    cfg = two_feeds(server)
    reference, grown = clean_cycle(cfg, tmp_path / "reference.db")
    room = grown * share // 100  # pages the store may still grow by: this share of what a clean cycle needs
    expected = [*seed_paths(), urlsplit(SIDE_LINK).path]
    assert sorted(stored_paths(tmp_path / "reference.db")) == sorted(expected) and reference

    db_path = tmp_path / "bw.db"
    fresh_store(db_path)
    db = store.open_db(db_path)
    pipe = build_pipeline(cfg, db)
    try:
        pages = db.execute("pragma page_count").fetchone()[0]
        db.execute(f"pragma max_page_count = {pages + room}")  # SQLite refuses to grow the file past this
        side_hits = server.hits("/side.xml")
        captured.records.clear()
        with pytest.raises(StoreFullError) as raised:
            run_cycle(pipe, now=NOW, workers=1)

        # One clear line, naming the store; nothing logged per entry, no traceback.
        message = str(raised.value)
        assert "\n" not in message and str(db_path) in message and "full" in message, message
        assert captured.problems() == []
        # The cycle stopped at the first write that failed: the seed entries before it are stored, in feed
        # order, none after it; the second feed was not even fetched.
        stored = stored_paths(db_path)
        assert stored == seed_paths()[: len(stored)] and len(stored) < 5
        assert server.hits("/side.xml") == side_hits
        # The validators were not advanced: the next poll gets the whole feed again, not a 304.
        assert db.execute("select etag from feeds where name = 'Loopback News'").fetchone()[0] is None
        # The feed does not look healthy while its entries wait: it says why.
        waiting = db.execute(
            "select consecutive_errors, last_error from feeds where name = 'Loopback News'"
        ).fetchone()
        assert waiting[0] >= 1 and "entries not stored" in waiting[1] and str(db_path) in waiting[1], waiting

        db.execute("pragma max_page_count = 1073741823")  # room again
        captured.records.clear()
        again = run_cycle(pipe, now=NOW, workers=1)
        assert (again.not_modified, again.errors, again.new) == (0, 0, len(expected) - len(stored))
        assert captured.problems() == []
        healed = db.execute("select consecutive_errors, last_error from feeds where name = 'Loopback News'")
        assert healed.fetchone() == (0, None)
    finally:
        pipe.close()
        db.close()

    figures = losses(db_path, expected, reference)
    fault_tally.record(f"store full: in-process cycle, {share}% of the room needed", faults=1, **figures)
    assert figures == NOTHING_LOST
    assert summary_only_paths(db_path) == [urlsplit(SIDE_LINK).path]  # that feed's text is all it has


# --- a store that cannot grow, through the CLI: the kernel refuses the write (RLIMIT_FSIZE) --------------


def clean_log_size(cfg: Config, tmp_path: Path) -> tuple[Signatures, int]:
    """A clean cycle on a fresh store: its alerts, and how large its write-ahead log grew."""
    db_path = tmp_path / "reference.db"
    fresh_store(db_path)
    db = store.open_db(db_path)
    pipe = build_pipeline(cfg, db)
    try:
        run_cycle(pipe, now=NOW)
        wal = db_path.with_name(db_path.name + "-wal").stat().st_size
    finally:
        pipe.close()
        db.close()
    return alert_signatures(db_path), wal


#: Sets the soft file-size limit to argv[1] (the hard limit stays, so it can be lifted), then execs argv[2:].
LIMIT_LAUNCHER = (
    "import os, resource, sys; hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]; "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), hard)); os.execv(sys.argv[2], sys.argv[2:])"
)


def with_file_size_limit(limit: int, args: list[str]) -> list[str]:
    """`args`, run with files that may not grow past `limit` bytes (same process id, for `prlimit`)."""
    return [sys.executable, "-c", LIMIT_LAUNCHER, str(limit), *args]


def bot_args(config: Path, db_path: Path, *command: str) -> list[str]:
    """The command line of the bot on this config and store."""
    return [sys.executable, "-m", "bot", "--config", str(config), "--db", str(db_path), *command]


@contextmanager
def watchdog(proc: subprocess.Popen[str]) -> Iterator[None]:
    """Kill `proc` should the test still wait on it after RUN_TIMEOUT (a safety net: nothing is timed)."""
    timer = threading.Timer(RUN_TIMEOUT, proc.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


@pytest.fixture
def seeds_config(tmp_path: Path, server: LoopbackServer) -> tuple[Path, Config]:
    """The seed feed (summaries only, pages fetched) on the loopback server, as a file and as a Config."""
    path = write_config(tmp_path, serve_seeds(server, full_text=False), interval="1s")
    return path, load_config(path)


def test_poll_once_on_a_store_that_cannot_grow_says_so_once_and_loses_nothing(
    tmp_path: Path, seeds_config: tuple[Path, Config], fault_tally: FaultTally
) -> None:
    config, cfg = seeds_config
    reference, wal = clean_log_size(cfg, tmp_path)
    db_path = tmp_path / "bw.db"
    fresh_store(db_path)
    assert wal // 2 > db_path.stat().st_size  # the store itself stays readable; only its log hits the limit

    full = subprocess.run(
        with_file_size_limit(wal // 2, bot_args(config, db_path, "poll", "--once")), capture_output=True,
        text=True, timeout=RUN_TIMEOUT, cwd=ROOT, env=clean_env(),
    )  # fmt: skip
    assert full.returncode == 1, full.stderr
    lines = full.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {db_path}: "), full.stderr
    stored = stored_paths(db_path)
    assert 0 < len(stored) < 5 and stored == seed_paths()[: len(stored)]

    again = subprocess.run(
        bot_args(config, db_path, "poll", "--once"), capture_output=True, text=True, timeout=RUN_TIMEOUT,
        cwd=ROOT, env=clean_env(),
    )  # fmt: skip
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    figures = losses(db_path, seed_paths(), reference)
    fault_tally.record("store full: poll --once at a file-size limit", faults=1, **figures)
    assert figures == NOTHING_LOST
    assert summary_only_paths(db_path) == []


def test_run_on_a_store_that_cannot_grow_keeps_running_and_recovers(
    tmp_path: Path, seeds_config: tuple[Path, Config], fault_tally: FaultTally
) -> None:
    config, cfg = seeds_config
    reference, wal = clean_log_size(cfg, tmp_path)
    db_path = tmp_path / "bw.db"
    fresh_store(db_path)
    bot = subprocess.Popen(
        with_file_size_limit(wal // 2, bot_args(config, db_path, "run")), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, cwd=ROOT, env=clean_env(),
    )  # fmt: skip
    log: list[str] = []
    with watchdog(bot):
        try:
            assert bot.stderr is not None
            lifted = False
            for line in bot.stderr:  # the bot's own log lines are the signal: no sleeps
                log.append(line)
                if " ERROR " in line and not lifted:
                    # Room again: lift the limit on the running bot (its hard limit allows it).
                    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
                    resource.prlimit(bot.pid, resource.RLIMIT_FSIZE, (hard, hard))
                    lifted = True
                elif lifted and "cycle done" in line and " errors=0 " in line and " new=0 " not in line:
                    break  # a poll after the limit was lifted stored the rest
        finally:
            bot.send_signal(signal.SIGTERM)
            _, rest = bot.communicate(timeout=RUN_TIMEOUT)
            log.append(rest)
    text = "".join(log)
    assert bot.returncode == 0, text
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if " ERROR " in line]
    # One line per poll that met the limit, each naming the store; nothing per entry.
    assert errors and all(str(db_path) in line for line in errors), text
    assert " WARNING " not in text, text
    figures = losses(db_path, seed_paths(), reference)
    fault_tally.record("store full: run at a file-size limit, then room again", faults=1, **figures)
    assert figures == NOTHING_LOST
    assert summary_only_paths(db_path) == []


# --- SIGTERM / SIGINT while an article page is being fetched ---------------------------------------------


class HeldPage:
    """A page route that, once armed, holds its request open until the test releases it."""

    def __init__(self, server: LoopbackServer, path: str) -> None:
        self.page = server.routes[path]
        self.armed = False
        self.drop = False
        self.held = threading.Event()
        self.release = threading.Event()
        server.routes[path] = self.handle

    def handle(self, request: Any) -> None:
        if self.armed:
            self.held.set()
            self.release.wait(timeout=RUN_TIMEOUT)
            if self.drop:
                request.close_connection = True  # no answer: the client sees the connection dropped
                return
        self.page(request)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: signal.Signals(s).name)
def test_stop_signal_while_a_page_is_fetched_finishes_the_entry_and_exits_cleanly(
    tmp_path: Path, server: LoopbackServer, fault_tally: FaultTally, signum: int
) -> None:
    config = write_config(tmp_path, serve_seeds(server, full_text=False), interval="1h")
    reference, _ = clean_cycle(load_config(config), tmp_path / "reference.db")
    paths = seed_paths()
    hold = HeldPage(server, paths[2])  # the third entry's page
    hold.armed = True
    before = {path: server.hits(path) for path in paths}
    db_path = tmp_path / "bw.db"

    bot = subprocess.Popen(
        bot_args(config, db_path, "run"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, env=clean_env(),
    )  # fmt: skip
    log = io.StringIO()
    with watchdog(bot):
        try:
            assert hold.held.wait(timeout=RUN_TIMEOUT), "the bot never asked for the third page"
            bot.send_signal(signum)
            assert bot.stderr is not None
            for line in bot.stderr:  # wait until the bot has taken the signal in, then answer the page
                log.write(line)
                if "stopping" in line or "stopped" in line:
                    break
        finally:
            hold.release.set()
            _, rest = bot.communicate(timeout=RUN_TIMEOUT)
            log.write(rest)
    text = log.getvalue()
    assert bot.returncode == 0, text
    assert "Traceback" not in text, text
    # The entry in hand was finished with its page; nothing was fetched after the signal.
    assert stored_paths(db_path) == paths[:3], text
    assert summary_only_paths(db_path) == [], text
    assert [server.hits(p) - before[p] for p in paths[3:]] == [0, 0]

    after = subprocess.run(
        bot_args(config, db_path, "poll", "--once"), capture_output=True, text=True, timeout=RUN_TIMEOUT,
        cwd=ROOT, env=clean_env(),
    )  # fmt: skip
    assert after.returncode == 0 and "Traceback" not in after.stderr, after.stderr
    assert summary_only_paths(db_path) == []
    figures = losses(db_path, paths, reference)
    fault_tally.record(
        f"stop signal: {signal.Signals(signum).name} while a page is fetched", faults=1, **figures
    )
    assert figures == NOTHING_LOST


def test_page_lost_while_stopping_is_left_for_the_next_poll_not_stored_as_its_summary(
    tmp_path: Path, server: LoopbackServer, db: Database, db_path: Path, fault_tally: FaultTally
) -> None:
    # The page request in hand fails while the pipeline stops (as a client closed under it would): the
    # entry must not be stored with its feed summary as if the page were gone, but left for the next poll.
    config = write_config(tmp_path, serve_seeds(server, full_text=False))
    cfg = load_config(config)
    reference, _ = clean_cycle(cfg, tmp_path / "reference.db")
    paths = seed_paths()
    hold = HeldPage(server, paths[2])
    hold.armed = hold.drop = True
    pipe = build_pipeline(cfg, db)
    try:
        cycle = threading.Thread(target=run_cycle, args=(pipe,), kwargs={"now": NOW})
        cycle.start()
        assert hold.held.wait(timeout=RUN_TIMEOUT), "the cycle never asked for the third page"
        pipe.stopping.set()
        hold.release.set()  # the page request now fails: the connection is dropped unanswered
        cycle.join(timeout=RUN_TIMEOUT)
        assert not cycle.is_alive()
        assert stored_paths(db_path) == paths[:2]
        assert db.execute("select etag from feeds").fetchone()[0] is None  # the feed comes back whole

        hold.drop = False
        pipe.stopping.clear()
        again = run_cycle(pipe, now=NOW)
        assert (again.not_modified, again.new) == (0, 3)
    finally:
        pipe.close()
    figures = losses(db_path, paths, reference)
    fault_tally.record("stop signal: page request dropped while stopping", faults=1, **figures)
    assert figures == NOTHING_LOST
    assert summary_only_paths(db_path) == []
