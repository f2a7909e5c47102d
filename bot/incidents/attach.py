"""What a report brings to its incident: its claims as the incident keeps them, and the first alert
of an incident it opens. Pure, no I/O (the flow in `bot/cycle.py` reads and writes the store).
"""

from __future__ import annotations

from dataclasses import replace

from bot.extract.claims import Claims
from bot.extract.knowledge import Knowledge
from bot.incidents import kinds
from bot.incidents.grouping import INCIDENT_TYPE_LABELS
from bot.models import AlertDraft, Evidence, Report, StoredClaim, iso_utc

#: Roles whose place two reports can contradict; "attacked in" is left out: a night of fighting has many.
COMPARED_ROLES = frozenset({"crossed", "returned", "closed"})


def report_claims(claims: Claims, report: Report, knowledge: Knowledge) -> list[StoredClaim]:
    """The report's claims in the shape the comparison and the store use."""
    published = iso_utc(report.published)

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


def with_incident_sides(new: list[StoredClaim], existing: list[StoredClaim]) -> list[StoredClaim]:
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


def opening_alert(incident_id: int, place: str | None, claims: Claims, report: Report) -> AlertDraft:
    """The first alert of an incident: what, where, the headline figure, quoting the lead."""
    what = INCIDENT_TYPE_LABELS.get(claims.incident_type or "", "incident")
    where = f" in {place}" if place else ""
    figures = [f for f in claims.figures if not f.vague and not f.measure.startswith("count:")]
    headline = figures[0] if figures else None
    if headline is not None:
        start, end = headline.sentence
        quote = claims.sentence(start, end)
        figure = f" — {headline.phrase} {headline.label.split(' (of')[0]}"
    else:
        quote = claims.sentence(0, len(report.title.strip()))
        figure = ""
    evidence = Evidence(report.url, report.source, iso_utc(report.published), quote)
    return AlertDraft(
        kinds.NEW_INCIDENT.name,
        incident_id,
        f"New incident: {what}{where}{figure}: \u201c{report.title.strip()}\u201d ({report.source})",
        (evidence,),
        f"{kinds.NEW_INCIDENT.name}:{incident_id}",
        {"place": place, "incident_type": claims.incident_type},
    )
