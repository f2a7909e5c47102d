"""The outbox worker: sends undelivered alerts in order and records each delivery."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlite_utils import Database

from bot import store

logger = logging.getLogger("borderwatch")


class DeliveryError(Exception):
    """A send that failed; `permanent` ones (bad token, unknown channel) stop delivery until fixed."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sink(Protocol):
    """Where alerts go."""

    name: str

    def send(self, alert: dict[str, Any]) -> tuple[str | None, str | None]:
        """Deliver one alert; returns (channel, ts)."""
        ...


def deliver_pending(db: Database, sink: Sink, now: datetime | None = None, limit: int = 1000) -> int:
    """Send pending alerts oldest first; stops at the first failure so order is kept. Returns how many went."""
    sent = 0
    for alert in store.pending_alerts(db, limit):
        when = now or datetime.now(UTC)
        db["alerts"].update(alert["id"], {"sending_since": store.iso(when), "attempts": (alert["attempts"] or 0) + 1})
        try:
            channel, ts = sink.send(alert)
        except DeliveryError as exc:
            db["alerts"].update(alert["id"], {"last_error": str(exc)[:500], "sending_since": None})
            logger.warning("alert %s not delivered (%s): %s", alert["id"], sink.name, exc)
            break
        store.mark_delivered(db, alert["id"], now or datetime.now(UTC), channel, ts)
        sent += 1
    return sent
