"""Opening the store, transactions, and the conversions every table family shares (times, rows).

The file stays a plain SQLite database that `sqlite-utils` and `datasette` open as they are. Writes that
belong together (an article, its claims, its alerts) are committed in one transaction by the caller.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from bot.errors import StoreError
from bot.models import iso_utc
from bot.store.schema import migrations

BUSY_TIMEOUT_MS = 15_000


def iso(when: datetime | None) -> str | None:
    """ISO 8601 text in UTC for a stored time (None stays None)."""
    return None if when is None else iso_utc(when)


def from_iso(text: str | None) -> datetime | None:
    """A stored time back as an aware datetime."""
    if not text:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


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


def _is_behind(path: Path) -> bool:
    """True when the store at `path` lacks a migration this borderwatch knows."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000) as conn:
            found = conn.execute(
                "select count(*) from sqlite_master where type = 'table' and name = '_sqlite_migrations'"
            ).fetchone()[0]
            applied = (
                {row[0] for row in conn.execute("select name from _sqlite_migrations")} if found else set()
            )
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable SQLite database: {exc}") from None
    return bool({m.name for m in migrations._migrations} - applied)


def checkpoint(db: Database) -> None:
    """Copy the write-ahead log into the database file where no reader needs it (keeps the log small)."""
    db.execute("pragma wal_checkpoint(passive)")


def open_readonly(path: Path | str) -> Database:
    """Open the store read-only at the SQLite level (`mode=ro`): writes fail whatever the SQL says."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such database (run `borderwatch poll --once` or `ingest` first)")
    if _is_behind(path):
        # A store made by an older borderwatch: read commands expect today's columns, so bring it up to
        # date first (a short write), as the next poll would.
        open_db(path).conn.close()
    conn = sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    conn.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
    return Database(conn)


def transaction(db: Database) -> AbstractContextManager[Database]:
    """Everything inside commits at once, or not at all (nested blocks use savepoints)."""
    return db.atomic()


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


def rows(db: Database, sql: str, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
    """Rows of a query as dicts."""
    cursor = db.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))
