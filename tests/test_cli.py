"""The spine through the real CLI in a subprocess: ingest, poll --once against a loopback feed, demo."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.conftest import SEED_FILES, LoopbackServer, run_cli, serve_seeds


def count(db_path: Path, sql: str) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_ingest_seeds_twice_stores_five_articles(tmp_path: Path) -> None:
    db_path = tmp_path / "bw.db"
    files = [str(p) for p in SEED_FILES]
    first = run_cli("--db", str(db_path), "ingest", "--no-deliver", *files)
    assert first.returncode == 0, first.stderr
    assert count(db_path, "select count(*) from articles") == 5
    alerts = count(db_path, "select count(*) from alerts")

    second = run_cli("--db", str(db_path), "ingest", "--no-deliver", *files)
    assert second.returncode == 0, second.stderr
    assert "ingested 5 files: 0 new articles or versions, 0 alerts" in second.stderr
    assert count(db_path, "select count(*) from articles") == 5
    assert count(db_path, "select count(distinct canonical_url) from articles") == 5
    assert count(db_path, "select count(*) from alerts") == alerts


def test_two_polls_store_each_article_once_and_the_second_is_conditional(
    tmp_path: Path, server: LoopbackServer
) -> None:
    feed_url = serve_seeds(server, full_text=False)
    config = tmp_path / "bot.yaml"
    config.write_text(
        "feeds:\n"
        f"  - name: Loopback News\n    url: {feed_url}\n"
        "watch:\n  keywords: [Afghan*, Taliban]\n"
        "network:\n  allow_private: [127.0.0.0/8]\n  timeout: 5\n",
        encoding="utf-8",
    )
    db_path = tmp_path / "bw.db"
    first = run_cli("--config", str(config), "--db", str(db_path), "poll", "--once")
    assert first.returncode == 0, first.stderr
    assert "new=5" in first.stderr
    second = run_cli("--config", str(config), "--db", str(db_path), "poll", "--once")
    assert second.returncode == 0, second.stderr
    assert "not_modified=1" in second.stderr and "new=0" in second.stderr

    assert count(db_path, "select count(*) from articles") == 5
    assert count(db_path, "select count(distinct canonical_url) from articles") == 5
    # Article pages on loopback were fetched (allow_private): the stored text is the page's, not the summary.
    assert count(db_path, "select count(*) from articles where summary_only = 0") == 5
    assert all(server.hits(f"/articles/{p.stem}.html") == 1 for p in SEED_FILES)
    polls = server.requests_for("/feed.xml")
    assert len(polls) == 2 and "if-none-match" not in polls[0].headers and polls[1].headers["if-none-match"]


def test_demo_runs_to_the_end_and_prints_alerts(tmp_path: Path) -> None:
    result = run_cli("--db", str(tmp_path / "demo.db"), "demo", "--delay", "0")
    assert result.returncode == 0, result.stderr
    assert "demo done: 5 articles" in result.stdout
    assert "== NEW INCIDENT" in result.stdout
    assert "nothing new (not modified: 1)" in result.stdout
