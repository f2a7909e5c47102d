"""Glue between the store and the pure stages: extract claims, pick the incident, compare, store.

`analyse_report` runs inside the caller's transaction, so an article, its claims, its incident update
and its alerts are committed together or not at all. Candidate incidents come from the index on
`incidents.last_published` (a time window), never from a scan of the store.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlite_utils import Database

from bot import store
from bot.config import Config, ConfigError
from bot.extract import Claims, Knowledge, extract_claims
from bot.extract.places import Gazetteer
from bot.extract.positions import ActorIndex
from bot.incidents import kinds
from bot.incidents.compare import ReportMeta, detect_changes
from bot.incidents.grouping import (
    EVENT_LABELS,
    WINDOW,
    IncidentProfile,
    choose_incident,
    joinable_events,
    primary_places,
    story_places,
)
from bot.models import AlertDraft, Evidence, Report, StoredClaim

#: libyaml's loader when PyYAML has it: the gazetteer loads several times faster.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_CANDIDATES = 200
#: Roles whose place two reports can contradict; "attacked in" is left out: a night of fighting has many.
COMPARED_ROLES = frozenset({"crossed", "returned", "closed"})
MAX_WORDS = 400
MAX_FIGURES = 60

__all__ = ["Knowledge", "analyse_report", "load_knowledge"]


def _read_entries(path: Path, key: str) -> list[dict[str, Any]]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}:{mark.line + 1 if mark else '?'}: invalid YAML") from None
    entries = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a list under `{key}:`")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("id") or not entry.get("name"):
            raise ConfigError(f"{path}: {key}[{index}]: each entry needs an id and a name")
    return entries


def load_knowledge(cfg: Config) -> Knowledge:
    """The gazetteer and actors: the shipped files, extended by the user's (`data:` in the config)."""
    places = _read_entries(cfg.data_file("places.yaml"), "places")
    for extra in cfg.extra_files("places"):
        places += _read_entries(extra, "places")
    actors = _read_entries(cfg.data_file("actors.yaml"), "actors")
    for extra in cfg.extra_files("actors"):
        actors += _read_entries(extra, "actors")
    return Knowledge(Gazetteer(places), ActorIndex(actors))


def _profile(row: dict[str, Any]) -> IncidentProfile:
    signature = json.loads(row["signature"] or "{}")
    return IncidentProfile(
        id=row["id"],
        event=row["event"],
        last_published=store.from_iso(row["last_published"]) or datetime.min,
        places=frozenset(signature.get("places", [])),
        words=frozenset(signature.get("words", [])),
        primary=frozenset(signature.get("primary", [])),
        figures=tuple((m, lo, hi) for m, lo, hi in signature.get("figures", [])),
    )


def _candidates(db: Database, published: datetime, event: str | None) -> list[IncidentProfile]:
    """Incidents a report could join: active in the time window (index on last_published) and of a type
    it can join (same, kin, or none), the most recent first."""
    window = [store.iso(published - WINDOW), store.iso(published + WINDOW)]
    kinds = sorted(joinable_events(event)) if event is not None else []
    by_type = f"and (event is null or event in ({','.join('?' * len(kinds))}))" if kinds else ""
    rows = store.rows(
        db,
        f"select id, event, last_published, signature from incidents where last_published between ? and ? "
        f"{by_type} order by last_published desc limit ?",
        [*window, *kinds, MAX_CANDIDATES],
    )
    return [_profile(r) for r in rows]


def _new_claims(claims: Claims, report: Report, knowledge: Knowledge) -> list[StoredClaim]:
    """The report's claims in the shape the comparison and the store use."""
    published = store.iso(report.published) or ""

    def evidence(start: int, end: int) -> Evidence:
        return Evidence(report.url, report.source, published, claims.sentence(start, end))

    actors = knowledge.actors
    out: list[StoredClaim] = []
    for f in claims.figures:
        org = actors.organisation(f.actor_id) if f.actor_id else None
        out.append(
            StoredClaim(
                "figure",
                f.measure,
                f.phrase,
                f.low,
                f.high,
                report.article_id,
                report.source,
                actors.actors[org].name if org else report.source,
                actors.actors[org].side if org else "",
                evidence(*f.sentence),
                f.vague,
                f.label,
                f.start,
                f.end,
            )
        )
    for s in claims.statements:
        org = actors.organisation(s.actor_id) if s.actor_id in actors.actors else s.actor_id
        name = actors.actors[org].name if org in actors.actors else s.actor_name
        out.append(
            StoredClaim(
                "position",
                org,
                s.stance,
                None,
                None,
                report.article_id,
                report.source,
                name,
                s.side,
                evidence(s.start, s.end),
                False,
                name,
                s.start,
                s.end,
            )
        )
    for t in claims.status:
        out.append(
            StoredClaim(
                "status",
                t.axis,
                t.state,
                float(t.rank),
                None,
                report.article_id,
                report.source,
                report.source,
                "",
                evidence(t.start, t.end),
                start=t.start,
                end=t.end,
            )
        )
    gazetteer = knowledge.gazetteer
    for p in claims.places:
        if p.role not in COMPARED_ROLES or not p.in_lead or not gazetteer.is_specific(p.place_id):
            continue
        out.append(
            StoredClaim(
                "place",
                p.role,
                p.place_id,
                None,
                None,
                report.article_id,
                report.source,
                report.source,
                "",
                evidence(*p.sentence),
                False,
                gazetteer.places[p.place_id].name,
                p.start,
                p.end,
            )
        )
    return out


def _with_incident_sides(new: list[StoredClaim], existing: list[StoredClaim]) -> list[StoredClaim]:
    """A figure that names no side ("25 soldiers killed") counts the side the incident's figures of that
    event and kind all count ("Pakistani soldiers killed")."""
    sides: dict[str, set[str]] = {}
    for claim in existing:
        if claim.type == "figure":
            parts = claim.key.split(":")
            if len(parts) == 3 and parts[2]:
                sides.setdefault(f"{parts[0]}:{parts[1]}", set()).add(parts[2])
    out = []
    for claim in new:
        parts = claim.key.split(":")
        if claim.type == "figure" and len(parts) == 3 and not parts[2]:
            known = sides.get(f"{parts[0]}:{parts[1]}", set())
            if len(known) == 1:
                side = next(iter(known))
                label = next(c.label for c in existing if c.key == f"{parts[0]}:{parts[1]}:{side}")
                claim = replace(claim, key=f"{parts[0]}:{parts[1]}:{side}", label=label)
        out.append(claim)
    return out


def _load_claims(db: Database, incident_id: int) -> list[StoredClaim]:
    out = []
    for r in store.rows(db, "select * from claims where incident_id = ? order by id", [incident_id]):
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
                r["actor"] or "",
                Evidence(r["url"], r["source"], r["published"], r["quote"]),
                bool(detail.get("vague")),
                detail.get("label", ""),
            )
        )
    return out


def _store_claims(
    db: Database, incident_id: int, report: Report, claims: list[StoredClaim], now: datetime
) -> None:
    store.insert_many(
        db,
        "claims",
        [
            {
                "incident_id": incident_id,
                "article_id": report.article_id,
                "version": report.version,
                "type": c.type,
                "measure": c.key,
                "value": c.value,
                "low": c.low,
                "high": c.high,
                "actor": c.side,
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
                "seen": store.iso(now),
                "detail": json.dumps({"vague": c.vague, "label": c.label}),
            }
            for c in claims
        ],
        ignore=False,
    )


def _main_place(claims: Claims, gazetteer: Gazetteer) -> str | None:
    """The incident's place: the finest place its lead names most."""
    counts = Counter(p.place_id for p in claims.places if p.in_lead or p.role)
    if not counts:
        return None
    return min(counts, key=lambda pid: (gazetteer.precision(pid), -counts[pid]))


def _open_incident(db: Database, claims: Claims, report: Report, knowledge: Knowledge, now: datetime) -> int:
    place_id = _main_place(claims, knowledge.gazetteer)
    place = knowledge.gazetteer.places.get(place_id) if place_id else None
    published = store.iso(report.published)
    return store.insert_row(
        db,
        "incidents",
        {
            "title": report.title,
            "event": claims.event,
            "place": place.name if place else None,
            "place_id": place_id,
            "latitude": place.lat if place else None,
            "longitude": place.lon if place else None,
            "first_seen": store.iso(now),
            "last_seen": store.iso(now),
            "first_published": published,
            "last_published": published,
            "articles": 0,
            "sources": 0,
            "signature": "{}",
        },
    )


def _update_incident(
    db: Database, incident_id: int, claims: Claims, report: Report, knowledge: Knowledge, now: datetime
) -> None:
    row = db.table("incidents").get(incident_id)
    signature = json.loads(row["signature"] or "{}")
    places = set(signature.get("places", [])) | story_places(claims, knowledge.gazetteer)
    primary = set(signature.get("primary", [])) | primary_places(claims, knowledge.gazetteer)
    figures = [
        *signature.get("figures", []),
        *([f.measure, f.low, f.high] for f in claims.figures if not f.vague),
    ]
    words = list(dict.fromkeys([*signature.get("words", []), *sorted(claims.words)]))[:MAX_WORDS]
    counts = db.execute(
        "select count(*), count(distinct source) from articles where incident_id = ? and duplicate_of is null",
        [incident_id],
    ).fetchone()
    status = db.execute(
        "select measure || ': ' || value from claims where incident_id = ? and type = 'status' "
        "order by low desc, id desc limit 1",
        [incident_id],
    ).fetchone()
    published = store.iso(report.published) or ""
    update: dict[str, Any] = {
        "last_seen": store.iso(now),
        "last_published": max(row["last_published"] or "", published),
        "articles": counts[0],
        "sources": counts[1],
        "status": status[0] if status else None,
        "signature": json.dumps(
            {
                "places": sorted(places),
                "primary": sorted(primary),
                "words": words,
                "figures": figures[-MAX_FIGURES:],
            }
        ),
    }
    if row["place_id"] is None:
        place_id = _main_place(claims, knowledge.gazetteer)
        if place_id:
            place = knowledge.gazetteer.places[place_id]
            update.update(place_id=place_id, place=place.name, latitude=place.lat, longitude=place.lon)
    db.table("incidents").update(incident_id, update)
    store.insert_many(
        db, "incident_keys", [{"key": f"place:{p}", "incident_id": incident_id} for p in sorted(places)]
    )


def _new_incident_alert(incident_id: int, claims: Claims, report: Report, db: Database) -> AlertDraft:
    """The first alert of an incident: what, where, the headline figure, quoting the lead."""
    row = db.table("incidents").get(incident_id)
    what = EVENT_LABELS.get(claims.event or "", "incident")
    where = f" in {row['place']}" if row["place"] else ""
    figures = [f for f in claims.figures if not f.vague and not f.measure.startswith("count:")]
    headline = figures[0] if figures else None
    if headline is not None:
        start, end = headline.sentence
        quote = claims.sentence(start, end)
        figure = f" — {headline.phrase} {headline.label.split(' (of')[0]}"
    else:
        quote = claims.sentence(0, len(report.title.strip()))
        figure = ""
    evidence = Evidence(report.url, report.source, store.iso(report.published) or "", quote)
    return AlertDraft(
        kinds.NEW_INCIDENT.name,
        incident_id,
        f"New incident: {what}{where}{figure}: \u201c{report.title.strip()}\u201d ({report.source})",
        (evidence,),
        f"{kinds.NEW_INCIDENT.name}:{incident_id}",
        {"place": row["place"], "event": claims.event},
    )


def analyse_report(db: Database, knowledge: Knowledge, report: Report, now: datetime) -> list[AlertDraft]:
    """Attach a report to its incident (opening one if needed), store its claims, return the alerts it raises."""
    article = db.table("articles").get(report.article_id)
    if report.duplicate_of is not None:
        # Syndicated copy: it belongs where the original is, and counts as the same source.
        original = db.table("articles").get(report.duplicate_of)
        store.set_article_incident(db, report.article_id, original["incident_id"], bool(original["in_scope"]))
        return []
    claims = extract_claims(report.title, report.text, knowledge)
    incident_id = article["incident_id"] if report.version > 1 else None
    if incident_id is None and not claims.in_scope:
        store.set_article_incident(db, report.article_id, None, False)
        return []
    drafts: list[AlertDraft] = []
    if incident_id is None:
        incident_id = choose_incident(
            claims, report.published, _candidates(db, report.published, claims.event), knowledge.gazetteer
        )
    if incident_id is None:
        if claims.event is None:
            store.set_article_incident(db, report.article_id, None, True)
            return []
        incident_id = _open_incident(db, claims, report, knowledge, now)
        store.set_article_incident(db, report.article_id, incident_id, True)
        drafts.append(_new_incident_alert(incident_id, claims, report, db))
    else:
        store.set_article_incident(db, report.article_id, incident_id, True)
    existing = _load_claims(db, incident_id)
    new = _with_incident_sides(_new_claims(claims, report, knowledge), existing)
    meta = ReportMeta(report.article_id, report.url, report.source, report.published)
    gazetteer = knowledge.gazetteer
    drafts += detect_changes(incident_id, existing, new, meta, lambda a, b: gazetteer.compatible(a, b))
    _store_claims(db, incident_id, report, new, now)
    _update_incident(db, incident_id, claims, report, knowledge, now)
    return drafts
