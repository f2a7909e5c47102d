"""The read-only query CLI (issue 5): `query`, `tables`, `rows`, `search`, `conflicts`, `changes`, `feeds`,
on a store made by the real `ingest` of the seed reports."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from bot import store
from bot.cli import cli
from bot.models import AlertDraft, Evidence

ROOT = Path(__file__).resolve().parents[1]
RUNAWAY = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"


def _header(path: Path) -> dict[str, str]:
    head, _, _ = path.read_text(encoding="utf-8").partition("\n---\n")
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines())}


def _seeds_naming(seeds: Path, word: str) -> set[str]:
    """URLs of the seed reports whose title or text names `word` (case-insensitive, whole word)."""
    pattern = re.compile(rf"\b{word}\b", re.IGNORECASE)
    return {_header(p)["url"] for p in seeds.glob("*.txt") if pattern.search(p.read_text(encoding="utf-8"))}


@pytest.fixture
def scratch_db(seeds_db: Path, tmp_path: Path) -> Path:
    """A copy of the seeds' store that a test may add rows to."""
    copy = tmp_path / "borderwatch.db"
    with sqlite3.connect(seeds_db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    return copy


def run(db: Path, *args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, ["--db", str(db), *args])


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


# --- query -------------------------------------------------------------------------------------------


def test_query_json(seeds_db: Path, seed_dir: Path) -> None:
    result = run(seeds_db, "query", "select url, source from articles order by url")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # JSON when stdout is not a terminal
    assert rows == sorted(
        ({"url": h["url"], "source": h["source"]} for h in map(_header, seed_dir.glob("*.txt"))),
        key=lambda r: r["url"],
    )


def test_query_csv_with_named_parameter(seeds_db: Path, seed_dir: Path) -> None:
    al_jazeera = next(h for h in map(_header, seed_dir.glob("*.txt")) if h["source"] == "Al Jazeera")
    result = run(seeds_db, "query", "select url, title from articles where source = :source", "-p", "source",
                 "Al Jazeera", "--csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["url", "title"],
        [al_jazeera["url"], al_jazeera["title"]],
    ]


def test_query_table_and_nl(seeds_db: Path) -> None:
    table = run(seeds_db, "query", "select id, source from articles order by id", "--table")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert "id" in lines[1] and "source" in lines[1] and "━" in lines[0]
    assert [line for line in lines if "Voice of America" in line]
    nl = run(seeds_db, "query", "select id from articles order by id", "--nl")
    assert [json.loads(line) for line in nl.stdout.splitlines()] == [{"id": i} for i in range(1, 6)]


def test_query_prints_a_table_on_a_terminal(seeds_db: Path) -> None:
    main, child = pty.openpty()
    command = [
        sys.executable,
        "-m",
        "bot",
        "--db",
        str(seeds_db),
        "query",
        "select count(*) as n from articles",
    ]
    proc = subprocess.Popen(command, stdout=child, stderr=subprocess.PIPE, cwd=ROOT)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.decode())  # without the terminal's bold
    assert "┃ n" in text and "│ 5" in text and not text.lstrip().startswith("[")


def test_delete_is_refused_and_deletes_nothing(seeds_db: Path) -> None:
    result = run(seeds_db, "query", "delete from articles")
    assert result.exit_code == 1
    assert result.stderr == "Error: attempt to write a readonly database\n"
    assert count(seeds_db, "select count(*) from articles") == 5


def test_attach_is_refused(seeds_db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    result = run(seeds_db, "query", f"attach database '{other}' as other")
    assert result.exit_code == 1 and result.stderr.startswith("Error: too many attached databases")
    assert not other.exists()


def test_bad_sql_gives_sqlites_message_on_one_line(seeds_db: Path) -> None:
    result = run(seeds_db, "query", "selec * from articles")
    assert result.exit_code == 1
    assert result.stderr == 'Error: near "selec": syntax error\n'
    assert result.stdout == ""


def test_missing_parameter_is_an_error(seeds_db: Path) -> None:
    result = run(seeds_db, "query", "select * from articles where id = :id")
    assert result.exit_code == 1
    assert result.stderr == "Error: You did not supply a value for binding parameter :id.\n"


def test_runaway_query_is_stopped_by_the_time_limit(seeds_db: Path) -> None:
    result = run(seeds_db, "query", RUNAWAY, "--timeout", "0.2")
    assert result.exit_code == 1
    assert result.stderr == "Error: query stopped after the 0.2s time limit (raise it with --timeout)\n"


# --- tables and rows ---------------------------------------------------------------------------------


def test_tables_with_counts_and_columns(seeds_db: Path) -> None:
    result = run(seeds_db, "tables", "--counts", "--columns", "--json")
    assert result.exit_code == 0, result.output
    tables = {row["table"]: row for row in json.loads(result.stdout)}
    assert tables["articles"]["count"] == 5 and "canonical_url" in tables["articles"]["columns"]
    assert {"incidents", "claims", "alerts", "feeds", "articles_fts"} <= set(tables)
    assert "articles_fts_data" not in tables  # FTS shadow tables are noise
    csv_out = run(seeds_db, "tables", "--columns", "--csv").stdout
    assert 'incident_keys,"key, incident_id"' in csv_out.splitlines()


def test_rows_where_order_limit(seeds_db: Path, seed_dir: Path) -> None:
    headers = sorted(
        map(_header, seed_dir.glob("*.txt")), key=lambda h: datetime.fromisoformat(h["published"])
    )
    result = run(seeds_db, "rows", "articles", "--where", "published >= :t", "-p", "t", "2021-07-26T07:00:00+00:00",
                 "-o", "published desc", "--limit", "2", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [r["url"] for r in json.loads(result.stdout)] == [headers[-1]["url"], headers[-2]["url"]]
    missing = run(seeds_db, "rows", "nope")
    assert missing.exit_code == 1 and missing.stderr == "Error: no such table: nope\n"


# --- search ------------------------------------------------------------------------------------------


def test_search_finds_the_reports_naming_chitral(seeds_db: Path, seed_dir: Path) -> None:
    expected = _seeds_naming(seed_dir, "Chitral")
    assert expected  # the seeds name it (4 of 5 today)
    result = run(seeds_db, "search", "Chitral", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert {r["url"] for r in found} == expected
    assert all("**chitral**" in r["snippet"].lower() for r in found)


def test_search_filters(seeds_db: Path, seed_dir: Path) -> None:
    expected = _seeds_naming(seed_dir, "Chitral")
    headers = {h["url"]: h for h in map(_header, seed_dir.glob("*.txt"))}

    def urls(*args: str) -> set[str]:
        result = run(seeds_db, "search", "Chitral", *args, "--json")
        assert result.exit_code == 0, result.output
        return {r["url"] for r in json.loads(result.stdout)}

    assert urls("--source", "al jazeera") == {u for u in expected if headers[u]["source"] == "Al Jazeera"}
    cut = datetime(2021, 7, 26, 7, 0, tzinfo=UTC)
    before = {u for u in expected if datetime.fromisoformat(headers[u]["published"]) <= cut}
    assert before and before != expected
    assert urls("--until", cut.isoformat()) == before
    assert urls("--since", "2021-07-26T07:00:01Z") == expected - before
    assert (
        urls("--since", "2021-07-25", "--until", "2021-07-26") == expected
    )  # a bare --until date: the whole day
    with sqlite3.connect(seeds_db) as conn:
        incident_of = dict(conn.execute("select url, incident_id from articles"))
    incident = incident_of[_header(seed_dir / "04_al-jazeera.txt")["url"]]
    assert urls("--incident", str(incident)) == {u for u in expected if incident_of[u] == incident}
    assert urls("--incident", str(max(incident_of.values()) + 1)) == set()


def test_search_syntax_error_suggests_quote(seeds_db: Path, seed_dir: Path) -> None:
    result = run(seeds_db, "search", '"Chitral')
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and result.stderr.endswith(
        "(add --quote to search the words as typed)\n"
    )
    quoted = run(seeds_db, "search", '"Chitral', "--quote", "--json")
    expected = _seeds_naming(seed_dir, "Chitral")
    assert quoted.exit_code == 0 and {r["url"] for r in json.loads(quoted.stdout)} == expected


def test_sqlite_utils_search_works_on_the_store(seeds_db: Path, seed_dir: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "sqlite_utils", "search", str(seeds_db), "articles", "Chitral",
                          "-c", "url"], check=True, capture_output=True, text=True).stdout  # fmt: skip
    assert {r["url"] for r in json.loads(out)} == _seeds_naming(seed_dir, "Chitral")


# --- conflicts, changes, feeds -----------------------------------------------------------------------


def _evidence(db: Path, url: str, quote: str) -> Evidence:
    with sqlite3.connect(db) as conn:
        source, published = conn.execute(
            "select source, published from articles where url = ?", [url]
        ).fetchone()
    return Evidence(url, source, published, quote)


def _incident_of(db: Path, url: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("select incident_id from articles where url = ?", [url]).fetchone()[0])


def _alerts(db: Path, where: str, params: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Alerts straight from the file, evidence decoded: what the commands should show."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"select * from alerts where {where} order by created, id", params).fetchall()
    return [{**dict(r), "evidence": json.loads(r["evidence"])} for r in rows]


def test_conflicts_show_both_sides(scratch_db: Path, seed_dir: Path) -> None:
    voa, al_jazeera = (_header(seed_dir / n)["url"] for n in ("05_voa.txt", "04_al-jazeera.txt"))
    incident = _incident_of(scratch_db, voa)
    sides = (
        _evidence(scratch_db, al_jazeera, "the crossing was confirmed"),
        _evidence(scratch_db, voa, "not true"),
    )
    db = store.open_db(scratch_db)
    store.record_alert(
        db, AlertDraft("position_conflict", incident, "Positions differ", sides, "t:1"), datetime.now(UTC)
    )
    store.record_alert(
        db, AlertDraft("status_change", incident, "Returned", sides[1:], "t:2"), datetime.now(UTC)
    )
    db.close()
    result = run(scratch_db, "conflicts", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    # newest first: ours and any the analysis raised on the seeds
    expected = sorted(_alerts(scratch_db, "kind glob '*_conflict'"), key=lambda a: -int(a["id"]))
    assert [r["id"] for r in shown] == [a["id"] for a in expected] and shown[0][
        "summary"
    ] == "Positions differ"
    for row, alert in zip(shown, expected, strict=True):
        a, b = alert["evidence"][:2]
        assert (row["a_source"], row["a_quote"], row["a_url"]) == (a["source"], a["quote"], a["url"])
        assert (row["b_source"], row["b_quote"], row["b_url"]) == (b["source"], b["quote"], b["url"])
    assert (shown[0]["a_quote"], shown[0]["b_url"]) == ("the crossing was confirmed", voa)
    assert json.loads(run(scratch_db, "conflicts", "--incident", str(incident + 1000), "--json").stdout) == []
    table = run(scratch_db, "conflicts", "--incident", str(incident), "--table").stdout  # one cell per side
    assert (
        "side_a" in table.splitlines()[1]
        and "side_b" in table.splitlines()[1]
        and "Positions differ" in table
    )


def test_changes_since_duration_and_date(scratch_db: Path, seed_dir: Path) -> None:
    now = datetime.now(UTC)
    voa = _header(seed_dir / "05_voa.txt")["url"]
    incident = _incident_of(scratch_db, voa)
    change = (_evidence(scratch_db, voa, "have been returned"),)
    db = store.open_db(scratch_db)
    store.record_alert(db, AlertDraft("status_change", incident, "Soldiers returned", change, "t:3"), now)
    store.record_alert(db, AlertDraft("figure_conflict", incident, "Figures differ", change * 2, "t:4"), now)
    db.close()
    recent = run(scratch_db, "changes", "--since", "30m", "--json")
    assert recent.exit_code == 0, recent.output
    assert [(r["kind"], r["summary"], r["url"]) for r in json.loads(recent.stdout)] == [
        ("status_change", "Soldiers returned", voa)
    ]
    since = "2021-07-26T10:00:00+00:00"
    expected = _alerts(
        scratch_db, "(kind glob '*_change' or kind = 'new_incident') and created >= ?", (since,)
    )
    assert len(expected) > 1  # the seeds' own later alerts, and ours
    since_date = json.loads(run(scratch_db, "changes", "--since", "2021-07-26T10:00", "--json").stdout)
    assert [r["id"] for r in since_date] == [a["id"] for a in expected]
    bad = run(scratch_db, "changes", "--since", "yesterday")
    assert (
        bad.exit_code == 1
        and bad.stderr == "Error: not a duration (30m, 2h, 1d) or an ISO date: 'yesterday'\n"
    )


def test_feeds_health(scratch_db: Path) -> None:
    db = store.open_db(scratch_db)
    feed_id, state = store.load_feed_state(db, "VOA", "http://127.0.0.1:9/voa.xml")
    store.save_feed_state(db, feed_id, state, datetime.now(UTC), 200, 3, False)
    db.close()
    result = run(scratch_db, "feeds", "--json")
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert (row["name"], row["health"], row["polls"], row["articles"]) == ("VOA", "ok", 1, 0)


# --- help --------------------------------------------------------------------------------------------


def _all_commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in group.commands.items():
        found.append(((*prefix, name), command))
        if isinstance(command, click.Group):
            found += _all_commands(command, (*prefix, name))
    return found


def test_every_command_has_help() -> None:
    commands = _all_commands(cli)
    assert {"query", "tables", "rows", "search", "conflicts", "changes", "feeds", "serve"} <= {
        p[0] for p, _ in commands
    }
    for path, command in commands:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        summary = command.get_short_help_str()
        assert command.help and summary, f"{' '.join(path)} has no help text"
        assert summary.rstrip(".").rstrip("…").strip()[:30] in " ".join(result.output.split()), path
