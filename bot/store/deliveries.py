"""Delivery records: `alert_deliveries` (one row per alert and channel), and Slack's `slack_threads` and
`slack_channels`.

The outbox marks a delivery in flight before it sends and records the outcome after; a delivery row is a
plain dict, and the functions that change one update the caller's dict as well as the table, so the
outbox's copy stays current without reading it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.store.db import from_iso, insert_many, iso, rows, transaction

#: A delivery row by (alert id, channel).
Deliveries = dict[tuple[int, str], dict[str, Any]]


def load_deliveries(
    db: Database, alerts: Sequence[Mapping[str, Any]], routes: Mapping[int, Sequence[str]]
) -> Deliveries:
    """The delivery rows of these alerts in their routed channels, creating the missing ones.

    A new row inherits the alert's own `sending_since`: an alert left in flight by an older worker is
    looked up before it is sent again.
    """
    ids = [a["id"] for a in alerts]
    marks = ",".join("?" * len(ids))
    found = {
        (r["alert_id"], r["channel"]): r
        for r in rows(db, f"select * from alert_deliveries where alert_id in ({marks})", ids)
    }
    new = []
    for alert in alerts:
        for channel in routes[alert["id"]]:
            if (alert["id"], channel) not in found:
                row = {"alert_id": alert["id"], "channel": channel, "ts": None, "delivered": None,
                       "attempts": 0, "last_error": None, "sending_since": alert["sending_since"],
                       "next_attempt": None}  # fmt: skip
                found[(alert["id"], channel)] = row
                new.append(row)
    insert_many(db, "alert_deliveries", new, ignore=True)
    return found


def load_alert_deliveries(db: Database, alert_id: int) -> dict[str, dict[str, Any]]:
    """One alert's delivery rows, by channel."""
    return {
        r["channel"]: r for r in rows(db, "select * from alert_deliveries where alert_id = ?", [alert_id])
    }


def last_delivered(db: Database, incident_id: int, channel: str) -> datetime | None:
    """When the incident's last message went to `channel`."""
    row = db.execute(
        """select max(d.delivered) from alert_deliveries d join alerts a on a.id = d.alert_id
           where a.incident_id = ? and d.channel = ? and d.delivered is not null""",
        [incident_id, channel],
    ).fetchone()
    return from_iso(row[0]) if row else None


def mark_in_flight(db: Database, deliveries: Sequence[dict[str, Any]], now: datetime) -> None:
    """Record (and commit) that these deliveries are being sent, before sending them."""
    with transaction(db):
        for row in deliveries:
            row.update(sending_since=iso(now), attempts=(row["attempts"] or 0) + 1)
            update = {"sending_since": row["sending_since"], "attempts": row["attempts"]}
            db.table("alert_deliveries").update((row["alert_id"], row["channel"]), update)
            db.execute(
                "update alerts set attempts = coalesce(attempts, 0) + 1, sending_since = ? where id = ?",
                [iso(now), row["alert_id"]],
            )


def record_sent(db: Database, deliveries: Sequence[dict[str, Any]], ts: str | None, now: datetime) -> None:
    """Record that these deliveries reached their channel as message `ts`."""
    update = {
        "ts": ts,
        "delivered": iso(now),
        "sending_since": None,
        "last_error": None,
        "next_attempt": None,
    }
    with transaction(db):
        for row in deliveries:
            row.update(update)
            db.table("alert_deliveries").update((row["alert_id"], row["channel"]), update)


def record_failure(
    db: Database,
    deliveries: Sequence[dict[str, Any]],
    error: str,
    retry_at: Sequence[datetime],
    in_flight: bool,
) -> None:
    """Record a failed try of each delivery and when to try it next; `in_flight`: it may have arrived."""
    with transaction(db):
        for row, when in zip(deliveries, retry_at, strict=True):
            update = {"last_error": error, "next_attempt": iso(when),
                      "sending_since": row["sending_since"] if in_flight else None}  # fmt: skip
            row.update(update)
            db.table("alert_deliveries").update((row["alert_id"], row["channel"]), update)
            db.table("alerts").update(row["alert_id"], {"last_error": f"{row['channel']}: {error}",
                                                        "sending_since": update["sending_since"]})  # fmt: skip


def first_alert_of_message(db: Database, channel: str, ts: str) -> dict[str, Any] | None:
    """The alert row (lowest id) that message `ts` in `channel` was sent for."""
    sql = """select a.* from alert_deliveries d join alerts a on a.id = d.alert_id
             where d.channel = ? and d.ts = ? order by a.id limit 1"""
    return next(rows(db, sql, [channel, ts]), None)


def tally_alerts(db: Database, incident_id: int) -> tuple[int, str | None]:
    """How many alerts an incident has, and the summary of its latest one."""
    count, latest = db.execute(
        "select count(*), (select summary from alerts where incident_id = ? order by id desc limit 1) "
        "from alerts where incident_id = ?",
        [incident_id, incident_id],
    ).fetchone()
    return int(count), latest


def thread_ts(db: Database, incident_id: int, channel: str) -> str | None:
    """The ts of the Slack message that opens the incident's thread in `channel`."""
    row = db.execute(
        "select ts from slack_threads where incident_id = ? and channel = ?", [incident_id, channel]
    ).fetchone()
    return str(row[0]) if row else None


def save_thread(db: Database, incident_id: int, channel: str, ts: str) -> None:
    """Remember message `ts` as the opening of the incident's thread in `channel`."""
    db.table("slack_threads").insert({"incident_id": incident_id, "channel": channel, "ts": ts}, replace=True)


def forget_thread(db: Database, incident_id: int, channel: str) -> None:
    """Forget the incident's thread in `channel` (its parent message was deleted)."""
    db.execute("delete from slack_threads where incident_id = ? and channel = ?", [incident_id, channel])


def channel_id(db: Database, name: str) -> str | None:
    """The remembered Slack id of channel `name`."""
    row = db.execute("select id from slack_channels where name = ?", [name]).fetchone()
    return str(row[0]) if row else None


def save_channel_id(db: Database, name: str, channel_id: str) -> None:
    """Remember the Slack id of channel `name`."""
    db.table("slack_channels").insert({"name": name, "id": channel_id}, replace=True)
