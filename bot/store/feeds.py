"""The `feeds` table: each configured feed's poll state (validators, errors, backoff)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.models import FeedState
from bot.store.db import from_iso, insert_row, iso


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
