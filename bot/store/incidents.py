"""The incident family: `incidents` (with each one's grouping profile), `claims`, `incident_keys`.

Rows become typed values here: `IncidentProfile` for grouping, `StoredClaim` for comparison.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from bot.models import Evidence, IncidentProfile, StoredClaim
from bot.store.db import from_iso, insert_many, insert_row, iso, rows

_NEVER = datetime.min.replace(tzinfo=UTC)


def _profile(row: dict[str, object]) -> IncidentProfile:
    stored = json.loads(str(row["profile"] or "{}"))
    words = tuple(stored.get("words", []))
    return IncidentProfile(
        id=int(str(row["id"])),
        incident_type=str(row["incident_type"]) if row["incident_type"] else None,
        last_published=from_iso(str(row["last_published"] or "")) or _NEVER,
        places=frozenset(stored.get("places", [])),
        words=frozenset(words),
        primary=frozenset(stored.get("primary", [])),
        figures=tuple((m, lo, hi) for m, lo, hi in stored.get("figures", [])),
        words_in_order=words,
    )


def candidate_profiles(
    db: Database, published: datetime, window: timedelta, incident_types: Sequence[str], limit: int
) -> list[IncidentProfile]:
    """Incidents last reported within `window` of `published` (index on last_published) whose type is
    one of `incident_types` or none (any type when `incident_types` is empty), most recent first."""
    bounds = [iso(published - window), iso(published + window)]
    marks = ",".join("?" * len(incident_types))
    by_type = f"and (incident_type is null or incident_type in ({marks}))" if incident_types else ""
    found = rows(
        db,
        f"select id, incident_type, last_published, profile from incidents "
        f"where last_published between ? and ? {by_type} order by last_published desc limit ?",
        [*bounds, *incident_types, limit],
    )
    return [_profile(row) for row in found]


def load_profile(db: Database, incident_id: int) -> IncidentProfile:
    """The grouping profile of one incident."""
    row = next(
        rows(
            db, "select id, incident_type, last_published, profile from incidents where id = ?", [incident_id]
        )
    )
    return _profile(row)


def insert_incident(
    db: Database,
    title: str,
    incident_type: str | None,
    place: tuple[str, str, float | None, float | None] | None,
    published: datetime,
    now: datetime,
) -> int:
    """Open an incident (no reports counted yet); `place` is (id, name, lat, lon). Returns its id."""
    place_id, name, lat, lon = place if place else (None, None, None, None)
    return insert_row(
        db,
        "incidents",
        {
            "title": title,
            "incident_type": incident_type,
            "place": name,
            "place_id": place_id,
            "latitude": lat,
            "longitude": lon,
            "first_seen": iso(now),
            "last_seen": iso(now),
            "first_published": iso(published),
            "last_published": iso(published),
            "articles": 0,
            "sources": 0,
            "profile": "{}",
        },
    )


def save_incident(
    db: Database,
    profile: IncidentProfile,
    published: datetime,
    now: datetime,
    place: tuple[str, str, float | None, float | None] | None = None,
) -> None:
    """Store an incident's grown profile after a report joined: counts of reports and independent
    sources, latest status, last published, and its place if it had none (`place` is id, name, lat, lon)."""
    incident_id = profile.id
    stored_profile = json.dumps(
        {
            "places": sorted(profile.places),
            "primary": sorted(profile.primary),
            "words": list(profile.words_in_order),
            "figures": [list(f) for f in profile.figures],
        }
    )
    place_id, name, lat, lon = place if place else (None, None, None, None)
    # One statement, no read of the row first: the counts and the latest status come from subqueries,
    # the place is set only where the incident has none.
    db.execute(
        """update incidents set
             last_seen = ?,
             last_published = max(coalesce(last_published, ''), ?),
             articles = (select count(*) from articles a where a.incident_id = incidents.id
                         and a.duplicate_of is null),
             sources = (select count(distinct source) from articles a where a.incident_id = incidents.id
                        and a.duplicate_of is null),
             status = (select measure || ': ' || value from claims c where c.incident_id = incidents.id
                       and c.type = 'status' order by c.low desc, c.id desc limit 1),
             profile = ?,
             place = case when place_id is null then ? else place end,
             latitude = case when place_id is null then ? else latitude end,
             longitude = case when place_id is null then ? else longitude end,
             place_id = coalesce(place_id, ?)
           where id = ?""",
        [iso(now), iso(published), stored_profile, name, lat, lon, place_id, incident_id],
    )
    insert_many(
        db,
        "incident_keys",
        [{"key": f"place:{p}", "incident_id": incident_id} for p in sorted(profile.places)],
    )


def load_claims(db: Database, incident_id: int) -> list[StoredClaim]:
    """Every claim of an incident, oldest first."""
    out = []
    for r in rows(db, "select * from claims where incident_id = ? order by id", [incident_id]):
        detail = json.loads(r["detail"] or "{}")
        out.append(
            StoredClaim(
                r["type"],
                r["measure"],
                r["value"],
                r["low"],
                r["high"],
                r["article_id"],
                r["source"],
                r["source_key"],
                r["side"] or "",
                Evidence(r["url"], r["source"], r["published"], r["quote"]),
                bool(detail.get("vague")),
                detail.get("label", ""),
            )
        )
    return out


def insert_claims(
    db: Database, incident_id: int, article_id: int, version: int, claims: list[StoredClaim], now: datetime
) -> None:
    """Store a report's claims under its incident."""
    insert_many(
        db,
        "claims",
        [
            {
                "incident_id": incident_id,
                "article_id": article_id,
                "version": version,
                "type": c.type,
                "measure": c.key,
                "value": c.value,
                "low": c.low,
                "high": c.high,
                "side": c.side,
                "stance": c.value if c.type == "position" else None,
                "place_id": c.value if c.type == "place" else None,
                "role": c.key if c.type == "place" else None,
                "quote": c.evidence.quote,
                "start": c.start,
                "end": c.end,
                "source": c.source,
                "source_key": c.source_key,
                "url": c.evidence.url,
                "published": c.evidence.published,
                "seen": iso(now),
                "detail": json.dumps({"vague": c.vague, "label": c.label}),
            }
            for c in claims
        ],
        ignore=False,
    )


def load_incident_row(db: Database, incident_id: int) -> dict[str, Any] | None:
    """The incident row an alert is about (Slack routes and renders by it)."""
    return next(rows(db, "select * from incidents where id = ?", [incident_id]), None)
