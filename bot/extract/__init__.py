"""Claims of one report: figures, places, official positions, status, incident type and scope.

`extract_claims(title, text, knowledge)` is the sole public entry; it is pure (no I/O). Every claim keeps
its sentence's character offsets into `Claims.text` (the title, a blank line, then the body), so every
alert can quote its source. A report may be a whole article or a feed's title and two-line summary.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bot.extract.claims import Claims, FigureClaim, PlaceClaim, Statement, StatusClaim
from bot.extract.document import split_sentences, story_text
from bot.extract.events import EVENT_CUES, classify_event, find_status, is_background, mentions_border
from bot.extract.figures import extract_figures
from bot.extract.knowledge import Knowledge
from bot.extract.places import Gazetteer
from bot.extract.positions import ActorIndex, find_statements

#: Capitals that stand for governments in news copy ("Islamabad says"), not for where things happen.
SEATS_OF_GOVERNMENT = frozenset(
    {"islamabad", "kabul", "doha", "rawalpindi", "tehran", "washington", "beijing"}
)
#: A sentence whose places all lie farther than this from the headline's is about somewhere else.
ELSEWHERE_KM = 150.0
#: Sentences of the body (after the title) that count as the lead.
LEAD_SENTENCES = 3
_EVENT_FAMILY = {
    "crossed": "crossed",
    "refuge": "crossed",
    "fled": "crossed",
    "surrendered": "crossed",
    "killed": "killed",
    "injured": "injured",
    "returned": "returned",
    "deported": "deported",
    "detained": "detained",
    "arrested": "detained",
    "captured": "detained",
    "displaced": "displaced",
    "missing": "missing",
}
_SIDE_WORDS = {
    "afghan": "afghan",
    "afghanistan": "afghan",
    "pakistani": "pakistani",
    "pakistan": "pakistani",
    "taliban": "taliban",
    "us": "us",
    "american": "us",
    "nato": "nato",
}
_STATUS_AXES_FOR = {
    "crossing": {"custody"},
    "clash": {"fighting", "border"},
    "retaliation": {"fighting"},
    "infiltration": {"fighting"},
    "airstrike": {"fighting"},
    "closure": {"border"},
    "deportation": {"deportation", "border"},
}
# "1,000 Afghans a day": a rate, measured apart from totals.
_PER_DAY = re.compile(r"\W*(\w+\W+){0,3}(a|per|each|every) day\b|\W*(\w+\W+){0,3}daily\b", re.IGNORECASE)
# Words right after a figure that name its people outright ("46 people"), unlike a bare toll ("rose to 25").
_EXPLICIT_PEOPLE = re.compile(
    r"\W*(\w+\W+){0,2}(people|persons|individuals|civilians|others|lives)\b", re.IGNORECASE
)
# Sentences that answer another party about the incident ("dismissed the Afghan denial ... confirmed").
_ANSWER = re.compile(r"\b(denial|denied|is confirmed|\bconfirmed\W*$)", re.IGNORECASE)
_AFGHAN_WORDS = re.compile(r"\b(afghan|afghans|afghanistan|kabul)\b", re.IGNORECASE)
_PAKISTAN_WORDS = re.compile(r"\b(pakistan|pakistani|pakistanis|pak|islamabad)\b", re.IGNORECASE)


_STOP = frozenset(
    "the a an of in on at to for and or but with by from as is are was were be been has have had it its "
    "this that these those after before over into about said says say their they he she his her who which "
    "will would not no more than also than up out new".split()
)
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)


def _words(text: str) -> frozenset[str]:
    return frozenset(w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP)


def extract_claims(title: str, body: str, knowledge: Knowledge) -> Claims:
    """All claims of a report (title + body); pure."""
    text = f"{title.strip()}\n\n{body}"
    clean = story_text(text)
    spans = split_sentences(clean)
    title_end = len(title.strip())
    body_spans = [s for s in spans if s[0] > title_end]
    lead_spans = [s for s in spans if s[0] <= title_end] + [
        s for s in body_spans if " ".join(clean[s[0] : s[1]].split()) != " ".join(title.split())
    ][:LEAD_SENTENCES]
    current = [s for s in spans if not is_background(clean[s[0] : s[1]])]
    current = _about_elsewhere(clean, current, lead_spans[:2], knowledge.gazetteer)
    lead_text = " ".join(clean[a:b] for a, b in lead_spans)
    event = classify_event(title, " ".join(clean[a:b] for a, b in lead_spans[1:]))
    places = _places(clean, knowledge.gazetteer, current, lead_spans, set(lead_spans[:2]))
    statements = tuple(find_statements(clean, _relevant(clean, current, lead_spans, event), knowledge.actors))
    figures = _figures(clean, current, statements, knowledge.actors)
    axes = _STATUS_AXES_FOR.get(event or "", set())
    status = tuple(
        StatusClaim(m.axis, m.state, m.rank, m.start, m.end)
        for m in find_status(clean, current)
        if m.axis in axes
    )
    in_scope = _in_scope(clean, lead_text, places, statements, knowledge)
    return Claims(text, event, in_scope, figures, places, statements, status, _words(lead_text))


def _about_elsewhere(
    text: str, spans: list[tuple[int, int]], primary: list[tuple[int, int]], gazetteer: Gazetteer
) -> list[tuple[int, int]]:
    """`spans` without sentences that are about somewhere else: a sentence naming specific places none of
    which can be the place the headline and first line give ("a day after the fighting in Kurram" in a
    story about Chaman) is context, not the story."""
    headline_places = {
        m.place_id
        for a, b in primary
        for m in gazetteer.find(text[a:b])
        if gazetteer.is_specific(m.place_id) and m.place_id not in SEATS_OF_GOVERNMENT
    }
    if not headline_places:
        return spans
    kept = []
    for start, end in spans:
        named = {m.place_id for m in gazetteer.find(text[start:end]) if gazetteer.is_specific(m.place_id)}
        named -= SEATS_OF_GOVERNMENT
        if (start, end) in primary or not named:
            kept.append((start, end))
        elif any(gazetteer.compatible(a, b, ELSEWHERE_KM) for a in named for b in headline_places):
            kept.append((start, end))
    return kept


def _relevant(
    text: str, current: list[tuple[int, int]], lead: list[tuple[int, int]], event: str | None
) -> list[tuple[int, int]]:
    """Sentences that speak of this incident: the lead, and those with the incident type's cue words."""
    cue = EVENT_CUES.get(event or "")
    lead_set = set(lead)
    return [
        s
        for s in current
        if s in lead_set
        or (cue is not None and cue.search(text[s[0] : s[1]]))
        or _ANSWER.search(text[s[0] : s[1]])
    ]


def _places(
    text: str,
    gazetteer: Gazetteer,
    current: list[tuple[int, int]],
    lead: list[tuple[int, int]],
    primary: set[tuple[int, int]],
) -> tuple[PlaceClaim, ...]:
    """Story places: those in current (non-background) sentences; `primary` ones are in the title or first line."""
    lead_set = set(lead)
    found: list[PlaceClaim] = []
    for start, end in current:
        for mention in gazetteer.find(text[start:end]):
            found.append(
                PlaceClaim(
                    mention.place_id,
                    mention.name,
                    mention.role,
                    start + mention.start,
                    start + mention.end,
                    (start, end) in lead_set,
                    (start, end) in primary,
                    (start, end),
                )
            )
    return tuple(found)


_ADJECTIVES = {"afghan": "Afghan", "pakistani": "Pakistani", "taliban": "Taliban", "us": "US", "nato": "NATO"}
_PLURALS = {
    "person": "people",
    "family": "families",
    "child": "children",
    "man": "men",
    "woman": "women",
    "policeman": "policemen",
    "militia": "militias",
    "personnel": "personnel",
    "police": "police",
}


def _label(side: str, counted: str, event: str) -> str:
    """How a measure reads: "Pakistani soldiers killed", "Afghan members crossed"."""
    noun = _PLURALS.get(counted, counted if counted.endswith("s") else counted + "s")
    words = [_ADJECTIVES.get(side, side), noun, event if event != "count" else ""]
    return " ".join(w for w in words if w)


def _side(modifiers: tuple[str, ...]) -> str:
    for word in modifiers:
        if word in _SIDE_WORDS:
            return _SIDE_WORDS[word]
    return ""


def _figures(
    text: str, current: list[tuple[int, int]], statements: tuple[Statement, ...], actors: ActorIndex
) -> tuple[FigureClaim, ...]:
    """Incident figures: counts of people in current sentences, with what they measure and who says so."""
    claims: list[FigureClaim] = []
    speaker_of = {(s.start, s.end): s.actor_id for s in statements}
    for start, end in current:
        sentence = text[start:end]
        figures = extract_figures(sentence)
        for figure in figures:
            if figure.background or figure.time_cue or figure.category == "other":
                continue
            if figure.phrase.lower() in ("a", "an") and figure.event not in ("killed", "injured"):
                continue  # "an Afghan spokesperson" is a person, not a count
            event = _EVENT_FAMILY.get(figure.event or "", "count")
            parent_figure = figures[figure.part_of] if figure.part_of is not None else None
            side = _side(figure.modifiers) or (_side(parent_figure.modifiers) if parent_figure else "")
            measure = f"{event}:{figure.category}:{side}"
            label = _label(side, figure.counted, event)
            if _PER_DAY.match(sentence[figure.end :]):
                measure += ":per-day"  # a daily rate is not the running total
                label += " a day"
            if parent_figure is not None:
                measure += f":{figure.counted}"
                label = f"{label} (of {parent_figure.phrase})"
            actor = None
            if figure.attribution:
                named = actors.find(figure.attribution)
                actor = named[0][0].id if named else None
            actor = actor or speaker_of.get((start, end))
            vague = not any(ch.isdigit() for ch in figure.phrase) and not re.search(
                r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\w+teen|\w+ty)\b",
                figure.phrase,
                re.IGNORECASE,
            )
            implicit = figure.counted == "person" and not _EXPLICIT_PEOPLE.match(sentence[figure.end :])
            claims.append(
                FigureClaim(
                    measure,
                    label,
                    figure.low,
                    figure.high,
                    figure.phrase,
                    vague,
                    actor,
                    start + figure.start,
                    start + figure.end,
                    (start, end),
                    figure.counted,
                    implicit,
                )
            )
    return _settle_figures(claims)


def _settle_figures(claims: list[FigureClaim]) -> tuple[FigureClaim, ...]:
    """One report's figures made consistent: a side-less figure takes the report's only side for that
    measure ("23 soldiers killed" in the title is the body's "23 Pakistani soldiers"), and of a toll
    only the highest count stays ("25 killed, after two wounded soldiers died": two is a part)."""
    claims = _adopt_categories(claims)
    sides: dict[str, set[str]] = {}
    for claim in claims:
        event, category, side = claim.measure.split(":")[:3]
        if side:
            sides.setdefault(f"{event}:{category}", set()).add(side)
    settled: list[FigureClaim] = []
    for claim in claims:
        parts = claim.measure.split(":")
        known = sides.get(f"{parts[0]}:{parts[1]}", set())
        if not parts[2] and len(known) == 1 and len(parts) == 3:
            side = next(iter(known))
            claim = replace(
                claim, measure=f"{parts[0]}:{parts[1]}:{side}", label=_label(side, claim.counted, parts[0])
            )
        settled.append(claim)
    tolls = [c for c in settled if c.measure.startswith(("killed:", "injured:")) and not c.vague]

    def kind(c: FigureClaim) -> str:
        return ":".join(c.measure.split(":")[:2])

    return tuple(
        c
        for c in settled
        if not any(kind(o) == kind(c) and c.high is not None and o.low > c.high for o in tolls)
    )


def _adopt_categories(claims: list[FigureClaim]) -> list[FigureClaim]:
    """A toll with no noun ("the toll rose to 25") counts what the report's other figures count: those of
    its event if any, else all of them, when they count one kind of people."""
    out = []
    for claim in claims:
        event, category = claim.measure.split(":")[:2]
        if claim.implicit and category == "civilian":
            named = [c for c in claims if not c.implicit]
            same_event = {c.measure for c in named if c.measure.startswith(f"{event}:")}
            if len(same_event) == 1:
                measure = next(iter(same_event))
                model = next(c for c in named if c.measure == measure)
                claim = replace(claim, measure=measure, label=model.label, counted=model.counted)
            else:
                kinds = {tuple(c.measure.split(":")[1:3]) for c in named}
                if len(kinds) == 1:
                    kind, side = next(iter(kinds))
                    noun = {"security": "soldier", "militant": "militant", "migrant": "refugee"}.get(
                        kind, "person"
                    )
                    claim = replace(
                        claim, measure=f"{event}:{kind}:{side}", label=_label(side, noun, event), counted=noun
                    )
        out.append(claim)
    return out


def _in_scope(
    text: str,
    lead: str,
    places: tuple[PlaceClaim, ...],
    statements: tuple[Statement, ...],
    knowledge: Knowledge,
) -> bool:
    """A border incident: the border is named, or both Afghanistan's and Pakistan's sides appear."""
    if mentions_border(lead):
        return True
    gazetteer = knowledge.gazetteer
    if any(p.in_lead and gazetteer.places[p.place_id].kind == "crossing" for p in places):
        return True  # a border crossing is the border
    sides: set[str] = set()
    for place in places:
        country = knowledge.gazetteer.country(place.place_id)
        if country in ("pakistan", "afghanistan"):
            sides.add(country)
    for actor, _, _ in knowledge.actors.find(lead):
        if actor.side in ("pakistan", "afghanistan"):
            sides.add(actor.side)
    stripped = lead
    for actor, start, end in knowledge.actors.find(lead):
        if actor.side not in ("pakistan", "afghanistan"):
            stripped = stripped[:start] + " " * (end - start) + stripped[end:]
    if _AFGHAN_WORDS.search(stripped):
        sides.add("afghanistan")
    if _PAKISTAN_WORDS.search(stripped):
        sides.add("pakistan")
    return sides >= {"pakistan", "afghanistan"}
