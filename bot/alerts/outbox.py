"""The outbox worker: sends undelivered alerts in order, to each of their channels, and records each delivery.

Each (alert, channel) pair has a row in `alert_deliveries`. Sending is made exactly-once where the sink
can tell (issue 4): before a send the delivery is marked in flight (`sending_since`, committed at once);
a delivery still in flight on a later run is first looked up at the destination (`Sink.find_sent`) and
recorded, not sent again. Within a channel alerts go oldest first and a failure stops that channel
until its backoff has passed, so order is kept; other channels go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlite_utils import Database

from bot import store

logger = logging.getLogger("borderwatch")

#: Backoff after the n-th failed try of a delivery: BACKOFF_BASE * 2**(n-1) seconds, at most BACKOFF_MAX.
BACKOFF_BASE = 30.0
BACKOFF_MAX = 900.0
#: Retry a permanent error (bad token, unknown channel) this often: somebody may have fixed it.
PERMANENT_RETRY = 300.0


class DeliveryError(Exception):
    """A send that failed.

    `permanent`: needs a person (bad token, unknown channel); `uncertain`: the destination may have
    accepted the message (timeout, dropped connection, 5xx); `retry_after`: seconds the destination
    asked us to wait; `every_channel`: the error is not about one channel (a revoked token).
    """

    def __init__(
        self,
        message: str,
        permanent: bool = False,
        *,
        uncertain: bool = False,
        retry_after: float | None = None,
        every_channel: bool = False,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.uncertain = uncertain
        self.retry_after = retry_after
        self.every_channel = every_channel
        self.code = code


@dataclass(frozen=True, slots=True)
class Sent:
    """A message that reached its channel: its `ts` (None where the sink has none) and, for a message
    found by `Sink.find_sent`, every alert id it carries."""

    ts: str | None = None
    alert_ids: tuple[int, ...] = ()


class Sink(Protocol):
    """Where alerts go."""

    name: str
    #: Seconds to hold an incident's later alerts after its last message, to send them as one (0: off).
    cooldown: float

    def route(self, alert: dict[str, Any]) -> tuple[str, ...]:
        """The channels this alert goes to (empty: nowhere)."""
        ...

    def send(self, alerts: Sequence[dict[str, Any]], channel: str) -> Sent:
        """Deliver one message about `alerts` (one alert, or an incident's burst) to `channel`."""
        ...

    def find_sent(self, alert: dict[str, Any], channel: str, since: datetime) -> Sent | None:
        """The message already carrying `alert` in `channel`, posted after `since`, if any."""
        ...


def deliver_pending(db: Database, sink: Sink, now: datetime | None = None, limit: int = 1000) -> int:
    """Send pending alerts, oldest first in each channel; returns how many alerts are now fully delivered."""
    now = now or datetime.now(UTC)
    alerts = store.pending_alerts(db, limit)
    if not alerts:
        return 0
    routes: dict[int, tuple[str, ...]] = {}
    queues: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        routes[alert["id"]] = sink.route(alert)
        for channel in routes[alert["id"]]:
            queues.setdefault(channel, []).append(alert)
    deliveries = _load_deliveries(db, alerts, routes)
    for channel, queue in queues.items():
        pending = [a for a in queue if not deliveries[(a["id"], channel)]["delivered"]]
        try:
            _deliver_channel(db, sink, channel, pending, deliveries, now)
        except _StopAll:
            break
    return _finish(db, alerts, routes, now)


class _StopAll(Exception):
    """An error that every channel would meet (a revoked token): stop this run."""


def _load_deliveries(
    db: Database, alerts: list[dict[str, Any]], routes: dict[int, tuple[str, ...]]
) -> dict[tuple[int, str], dict[str, Any]]:
    """The delivery rows of these alerts, creating the missing ones.

    A new row inherits the alert's own `sending_since`: an alert left in flight by an older worker is
    looked up before it is sent again.
    """
    ids = [a["id"] for a in alerts]
    marks = ",".join("?" * len(ids))
    found = {
        (r["alert_id"], r["channel"]): r
        for r in store.rows(db, f"select * from alert_deliveries where alert_id in ({marks})", ids)
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
    if new:
        db.table("alert_deliveries").insert_all(new, ignore=True)
    return found


def _deliver_channel(
    db: Database,
    sink: Sink,
    channel: str,
    queue: list[dict[str, Any]],
    deliveries: dict[tuple[int, str], dict[str, Any]],
    now: datetime,
) -> None:
    """Send one channel's pending alerts in order; stop at the first failure or backoff."""
    held: set[int] = set()  # incidents whose alerts wait for the cooldown
    done: set[int] = set()
    for index, alert in enumerate(queue):
        incident = alert["incident_id"]
        if alert["id"] in done or (incident is not None and incident in held):
            continue
        row = deliveries[(alert["id"], channel)]
        next_attempt = store.from_iso(row["next_attempt"])
        if next_attempt is not None and next_attempt > now:
            return  # backing off; later alerts wait so that order is kept
        if row["sending_since"]:
            try:
                found = sink.find_sent(alert, channel, store.from_iso(row["sending_since"]) or now)
            except DeliveryError as exc:
                _record_failure(db, sink, [alert], channel, exc, now, deliveries, in_flight=True)
                return
            if found is not None:
                carried = {alert["id"], *found.alert_ids}
                ids = [a["id"] for a in queue if a["id"] in carried and a["id"] not in done]
                _record_sent(db, ids, channel, found.ts, now, deliveries)
                done.update(ids)
                logger.info(
                    "alert %s was already in %s (found after an interrupted send)", alert["id"], channel
                )
                continue
        batch = [alert]
        if sink.cooldown > 0 and incident is not None:
            last = _last_delivered(db, incident, channel)
            if last is not None:
                if (now - last).total_seconds() < sink.cooldown:
                    held.add(incident)
                    continue
                batch += [
                    a for a in queue[index + 1 :] if a["incident_id"] == incident and a["id"] not in done
                ]
        _mark_in_flight(db, batch, channel, now, deliveries)
        try:
            sent = sink.send(batch, channel)
        except DeliveryError as exc:
            _record_failure(db, sink, batch, channel, exc, now, deliveries, in_flight=exc.uncertain)
            return
        ids = [a["id"] for a in batch]
        _record_sent(db, ids, channel, sent.ts, now, deliveries)
        done.update(ids)


def _last_delivered(db: Database, incident_id: int, channel: str) -> datetime | None:
    """When the incident's last message went to `channel`."""
    row = db.execute(
        """select max(d.delivered) from alert_deliveries d join alerts a on a.id = d.alert_id
           where a.incident_id = ? and d.channel = ? and d.delivered is not null""",
        [incident_id, channel],
    ).fetchone()
    return store.from_iso(row[0]) if row else None


def _mark_in_flight(
    db: Database,
    batch: list[dict[str, Any]],
    channel: str,
    now: datetime,
    deliveries: dict[tuple[int, str], Any],
) -> None:
    """Record (and commit) that these alerts are being sent, before sending them."""
    with store.transaction(db):
        for alert in batch:
            row = deliveries[(alert["id"], channel)]
            row.update(sending_since=store.iso(now), attempts=(row["attempts"] or 0) + 1)
            update = {"sending_since": row["sending_since"], "attempts": row["attempts"]}
            db.table("alert_deliveries").update((alert["id"], channel), update)
            db.execute(
                "update alerts set attempts = coalesce(attempts, 0) + 1, sending_since = ? where id = ?",
                [store.iso(now), alert["id"]],
            )


def _record_sent(
    db: Database,
    ids: list[int],
    channel: str,
    ts: str | None,
    now: datetime,
    deliveries: dict[tuple[int, str], Any],
) -> None:
    """Record that these alerts reached `channel` as message `ts`."""
    update = {
        "ts": ts,
        "delivered": store.iso(now),
        "sending_since": None,
        "last_error": None,
        "next_attempt": None,
    }
    with store.transaction(db):
        for alert_id in ids:
            deliveries[(alert_id, channel)].update(update)
            db.table("alert_deliveries").update((alert_id, channel), update)


def _record_failure(
    db: Database,
    sink: Sink,
    batch: list[dict[str, Any]],
    channel: str,
    exc: DeliveryError,
    now: datetime,
    deliveries: dict[tuple[int, str], Any],
    in_flight: bool,
) -> None:
    """Record a failed try, schedule the next one, and log the error once (not once per cycle)."""
    message = str(exc)[:500]
    head = deliveries[(batch[0]["id"], channel)]
    repeated = head["last_error"] == message
    with store.transaction(db):
        for alert in batch:
            row = deliveries[(alert["id"], channel)]
            delay = _backoff(exc, row["attempts"] or 1)
            update = {"last_error": message, "next_attempt": store.iso(now + timedelta(seconds=delay)),
                      "sending_since": row["sending_since"] if in_flight else None}  # fmt: skip
            row.update(update)
            db.table("alert_deliveries").update((alert["id"], channel), update)
            db.table("alerts").update(alert["id"], {"last_error": f"{channel}: {message}",
                                              "sending_since": update["sending_since"]})  # fmt: skip
    if repeated:
        logger.debug(
            "alert %s still not delivered to %s (%s): %s", batch[0]["id"], channel, sink.name, message
        )
    elif exc.permanent:
        logger.error(
            "alert %s not delivered to %s (%s): %s; it stays queued and is retried every %.0fs",
            batch[0]["id"], channel, sink.name, message, PERMANENT_RETRY,
        )  # fmt: skip
    else:
        logger.warning(
            "alert %s not delivered to %s (%s): %s; will retry", batch[0]["id"], channel, sink.name, message
        )
    if exc.every_channel:
        raise _StopAll


def _backoff(exc: DeliveryError, attempts: int) -> float:
    """Seconds to wait before the next try."""
    if exc.retry_after is not None:
        return max(exc.retry_after, 1.0)
    if exc.permanent:
        return PERMANENT_RETRY
    return float(min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX))


def _finish(
    db: Database, alerts: list[dict[str, Any]], routes: dict[int, tuple[str, ...]], now: datetime
) -> int:
    """Mark alerts delivered whose every channel has them; returns how many."""
    finished = 0
    for alert in alerts:
        channels = routes[alert["id"]]
        rows = {
            r["channel"]: r
            for r in store.rows(db, "select * from alert_deliveries where alert_id = ?", [alert["id"]])
        }
        if not channels:
            logger.info("alert %s matches no channel; not sent", alert["id"])
            store.mark_delivered(db, alert["id"], now)
            finished += 1
            continue
        if not all(rows.get(c) and rows[c]["delivered"] for c in channels):
            continue
        times = [store.from_iso(rows[c]["delivered"]) or now for c in channels]
        stamps = [rows[c]["ts"] for c in channels if rows[c]["ts"]]
        store.mark_delivered(db, alert["id"], max(times), ", ".join(channels), ", ".join(stamps) or None)
        finished += 1
    return finished
