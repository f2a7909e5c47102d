"""Read-only questions to the store: SQL with a time limit, tables and rows, full-text search, and the
canned queries (latest alerts, open conflicts, what changed, an incident's timeline, feed health) that the
CLI and `borderwatch serve` share (issue 5).

Safety comes from the connection, not from reading the SQL: callers pass a store opened with `mode=ro`
(`store.open_readonly`), so a write fails inside SQLite whatever the statement says. The time limit is a
progress handler, as in datasette: SQLite calls it every few thousand steps and it aborts the statement
once the deadline has passed.
"""

from __future__ import annotations

import json
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
from bot.incidents.kinds import NEW_INCIDENT, Family, names_in_family

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


@dataclass(frozen=True, slots=True)
class CannedQuery:
    """A named query shown by `borderwatch serve` (and run by the matching CLI command)."""

    name: str
    title: str
    description: str
    sql: str


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


def _iso(when: datetime) -> str:
    """The stored form of a time (see store.iso), so that text comparison orders correctly."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


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
        params["since"] = _iso(since)
    if until is not None:
        clauses.append("a.published <= :until")
        params["until"] = _iso(until)
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


# --- canned queries ----------------------------------------------------------------------------------
# Written against the columns of migration m001 only, so later migrations that add columns don't break them.


def _kinds_of(family: Family) -> str:
    """An SQL list of the alert kinds of one family, e.g. every conflict kind."""
    return "(" + ", ".join(f"'{name}'" for name in names_in_family(family)) + ")"


_SOURCES = "(select group_concat(json_extract(e.value, '$.source'), '; ') from json_each(alerts.evidence) e)"

LATEST_ALERTS_SQL = f"""select alerts.id, alerts.created, alerts.kind, alerts.incident_id, alerts.summary,
       {_SOURCES} as sources, alerts.delivered
from alerts order by alerts.id desc limit 100"""

_CONFLICTS_SELECT = """select alerts.id, alerts.created, alerts.kind, alerts.incident_id,
       incidents.title as incident, alerts.summary,
       json_extract(alerts.evidence, '$[0].source') as a_source,
       json_extract(alerts.evidence, '$[0].quote') as a_quote,
       json_extract(alerts.evidence, '$[0].url') as a_url,
       json_extract(alerts.evidence, '$[1].source') as b_source,
       json_extract(alerts.evidence, '$[1].quote') as b_quote,
       json_extract(alerts.evidence, '$[1].url') as b_url,
       json_extract(alerts.details, '$.sides[0].label') || ': ' || json_extract(alerts.details, '$.sides[0].value')
         as a_claim,
       json_extract(alerts.details, '$.sides[1].label') || ': ' || json_extract(alerts.details, '$.sides[1].value')
         as b_claim,
       json_array_length(alerts.evidence) as evidence_count
from alerts left join incidents on incidents.id = alerts.incident_id
where alerts.kind in """ + _kinds_of("conflict")

OPEN_CONFLICTS_SQL = _CONFLICTS_SELECT + "\norder by alerts.id desc"

_CHANGES_SELECT = f"""select alerts.id, alerts.created, alerts.kind, alerts.incident_id,
       incidents.title as incident, alerts.summary, {_SOURCES} as sources,
       json_extract(alerts.evidence, '$[#-1].url') as url
from alerts left join incidents on incidents.id = alerts.incident_id
where (alerts.kind in {_kinds_of("change")} or alerts.kind = '{NEW_INCIDENT.name}')"""

CHANGES_SQL = _CHANGES_SELECT + "\n  and alerts.created >= :since\norder by alerts.created, alerts.id"

INCIDENT_TIMELINE_SQL = f"""select time, event, source, what, url from (
  select published as time, 0 as seq, 'report' as event, source, title as what, url
  from articles where incident_id = :incident_id
  union all
  select created, 1, kind, {_SOURCES}, summary, json_extract(evidence, '$[#-1].url')
  from alerts where incident_id = :incident_id
) order by time, seq"""

FEED_HEALTH_SQL = """select feeds.name, feeds.url, feeds.last_checked, feeds.last_ok, feeds.last_status,
       case when feeds.retired then 'retired' when feeds.consecutive_errors > 0 then 'failing' else 'ok' end
         as health,
       feeds.consecutive_errors, feeds.total_errors, feeds.polls, feeds.not_modified,
       feeds.etag is not null as has_etag, feeds.next_poll,
       (select count(*) from articles where articles.feed_id = feeds.id) as articles, feeds.last_error
from feeds order by feeds.name"""

INCIDENTS_MAP_SQL = """select id, title, place, status, latitude, longitude, first_seen, last_published,
       articles, sources
from incidents where latitude is not null and longitude is not null order by id desc"""

CANNED_QUERIES = (
    CannedQuery("latest_alerts", "Latest alerts", "The newest 100 alerts, with the outlets they cite.",
                LATEST_ALERTS_SQL),
    CannedQuery("open_conflicts", "Open conflicts",
                "Reports of one incident that disagree (figures, places, positions), with both sides.",
                OPEN_CONFLICTS_SQL),
    CannedQuery("incident_timeline", "Incident timeline",
                "Every report and alert of one incident in time order.", INCIDENT_TIMELINE_SQL),
    CannedQuery("feed_health", "Feed health", "Each feed's last poll, status, errors and articles stored.",
                FEED_HEALTH_SQL),
    CannedQuery("incidents_map", "Incidents on a map", "Incidents with a known place.", INCIDENTS_MAP_SQL),
)  # fmt: skip


def list_conflicts(
    db: Database, incident_id: int | None = None, limit: int = 100, timeout: float = DEFAULT_TIMEOUT
) -> QueryResult:
    """Conflict alerts (the conflict family of `incidents/kinds.py`), newest first, with the two sides'
    source, quote and URL (and, where the alert's details name them, who says what: `a_claim`, `b_claim`).

    The store keeps no resolution state yet, so every conflict alert counts as open.
    """
    sql = _CONFLICTS_SELECT
    params: dict[str, Any] = {}
    if incident_id is not None:
        sql += " and alerts.incident_id = :incident_id"
        params["incident_id"] = incident_id
    return execute(db, sql + f" order by alerts.id desc limit {int(limit)}", params, timeout)


def list_changes(db: Database, since: datetime, timeout: float = DEFAULT_TIMEOUT) -> QueryResult:
    """What moved since `since`: new incidents and alerts of the change family, oldest first."""
    return execute(db, CHANGES_SQL, {"since": _iso(since)}, timeout)


# --- the CLI's listings: alerts, health, incidents ------------------------------------------------------


def list_alerts(db: Database, pending: bool = False, limit: int = 50) -> QueryResult:
    """Recent alerts, newest first, with their delivery state (only undelivered ones with `pending`):
    `next_attempt` is when an undelivered alert is tried again (its earliest channel waiting a backoff)."""
    where = "where delivered is null" if pending else ""
    sql = (
        "select id, kind, incident_id, summary, created, delivered, channel, ts, attempts, "
        "(select min(d.next_attempt) from alert_deliveries d where d.alert_id = alerts.id "
        "and d.delivered is null and alerts.delivered is null) as next_attempt, last_error "
        f"from alerts {where} order by id desc limit :limit"
    )
    return execute(db, sql, {"limit": limit})


_STATUS_SQL = """select
  (select count(*) from feeds) as feeds,
  (select count(*) from feeds where consecutive_errors > 0 and not retired) as feeds_failing,
  (select count(*) from feeds where retired) as feeds_retired,
  (select count(*) from articles) as articles,
  (select count(*) from incidents) as incidents,
  (select count(*) from alerts) as alerts,
  (select count(*) from alerts where delivered is null) as alerts_pending,
  (select max(last_checked) from feeds) as last_poll"""


def store_status(db: Database) -> dict[str, Any]:
    """Counts for a one-screen health view: feeds (failing, retired), articles, incidents, alerts."""
    return execute(db, _STATUS_SQL).rows[0]


@dataclass(frozen=True, slots=True)
class Health:
    """What the health check (`status --check`) decided, and one line that says why."""

    healthy: bool
    reason: str


_CONFIGURED_FEEDS_SQL = """select name, configured_url, last_ok, consecutive_errors, retired, last_error
from feeds where configured_url in (select value from json_each(:urls))"""

_FAILING_DELIVERIES_SQL = """select count(*) as alerts, min(created) as oldest,
  (select last_error from alerts where delivered is null and last_error is not null and created <= :cutoff
   order by id desc limit 1) as last_error
from alerts where delivered is null and last_error is not null and created <= :cutoff"""


def check_health(
    db: Database, feeds: Sequence[tuple[str, str]], now: datetime, delivery_failing_after: float
) -> Health:
    """Healthy when at least one configured feed is, and no delivery has been failing for longer than
    `delivery_failing_after` seconds (an undelivered alert with an error, created before then).

    `feeds` are the (name, URL) of the config's enabled feeds: only they count, since a feed removed from
    the config keeps its row and the health it last had (issue 11). A feed is healthy when its last poll
    succeeded; one never polled is not yet.
    """
    reasons: list[str] = []
    healthy: list[str] = []
    if not feeds:
        reasons.append("no feeds configured (or all disabled): add one under `feeds:` in the config")
    else:
        rows = execute(db, _CONFIGURED_FEEDS_SQL, {"urls": json.dumps([url for _, url in feeds])}).rows
        by_url = {row["configured_url"]: row for row in rows}
        healthy = [url for _, url in feeds if _is_feed_healthy(by_url.get(url))]
        if not healthy:
            states = [f"{name}: {_feed_trouble(by_url.get(url))}" for name, url in feeds]
            more = f"; and {len(states) - 3} more" if len(states) > 3 else ""
            reasons.append("no configured feed is healthy (" + "; ".join(states[:3]) + more + ")")
    cutoff = _iso(now - timedelta(seconds=delivery_failing_after))
    failing = execute(db, _FAILING_DELIVERIES_SQL, {"cutoff": cutoff}).rows[0]
    if failing["alerts"]:
        plural = "alert" if failing["alerts"] == 1 else "alerts"
        reasons.append(
            f"{failing['alerts']} {plural} not delivered for more than {_duration_text(delivery_failing_after)} "
            f"(the oldest created {failing['oldest']}; last error {failing['last_error']})"
        )
    if reasons:
        return Health(False, "; ".join(reasons))
    pending = execute(db, "select count(*) as n from alerts where delivered is null").rows[0]["n"]
    return Health(True, f"{len(healthy)} of {len(feeds)} configured feeds healthy, {pending} alerts pending")


def _is_feed_healthy(row: dict[str, Any] | None) -> bool:
    return (
        row is not None
        and not row["retired"]
        and not row["consecutive_errors"]
        and row["last_ok"] is not None
    )


def _feed_trouble(row: dict[str, Any] | None) -> str:
    """What is wrong with a configured feed, in a few words."""
    if row is None or (row["last_ok"] is None and not row["consecutive_errors"]):
        return "not polled yet"
    if row["retired"]:
        return f"retired ({row['last_error']})"
    return f"{row['consecutive_errors']} failed polls in a row, last: {row['last_error']}"


def _duration_text(seconds: float) -> str:
    """`30m`, `2h`, `1d`, `90s`: a duration as the config writes it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def list_incidents(db: Database, limit: int = 50) -> QueryResult:
    """Incidents, latest first: type, place, status, reports, independent sources, alerts."""
    sql = """select i.id, i.incident_type, i.place, i.status, i.first_published, i.last_published, i.articles,
                    i.sources, (select count(*) from alerts a where a.incident_id = i.id) as alerts, i.title
             from incidents i order by i.last_published desc, i.id desc limit :limit"""
    return execute(db, sql, {"limit": limit})


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """One incident with its reports, its claims side by side, and its alerts."""

    incident: dict[str, Any]
    reports: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


def incident_detail(db: Database, incident_id: int) -> IncidentDetail | None:
    """Everything about one incident, or None when there is no such incident."""
    params = {"id": incident_id}
    head = execute(db, "select * from incidents where id = :id", params).rows
    if not head:
        return None
    reports = execute(
        db,
        "select published, source, title, url, version, duplicate_of from articles "
        "where incident_id = :id order by published, id",
        params,
    ).rows
    claims = execute(
        db,
        "select c.published, c.source, c.type, c.measure, c.value, c.source_key as said_by, c.quote, c.url "
        "from claims c where c.incident_id = :id order by c.type, c.measure, c.published, c.id",
        params,
    ).rows
    alerts = execute(
        db,
        "select id, kind, created, summary, delivered, ts from alerts where incident_id = :id order by id",
        params,
    ).rows
    return IncidentDetail(head[0], reports, claims, alerts)
