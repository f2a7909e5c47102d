"""Grouping: which incident a report belongs to. Pure, no I/O.

`choose_incident` lets a report join a recent incident of the same type whose places agree (same place
at another precision, or close by); a story 150 km away, or of another type, stays its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from bot.extract import SEATS_OF_GOVERNMENT
from bot.extract.claims import Claims
from bot.extract.places import Gazetteer
from bot.incidents.compare import ranges_overlap
from bot.models import IncidentProfile

WINDOW = timedelta(days=5)
#: Incidents a report is compared with at most (the most recently reported first).
MAX_CANDIDATES = 200
#: Lead words and figures an incident's profile keeps (the first words, the latest figures).
MAX_WORDS = 400
MAX_FIGURES = 60
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
#: How an alert names an incident type.
INCIDENT_TYPE_LABELS = {
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


def joinable_types(incident_type: str) -> frozenset[str]:
    """Incident types a report of type `incident_type` may join (itself and its kin)."""
    kin = {incident_type}
    for family in (EXCHANGE_OF_FIRE, FIGHTING, MIGRATION):
        if incident_type in family:
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
    if (
        claims.incident_type is not None
        and profile.incident_type is not None
        and claims.incident_type != profile.incident_type
    ):
        # One side's "clash" is the other's "retaliation"; other kin types (an air strike or an attack told
        # as a clash) join where a place agrees; migration stories also where the wording does (returns and
        # deportations are told without a place as often as with one).
        pair = {claims.incident_type, profile.incident_type}
        kin = pair <= EXCHANGE_OF_FIRE
        similar = similarity >= UNTYPED_SIMILARITY
        joins = (pair <= FIGHTING and place > 0) or (pair <= MIGRATION and (place > 0 or similar))
        if not (kin or joins):
            return None
    place += _figure_score(claims, profile)
    if claims.incident_type is None or profile.incident_type is None:
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


def main_place(claims: Claims, gazetteer: Gazetteer) -> str | None:
    """The incident's place: the finest place its lead names most."""
    counts = Counter(p.place_id for p in claims.places if p.in_lead or p.role)
    if not counts:
        return None
    return min(counts, key=lambda pid: (gazetteer.precision(pid), -counts[pid]))


def grow_profile(profile: IncidentProfile, claims: Claims, gazetteer: Gazetteer) -> IncidentProfile:
    """The incident's profile once this report has joined: its places, lead words and figures added."""
    words = list(dict.fromkeys([*profile.words_in_order, *sorted(claims.words)]))[:MAX_WORDS]
    figures = [*profile.figures, *((f.measure, f.low, f.high) for f in claims.figures if not f.vague)]
    return replace(
        profile,
        places=profile.places | story_places(claims, gazetteer),
        primary=profile.primary | primary_places(claims, gazetteer),
        words=frozenset(words),
        words_in_order=tuple(words),
        figures=tuple(figures[-MAX_FIGURES:]),
    )
