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
from typing import Protocol

from sqlite_utils import Database

from bot import store
from bot.errors import DeliveryError
from bot.models import Alert

logger = logging.getLogger("borderwatch")

#: Backoff after the n-th failed try of a delivery: BACKOFF_BASE * 2**(n-1) seconds, at most BACKOFF_MAX.
BACKOFF_BASE = 30.0
BACKOFF_MAX = 900.0
#: Retry a permanent error (bad token, unknown channel) this often: somebody may have fixed it.
PERMANENT_RETRY = 300.0


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

    def route(self, alert: Alert) -> tuple[str, ...]:
        """The channels this alert goes to (empty: nowhere)."""
        ...

    def send(self, alerts: Sequence[Alert], channel: str) -> Sent:
        """Deliver one message about `alerts` (one alert, or an incident's burst) to `channel`."""
        ...

    def find_sent(self, alert: Alert, channel: str, since: datetime) -> Sent | None:
        """The message already carrying `alert` in `channel`, posted after `since`, if any."""
        ...


#: Alerts read from the outbox at a time; `deliver_pending` reads batch after batch until every pending
#: alert has had its turn (issue 11: `poll --once` used to stop after the first 1,000, silently).
BATCH = 1000


def deliver_pending(db: Database, sink: Sink, now: datetime | None = None, batch: int = BATCH) -> int:
    """Send every pending alert that can go now, oldest first in each channel, reading `batch` alerts at a
    time; returns how many alerts are now fully delivered."""
    now = now or datetime.now(UTC)
    stopped: set[str] = set()  # channels that met a failure or a backoff: their later alerts wait
    finished = last_id = 0
    while alerts := store.pending_alerts(db, batch, after=last_id):
        done, stop_all = _deliver_batch(db, sink, alerts, stopped, now)
        finished += done
        last_id = alerts[-1].id
        if stop_all:
            break
    return finished


def _deliver_batch(
    db: Database, sink: Sink, alerts: list[Alert], stopped: set[str], now: datetime
) -> tuple[int, bool]:
    """Send one batch of alerts to their channels but those in `stopped` (which gains the channels that
    stop now); returns how many alerts are fully delivered, and whether every channel must stop."""
    routes: dict[int, tuple[str, ...]] = {}
    queues: dict[str, list[Alert]] = {}
    for alert in alerts:
        routes[alert.id] = sink.route(alert)
        for channel in routes[alert.id]:
            queues.setdefault(channel, []).append(alert)
    deliveries = store.load_deliveries(db, alerts, routes)
    stop_all = False
    for channel, queue in queues.items():
        if channel in stopped:
            continue  # an earlier batch stopped here: order is kept across batches too
        pending = [a for a in queue if not deliveries[(a.id, channel)].delivered]
        try:
            if not _deliver_channel(db, sink, channel, pending, deliveries, now):
                stopped.add(channel)
        except _StopAll:
            stop_all = True
            break
    return _finish(db, alerts, routes, deliveries, now), stop_all


class _StopAll(Exception):
    """An error that every channel would meet (a revoked token): stop this run."""


def _deliver_channel(
    db: Database,
    sink: Sink,
    channel: str,
    queue: list[Alert],
    deliveries: dict[tuple[int, str], store.Delivery],
    now: datetime,
) -> bool:
    """Send one channel's pending alerts in order; stop at the first failure or backoff (returns False)."""
    held: set[int] = set()  # incidents whose alerts wait for the cooldown
    done: set[int] = set()

    def rows(alert_ids: list[int]) -> list[store.Delivery]:
        return [deliveries[(alert_id, channel)] for alert_id in alert_ids]

    for index, alert in enumerate(queue):
        incident = alert.incident_id
        if alert.id in done or (incident is not None and incident in held):
            continue
        row = deliveries[(alert.id, channel)]
        if row.next_attempt is not None and row.next_attempt > now:
            return False  # backing off; later alerts wait so that order is kept
        if row.sending_since is not None:
            try:
                found = sink.find_sent(alert, channel, row.sending_since)
            except DeliveryError as exc:
                _record_failure(db, sink, [row], exc, now, in_flight=True)
                return False
            if found is not None:
                carried = {alert.id, *found.alert_ids}
                ids = [a.id for a in queue if a.id in carried and a.id not in done]
                store.record_sent(db, rows(ids), found.ts, now)
                done.update(ids)
                logger.info("alert %s was already in %s (found after an interrupted send)", alert.id, channel)
                continue
        batch = [alert]
        if sink.cooldown > 0 and incident is not None:
            last = store.last_delivered(db, incident, channel)
            if last is not None:
                if (now - last).total_seconds() < sink.cooldown:
                    held.add(incident)
                    continue
                batch += [a for a in queue[index + 1 :] if a.incident_id == incident and a.id not in done]
        ids = [a.id for a in batch]
        store.mark_in_flight(db, rows(ids), now)
        try:
            sent = sink.send(batch, channel)
        except DeliveryError as exc:
            _record_failure(db, sink, rows(ids), exc, now, in_flight=exc.uncertain)
            return False
        store.record_sent(db, rows(ids), sent.ts, now)
        done.update(ids)
    return True


def _record_failure(
    db: Database, sink: Sink, rows: list[store.Delivery], exc: DeliveryError, now: datetime, in_flight: bool
) -> None:
    """Record a failed try, schedule the next one, and log the error once (not once per cycle)."""
    message = str(exc)[:500]
    alert_id, channel = rows[0].alert_id, rows[0].channel
    repeated = rows[0].last_error == message
    retry_at = [now + timedelta(seconds=_backoff(exc, row.attempts or 1)) for row in rows]
    store.record_failure(db, rows, message, retry_at, in_flight)
    # Say when the next try is (issue 11: a fixed token waited 5 minutes and nothing said why).
    next_at = store.iso(retry_at[0])
    if repeated:
        logger.debug("alert %s still not delivered to %s (%s): %s; next attempt at %s",
                     alert_id, channel, sink.name, message, next_at)  # fmt: skip
    elif exc.permanent:
        logger.error(
            "alert %s not delivered to %s (%s): %s; it stays queued, retried every %.0fs: next attempt at %s "
            "(once it is fixed, `borderwatch alerts --retry` tries at the next delivery)",
            alert_id, channel, sink.name, message, PERMANENT_RETRY, next_at,
        )  # fmt: skip
    else:
        logger.warning("alert %s not delivered to %s (%s): %s; next attempt at %s",
                       alert_id, channel, sink.name, message, next_at)  # fmt: skip
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
    db: Database,
    alerts: list[Alert],
    routes: dict[int, tuple[str, ...]],
    deliveries: dict[tuple[int, str], store.Delivery],
    now: datetime,
) -> int:
    """Mark alerts delivered whose every channel has them; returns how many.

    `deliveries` is current (the store updates the outbox's records as it writes them), so a batch in
    which nothing moved costs no query: an outage with a long backlog is not read back alert by alert.
    """
    finished = 0
    for alert in alerts:
        channels = routes[alert.id]
        if not channels:
            logger.info("alert %s matches no channel; not sent", alert.id)
            store.mark_delivered(db, alert.id, now)
            finished += 1
            continue
        rows = {c: deliveries[(alert.id, c)] for c in channels}
        if not all(rows[c].delivered for c in channels):
            continue
        times = [rows[c].delivered or now for c in channels]
        stamps = [ts for c in channels if (ts := rows[c].ts)]
        store.mark_delivered(db, alert.id, max(times), ", ".join(channels), ", ".join(stamps) or None)
        finished += 1
    return finished
