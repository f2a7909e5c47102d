"""Comparison: what a report's claims change or contradict in its incident. Pure, no I/O.

`detect_changes` runs one detector per claim type against the incident's stored claims:
- figures of one measure whose ranges stop overlapping: a conflict between sources, or a change when
  the same source revises it or a toll rises; vague amounts ("dozens") never contradict a number unless
  opposing sides say them;
- positions: one side asserts what another denies or opposes (conflict); an actor reversing itself
  (change);
- status: the incident moves forward on its axis (to be returned → returned);
- places: two sources put the same event (crossed at, attacked in) in places that cannot be one.
Each draft carries a dedupe key, so a repeat of a known conflict raises nothing new. Alert kinds come
from `kinds.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.incidents import kinds
from bot.models import AlertDraft, StoredClaim

#: Sides between which a difference of position is a conflict.
SIDES = frozenset({"pakistan", "afghanistan", "militant"})
STANCE_WORDS = {"asserts": "confirms it", "denies": "denies it", "opposes": "condemns it"}


@dataclass(frozen=True, slots=True)
class ReportMeta:
    """Provenance of the report being compared."""

    article_id: int
    url: str
    source: str
    published: datetime


def ranges_overlap(a_low: float, a_high: float | None, b_low: float, b_high: float | None) -> bool:
    """True when two ranges (an open `high` is unbounded) share a value."""
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
        {c.source_key for c in pool if ranges_overlap(c.low or 0.0, c.high, claim.low or 0.0, claim.high)}
        | {claim.source_key}
    )


def _figure_draft(
    kind: kinds.AlertKind,
    incident_id: int,
    old: StoredClaim,
    new: StoredClaim,
    pool: Sequence[StoredClaim] = (),
) -> AlertDraft:
    a, b = value_text(old.low, old.high, old.value), value_text(new.low, new.high, new.value)
    label = new.label or new.key
    sides = [_side(old, a), _side(new, b)]
    sides[0]["sources"] = str(_backing(pool, old))
    sides[1]["sources"] = str(_backing(pool, new))
    details: dict[str, object] = {"measure": label, "sides": sides}
    if kind is kinds.FIGURE_CHANGE:
        return AlertDraft(
            kind.name, incident_id, f"{kind.label}: {label} {a} → {b} ({_who(new)})", (old.evidence, new.evidence),
            f"{kind.name}:{incident_id}:{new.key}:{old.low}-{old.high}->{new.low}-{new.high}", details,
        )  # fmt: skip
    pair = "|".join(sorted((f"{old.low}-{old.high}", f"{new.low}-{new.high}")))
    return AlertDraft(
        kind.name, incident_id, f"{kind.label}: {label} — {_who(old)} {a} vs {_who(new)} {b}",
        (old.evidence, new.evidence), f"{kind.name}:{incident_id}:{new.key}:{pair}", details,
    )  # fmt: skip


def _figure_alert(incident_id: int, earlier: Sequence[StoredClaim], new: StoredClaim) -> AlertDraft | None:
    """The one alert (if any) a new figure raises against the earlier figures of its measure."""
    same_measure = [c for c in earlier if c.type == "figure" and c.key == new.key]
    if not same_measure:
        return None

    def agrees(c: StoredClaim) -> bool:
        return ranges_overlap(new.low or 0.0, new.high, c.low or 0.0, c.high)

    # 1. The same camp said it before: agreeing is corroboration; a new value is a revision.
    camp = [c for c in same_measure if _same_camp(c, new) and not (c.vague and not new.vague)]
    if camp:
        latest = camp[-1]
        raised_floor = latest.high is None and new.high is None and (new.low or 0) > (latest.low or 0) * 1.1
        if (agrees(latest) and not raised_floor) or new.vague:
            return None
        if latest.source_key == new.source_key or _hours_apart(latest, new) >= 1.0:
            return _figure_draft(kinds.FIGURE_CHANGE, incident_id, latest, new, same_measure)
    # 2. The other side says otherwise: a conflict (vague amounts count here, they are both sides' words).
    opposing = [c for c in same_measure if _opposing(c, new)]
    if opposing and not any(agrees(c) for c in opposing):
        return _figure_draft(kinds.FIGURE_CONFLICT, incident_id, opposing[-1], new, same_measure)
    if camp or opposing:
        return None
    # 3. Unattributed figures from other outlets: a toll that rose later is a change, else a conflict.
    others = [c for c in same_measure if not c.vague and not new.vague]
    if not others or any(agrees(c) for c in others):
        return None
    latest = others[-1]
    rising = new.key.startswith(("killed:", "injured:")) and (new.low or 0) > (latest.high or latest.low or 0)
    if rising and _hours_apart(latest, new) >= 1.0:
        return _figure_draft(kinds.FIGURE_CHANGE, incident_id, latest, new, same_measure)
    return _figure_draft(kinds.FIGURE_CONFLICT, incident_id, latest, new, same_measure)


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
                            kinds.POSITION_CHANGE.name,
                            incident_id,
                            f"{kinds.POSITION_CHANGE.label}: {claim.label} {STANCE_WORDS[old.value]}"
                            f" → now {STANCE_WORDS[claim.value]}",
                            (old.evidence, claim.evidence),
                            f"{kinds.POSITION_CHANGE.name}:{incident_id}:{claim.key}:{old.value}->{claim.value}",
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
                    kinds.POSITION_CONFLICT.name,
                    incident_id,
                    f"{kinds.POSITION_CONFLICT.label}: {old.label} {STANCE_WORDS[old.value]}; "
                    f"{claim.label} {STANCE_WORDS[claim.value]}",
                    (old.evidence, claim.evidence),
                    f"{kinds.POSITION_CONFLICT.name}:{incident_id}:{sides}",
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
                    kinds.STATUS_CHANGE.name,
                    incident_id,
                    f"{kinds.STATUS_CHANGE.label} ({axis}): {current.value} → {latest.value} ({latest.source})",
                    (current.evidence, latest.evidence),
                    f"{kinds.STATUS_CHANGE.name}:{incident_id}:{axis}:{latest.value}",
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
            kind = kinds.LOCATION_CHANGE if old.source_key == claim.source_key else kinds.LOCATION_CONFLICT
            pair = "|".join(sorted((old.value, claim.value)))
            drafts.append(
                AlertDraft(
                    kind.name,
                    incident_id,
                    f"{kind.label}: {claim.key} at {old.label} ({_who(old)}) vs {claim.label} ({_who(claim)})",
                    (old.evidence, claim.evidence),
                    f"{kind.name}:{incident_id}:{claim.key}:{pair}",
                    {"role": claim.key, "sides": [_side(old, old.label), _side(claim, claim.label)]},
                )
            )
            break
    return drafts
