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

from bot.extract import SEATS_OF_GOVERNMENT, Claims
from bot.extract.places import Gazetteer
from bot.models import AlertDraft, Evidence

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
SIDES = frozenset({"pakistan", "afghanistan", "militant"})
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
    primary: frozenset[str] = frozenset()
    figures: tuple[tuple[str, float, float | None], ...] = ()


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
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True, slots=True)
class ReportMeta:
    """Provenance of the report being compared."""

    article_id: int
    url: str
    source: str
    published: datetime


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
        if measure == f.measure and _overlap(f.low, f.high, low, high)
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


def _same_camp(old: StoredClaim, new: StoredClaim) -> bool:
    """The same source, or the same side speaking through another voice (ISPR and the Foreign Office)."""
    return old.source_key == new.source_key or bool(old.side and old.side == new.side)


def _opposing(old: StoredClaim, new: StoredClaim) -> bool:
    return old.side != new.side and {old.side, new.side} <= SIDES


def _backing(pool: Sequence[StoredClaim], claim: StoredClaim) -> int:
    """Independent sources behind a value: distinct voices (an official quoted by ten outlets is one)."""
    return len(
        {c.source_key for c in pool if _overlap(c.low or 0.0, c.high, claim.low or 0.0, claim.high)}
        | {claim.source_key}
    )


def _figure_draft(
    kind: str, incident_id: int, old: StoredClaim, new: StoredClaim, pool: Sequence[StoredClaim] = ()
) -> AlertDraft:
    a, b = value_text(old.low, old.high, old.value), value_text(new.low, new.high, new.value)
    label = new.label or new.key
    sides = [_side(old, a), _side(new, b)]
    sides[0]["sources"] = str(_backing(pool, old))
    sides[1]["sources"] = str(_backing(pool, new))
    details: dict[str, object] = {"measure": label, "sides": sides}
    if kind == "figure_change":
        return AlertDraft(
            kind, incident_id, f"Figure changed: {label} {a} → {b} ({_who(new)})", (old.evidence, new.evidence),
            f"figure_change:{incident_id}:{new.key}:{old.low}-{old.high}->{new.low}-{new.high}", details,
        )  # fmt: skip
    pair = "|".join(sorted((f"{old.low}-{old.high}", f"{new.low}-{new.high}")))
    return AlertDraft(
        kind, incident_id, f"Figures conflict: {label} — {_who(old)} {a} vs {_who(new)} {b}",
        (old.evidence, new.evidence), f"figure_conflict:{incident_id}:{new.key}:{pair}", details,
    )  # fmt: skip


def _figure_alert(incident_id: int, earlier: Sequence[StoredClaim], new: StoredClaim) -> AlertDraft | None:
    """The one alert (if any) a new figure raises against the earlier figures of its measure."""
    same_measure = [c for c in earlier if c.type == "figure" and c.key == new.key]
    if not same_measure:
        return None

    def agrees(c: StoredClaim) -> bool:
        return _overlap(new.low or 0.0, new.high, c.low or 0.0, c.high)

    # 1. The same camp said it before: agreeing is corroboration; a new value is a revision.
    camp = [c for c in same_measure if _same_camp(c, new) and not (c.vague and not new.vague)]
    if camp:
        latest = camp[-1]
        raised_floor = latest.high is None and new.high is None and (new.low or 0) > (latest.low or 0) * 1.1
        if (agrees(latest) and not raised_floor) or new.vague:
            return None
        if latest.source_key == new.source_key or _hours_apart(latest, new) >= 1.0:
            return _figure_draft("figure_change", incident_id, latest, new, same_measure)
    # 2. The other side says otherwise: a conflict (vague amounts count here, they are both sides' words).
    opposing = [c for c in same_measure if _opposing(c, new)]
    if opposing and not any(agrees(c) for c in opposing):
        return _figure_draft("figure_conflict", incident_id, opposing[-1], new, same_measure)
    if camp or opposing:
        return None
    # 3. Unattributed figures from other outlets: a toll that rose later is a change, else a conflict.
    others = [c for c in same_measure if not c.vague and not new.vague]
    if not others or any(agrees(c) for c in others):
        return None
    latest = others[-1]
    rising = new.key.startswith(("killed:", "injured:")) and (new.low or 0) > (latest.high or latest.low or 0)
    if rising and _hours_apart(latest, new) >= 1.0:
        return _figure_draft("figure_change", incident_id, latest, new, same_measure)
    return _figure_draft("figure_conflict", incident_id, latest, new, same_measure)


def _figure_alerts(
    incident_id: int, earlier: Sequence[StoredClaim], new: Sequence[StoredClaim]
) -> list[AlertDraft]:
    drafts = [_figure_alert(incident_id, earlier, claim) for claim in new]
    return [d for d in drafts if d is not None]


def _side(claim: StoredClaim, value: str) -> dict[str, str]:
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
    """Two reports that each put one event (same role) in one place, and the places cannot be one.

    Incidents spread over several places (a night of firing at many posts) name several places for a
    role; those are never compared, nor are places of a role a report names more than once.
    """
    drafts: list[AlertDraft] = []
    by_article: dict[tuple[int, str], set[str]] = {}
    for c in [*earlier, *new]:
        by_article.setdefault((c.article_id, c.key), set()).add(c.value)
    for claim in new:
        if len(by_article[(claim.article_id, claim.key)]) != 1:
            continue
        for old in reversed(earlier):
            if old.key != claim.key or len(by_article[(old.article_id, old.key)]) != 1:
                continue
            if compatible(old.value, claim.value):
                break
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
