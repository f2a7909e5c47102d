"""The `feeds` table: each configured feed's poll state (validators, errors, backoff)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from bot.models import FeedState
from bot.store.db import from_iso, insert_row, iso


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """A feed's record after a poll: what a feed-failing notice needs."""

    id: int
    name: str
    url: str
    consecutive_errors: int
    failing_notified: bool
    last_error: str | None
    last_ok: str | None


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
) -> FeedHealth:
    """Store a feed's state after a poll; returns its health as stored.

    The new ETag/Last-Modified in `state` are stored as given: a caller that must not trust them yet
    (entries still to process) passes the old ones and stores the new with `save_validators` later."""
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
    row = db.table("feeds").get(feed_id)
    return FeedHealth(
        feed_id, row["name"], row["url"], row["consecutive_errors"] or 0, bool(row["failing_notified"]),
        row["last_error"], row["last_ok"],
    )  # fmt: skip


def save_validators(db: Database, feed_id: int, etag: str | None, last_modified: str | None) -> None:
    """Store the ETag and Last-Modified of a poll whose every entry was processed (crash safety)."""
    db.execute("update feeds set etag = ?, last_modified = ? where id = ?", [etag, last_modified, feed_id])


def mark_failing_notified(db: Database, feed_id: int) -> None:
    """Record that the feed's feed-failing notice is queued (re-armed by the next success)."""
    db.execute("update feeds set failing_notified = 1 where id = ?", [feed_id])


def record_feed_error(db: Database, feed_id: int, message: str) -> None:
    """A poll that fetched the feed but could not store its entries: the feed counts as failing (until its
    next complete poll) and says why."""
    db.execute(
        "update feeds set last_error = ?, consecutive_errors = consecutive_errors + 1, "
        "total_errors = total_errors + 1 where id = ?",
        [message[:500], feed_id],
    )
