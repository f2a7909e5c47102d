"""What an operator meets when the store or the lock is unusable, when two processes write the store, and
what the container health check (`status --check`) says (issue 11).

Every case runs the real CLI in a subprocess on real files: a store that is a directory, random bytes, a
real store cut to half its size or with pages overwritten, an empty file, a read-only folder, a lock
path that is a directory; a second SQLite connection that holds the write lock while `ingest` runs; a
Slack server that rejects the token. No traceback, one `Error: ...` line that names the file and says
what to do, and nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest

from bot import store
from bot.config import load_config
from bot.errors import ConfigError
from tests.conftest import (
    ROOT,
    SEED_FILES,
    clean_env,
    reply,
    rss,
    run_cli,
    serve_seeds,
)
from tests.slack_server import SlackServer

DAMAGED_HINT = "restore it from a backup or move it aside; borderwatch creates a new store at that path"

#: Every command that reads the store, with arguments that make it read the tables a damaged page is in.
READ_COMMANDS: list[tuple[str, ...]] = [
    ("alerts",),
    ("feeds",),
    ("status",),
    ("query", "select id, title from articles"),
    ("tables", "--counts"),
    ("rows", "articles"),
    ("search", "Taliban"),
    ("conflicts",),
    ("changes", "--since", "2000-01-01"),
    ("incidents",),
    ("incident", "1"),
]


# --- helpers -----------------------------------------------------------------------------------------


def write_config(
    folder: Path, feeds: list[tuple[str, str]], extra: str = "", name: str = "watch.yaml"
) -> Path:
    """A config file with these (name, url) feeds, fetching no pages, loopback allowed."""
    lines = ["feeds:" + ("" if feeds else " []")]
    for feed_name, url in feeds:
        lines += [f"  - name: {feed_name}", f"    url: {url}", "    fetch_articles: false"]
    lines += ["watch:", "  keywords: [Afghan*, Taliban]", "network:", "  allow_private: [127.0.0.0/8]",
              "  timeout: 5"]  # fmt: skip
    path = folder / name
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def ingest_seeds(db_path: Path) -> subprocess.CompletedProcess[str]:
    """`ingest --no-deliver` of the five seed reports into `db_path`, by the real CLI."""
    return run_cli("--db", str(db_path), "ingest", "--no-deliver", *map(str, SEED_FILES))


def digest(path: Path) -> str:
    """A hash of the store and its write-ahead log, to see that nothing wrote (a reader may create the
    WAL index `-shm` and an empty log: that is no write)."""
    log = path.with_name(path.name + "-wal")
    data = path.read_bytes() + (log.read_bytes() if log.exists() else b"")
    return hashlib.sha256(data).hexdigest()


def error_lines(stderr: str) -> list[str]:
    """The `Error: ...` lines of a command's stderr."""
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1, no traceback, and exactly one `Error:` line that contains every needle; returns it."""
    assert done.returncode == 1, (done.returncode, done.stdout[-2000:], done.stderr[-4000:])
    assert "Traceback" not in done.stderr, done.stderr[-4000:]
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr[-4000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def run_all(
    config: Path, db_path: Path, commands: list[tuple[str, ...]]
) -> list[subprocess.CompletedProcess[str]]:
    """Run read commands side by side (each is its own process; none writes), results in order."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(lambda c: run_cli("--config", str(config), "--db", str(db_path), *c), commands))


def counts(db_path: Path) -> tuple[int, list[tuple[str, int | None]]]:
    """Articles stored, and each alert as (kind, incident_id) in id order."""
    with closing(sqlite3.connect(db_path)) as conn:
        articles = conn.execute("select count(*) from articles").fetchone()[0]
        alerts = conn.execute("select kind, incident_id from alerts order by id").fetchall()
    return int(articles), [(str(k), i) for k, i in alerts]


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store made by `ingest` of the seed reports, never touched afterwards (tests copy it)."""
    path = tmp_path_factory.mktemp("clean") / "borderwatch.db"
    done = ingest_seeds(path)
    assert done.returncode == 0, done.stderr
    return path


def copy_store(clean: Path, to: Path) -> Path:
    """A copy of the clean store's database file at `to` (it has no log: its writer closed it)."""
    shutil.copyfile(clean, to)
    return to


# --- 1. stores that cannot be used -------------------------------------------------------------------


def _directory(clean: Path, path: Path) -> None:
    path.mkdir()


def _random_bytes(clean: Path, path: Path) -> None:
    path.write_bytes(random.Random(11).randbytes(64 * 1024))


def _truncated(clean: Path, path: Path) -> None:
    data = clean.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _pages_overwritten(clean: Path, path: Path) -> None:
    """The root page of every table and index but the migrations' overwritten with noise: the file opens
    and its schema reads, and the first query of a table meets the damage."""
    data = bytearray(clean.read_bytes())
    with closing(sqlite3.connect(clean)) as conn:
        size = conn.execute("pragma page_size").fetchone()[0]
        roots = [r for (r,) in conn.execute(
            "select rootpage from sqlite_master where rootpage > 0 and tbl_name != '_sqlite_migrations'")]  # fmt: skip
    noise = random.Random(11)
    for page in roots:
        data[(page - 1) * size : page * size] = noise.randbytes(size)
    path.write_bytes(bytes(data))


DAMAGE = {
    "directory": (_directory, "is a directory"),
    "random bytes": (_random_bytes, DAMAGED_HINT),
    "truncated to half": (_truncated, DAMAGED_HINT),
    "pages overwritten": (_pages_overwritten, DAMAGED_HINT),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_an_unusable_store_is_one_line_from_every_command(damage, clean_store, tmp_path, server, fault_tally):
    make, hint = DAMAGE[damage]
    db_path = tmp_path / "borderwatch.db"
    make(clean_store, db_path)
    config = write_config(tmp_path, [("Loopback", serve_seeds(server))])
    before = digest(db_path) if db_path.is_file() else None

    failures = 0
    for done in run_all(config, db_path, READ_COMMANDS):
        assert_one_line_error(done, str(db_path), hint)
        failures += 1
    if before is not None:
        assert digest(db_path) == before, "a read command wrote to the store"

    others: list[tuple[str, ...]] = [
        ("poll", "--once"),
        ("ingest", str(SEED_FILES[0])),
        ("status", "--check"),
    ]
    if damage != "pages overwritten":
        # `run` stops when the store cannot be opened; damage met later is one line per poll while it
        # keeps running (and the health check above fails meanwhile).
        others.append(("run",))
    for command in others:
        done = run_cli("--config", str(config), "--db", str(db_path), *command, timeout=60)
        assert_one_line_error(done, str(db_path), hint)
        failures += 1
    fault_tally.record(f"store: {damage}", faults=failures)


def test_an_empty_file_is_a_new_store(tmp_path, server, fault_tally):
    # A zero-byte file is what `touch` or a fresh bind mount leaves: SQLite reads it as a database with no
    # tables, it holds nothing to lose, so borderwatch treats it as a new store rather than refusing it.
    db_path = tmp_path / "borderwatch.db"
    db_path.touch()
    config = write_config(tmp_path, [("Loopback", serve_seeds(server))])
    # One after another: each first turns the empty file into a store (a write). Several processes
    # doing that at the same moment can time out on the write lock under load; see the session note.
    for command in [("status",), ("tables",), ("alerts",)]:
        done = run_cli("--config", str(config), "--db", str(db_path), *command)
        assert done.returncode == 0, done.stderr
    polled = run_cli("--config", str(config), "--db", str(db_path), "poll", "--once")
    assert polled.returncode == 0, polled.stderr
    articles, _ = counts(db_path)
    assert articles == len(SEED_FILES)
    fault_tally.record("store: zero-byte file", faults=1, articles_lost=len(SEED_FILES) - articles)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder under the system temp dir that another user can enter (pytest's tmp_path is private)."""
    folder = Path(tempfile.mkdtemp(prefix="borderwatch-ro-"))
    folder.chmod(0o755)
    yield folder
    folder.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _as_user() -> list[str]:
    """A command prefix that runs the CLI as an unprivileged user when the tests run as root (root writes
    whatever the mode says): util-linux's `setpriv`, where it is installed."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if setpriv else []


def _cli_as(user: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**clean_env(), "PYTHONDONTWRITEBYTECODE": "1", "HOME": tempfile.gettempdir()}
    return subprocess.run([*user, sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)  # fmt: skip


def _is_read_only_for(user: list[str], folder: Path) -> bool:
    """Whether `user` really cannot create a file in `folder` (tried, not guessed from the mode)."""
    probe = f"open({str(folder / 'probe')!r}, 'w')"
    try:
        done = subprocess.run(
            [*user, sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
        )
    except OSError:
        return False
    return "PermissionError" in done.stderr


def test_a_read_only_folder(clean_store, shared_folder, fault_tally):
    db_path = copy_store(clean_store, shared_folder / "borderwatch.db")
    config = write_config(shared_folder, [("Loopback", "http://127.0.0.1:9/feed.xml")])
    user = _as_user()
    if user:
        os.chown(db_path, 65534, 65534)  # the store is the user's own; only its folder is not
    os.chmod(config, 0o644)
    shared_folder.chmod(0o555)
    if not _is_read_only_for(user, shared_folder):
        pytest.skip("cannot make a folder read-only here: running as root without setpriv to switch user")
    before = digest(db_path)

    # Reading needs no write: the read commands show the store as it is.
    listed = _cli_as(user, "--db", str(db_path), "query", "select count(*) as n from articles")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"n": len(SEED_FILES)}]
    for command in [("status",), ("alerts",), ("search", "Taliban")]:
        done = _cli_as(user, "--config", str(config), "--db", str(db_path), *command)
        assert done.returncode == 0, (command, done.stderr)

    # Writing does: one line that names the folder and what to do.
    for command in (("poll", "--once"), ("ingest", str(SEED_FILES[0]))):
        done = _cli_as(user, "--config", str(config), "--db", str(db_path), *command)
        assert_one_line_error(done, str(shared_folder), "writable")
    assert digest(db_path) == before
    fault_tally.record("store: read-only folder", faults=6)


def test_a_lock_file_that_cannot_be_written(clean_store, tmp_path, fault_tally):
    db_path = copy_store(clean_store, tmp_path / "borderwatch.db")
    lock = tmp_path / "borderwatch.db.lock"
    lock.mkdir()
    config = write_config(tmp_path, [("Loopback", "http://127.0.0.1:9/feed.xml")])
    for command in (("poll", "--once"), ("run",)):
        done = run_cli("--config", str(config), "--db", str(db_path), *command, timeout=60)
        assert_one_line_error(done, str(lock), "is a directory")
    fault_tally.record("store: lock path is a directory", faults=2)


# --- 2. ingest while another process writes ------------------------------------------------------------


class WriteLock:
    """A second connection that holds the store's write lock (BEGIN IMMEDIATE) until released."""

    def __init__(self, db_path: Path) -> None:
        self.conn = sqlite3.connect(db_path, isolation_level=None)
        self.conn.execute("begin immediate")  # in WAL mode this takes the write lock at once

    def release(self) -> None:
        """Commit, which lets the waiting writer go on."""
        if self.conn.in_transaction:
            self.conn.execute("commit")
        self.conn.close()


def start_ingest(db_path: Path, timeout: str) -> subprocess.Popen[str]:
    """`ingest` of the seed reports in a subprocess, with the store's wait for a write lock set to `timeout`."""
    env = {**clean_env(), "PYTHONUNBUFFERED": "1", "BORDERWATCH_BUSY_TIMEOUT": timeout}
    args = ["--db", str(db_path), "ingest", "--no-deliver", *map(str, SEED_FILES)]
    return subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def read_until(process: subprocess.Popen[str], needle: str) -> str:
    """Stderr lines of `process` up to the first that contains `needle` (all of it if it never comes)."""
    assert process.stderr is not None
    seen = ""
    for line in process.stderr:
        seen += line
        if needle in line:
            break
    return seen


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    """A new, migrated store in WAL mode, with nothing in it (made by the store API)."""
    path = tmp_path / "borderwatch.db"
    store.open_db(path).close()
    return path


def test_ingest_waits_for_another_writer_and_ingests_everything(empty_store, clean_store, fault_tally):
    holder = WriteLock(empty_store)
    process = start_ingest(empty_store, "120")
    try:
        said = read_until(process, "waiting")
        assert "waiting" in said and "Traceback" not in said, said
    finally:
        holder.release()
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, said + err
    assert "Traceback" not in err
    articles, alerts = counts(empty_store)
    clean_articles, clean_alerts = counts(clean_store)
    assert (articles, alerts) == (clean_articles, clean_alerts)
    fault_tally.record("store: ingest while another process writes", faults=1,
                       articles_lost=max(0, clean_articles - articles),
                       articles_duplicated=max(0, articles - clean_articles),
                       alerts_lost=len(set(clean_alerts) - set(alerts)),
                       alerts_duplicated=len(alerts) - len(set(alerts)))  # fmt: skip


def test_ingest_gives_up_after_its_wait_in_one_line_with_nothing_half_written(empty_store, fault_tally):
    holder = WriteLock(empty_store)
    try:
        process = start_ingest(empty_store, "0.2")
        out, err = process.communicate(timeout=120)
    finally:
        holder.release()
    done = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    assert_one_line_error(done, str(empty_store), "BORDERWATCH_BUSY_TIMEOUT")
    with closing(sqlite3.connect(empty_store)) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        written = {t: conn.execute(f"select count(*) from {t}").fetchone()[0]
                   for t in ("articles", "article_versions", "claims", "incidents", "alerts")}  # fmt: skip
    assert set(written.values()) == {0}, written
    fault_tally.record("store: write lock held past the wait", faults=1)


# --- 3. the health check -------------------------------------------------------------------------------


def check(config: Path, db_path: Path) -> subprocess.CompletedProcess[str]:
    """`status --check`, as the container's HEALTHCHECK runs it."""
    return run_cli("--config", str(config), "--db", str(db_path), "status", "--check")


def test_health_check_fails_without_feeds(empty_store, tmp_path, fault_tally):
    config = write_config(tmp_path, [])
    done = check(config, empty_store)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no feeds configured" in done.stdout + done.stderr
    fault_tally.record("health: no feeds configured", faults=1)


def test_health_check_counts_only_the_configured_feeds(tmp_path, server, fault_tally):
    db_path = tmp_path / "borderwatch.db"
    server.routes["/good.xml"] = reply(rss(""), content_type="application/rss+xml")
    server.routes["/broken.xml"] = reply(b"down", 500, content_type="text/plain")
    before = write_config(tmp_path, [("Good", server.url("/good.xml"))], name="before.yaml")
    after = write_config(tmp_path, [("Broken", server.url("/broken.xml"))], name="after.yaml")

    assert run_cli("--config", str(before), "--db", str(db_path), "poll", "--once").returncode == 0
    healthy = check(before, db_path)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr

    # The good feed is removed from the config and the only configured one fails: unhealthy, and why.
    run_cli("--config", str(after), "--db", str(db_path), "poll", "--once")
    done = check(after, db_path)
    assert done.returncode == 1, done.stdout + done.stderr
    said = (done.stdout + done.stderr).strip()
    assert "no configured feed is healthy" in said and "Broken" in said, said
    assert len(said.splitlines()) == 1, said
    fault_tally.record("health: every configured feed fails", faults=1)


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    """The loopback Slack Web API."""
    with SlackServer() as srv:
        yield srv


def test_health_check_fails_when_deliveries_fail_for_too_long(
    clean_store, tmp_path, server, slack, fault_tally
):
    db_path = copy_store(clean_store, tmp_path / "borderwatch.db")  # 3 alerts, created in July 2021
    server.routes["/good.xml"] = reply(rss(""), content_type="application/rss+xml")
    slack_config = "slack:\n  channel: '#border-desk'\n"
    config = write_config(tmp_path, [("Good", server.url("/good.xml"))], slack_config)
    env = {**clean_env(), "SLACK_BASE_URL": slack.base_url, "SLACK_BOT_TOKEN": "xoxb-revoked"}
    polled = subprocess.run([sys.executable, "-m", "bot", "--config", str(config), "--db", str(db_path),
                             "poll", "--once"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert polled.returncode == 0, polled.stderr
    assert "invalid_auth" in polled.stderr

    done = check(config, db_path)
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, said
    assert "not delivered" in said and "invalid_auth" in said and "30m" in said, said
    assert len(said.splitlines()) == 1, said

    # The limit is the config's: alerts failing for less than `delivery_failing_after` are still healthy.
    patient = write_config(tmp_path, [("Good", server.url("/good.xml"))],
                           slack_config + "health:\n  delivery_failing_after: 100000d\n", name="patient.yaml")  # fmt: skip
    relaxed = check(patient, db_path)
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr
    pending = json.loads(run_cli("--db", str(db_path), "alerts", "--pending", "--json").stdout)
    fault_tally.record("health: every alert stuck on invalid_auth", faults=1, alerts_lost=3 - len(pending))


def test_the_limits_are_checked_where_they_are_set(tmp_path, monkeypatch):
    bad = write_config(tmp_path, [], "health:\n  delivery_failing_after: soon\n")
    with pytest.raises(ConfigError, match=r"health\.delivery_failing_after: not a duration"):
        load_config(bad)
    good = write_config(tmp_path, [], "health:\n  delivery_failing_after: 2h\n", name="good.yaml")
    assert load_config(good).health.delivery_failing_after == 7200
    assert load_config(write_config(tmp_path, [], name="default.yaml")).health.delivery_failing_after == 1800

    monkeypatch.setenv("BORDERWATCH_BUSY_TIMEOUT", "a while")
    with pytest.raises(ConfigError, match="BORDERWATCH_BUSY_TIMEOUT='a while': not a number of seconds"):
        store.open_db(tmp_path / "borderwatch.db")
