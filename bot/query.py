"""Read-only questions to the store: SQL with a time limit (all rows, or streamed), tables and rows, and
full-text search (issue 5). The named reads built on it (canned queries, the CLI's listings) are in
`bot/views.py`.

Safety comes from the connection, not from reading the SQL: callers pass a store opened with `mode=ro`
(`store.open_readonly`), so a write fails inside SQLite whatever the statement says. The time limit is a
progress handler, as in datasette: SQLite calls it every few thousand steps and it aborts the statement
once the deadline has passed.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as day_time
from typing import Any

from sqlite_utils import Database

from bot import store
from bot.config import parse_duration
from bot.errors import QueryError, QueryTimeoutError
from bot.models import iso_utc

DEFAULT_TIMEOUT = 5.0
#: How many of the newest articles an unfiltered search ranks first (see `search_articles`).
RECENT_ROWS = 5000
_PROGRESS_STEPS = 1000  # SQLite VM steps between two looks at the clock (datasette uses the same)
_FETCH_ROWS = 500  # rows taken from SQLite at a time while streaming
_FTS_SHADOW_SUFFIXES = ("_data", "_idx", "_docsize", "_config", "_content")
MARK_OPEN = "**"
MARK_CLOSE = "**"

Params = Mapping[str, Any] | Sequence[Any]


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names in order and the rows as dicts keyed by them."""

    columns: tuple[str, ...]
    rows: list[dict[str, Any]]


class _Deadline:
    """A progress handler that stops the running statement once `seconds` have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False

    def __call__(self) -> int:
        if time.monotonic() >= self.deadline:
            self.expired = True
            return 1
        return 0


@contextmanager
def _time_limit(conn: sqlite3.Connection, seconds: float) -> Iterator[_Deadline]:
    deadline = _Deadline(seconds)
    conn.set_progress_handler(deadline, _PROGRESS_STEPS)
    try:
        yield deadline
    finally:
        conn.set_progress_handler(None, _PROGRESS_STEPS)


def _unique_columns(names: Sequence[str]) -> tuple[str, ...]:
    """Column names with repeats suffixed (`id`, `id_2`) so that no value is lost when rows become dicts."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return tuple(unique)


def execute(db: Database, sql: str, params: Params = (), timeout: float = DEFAULT_TIMEOUT) -> QueryResult:
    """Run one statement and fetch all its rows within `timeout` seconds.

    Raises QueryTimeoutError past the limit and QueryError with SQLite's own message for anything
    SQLite refuses (syntax, `attempt to write a readonly database`, a missing parameter); a store that is
    damaged or not a database is a StoreError naming the file.
    """
    with stream(db, sql, params, timeout) as result:
        return QueryResult(result.columns, list(result.rows))


@dataclass(frozen=True, slots=True)
class QueryStream:
    """Column names in order and the rows as dicts keyed by them, fetched one at a time as they are read."""

    columns: tuple[str, ...]
    rows: Iterator[dict[str, Any]]


@contextmanager
def stream(
    db: Database, sql: str, params: Params = (), timeout: float = DEFAULT_TIMEOUT
) -> Iterator[QueryStream]:
    """Run one statement and yield its rows as they are read, so that a large result is never held
    (issue 11: 3 million rows took 3.2 GB). The time limit covers reading every row, not only the start:
    reading past it raises QueryTimeoutError. Errors as in `execute`.
    """
    conn = db.conn
    # A read-only connection could still ATTACH another file and write there: allow no attachments.
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    with _time_limit(conn, timeout) as deadline:
        with _query_errors(deadline, conn):
            cursor = conn.execute(sql, params)
        try:
            columns = _unique_columns([d[0] for d in cursor.description or ()])
            yield QueryStream(columns, _fetch(cursor, columns, deadline))
        finally:
            cursor.close()


def _fetch(cursor: sqlite3.Cursor, columns: tuple[str, ...], deadline: _Deadline) -> Iterator[dict[str, Any]]:
    """The cursor's rows as dicts, a batch at a time from SQLite."""
    with _query_errors(deadline, cursor.connection):
        while batch := cursor.fetchmany(_FETCH_ROWS):
            for row in batch:
                yield dict(zip(columns, row, strict=True))


@contextmanager
def _query_errors(deadline: _Deadline, conn: sqlite3.Connection) -> Iterator[None]:
    """SQLite's errors as QueryTimeoutError (past the deadline) or QueryError (SQLite's own message); a
    damaged or unreadable store is a StoreError that names its file (issue 11), not the query's fault."""
    try:
        yield
    except (sqlite3.Error, sqlite3.Warning) as exc:
        if deadline.expired:
            raise QueryTimeoutError(f"query stopped after the {deadline.seconds:g}s time limit") from None
        damaged = store.read_error(conn, exc) if isinstance(exc, sqlite3.Error) else None
        if damaged is not None:
            raise damaged from None
        raise QueryError(str(exc)) from None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- tables and rows ---------------------------------------------------------------------------------


def _fts_shadow_tables(db: Database) -> set[str]:
    """The tables SQLite keeps behind each FTS index (`articles_fts_data`, ...): noise in a listing."""
    fts = [t for t in db.table_names() if "using fts" in (db[t].schema or "").lower()]
    return {name + suffix for name in fts for suffix in _FTS_SHADOW_SUFFIXES}


def list_tables(
    db: Database, counts: bool = False, columns: bool = False, timeout: float = DEFAULT_TIMEOUT
) -> QueryResult:
    """The store's tables (without FTS shadow tables), optionally with row counts and column names."""
    hidden = _fts_shadow_tables(db)
    names = [t for t in db.table_names() if t not in hidden]
    header = ["table"] + (["count"] if counts else []) + (["columns"] if columns else [])
    rows = []
    for name in names:
        row: dict[str, Any] = {"table": name}
        if counts:
            row["count"] = execute(db, f"select count(*) as n from {_quote(name)}", timeout=timeout).rows[0][
                "n"
            ]
        if columns:
            row["columns"] = [c.name for c in db[name].columns]
        rows.append(row)
    return QueryResult(tuple(header), rows)


def select_rows(
    db: Database,
    table: str,
    where: str | None = None,
    params: Params = (),
    order: str | None = None,
    limit: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> QueryResult:
    """Rows of one table or view; `where` and `order` are SQL fragments (`where` may use `:name` params)."""
    if table not in db.table_names() and table not in db.view_names():
        raise QueryError(f"no such table: {table}")
    sql = f"select * from {_quote(table)}"
    if where:
        sql += f" where {where}"
    if order:
        sql += f" order by {order}"
    if limit is not None:
        sql += f" limit {int(limit)}"
    return execute(db, sql, params, timeout)


# --- time bounds -------------------------------------------------------------------------------------


def parse_since(text: str, now: datetime) -> datetime:
    """A time from `30m`/`2h`/`1d` (that long before `now`) or an ISO date or date-time (UTC if naive)."""
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    return _parse_iso(text)


def parse_until(text: str, now: datetime) -> datetime:
    """Like `parse_since`, but a bare date means the end of that day, so `--until 2021-07-26` includes it."""
    when = parse_since(text, now)
    if _is_bare_date(text):
        return datetime.combine(when.date(), day_time(23, 59, 59), tzinfo=UTC)
    return when


def _is_bare_date(text: str) -> bool:
    try:
        datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _parse_iso(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"not a duration (30m, 2h, 1d) or an ISO date: {text!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# --- search ------------------------------------------------------------------------------------------


def search_articles(
    db: Database,
    term: str,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    incident_id: int | None = None,
    limit: int = 20,
    quote: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> QueryResult:
    """Articles matching an FTS5 query, best first, each with a snippet that marks the matches `**so**`.

    `source` matches part of the outlet's name, case-insensitively; `since`/`until` bound `published`;
    `quote` searches the words as typed instead of as FTS5 syntax (`OR`, `NEAR`, `prefix*`).
    """
    if "articles_fts" not in db.table_names():
        raise QueryError("the store has no full-text index articles_fts")
    clauses = ["articles_fts match :term"]
    params: dict[str, Any] = {
        "term": db.quote_fts(term) if quote else term,
        "open": MARK_OPEN,
        "close": MARK_CLOSE,
    }
    if source:
        clauses.append("a.source like :source")
        params["source"] = f"%{source}%"
    if since is not None:
        clauses.append("a.published >= :since")
        params["since"] = iso_utc(since)
    if until is not None:
        clauses.append("a.published <= :until")
        params["until"] = iso_utc(until)
    if incident_id is not None:
        clauses.append("a.incident_id = :incident_id")
        params["incident_id"] = incident_id
    if len(clauses) == 1:
        # Rank and limit inside the FTS query, so FTS5 keeps only the best rows and makes snippets for those.
        # A common word matches nearly every article and bm25 must score each match: rank the newest
        # RECENT_ROWS articles first, and the whole store only when they hold less than a page of matches.
        sql = f"""select a.id, a.published, a.source, a.title, a.incident_id, a.url, m.snippet
                  from (select rowid, rank, snippet(articles_fts, -1, :open, :close, '…', 16) as snippet
                        from articles_fts where articles_fts match :term and rowid >= :floor
                        order by rank limit {int(limit)}) m
                  join articles a on a.id = m.rowid order by m.rank"""
        newest = db.execute("select max(rowid) from articles").fetchone()[0] or 0
        recent = execute(db, sql, {**params, "floor": newest - RECENT_ROWS}, timeout)
        if len(recent.rows) >= limit or newest <= RECENT_ROWS:
            return recent
        return execute(db, sql, {**params, "floor": 0}, timeout)
    else:
        sql = f"""select a.id, a.published, a.source, a.title, a.incident_id, a.url,
                         snippet(articles_fts, -1, :open, :close, '…', 16) as snippet
                  from articles_fts join articles a on a.id = articles_fts.rowid
                  where {" and ".join(clauses)}
                  order by articles_fts.rank limit {int(limit)}"""
    return execute(db, sql, params, timeout)
