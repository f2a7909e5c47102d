"""The SQLite store (sqlite-utils): schema migrations, feeds' poll state, articles, incidents, claims, alerts.

The file stays a plain SQLite database that `sqlite-utils` and `datasette` open as they are. Writes that
belong together (an article, its claims, its alerts) are committed in one transaction by the caller.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from bot.fingerprint import band_keys, is_near_duplicate
from bot.models import AlertDraft, FeedState

migrations = Migrations("borderwatch")
BUSY_TIMEOUT_MS = 15_000


class StoreError(Exception):
    """A store that cannot be used (newer schema, unreadable file)."""


def iso(when: datetime | None) -> str | None:
    """ISO 8601 text in UTC for a stored time."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    """A stored time back as an aware datetime."""
    if not text:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@migrations()
def m001_initial(db: Database) -> None:
    """Feeds, articles (+ versions, LSH bands, full-text search), incidents, claims, alerts."""
    db.table("feeds").create(
        {
            "id": int,
            "name": str,
            "configured_url": str,
            "url": str,
            "etag": str,
            "last_modified": str,
            "last_checked": str,
            "last_ok": str,
            "last_status": int,
            "last_error": str,
            "consecutive_errors": int,
            "total_errors": int,
            "polls": int,
            "not_modified": int,
            "next_poll": str,
            "retired": int,
            "failing_notified": int,
            "entries_seen": int,
        },
        pk="id",
        not_null={"configured_url", "url"},
        defaults={
            "consecutive_errors": 0,
            "total_errors": 0,
            "polls": 0,
            "not_modified": 0,
            "retired": 0,
            "failing_notified": 0,
            "entries_seen": 0,
        },
    )
    db.table("feeds").create_index(["configured_url"], unique=True)
    db.table("articles").create(
        {
            "id": int,
            "url": str,
            "canonical_url": str,
            "guid": str,
            "feed_id": int,
            "source": str,
            "title": str,
            "published": str,
            "fetched": str,
            "updated": str,
            "text": str,
            "text_hash": str,
            "signature": bytes,
            "duplicate_of": int,
            "incident_id": int,
            "on_topic": int,
            "in_scope": int,
            "version": int,
            "summary_only": int,
            "entry_hash": str,
        },
        pk="id",
        not_null={"url", "canonical_url"},
        defaults={"version": 1, "on_topic": 1, "in_scope": 0, "summary_only": 0},
    )
    db.table("articles").create_index(["canonical_url"], unique=True)
    db.table("articles").create_index(["guid"])
    db.table("articles").create_index(["text_hash"])
    db.table("articles").create_index(["incident_id"])
    db.table("articles").create_index(["published"])
    db.table("articles").enable_fts(["title", "text"], create_triggers=True, tokenize="porter")
    db.table("article_versions").create(
        {
            "id": int,
            "article_id": int,
            "version": int,
            "title": str,
            "text": str,
            "text_hash": str,
            "fetched": str,
        },
        pk="id",
        foreign_keys=[("article_id", "articles", "id")],
    )
    db.table("article_versions").create_index(["article_id", "version"], unique=True)
    db.table("article_bands").create({"band_key": int, "article_id": int}, pk=("band_key", "article_id"))
    db.table("incidents").create(
        {
            "id": int,
            "title": str,
            "event": str,
            "status": str,
            "place": str,
            "place_id": str,
            "latitude": float,
            "longitude": float,
            "first_seen": str,
            "last_seen": str,
            "first_published": str,
            "last_published": str,
            "articles": int,
            "sources": int,
            "summary": str,
            "signature": str,
        },
        pk="id",
        defaults={"articles": 0, "sources": 0},
    )
    db.table("incidents").create_index(["last_published"])
    db.table("incident_keys").create({"key": str, "incident_id": int}, pk=("key", "incident_id"))
    db.table("claims").create(
        {
            "id": int,
            "incident_id": int,
            "article_id": int,
            "version": int,
            "type": str,
            "measure": str,
            "value": str,
            "low": float,
            "high": float,
            "actor": str,
            "stance": str,
            "event": str,
            "place_id": str,
            "role": str,
            "quote": str,
            "start": int,
            "end": int,
            "source": str,
            "source_key": str,
            "url": str,
            "published": str,
            "seen": str,
            "detail": str,
        },
        pk="id",
        foreign_keys=[("article_id", "articles", "id"), ("incident_id", "incidents", "id")],
    )
    db.table("claims").create_index(["incident_id", "type", "measure"])
    db.table("claims").create_index(["article_id"])
    db.table("alerts").create(
        {
            "id": int,
            "kind": str,
            "incident_id": int,
            "summary": str,
            "evidence": str,
            "details": str,
            "dedupe_key": str,
            "created": str,
            "delivered": str,
            "channel": str,
            "ts": str,
            "attempts": int,
            "last_error": str,
            "sending_since": str,
        },
        pk="id",
        not_null={"kind", "summary", "evidence", "dedupe_key", "created"},
        defaults={"attempts": 0},
    )
    db.table("alerts").create_index(["dedupe_key"], unique=True)
    db.table("alerts").create_index(["delivered"])
    db.table("alerts").create_index(["incident_id"])
    db.table("slack_threads").create(
        {"incident_id": int, "channel": str, "ts": str}, pk=("incident_id", "channel")
    )
    db.table("meta").create({"key": str, "value": str}, pk="key")


@migrations()
def m003_alerts_created_index(db: Database) -> None:
    """`changes --since` reads alerts by creation time: index it."""
    db.table("alerts").create_index(["created"], if_not_exists=True)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def open_db(path: Path | str) -> Database:
    """Open (creating if needed) the store at `path`, in WAL mode, migrated to the current schema."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = Database(_connect(path))
        db.execute("pragma journal_mode = wal")
        db.execute("pragma synchronous = normal")
        db.execute("pragma wal_autocheckpoint = 1000")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable SQLite database: {exc}") from None
    known = {m.name for m in migrations._migrations}
    unknown = [m.name for m in migrations.applied(db) if m.name not in known]
    if unknown:
        raise StoreError(f"{path}: made by a newer borderwatch (migration {unknown[0]}); upgrade borderwatch")
    migrations.apply(db)
    return db


def open_readonly(path: Path | str) -> Database:
    """Open the store read-only at the SQLite level (`mode=ro`): writes fail whatever the SQL says."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such database (run `borderwatch poll --once` or `ingest` first)")
    conn = sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    conn.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
    return Database(conn)


def transaction(db: Database) -> AbstractContextManager[Database]:
    """Everything inside commits at once, or not at all (nested blocks use savepoints)."""
    return db.atomic()


# --- feeds -------------------------------------------------------------------------------------------


def load_feed_state(db: Database, name: str, configured_url: str) -> tuple[int, FeedState]:
    """The stored state of a configured feed (creating its row the first time)."""
    row = next(db.table("feeds").rows_where("configured_url = ?", [configured_url]), None)
    if row is None:
        feed_id = insert_row(
            db, "feeds", {"name": name, "configured_url": configured_url, "url": configured_url}
        )
        return feed_id, FeedState(url=configured_url)
    if row["name"] != name:
        db.table("feeds").update(row["id"], {"name": name})
    state = FeedState(
        url=row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        consecutive_errors=row["consecutive_errors"] or 0,
        next_poll=from_iso(row["next_poll"]),
        retired=bool(row["retired"]),
        last_error=row["last_error"],
    )
    return int(row["id"]), state


def save_feed_state(
    db: Database,
    feed_id: int,
    state: FeedState,
    now: datetime,
    status: int | None,
    entries: int,
    not_modified: bool,
) -> dict[str, Any]:
    """Store a feed's state after a poll; returns the updated row."""
    row = db.table("feeds").get(feed_id)
    failed = state.last_error is not None and not state.retired
    update = {
        "url": state.url,
        "etag": state.etag,
        "last_modified": state.last_modified,
        "last_checked": iso(now),
        "last_status": status,
        "last_error": state.last_error,
        "consecutive_errors": state.consecutive_errors,
        "total_errors": (row["total_errors"] or 0) + (1 if failed else 0),
        "polls": (row["polls"] or 0) + 1,
        "not_modified": (row["not_modified"] or 0) + (1 if not_modified else 0),
        "next_poll": iso(state.next_poll),
        "retired": int(state.retired),
        "entries_seen": (row["entries_seen"] or 0) + entries,
    }
    if not failed:
        update["last_ok"] = iso(now)
        update["failing_notified"] = 0
    db.table("feeds").update(feed_id, update)
    return dict(db.table("feeds").get(feed_id))


# --- articles ----------------------------------------------------------------------------------------


def insert_many(db: Database, table: str, records: list[dict[str, Any]], ignore: bool = True) -> None:
    """Insert rows that all have the same keys, in one statement (the hot path: no table introspection)."""
    if not records:
        return
    columns = list(records[0])
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    verb = "insert or ignore" if ignore else "insert"
    db.conn.executemany(
        f'{verb} into "{table}" ({names}) values ({marks})', [[r[c] for c in columns] for r in records]
    )


def insert_row(db: Database, table: str, record: dict[str, Any]) -> int:
    """Insert one row and return its integer primary key."""
    pk = db.table(table).insert(record).last_pk
    if pk is None:
        raise StoreError(f"insert into {table} returned no id")
    return int(pk)


def find_article(
    db: Database, canonical: str, guid: str | None, feed_id: int | None
) -> dict[str, Any] | None:
    """The stored article with this canonical URL, else with this GUID from the same feed."""
    row = next(db.table("articles").rows_where("canonical_url = ?", [canonical], limit=1), None)
    if row is None and guid:
        where = "guid = ? and feed_id is ?" if feed_id is not None else "guid = ?"
        params: list[Any] = [guid, feed_id] if feed_id is not None else [guid]
        row = next(db.table("articles").rows_where(where, params, limit=1), None)
    return dict(row) if row else None


def find_near_duplicate(db: Database, signature: bytes | None, source: str) -> int | None:
    """The earliest stored article from another outlet whose text is a near-duplicate of `signature`."""
    if signature is None:
        return None
    keys = band_keys(signature)
    marks = ",".join("?" * len(keys))
    rows = db.execute(
        f"""select distinct a.id, a.signature, a.source, a.duplicate_of from article_bands b
            join articles a on a.id = b.article_id where b.band_key in ({marks}) order by a.id limit 50""",
        keys,
    ).fetchall()
    for article_id, other, other_source, duplicate_of in rows:
        if other_source != source and is_near_duplicate(signature, other):
            return int(duplicate_of or article_id)
    return None


def insert_article(db: Database, record: dict[str, Any]) -> int:
    """Store a new article (version 1) and its LSH bands; returns its id."""
    article_id = insert_row(db, "articles", record)
    db.table("article_versions").insert(
        {
            "article_id": article_id,
            "version": 1,
            "title": record["title"],
            "text": record["text"],
            "text_hash": record["text_hash"],
            "fetched": record["fetched"],
        }
    )
    if record.get("signature"):
        insert_many(
            db,
            "article_bands",
            [{"band_key": k, "article_id": article_id} for k in band_keys(record["signature"])],
        )
    return article_id


def add_article_version(
    db: Database, article: dict[str, Any], title: str, text: str, text_hash: str, now: datetime
) -> int:
    """Keep an edited text beside the old one; returns the new version number."""
    version = int(article["version"] or 1) + 1
    db.table("article_versions").insert(
        {
            "article_id": article["id"],
            "version": version,
            "title": title,
            "text": text,
            "text_hash": text_hash,
            "fetched": iso(now),
        }
    )
    db.table("articles").update(
        article["id"],
        {"title": title, "text": text, "text_hash": text_hash, "version": version, "updated": iso(now)},
    )
    return version


def set_article_incident(db: Database, article_id: int, incident_id: int | None, in_scope: bool) -> None:
    """Record which incident an article reports."""
    db.table("articles").update(article_id, {"incident_id": incident_id, "in_scope": int(in_scope)})


# --- alerts (the delivery outbox) --------------------------------------------------------------------


def record_alert(db: Database, draft: AlertDraft, now: datetime) -> int | None:
    """Queue an alert; a draft whose `dedupe_key` is already stored is ignored (returns None)."""
    existing = next(db.table("alerts").rows_where("dedupe_key = ?", [draft.dedupe_key], limit=1), None)
    if existing is not None:
        return None
    return insert_row(
        db,
        "alerts",
        {
            "kind": draft.kind,
            "incident_id": draft.incident_id,
            "summary": draft.summary,
            "evidence": json.dumps([e.as_dict() for e in draft.evidence], ensure_ascii=False),
            "details": json.dumps(draft.details, ensure_ascii=False, default=str),
            "dedupe_key": draft.dedupe_key,
            "created": iso(now),
        },
    )


def pending_alerts(db: Database, limit: int = 1000) -> list[dict[str, Any]]:
    """Undelivered alerts, oldest first."""
    return [dict(r) for r in db.table("alerts").rows_where("delivered is null", order_by="id", limit=limit)]


def mark_delivered(
    db: Database, alert_id: int, now: datetime, channel: str | None = None, ts: str | None = None
) -> None:
    """Record that an alert reached its destination."""
    db.table("alerts").update(
        alert_id,
        {"delivered": iso(now), "channel": channel, "ts": ts, "sending_since": None, "last_error": None},
    )


def rows(db: Database, sql: str, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
    """Rows of a query as dicts."""
    cursor = db.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


@migrations()
def m002_alert_deliveries(db: Database) -> None:
    """One delivery record per alert and channel (issue 4: an alert may go to several Slack channels),
    and Slack channel names resolved to ids (needed to look a message up after a crash)."""
    db.table("alert_deliveries").create(
        {
            "alert_id": int,
            "channel": str,
            "ts": str,
            "delivered": str,
            "attempts": int,
            "last_error": str,
            "sending_since": str,
            "next_attempt": str,
        },
        pk=("alert_id", "channel"),
        defaults={"attempts": 0},
    )
    db.table("alert_deliveries").create_index(["channel", "delivered"])
    db.table("slack_channels").create({"name": str, "id": str}, pk="name")
