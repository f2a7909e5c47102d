"""The `alerts` table: the outbox of alerts waiting to be delivered.

Rows become `Alert` values here (`alert_from_row`): the JSON columns are parsed once, tolerantly, so that
no sink reads JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.models import Alert, AlertDraft, Evidence
from bot.store.db import from_iso, insert_row, iso


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


def pending_alerts(db: Database, limit: int = 1000, after: int = 0) -> list[Alert]:
    """Undelivered alerts with an id above `after`, oldest first (`after`: where the last batch ended)."""
    return [
        alert_from_row(r)
        for r in db.table("alerts").rows_where(
            "delivered is null and id > ?", [after], order_by="id", limit=limit
        )
    ]


def mark_delivered(
    db: Database, alert_id: int, now: datetime, channel: str | None = None, ts: str | None = None
) -> None:
    """Record that an alert reached its destination."""
    db.table("alerts").update(
        alert_id,
        {"delivered": iso(now), "channel": channel, "ts": ts, "sending_since": None, "last_error": None},
    )


def alert_from_row(row: Mapping[str, Any]) -> Alert:
    """A row of `alerts` as an Alert. Malformed JSON is tolerated: evidence that is not a list is read as
    none (items that are not objects are left out), details that are not an object as {}."""
    evidence, details = _loads(row["evidence"]), _loads(row["details"])
    items = evidence if isinstance(evidence, list) else []
    return Alert(
        id=int(row["id"]),
        kind=str(row["kind"] or ""),
        incident_id=row["incident_id"],
        summary=str(row["summary"] or ""),
        evidence=tuple(_evidence(item) for item in items if isinstance(item, dict)),
        details=details if isinstance(details, dict) else {},
        created=str(row["created"] or ""),
        sending_since=from_iso(row["sending_since"]),
    )


def _loads(text: str | None) -> Any:
    """A JSON column's value (None if it is empty or not JSON)."""
    try:
        return json.loads(text or "null")
    except (TypeError, ValueError):
        return None


def _evidence(item: Mapping[str, Any]) -> Evidence:
    """One stored evidence object; a field that is missing, or not text, is read as ""."""
    values = (item.get(key) for key in ("url", "source", "published", "quote"))
    return Evidence(*(value if isinstance(value, str) else "" for value in values))


def count_articles_and_alerts(db: Database) -> tuple[int, int]:
    """How many articles and alerts the store holds."""
    row = db.execute("select (select count(*) from articles), (select count(*) from alerts)").fetchone()
    return int(row[0]), int(row[1])
