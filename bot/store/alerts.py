"""The `alerts` table: the outbox of alerts waiting to be delivered."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.models import AlertDraft
from bot.store.db import insert_row, iso


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
