"""Delivery records: `alert_deliveries` (one row per alert and channel), and Slack's `slack_threads` and
`slack_channels`.

The outbox marks a delivery in flight before it sends and records the outcome after; a delivery is a
mutable `Delivery`, and the functions that change one update the caller's record as well as the table, so
the outbox's copy stays current without reading it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.models import Alert
from bot.store.alerts import alert_from_row
from bot.store.db import from_iso, insert_many, iso, rows, transaction


@dataclass(slots=True)
class Delivery:
    """One alert's delivery to one channel (a row of `alert_deliveries`), as the outbox tracks it.

    `delivered` is when it reached the channel as message `ts`; `sending_since` when a send started that
    has no outcome yet (in flight); `next_attempt` when to try again after `attempts` tries.
    """

    alert_id: int
    channel: str
    ts: str | None = None
    delivered: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    sending_since: datetime | None = None
    next_attempt: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Delivery:
        """A row of `alert_deliveries` as a Delivery."""
        return cls(
            alert_id=row["alert_id"],
            channel=row["channel"],
            ts=row["ts"],
            delivered=from_iso(row["delivered"]),
            attempts=row["attempts"] or 0,
            last_error=row["last_error"],
            sending_since=from_iso(row["sending_since"]),
            next_attempt=from_iso(row["next_attempt"]),
        )

    def as_row(self) -> dict[str, Any]:
        """The row of `alert_deliveries`, times as stored text."""
        return {"alert_id": self.alert_id, "channel": self.channel, "ts": self.ts,
                "delivered": iso(self.delivered), "attempts": self.attempts, "last_error": self.last_error,
                "sending_since": iso(self.sending_since), "next_attempt": iso(self.next_attempt)}  # fmt: skip


#: A delivery by (alert id, channel).
Deliveries = dict[tuple[int, str], Delivery]


def load_deliveries(db: Database, alerts: Sequence[Alert], routes: Mapping[int, Sequence[str]]) -> Deliveries:
    """The deliveries of these alerts in their routed channels, creating the missing rows.

    A new row inherits the alert's own `sending_since`: an alert left in flight by an older worker is
    looked up before it is sent again.
    """
    ids = [a.id for a in alerts]
    marks = ",".join("?" * len(ids))
    found = {
        (r["alert_id"], r["channel"]): Delivery.from_row(r)
        for r in rows(db, f"select * from alert_deliveries where alert_id in ({marks})", ids)
    }
    new = []
    for alert in alerts:
        for channel in routes[alert.id]:
            if (alert.id, channel) not in found:
                delivery = Delivery(alert.id, channel, sending_since=alert.sending_since)
                found[(alert.id, channel)] = delivery
                new.append(delivery.as_row())
    insert_many(db, "alert_deliveries", new, ignore=True)
    return found


@dataclass(frozen=True, slots=True)
class Backlog:
    """The alerts not yet delivered, and the earliest time one of their deliveries is tried next (None:
    none is waiting out a backoff)."""

    alerts: int
    next_attempt: datetime | None


def delivery_backlog(db: Database) -> Backlog:
    """How many alerts wait for delivery, and when the next of them is tried."""
    count, next_attempt = db.execute(
        """select (select count(*) from alerts where delivered is null),
                  (select min(d.next_attempt) from alert_deliveries d join alerts a on a.id = d.alert_id
                   where a.delivered is null and d.delivered is null)"""
    ).fetchone()
    return Backlog(int(count), from_iso(next_attempt))


def clear_retry_waits(db: Database) -> int:
    """Let every undelivered delivery be tried at the next delivery, whatever its backoff (`alerts
    --retry`, after a token or channel is fixed); returns how many alerts were waiting."""
    waiting = """delivered is null and next_attempt is not null
                 and alert_id in (select id from alerts where delivered is null)"""
    with transaction(db):
        (count,) = db.execute(
            f"select count(distinct alert_id) from alert_deliveries where {waiting}"
        ).fetchone()
        db.execute(f"update alert_deliveries set next_attempt = null where {waiting}")
    return int(count)


def last_delivered(db: Database, incident_id: int, channel: str) -> datetime | None:
    """When the incident's last message went to `channel`."""
    row = db.execute(
        """select max(d.delivered) from alert_deliveries d join alerts a on a.id = d.alert_id
           where a.incident_id = ? and d.channel = ? and d.delivered is not null""",
        [incident_id, channel],
    ).fetchone()
    return from_iso(row[0]) if row else None


def mark_in_flight(db: Database, deliveries: Sequence[Delivery], now: datetime) -> None:
    """Record (and commit) that these deliveries are being sent, before sending them."""
    since = iso(now)
    with transaction(db):
        for delivery in deliveries:
            delivery.sending_since, delivery.attempts = from_iso(since), delivery.attempts + 1
            update = {"sending_since": since, "attempts": delivery.attempts}
            db.table("alert_deliveries").update((delivery.alert_id, delivery.channel), update)
            db.execute(
                "update alerts set attempts = coalesce(attempts, 0) + 1, sending_since = ? where id = ?",
                [since, delivery.alert_id],
            )


def record_sent(db: Database, deliveries: Sequence[Delivery], ts: str | None, now: datetime) -> None:
    """Record that these deliveries reached their channel as message `ts`."""
    delivered = from_iso(iso(now))  # as stored: to the second
    update = {
        "ts": ts,
        "delivered": iso(now),
        "sending_since": None,
        "last_error": None,
        "next_attempt": None,
    }
    with transaction(db):
        for delivery in deliveries:
            delivery.ts, delivery.delivered = ts, delivered
            delivery.last_error = delivery.sending_since = delivery.next_attempt = None
            db.table("alert_deliveries").update((delivery.alert_id, delivery.channel), update)


def record_failure(
    db: Database,
    deliveries: Sequence[Delivery],
    error: str,
    retry_at: Sequence[datetime],
    in_flight: bool,
) -> None:
    """Record a failed try of each delivery and when to try it next; `in_flight`: it may have arrived."""
    with transaction(db):
        for delivery, when in zip(deliveries, retry_at, strict=True):
            update = {"last_error": error, "next_attempt": iso(when),
                      "sending_since": iso(delivery.sending_since) if in_flight else None}  # fmt: skip
            delivery.last_error, delivery.next_attempt = error, from_iso(update["next_attempt"])
            delivery.sending_since = from_iso(update["sending_since"])
            db.table("alert_deliveries").update((delivery.alert_id, delivery.channel), update)
            db.table("alerts").update(delivery.alert_id, {"last_error": f"{delivery.channel}: {error}",
                                                          "sending_since": update["sending_since"]})  # fmt: skip


def first_alert_of_message(db: Database, channel: str, ts: str) -> Alert | None:
    """The alert (lowest id) that message `ts` in `channel` was sent for."""
    sql = """select a.* from alert_deliveries d join alerts a on a.id = d.alert_id
             where d.channel = ? and d.ts = ? order by a.id limit 1"""
    row = next(rows(db, sql, [channel, ts]), None)
    return None if row is None else alert_from_row(row)


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
