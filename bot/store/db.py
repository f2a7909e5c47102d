"""Opening the store, transactions, and the conversions every table family shares (times, rows).

The file stays a plain SQLite database that `sqlite-utils` and `datasette` open as they are. Writes that
belong together (an article, its claims, its alerts) are committed in one transaction by the caller.

A store that cannot be used is one StoreError naming the file and what to do, at this edge (issue 11):
not a SQLite file or a damaged one (StoreDamagedError), a folder or lock this user cannot write, or a
directory (StoreAccessError), another process's write lock held past the wait (StoreBusyError). A write
transaction takes the write lock when it begins and waits for it at most `$BORDERWATCH_BUSY_TIMEOUT`
seconds (default 15), saying so when it has to wait.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlite_utils import Database

from bot.errors import (
    ConfigError,
    StoreAccessError,
    StoreBusyError,
    StoreDamagedError,
    StoreError,
    StoreFullError,
    StoreWriteError,
)
from bot.models import iso_utc
from bot.store.schema import migrations

BUSY_TIMEOUT_MS = 15_000
#: Seconds a write waits for another process's write lock (a float; 0 waits not at all).
BUSY_TIMEOUT_ENV = "BORDERWATCH_BUSY_TIMEOUT"
DAMAGED_HINT = "restore it from a backup or move it aside; borderwatch creates a new store at that path"
logger = logging.getLogger("borderwatch")


def make_store_folder(path: Path) -> None:
    """Create the folder the store at `path` lives in; one StoreAccessError line when that cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreAccessError(
            f"{path.parent}: cannot create the store's folder ({exc.strerror}): create it, or pass --db "
            "a path in a writable folder"
        ) from None


def busy_timeout() -> float:
    """Seconds a write waits for the write lock another process holds: `$BORDERWATCH_BUSY_TIMEOUT`, else 15."""
    text = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    if not text:
        return BUSY_TIMEOUT_MS / 1000
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigError(f"{BUSY_TIMEOUT_ENV}={text!r}: not a number of seconds (e.g. 15 or 0.5)")
    return seconds


def iso(when: datetime | None) -> str | None:
    """ISO 8601 text in UTC for a stored time (None stays None)."""
    return None if when is None else iso_utc(when)


def from_iso(text: str | None) -> datetime | None:
    """A stored time back as an aware datetime."""
    if not text:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _write_error(path: Path | str, exc: sqlite3.Error) -> StoreWriteError | None:
    """The StoreWriteError for an SQLite error that says the disk refused a write, else None.

    SQLITE_FULL is a full disk (or the page limit); SQLITE_IOERR a write the system refused, such as a
    file-size limit or a quota (SQLite reports those as I/O errors, not as full). Decided on SQLite's
    error code, never on the message's text.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    if code & 0xFF == sqlite3.SQLITE_FULL:
        return StoreFullError(
            f"{path}: the disk is full ({exc}): free some space and poll again; "
            "the entries not stored yet come back then"
        )
    if code & 0xFF == sqlite3.SQLITE_IOERR:
        return StoreWriteError(
            f"{path}: cannot write ({exc}, {getattr(exc, 'sqlite_errorname', code)}): check the disk's free "
            "space, quota and file-size limit, then poll again; the entries not stored yet come back then"
        )
    return None


def _unusable_error(path: Path | str, exc: sqlite3.Error, writing: bool = True) -> StoreError | None:
    """The StoreError for an SQLite error that says the store cannot be used as it is, else None.

    Not a database or damaged pages (SQLITE_NOTADB, SQLITE_CORRUPT); a file or folder this user cannot
    open or write (SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY: on a read-only connection, `writing`
    False, a refused write is the user's own statement, not the store's state); another process's write
    lock held past the wait (SQLITE_BUSY). Decided on SQLite's error code, never on the message's text.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    primary = code & 0xFF
    if primary == sqlite3.SQLITE_NOTADB:
        return StoreDamagedError(f"{path}: not a SQLite database ({exc}): {DAMAGED_HINT}")
    if primary == sqlite3.SQLITE_CORRUPT:
        return StoreDamagedError(f"{path}: the store is damaged ({exc}): {DAMAGED_HINT}")
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM) or (
        writing and primary == sqlite3.SQLITE_READONLY
    ):
        return StoreAccessError(
            f"{path}: cannot open or write the store ({exc}): make {Path(path).parent} and the store's "
            "files in it writable for this user, or pass --db a path in a writable folder"
        )
    if writing and primary == sqlite3.SQLITE_BUSY:
        return StoreBusyError(
            f"{path}: another process held the store's write lock for more than {busy_timeout():g}s "
            f"({BUSY_TIMEOUT_ENV}); this write was not made: run the command again once that process is "
            f"done, or set {BUSY_TIMEOUT_ENV} higher"
        )
    return None


@contextmanager
def _writes_to(path: str) -> Iterator[None]:
    """Turn an SQLite error that says the disk refused a write, or that the store cannot be used, into a
    StoreError naming the store."""
    try:
        yield
    except sqlite3.Error as exc:
        error = _write_error(path, exc) or _unusable_error(path, exc)
        if error is None:
            raise
        raise error from exc


class _StoreConnection(sqlite3.Connection):
    """The store's connection: every statement, whichever module (or sqlite-utils) sends it, raises a
    StoreWriteError when the disk refuses the write (issue 11: a full disk stops the poll with one line),
    and another StoreError when the store is damaged, cannot be written or stays locked (`_unusable_error`).

    A plain BEGIN (sqlite-utils' `atomic()`, the migrations) is sent as BEGIN IMMEDIATE: a deferred
    transaction that reads before it writes fails at once, without waiting, when another process writes
    meanwhile (SQLite does not wait to turn a reader into a writer), as `transaction` explains.
    """

    path = ""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql.strip().upper() == "BEGIN":
            sql = "BEGIN IMMEDIATE"
        with _writes_to(self.path):
            return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        with _writes_to(self.path):
            return super().executemany(sql, parameters)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        with _writes_to(self.path):
            return super().executescript(script)


def _connect(path: Path) -> sqlite3.Connection:
    wait = busy_timeout()
    conn = sqlite3.connect(
        str(path),
        timeout=wait,
        isolation_level=None,
        check_same_thread=False,
        factory=_StoreConnection,
    )
    conn.path = str(path)
    conn.execute(f"pragma busy_timeout = {round(wait * 1000)}")
    return conn


def _check_not_directory(path: Path) -> None:
    """A directory where the store should be: say so, before SQLite calls it a disk I/O error."""
    if path.is_dir():
        raise StoreAccessError(
            f"{path}: is a directory, not a store file: pass --db the path of a file "
            f"(e.g. {path / 'borderwatch.db'}) or move the directory aside"
        )


def _not_usable(path: Path, exc: sqlite3.Error, writing: bool) -> StoreError:
    return _unusable_error(path, exc, writing) or StoreError(f"{path}: not a usable SQLite database: {exc}")


def open_db(path: Path | str) -> Database:
    """Open (creating if needed) the store at `path`, in WAL mode, migrated to the current schema.

    An empty file is a new store: SQLite reads a zero-byte file as a database without tables, and it
    holds nothing to lose (`touch` or a fresh bind mount leaves one). Anything else that cannot be used
    is a StoreError that names the file and what to do.
    """
    path = Path(path)
    _check_not_directory(path)
    make_store_folder(path)
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(path)
        db = Database(conn)
        db.execute("pragma journal_mode = wal")
        db.execute("pragma synchronous = normal")
        db.execute("pragma wal_autocheckpoint = 1000")
        known = {m.name for m in migrations._migrations}
        applied = [m.name for m in migrations.applied(db)]
        unknown = [name for name in applied if name not in known]
        if unknown:
            raise StoreError(
                f"{path}: made by a newer borderwatch (migration {unknown[0]}); upgrade borderwatch"
            )
        if known - set(applied):
            # One transaction for every pending migration: two processes that open an older (or an empty)
            # store at once must not both apply the same migration.
            with transaction(db):
                migrations.apply(db)
    except (sqlite3.Error, StoreError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, StoreError):
            raise
        raise _not_usable(path, exc, writing=True) from None
    return db


def _open_ro(uri: str) -> sqlite3.Connection:
    return sqlite3.connect(uri, uri=True, timeout=busy_timeout(), check_same_thread=False)


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A `mode=ro` connection that has made its first read (SQLite opens the WAL index only then).

    Reading a store in WAL mode needs its WAL index (`-shm`) beside it, which SQLite cannot create in a
    folder this user cannot write. When no write-ahead log is there either, every committed row is in
    the file itself and nobody can be writing it (a writer needs the folder too), so the file is read as
    immutable instead: the read commands work in a read-only folder.
    """
    uri = f"file:{quote(str(path))}?mode=ro"
    conn = _open_ro(uri)
    try:
        conn.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        conn.close()
        log = path.with_name(path.name + "-wal")
        code = getattr(exc, "sqlite_errorcode", None)
        cannot_share = code in (sqlite3.SQLITE_READONLY_DIRECTORY, sqlite3.SQLITE_CANTOPEN)
        if not cannot_share or os.access(path.parent, os.W_OK) or (log.exists() and log.stat().st_size):
            raise
        conn = _open_ro(uri + "&immutable=1")
    return conn


def _is_behind(conn: sqlite3.Connection) -> bool:
    """True when the store lacks a migration this borderwatch knows."""
    found = conn.execute(
        "select count(*) from sqlite_master where type = 'table' and name = '_sqlite_migrations'"
    ).fetchone()[0]
    applied = {row[0] for row in conn.execute("select name from _sqlite_migrations")} if found else set()
    return bool({m.name for m in migrations._migrations} - applied)


def checkpoint(db: Database) -> None:
    """Copy the write-ahead log into the database file where no reader needs it (keeps the log small)."""
    db.execute("pragma wal_checkpoint(passive)")


def open_readonly(path: Path | str) -> Database:
    """Open the store read-only at the SQLite level (`mode=ro`): writes fail whatever the SQL says."""
    path = Path(path)
    _check_not_directory(path)
    if not path.exists():
        raise StoreError(f"{path}: no such database (run `borderwatch poll --once` or `ingest` first)")
    try:
        conn = _connect_readonly(path)
    except sqlite3.Error as exc:
        raise _not_usable(path, exc, writing=False) from None
    try:
        behind = _is_behind(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise _not_usable(path, exc, writing=False) from None
    if behind:
        # A store made by an older borderwatch: read commands expect today's columns, so bring it up to
        # date first (a short write), as the next poll would.
        conn.close()
        open_db(path).conn.close()
        try:
            conn = _connect_readonly(path)
        except sqlite3.Error as exc:
            raise _not_usable(path, exc, writing=False) from None
    return Database(conn)


@contextmanager
def reading(path: Path | str) -> Iterator[Database]:
    """The store opened read-only for the block and closed afterwards. A damaged page is met by the first
    query that reads it, not when the file opens: an SQLite error in the block that says the store is
    damaged or cannot be read becomes a StoreError naming the file."""
    db = open_readonly(path)
    try:
        yield db
    except sqlite3.Error as exc:
        error = _unusable_error(path, exc, writing=False)
        if error is None:
            raise
        raise error from None
    finally:
        db.close()


def read_error(conn: sqlite3.Connection, exc: sqlite3.Error) -> StoreError | None:
    """The StoreError, naming the file, for an error a read met because the store is damaged or cannot be
    read; None when the error is the query's own (bad SQL, a write on a read-only connection)."""
    try:
        path = str(conn.execute("pragma database_list").fetchone()[2]) or "the store"
    except sqlite3.Error:
        path = "the store"
    return _unusable_error(path, exc, writing=False)


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """Everything inside commits at once, or not at all (nested blocks use savepoints).

    The outermost block takes the write lock as it begins (BEGIN IMMEDIATE), waiting for another
    process's write at most `busy_timeout()` seconds. A transaction that reads before it writes (an FTS
    trigger does) cannot wait later: SQLite refuses at once to turn a reader into a writer while another
    process writes, which was `ingest`'s immediate "database is locked" while `run` wrote (issue 11).
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    _begin_immediate(db)
    try:
        yield db
    except BaseException:
        _rollback_quietly(db)
        raise
    try:
        db.conn.execute("commit")
    except BaseException:
        _rollback_quietly(db)
        raise


def _rollback_quietly(db: Database) -> None:
    """Roll back what is open, keeping the error that made us roll back (not one of the rollback)."""
    try:
        db.rollback()
    except (sqlite3.Error, StoreError):
        pass


def _begin_immediate(db: Database) -> None:
    """BEGIN IMMEDIATE; when another process holds the write lock, say so once, then wait for it (bounded)."""
    conn = db.conn
    wait_ms = round(busy_timeout() * 1000)
    conn.execute("pragma busy_timeout = 0")
    try:
        conn.execute("begin immediate")
        return
    except (StoreBusyError, sqlite3.OperationalError) as exc:
        busy = (
            isinstance(exc, StoreBusyError)
            or getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
        )
        if not busy or not wait_ms:
            raise
    finally:
        conn.execute(f"pragma busy_timeout = {wait_ms}")
    path = getattr(conn, "path", "") or "the store"
    logger.info(
        "%s: another process is writing to the store; waiting up to %gs for it (%s)",
        path, wait_ms / 1000, BUSY_TIMEOUT_ENV,
    )  # fmt: skip
    conn.execute("begin immediate")


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
