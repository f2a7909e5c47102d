"""Incidents: which incident a report belongs to, and what its claims change or contradict. Pure, no I/O.

Grouping (`choose_incident`): a report joins a recent incident of the same type whose places agree
(same place at another precision, or close by); a story 150 km away, or of another type, stays its own.
Comparison (`detect_changes`): the report's claims against the incident's stored claims:
- figures of one measure whose ranges stop overlapping: a conflict between sources, or a change when
  the same source revises it or a toll rises; vague amounts ("dozens") never contradict a number unless
  opposing sides say them;
- statements: one side asserts what another denies or opposes (conflict); an actor reversing itself
  (change);
- status: the incident moves forward on its axis (to be returned → returned);
- places: two sources put the same event (crossed at, attacked in) in places that cannot be one.
Each draft carries a dedupe key, so a repeat of a known conflict raises nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.extract import Claims
from bot.extract.places import Gazetteer
from bot.models import AlertDraft, Evidence

WINDOW = timedelta(days=4)
JOIN_THRESHOLD = 1.0
FAR_APART_KM = 150.0
SAME_PLACE_KM = 60.0
#: Incident types that can be one event told from two sides.
FIGHTING = frozenset({"clash", "retaliation", "infiltration", "airstrike", "attack"})
#: Sides between which a difference of position is a conflict.
SIDES = frozenset({"pakistan", "afghanistan", "militant", "international"})
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
STANCE_WORDS = {"asserts": "confirms it", "denies": "denies it", "opposes": "condemns it"}


@dataclass(frozen=True, slots=True)
class IncidentProfile:
    """What grouping needs to know of a stored incident."""

    id: int
    event: str | None
    last_published: datetime
    places: frozenset[str]
    words: frozenset[str]


@dataclass(frozen=True, slots=True)
class StoredClaim:
    """A claim already attached to the incident, with its provenance."""

    type: str
    key: str
    value: str
    low: float | None
    high: float | None
    article_id: int
    source: str
    source_key: str
    side: str
    evidence: Evidence
    vague: bool = False
    label: str = ""


@dataclass(frozen=True, slots=True)
class ReportMeta:
    """Provenance of the report being compared."""

    article_id: int
    url: str
    source: str
    published: datetime


def story_places(claims: Claims, gazetteer: Gazetteer) -> frozenset[str]:
    """Specific places (finer than a province) the story itself puts the incident in."""
    return frozenset(
        p.place_id
        for p in claims.places
        if gazetteer.is_specific(p.place_id) and (p.in_lead or p.role is not None)
    )


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


def match_score(
    claims: Claims,
    places: frozenset[str],
    published: datetime,
    profile: IncidentProfile,
    gazetteer: Gazetteer,
) -> float | None:
    """How well a report fits an incident; None when it cannot be the same incident."""
    if abs(published - profile.last_published) > WINDOW:
        return None
    place = _place_score(places, profile.places, gazetteer)
    if place is None:
        return None
    if claims.event is not None and profile.event is not None and claims.event != profile.event:
        # One side's "clash" is the other's "retaliation": kin types join only where a place agrees.
        if not ({claims.event, profile.event} <= FIGHTING and place > 0):
            return None
    similarity = _jaccard(claims.words, profile.words)
    if claims.event is None or profile.event is None:
        # No type to agree on: only a shared place and much shared wording will do.
        return place + 4 * similarity if place > 0 and similarity >= 0.25 else None
    return 1.0 + place + 4 * similarity


def choose_incident(
    claims: Claims, published: datetime, candidates: Iterable[IncidentProfile], gazetteer: Gazetteer
) -> int | None:
    """The id of the incident the report joins, or None to open a new one."""
    places = story_places(claims, gazetteer)
    best: tuple[float, int] | None = None
    for profile in candidates:
        score = match_score(claims, places, published, profile, gazetteer)
        if score is not None and score >= JOIN_THRESHOLD and (best is None or score > best[0]):
            best = (score, profile.id)
    return best[1] if best else None


# --- comparison --------------------------------------------------------------------------------------


def _overlap(a_low: float, a_high: float | None, b_low: float, b_high: float | None) -> bool:
    return (a_high is None or b_low <= a_high) and (b_high is None or a_low <= b_high)


def value_text(low: float | None, high: float | None, phrase: str = "") -> str:
    """A figure as people read it."""
    if phrase:
        return phrase
    if low is None:
        return "?"
    if high is None:
        return f"at least {low:g}"
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def _who(claim: StoredClaim) -> str:
    return claim.source_key if claim.source_key != claim.source else claim.source


def detect_changes(
    incident_id: int,
    existing: Sequence[StoredClaim],
    new: Sequence[StoredClaim],
    meta: ReportMeta,
    compatible: Callable[[str, str], bool],
) -> list[AlertDraft]:
    """Alerts the report's claims (`new`) raise against the incident's earlier claims (`existing`)."""
    drafts: list[AlertDraft] = []
    earlier = [c for c in existing if c.article_id != meta.article_id]
    drafts += _figure_alerts(incident_id, earlier, [c for c in new if c.type == "figure"])
    drafts += _position_alerts(
        incident_id,
        [c for c in existing if c.type == "position"],
        [c for c in new if c.type == "position"],
        meta,
    )
    drafts += _status_alerts(
        incident_id, [c for c in existing if c.type == "status"], [c for c in new if c.type == "status"]
    )
    drafts += _place_alerts(
        incident_id,
        [c for c in earlier if c.type == "place"],
        [c for c in new if c.type == "place"],
        compatible,
    )
    seen: set[str] = set()
    return [d for d in drafts if not (d.dedupe_key in seen or seen.add(d.dedupe_key))]  # type: ignore[func-returns-value]


def _hours_apart(a: StoredClaim, b: StoredClaim) -> float:
    try:
        first, second = (
            datetime.fromisoformat(a.evidence.published),
            datetime.fromisoformat(b.evidence.published),
        )
    except ValueError:
        return 0.0
    return abs((second - first).total_seconds()) / 3600


def _is_revision(old: StoredClaim, new: StoredClaim, opposing: bool) -> bool:
    """A later figure from the same camp (same source, or same side hours later), or a toll that rose."""
    if opposing:
        return False
    later = _hours_apart(old, new) >= 1.0
    if old.source_key == new.source_key:
        return True
    if old.side and old.side == new.side:
        return later
    rising = new.key.startswith(("killed:", "injured:")) and (new.low or 0) > (old.high or old.low or 0)
    return rising and later


def _figure_alerts(
    incident_id: int, earlier: Sequence[StoredClaim], new: Sequence[StoredClaim]
) -> list[AlertDraft]:
    drafts: list[AlertDraft] = []
    for claim in new:
        for old in reversed(earlier):  # the latest earlier value first
            if old.type != "figure" or old.key != claim.key:
                continue
            if _overlap(claim.low or 0.0, claim.high, old.low or 0.0, old.high):
                break  # agrees with the latest word on it
            opposing = old.side != claim.side and {old.side, claim.side} <= SIDES
            if (old.vague or claim.vague) and not opposing:
                continue
            a, b = value_text(old.low, old.high, old.value), value_text(claim.low, claim.high, claim.value)
            label = claim.label or claim.key
            if _is_revision(old, claim, opposing):
                drafts.append(
                    AlertDraft(
                        "figure_change",
                        incident_id,
                        f"Figure changed: {label} {a} → {b} ({_who(claim)})",
                        (old.evidence, claim.evidence),
                        f"figure_change:{incident_id}:{claim.key}:{old.low}-{old.high}->{claim.low}-{claim.high}",
                        {"measure": label, "sides": [_side(old, a), _side(claim, b)]},
                    )
                )
            else:
                pair = "|".join(sorted((f"{old.low}-{old.high}", f"{claim.low}-{claim.high}")))
                drafts.append(
                    AlertDraft(
                        "figure_conflict",
                        incident_id,
                        f"Figures conflict: {label} — {_who(old)} {a} vs {_who(claim)} {b}",
                        (old.evidence, claim.evidence),
                        f"figure_conflict:{incident_id}:{claim.key}:{pair}",
                        {"measure": label, "sides": [_side(old, a), _side(claim, b)]},
                    )
                )
            break  # one alert per new figure
    return drafts


def _side(claim: StoredClaim, value: str) -> dict[str, object]:
    return {"label": _who(claim), "value": value, "source": claim.source, "evidence": claim.evidence.url}


def _position_alerts(
    incident_id: int, existing: Sequence[StoredClaim], new: Sequence[StoredClaim], meta: ReportMeta
) -> list[AlertDraft]:
    drafts: list[AlertDraft] = []
    pool = [c for c in existing if c.article_id != meta.article_id]
    for index, claim in enumerate(new):
        for old in [*pool, *new[:index]]:
            if old.key == claim.key:
                reversed_ = {old.value, claim.value} == {
                    "asserts",
                    "denies",
                } and old.article_id != claim.article_id
                if reversed_:
                    drafts.append(
                        AlertDraft(
                            "position_change",
                            incident_id,
                            f"Position changed: {claim.label} {STANCE_WORDS[old.value]} → now {STANCE_WORDS[claim.value]}",
                            (old.evidence, claim.evidence),
                            f"position_change:{incident_id}:{claim.key}:{old.value}->{claim.value}",
                            {
                                "actor": claim.label,
                                "sides": [_side(old, old.value), _side(claim, claim.value)],
                            },
                        )
                    )
                continue
            if old.side == claim.side or not {old.side, claim.side} <= SIDES:
                continue
            if "asserts" not in (old.value, claim.value) or old.value == claim.value:
                continue
            sides = "|".join(sorted((old.side, claim.side)))
            drafts.append(
                AlertDraft(
                    "position_conflict",
                    incident_id,
                    f"Positions conflict: {old.label} {STANCE_WORDS[old.value]}; {claim.label} {STANCE_WORDS[claim.value]}",
                    (old.evidence, claim.evidence),
                    f"position_conflict:{incident_id}:{sides}",
                    {"sides": [_side(old, old.value), _side(claim, claim.value)]},
                )
            )
            break
    return drafts


def _status_alerts(
    incident_id: int, existing: Sequence[StoredClaim], new: Sequence[StoredClaim]
) -> list[AlertDraft]:
    drafts: list[AlertDraft] = []
    for axis in sorted({c.key for c in new}):
        before = [c for c in existing if c.key == axis]
        if not before:
            continue
        current = max(before, key=lambda c: c.low or 0)
        latest = max((c for c in new if c.key == axis), key=lambda c: c.low or 0)
        if (latest.low or 0) > (current.low or 0):
            drafts.append(
                AlertDraft(
                    "status_change",
                    incident_id,
                    f"Status changed ({axis}): {current.value} → {latest.value} ({latest.source})",
                    (current.evidence, latest.evidence),
                    f"status_change:{incident_id}:{axis}:{latest.value}",
                    {"axis": axis, "sides": [_side(current, current.value), _side(latest, latest.value)]},
                )
            )
    return drafts


def _place_alerts(
    incident_id: int,
    earlier: Sequence[StoredClaim],
    new: Sequence[StoredClaim],
    compatible: Callable[[str, str], bool],
) -> list[AlertDraft]:
    """Two places for one event (same role) that cannot be one place."""
    drafts: list[AlertDraft] = []
    for claim in new:
        for old in earlier:
            if old.key != claim.key or compatible(old.value, claim.value):
                continue
            kind = "location_change" if old.source_key == claim.source_key else "location_conflict"
            pair = "|".join(sorted((old.value, claim.value)))
            title = "Location changed" if kind == "location_change" else "Locations conflict"
            drafts.append(
                AlertDraft(
                    kind,
                    incident_id,
                    f"{title}: {claim.key} at {old.label} ({_who(old)}) vs {claim.label} ({_who(claim)})",
                    (old.evidence, claim.evidence),
                    f"{kind}:{incident_id}:{claim.key}:{pair}",
                    {"role": claim.key, "sides": [_side(old, old.label), _side(claim, claim.label)]},
                )
            )
            break
    return drafts
