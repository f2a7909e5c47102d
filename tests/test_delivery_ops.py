"""Delivery and output for operators (issue 11): a fixed token delivers at once after `alerts --retry`,
`poll --once` delivers every pending alert (not the first 1,000), `query` streams its rows, and `poll
--once` prints its summary once. Real parts only: the Slack-compatible server, loopback feeds, the CLI in
a subprocess, SQLite files."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot import store
from bot.alerts.console import ConsoleSink
from bot.alerts.outbox import PERMANENT_RETRY, deliver_pending
from bot.alerts.slack import make_slack_sink
from bot.cli import cli
from bot.config import parse_config
from bot.models import AlertDraft
from tests.conftest import ROOT, LoopbackServer, clean_env, run_cli, serve_seeds
from tests.slack_server import TOKEN, SlackServer

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ALERT_LINE = re.compile(r"^== .* · alert #(\d+) · ", re.MULTILINE)


@pytest.fixture
def slack():
    with SlackServer() as server:
        yield server


def add_alerts(db_path: Path, count: int) -> list[int]:
    """Queue `count` alerts without an incident (each stands alone) in the store at `db_path`."""
    db = store.open_db(db_path)
    try:
        ids = []
        for n in range(count):
            draft = AlertDraft("new_incident", None, f"New incident: crossing number {n}", (), f"op:{n}", {})
            alert_id = store.record_alert(db, draft, T0)
            assert alert_id is not None
            ids.append(alert_id)
        return ids
    finally:
        db.close()


def write_config(tmp_path: Path, feed_url: str | None = None) -> Path:
    """A config file: one loopback feed (or none), Slack's channel for when a token is set."""
    feeds = f"  - name: Loopback News\n    url: {feed_url}\n" if feed_url else ""
    path = tmp_path / "bot.yaml"
    path.write_text(
        ("feeds:\n" + feeds if feeds else "feeds: []\n") + "watch:\n  keywords: [Afghan*, Taliban]\n"
        "network:\n  allow_private: [127.0.0.0/8]\n  timeout: 5\n"
        "slack:\n  channel: '#border-desk'\n  max_per_second: 1000\n",
        encoding="utf-8",
    )
    return path


def borderwatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess with exactly this environment (run_cli drops Slack's variables)."""
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def pending(db_path: Path) -> list[dict[str, Any]]:
    """`alerts --pending --json` (in this process: it reads the store only)."""
    listed = CliRunner().invoke(cli, ["--db", str(db_path), "alerts", "--pending", "--json"])
    assert listed.exit_code == 0, listed.output
    return list(json.loads(listed.stdout))


# --- 1. a fixed token: the next attempt is shown, and `alerts --retry` makes it now ---------------------


def test_fixed_token_is_used_at_once_after_alerts_retry_and_the_alert_goes_once(slack, tmp_path, fault_tally):
    db_path = tmp_path / "bw.db"
    (alert_id,) = add_alerts(db_path, 1)
    config = write_config(tmp_path)
    base = {**clean_env(), "SLACK_BASE_URL": slack.base_url}
    bad, good = {**base, "SLACK_BOT_TOKEN": "xoxb-revoked"}, {**base, "SLACK_BOT_TOKEN": TOKEN}
    poll = ("--config", str(config), "--db", str(db_path), "poll", "--once")

    # A rejected token: the alert stays queued, and the error line says when it is tried next.
    before = datetime.now(UTC).replace(microsecond=0)
    first = borderwatch(*poll, env=bad)
    after = datetime.now(UTC)
    assert first.returncode == 0, first.stderr
    said = re.search(r"invalid_auth.*next attempt at (\S+)", first.stderr)
    assert said, first.stderr
    assert "alerts --retry" in first.stderr
    (row,) = pending(db_path)
    assert row["id"] == alert_id and row["next_attempt"] == said.group(1)
    retry = timedelta(seconds=PERMANENT_RETRY)
    assert before + retry <= datetime.fromisoformat(said.group(1)) <= after + retry

    # The token is fixed, but the alert waits out its backoff (the fault): nothing is sent yet.
    waiting = borderwatch(*poll, env=good)
    assert waiting.returncode == 0, waiting.stderr
    assert slack.messages == []
    assert re.search(r"1 alert not yet delivered; next attempt at \S+", waiting.stderr), waiting.stderr

    # `alerts --retry` clears the wait; the next delivery sends the alert, once.
    retried = CliRunner().invoke(cli, ["--db", str(db_path), "alerts", "--retry"])
    assert retried.exit_code == 0, retried.output
    assert "1 undelivered alert" in retried.stderr
    assert [r["next_attempt"] for r in pending(db_path)] == [None]
    delivered = borderwatch(*poll, env=good)
    assert delivered.returncode == 0, delivered.stderr
    assert "delivered=1" in delivered.stderr
    again = borderwatch(*poll, env=good)
    assert again.returncode == 0, again.stderr

    sent = [m["metadata"]["event_payload"]["alert_id"] for m in slack.messages]
    assert sent == [alert_id] and pending(db_path) == []
    fault_tally.record("delivery: Slack token fixed, then alerts --retry", faults=1,
                       alerts_lost=1 - len(set(sent)), alerts_duplicated=len(sent) - len(set(sent)))  # fmt: skip


# --- 2. every pending alert is delivered, a batch at a time ----------------------------------------------


def test_deliver_pending_goes_through_every_batch_in_order_once(db_path, fault_tally):
    ids = add_alerts(db_path, 12)
    out = io.StringIO()
    db = store.open_db(db_path)
    try:
        assert deliver_pending(db, ConsoleSink(out), T0, batch=5) == 12
        assert deliver_pending(db, ConsoleSink(out), T0 + timedelta(minutes=1), batch=5) == 0
        left = db.execute("select count(*) from alerts where delivered is null").fetchone()[0]
    finally:
        db.close()
    printed = [int(n) for n in ALERT_LINE.findall(out.getvalue())]
    assert printed == ids and left == 0
    fault_tally.record("delivery: more pending alerts than one batch", faults=1,
                       alerts_lost=len(set(ids) - set(printed)),
                       alerts_duplicated=len(printed) - len(set(printed)))  # fmt: skip


def test_a_failure_holds_the_alerts_of_later_batches_too(slack, db_path):
    ids = add_alerts(db_path, 12)
    db = store.open_db(db_path)
    cfg = parse_config({"feeds": [], "watch": {"keywords": ["Afghan"]},
                        "slack": {"channel": "#border-desk", "max_per_second": 1000}}, Path("t.yaml"))  # fmt: skip
    sink = make_slack_sink(cfg, db, {"SLACK_BOT_TOKEN": TOKEN, "SLACK_BASE_URL": slack.base_url}, timeout=5.0)
    try:
        slack.fail("chat.postMessage", "error", error="internal_error", times=1)  # the first alert fails
        assert deliver_pending(db, sink, T0, batch=5) == 0
        assert slack.messages == []  # the channel waits: nothing of a later batch jumped the queue
        assert deliver_pending(db, sink, T0 + timedelta(hours=1), batch=5) == 12
    finally:
        db.close()
    assert [m["metadata"]["event_payload"]["alert_id"] for m in slack.messages] == ids


def test_poll_once_delivers_more_than_the_default_batch(tmp_path, db_path, fault_tally):
    ids = add_alerts(db_path, 1003)  # a poll used to deliver the first 1,000 and say nothing
    result = run_cli("--config", str(write_config(tmp_path)), "--db", str(db_path), "poll", "--once")
    assert result.returncode == 0, result.stderr
    printed = [int(n) for n in ALERT_LINE.findall(result.stdout)]
    assert sorted(printed) == ids and f"delivered={len(ids)} " in result.stderr
    fault_tally.record("delivery: poll --once with more than 1,000 pending alerts", faults=1,
                       alerts_lost=len(set(ids) - set(printed)),
                       alerts_duplicated=len(printed) - len(set(printed)))  # fmt: skip


# --- 4. poll --once says its summary once --------------------------------------------------------------


def test_poll_once_prints_its_summary_line_once(tmp_path, db_path, server: LoopbackServer, fault_tally):
    config = write_config(tmp_path, serve_seeds(server, full_text=False))
    result = run_cli("--config", str(config), "--db", str(db_path), "poll", "--once")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "cycle done:" in line]
    assert len(lines) == 1 and "new=5" in lines[0], result.stderr
    fault_tally.record("output: poll --once summary line", faults=0)


# --- 3. query streams its rows ------------------------------------------------------------------------

#: Rows for the streaming measurement: a materialised result of this many rows takes hundreds of MB.
MANY = 200_000


def numbers(count: int | None) -> str:
    """SQL for `count` generated rows (endless with None): SQLite makes each row when it is asked for."""
    limit = f" limit {count}" if count is not None else ""
    return (f"with recursive n(x) as (select 1 union all select x + 1 from n{limit}) "
            "select x, 'row number ' || x as label from n")  # fmt: skip


def peak_rss_kb(db_path: Path, out: Path, *args: str) -> tuple[int, int]:
    """Run the CLI with stdout to `out`; returns its exit status and its own peak RSS in KB (wait4 reports
    this child alone, where RUSAGE_CHILDREN would keep the largest child the test session ever had)."""
    with open(out, "w", encoding="utf-8") as stdout, open(out.with_suffix(".err"), "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(db_path), *args], stdout=stdout,
                                stderr=stderr, cwd=ROOT, env=clean_env())  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return proc.returncode, usage.ru_maxrss


@pytest.fixture(scope="module")
def baseline_kb(tmp_path_factory) -> tuple[Path, int]:
    """A store and the peak RSS of `query` printing ten rows: the interpreter and its imports."""
    tmp = tmp_path_factory.mktemp("stream")
    db_path = tmp / "borderwatch.db"
    store.open_db(db_path).close()
    status, kb = peak_rss_kb(db_path, tmp / "ten.out", "query", numbers(10), "--csv")
    assert status == 0
    return db_path, kb


@pytest.mark.parametrize("fmt", ["--csv", "--nl", "--json"])
def test_query_streams_rows_in_bounded_memory(fmt, baseline_kb, tmp_path, fault_tally):
    db_path, base_kb = baseline_kb
    out = tmp_path / "many.out"
    status, kb = peak_rss_kb(db_path, out, "query", numbers(MANY), fmt, "--timeout", "600")
    assert status == 0, out.with_suffix(".err").read_text()

    with open(out, encoding="utf-8") as written:
        if fmt == "--csv":
            rows = sum(1 for _ in csv.reader(written)) - 1
            last = None
        elif fmt == "--nl":
            rows, last = 0, None
            for line in written:
                rows, last = rows + 1, json.loads(line)
        else:
            loaded = json.load(written)
            rows, last = len(loaded), loaded[-1]
    assert rows == MANY and last in (None, {"x": MANY, "label": f"row number {MANY}"})
    # Holding the rows would take at least one dict per row; streaming takes a small fraction of that.
    materialised_kb = MANY * sys.getsizeof({"x": MANY, "label": f"row number {MANY}"}) // 1024
    assert kb - base_kb < materialised_kb // 4, (kb, base_kb, materialised_kb)
    fault_tally.record(f"output: query of {MANY:,} rows {fmt}", faults=1)


def test_json_output_is_unchanged_by_streaming(db_path):
    store.open_db(db_path).close()
    result = run_cli("--db", str(db_path), "query", numbers(3), "--json")
    empty = run_cli("--db", str(db_path), "query", "select 1 as x where 0", "--json")
    assert result.returncode == 0 and empty.returncode == 0, result.stderr + empty.stderr
    expected = [{"x": n, "label": f"row number {n}"} for n in (1, 2, 3)]
    assert result.stdout == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert empty.stdout == "[]\n"


def test_table_output_is_capped_with_a_message(db_path):
    store.open_db(db_path).close()
    result = run_cli("--db", str(db_path), "query", numbers(1005), "--table")
    assert result.returncode == 0, result.stderr
    shown = re.findall(r"row number (\d+)", result.stdout)
    assert [int(n) for n in shown] == list(range(1, 1001))
    assert (
        result.stderr
        == "1,000 rows shown; 5 more left out of the table: use --csv, --tsv or --nl for every row\n"
    )


def test_time_limit_covers_the_whole_stream(db_path):
    """An endless query streams rows until the time limit stops it, then says so once."""
    store.open_db(db_path).close()
    result = run_cli("--db", str(db_path), "query", numbers(None), "--nl", "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr == "Error: query stopped after the 1s time limit (raise it with --timeout)\n"
    first = result.stdout.splitlines()[:2]
    assert [json.loads(line) for line in first] == [{"x": 1, "label": "row number 1"},
                                                    {"x": 2, "label": "row number 2"}]  # fmt: skip
