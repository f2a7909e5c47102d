"""Grouping: which incident a report belongs to. Pure, no I/O.

`choose_incident` lets a report join a recent incident of the same type whose places agree (same place
at another precision, or close by); a story 150 km away, or of another type, stays its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.extract import SEATS_OF_GOVERNMENT, Claims
from bot.extract.places import Gazetteer
from bot.incidents.compare import ranges_overlap

WINDOW = timedelta(days=5)
#: Word overlap (Jaccard of title and lead) that lets a report with no incident type and no place join.
UNTYPED_SIMILARITY = 0.15
JOIN_THRESHOLD = 1.0
FAR_APART_KM = 150.0
SAME_PLACE_KM = 60.0
#: Incident types that can be one event told from two sides.
FIGHTING = frozenset({"clash", "retaliation", "infiltration", "airstrike", "attack", "closure"})
EXCHANGE_OF_FIRE = frozenset({"clash", "retaliation"})
#: People crossing back: soldiers handed back, refugees returned, migrants deported.
MIGRATION = frozenset({"crossing", "deportation"})
#: Sides between which a difference of position is a conflict.
EVENT_LABELS = {
    "crossing": "border crossing",
    "airstrike": "air strikes",
    "retaliation": "retaliatory attack",
    "clash": "border clash",
    "infiltration": "cross-border infiltration",
    "closure": "border closure",
    "deportation": "deportations",
    "attack": "attack",
    "arrest": "arrest",
}


@dataclass(frozen=True, slots=True)
class IncidentProfile:
    """What grouping needs to know of a stored incident."""

    id: int
    event: str | None
    last_published: datetime
    places: frozenset[str]
    words: frozenset[str]
    primary: frozenset[str] = frozenset()
    figures: tuple[tuple[str, float, float | None], ...] = ()


def story_places(claims: Claims, gazetteer: Gazetteer) -> frozenset[str]:
    """Specific places (finer than a province) the story itself puts the incident in; capitals that
    stand for governments ("Kabul condemns") are left out."""
    return frozenset(
        p.place_id
        for p in claims.places
        if gazetteer.is_specific(p.place_id)
        and (p.in_lead or p.role is not None)
        and p.place_id not in SEATS_OF_GOVERNMENT
    )


def primary_places(claims: Claims, gazetteer: Gazetteer) -> frozenset[str]:
    """Specific places of the title and first sentence: where the story says it happened."""
    return frozenset(
        p.place_id
        for p in claims.places
        if p.primary and gazetteer.is_specific(p.place_id) and p.place_id not in SEATS_OF_GOVERNMENT
    )


def joinable_events(event: str) -> frozenset[str]:
    """Incident types a report of type `event` may join (itself and its kin)."""
    kin = {event}
    for family in (EXCHANGE_OF_FIRE, FIGHTING, MIGRATION):
        if event in family:
            kin |= family
    return frozenset(kin)


def _place_score(report: frozenset[str], incident: frozenset[str], gazetteer: Gazetteer) -> float | None:
    """+2 when a place agrees, 0 when either side names none, None when they lie far apart."""
    if not report or not incident:
        return 0.0
    if any(gazetteer.compatible(a, b, SAME_PLACE_KM) for a in report for b in incident):
        return 2.0
    distances = [d for a in report for b in incident if (d := gazetteer.distance_km(a, b)) is not None]
    if distances and min(distances) > FAR_APART_KM:
        return None
    return -0.5


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _figure_score(claims: Claims, profile: IncidentProfile) -> float:
    """Up to +1.5 for figures the incident already holds (same measure, agreeing value)."""
    agreeing = {
        f.measure
        for f in claims.figures
        if not f.vague and not f.measure.startswith("count:")
        for measure, low, high in profile.figures
        if measure == f.measure and ranges_overlap(f.low, f.high, low, high)
    }
    return min(1.5, 0.5 * len(agreeing))


def match_score(
    claims: Claims,
    places: frozenset[str],
    published: datetime,
    profile: IncidentProfile,
    gazetteer: Gazetteer,
    primary: frozenset[str] = frozenset(),
) -> float | None:
    """How well a report fits an incident; None when it cannot be the same incident."""
    if abs(published - profile.last_published) > WINDOW:
        return None
    if _place_score(primary, profile.primary, gazetteer) is None:
        return None  # the headlines put them far apart, whatever else the texts mention
    place = _place_score(places, profile.places, gazetteer)
    if place is None:
        return None
    similarity = _jaccard(claims.words, profile.words)
    if claims.event is not None and profile.event is not None and claims.event != profile.event:
        # One side's "clash" is the other's "retaliation"; other kin types (an air strike or an attack told
        # as a clash) join where a place agrees; migration stories also where the wording does (returns and
        # deportations are told without a place as often as with one).
        pair = {claims.event, profile.event}
        kin = pair <= EXCHANGE_OF_FIRE
        similar = similarity >= UNTYPED_SIMILARITY
        joins = (pair <= FIGHTING and place > 0) or (pair <= MIGRATION and (place > 0 or similar))
        if not (kin or joins):
            return None
    place += _figure_score(claims, profile)
    if claims.event is None or profile.event is None:
        # No type to agree on: only a shared place and much shared wording will do.
        if place > 0 and (similarity >= 0.1 or place >= 2.5):
            return place + 4 * similarity
        return 4 * similarity if place == 0 and similarity >= UNTYPED_SIMILARITY else None
    return 1.0 + place + 4 * similarity


def choose_incident(
    claims: Claims, published: datetime, candidates: Iterable[IncidentProfile], gazetteer: Gazetteer
) -> int | None:
    """The id of the incident the report joins, or None to open a new one."""
    places = story_places(claims, gazetteer)
    primary = primary_places(claims, gazetteer)
    best: tuple[float, int] | None = None
    for profile in candidates:
        score = match_score(claims, places, published, profile, gazetteer, primary)
        if score is not None and score >= JOIN_THRESHOLD and (best is None or score > best[0]):
            best = (score, profile.id)
    return best[1] if best else None
