"""Official positions: who said what about the incident, and whether they assert, deny or oppose it.

An attributed statement is an actor (from `bot/data/actors.yaml`, aliases and spelling variants matched in
one pass), a speech verb (said, confirmed, denied, rejected, dismissed, claimed, condemned...), the
sentence it stands in, and its stance toward the incident:
- `asserts`: says it happened / confirms / justifies it;
- `denies`: says it did not happen ("not true", "denied", "rejected as baseless");
- `opposes`: condemns or objects to it (it happened, but they are against it).
Rejecting someone else's denial ("dismissed the Afghan denial") is asserting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.extract.claims import Statement
from bot.extract.lexicon import Lexicon


@dataclass(frozen=True, slots=True)
class Actor:
    """An official actor."""

    id: str
    name: str
    side: str
    kind: str
    member_of: str | None


_VERBS = re.compile(
    r"\b(said|says|saying|say|told|tells|stated|states|confirmed|confirms|confirming|denied|denies|denying|"
    r"deny|rejected|rejects|rejecting|dismissed|dismisses|claimed|claims|claiming|insisted|insists|"
    r"announced|announces|reported|reports|condemned|condemns|condemning|decried|decries|denounced|"
    r"denounces|criticised|criticized|accused|accuses|urged|urges|warned|warns|vowed|vows|called|calls|"
    r"added|noted|acknowledged|admitted|according to)\b",
    re.IGNORECASE,
)
_DENY_VERBS = frozenset(
    {"denied", "denies", "denying", "deny", "rejected", "rejects", "rejecting", "dismissed", "dismisses"}
)
_OPPOSE_VERBS = frozenset(
    {
        "condemned",
        "condemns",
        "condemning",
        "decried",
        "decries",
        "denounced",
        "denounces",
        "criticised",
        "criticized",
        "accused",
        "accuses",
        "urged",
        "urges",
        "warned",
        "warns",
    }
)
_NEGATION = re.compile(
    r"\b(not true|untrue|baseless|false|fabricated|propaganda|unfounded|no truth|never happened|"
    r"did not|didn't|has not|have not|had not|hasn't|haven't|no (\w+ ){0,3}(have|has|had|was|were)|"
    r"not (sufficiently|\w+ing)|is not|are not|was not|were not)\b",
    re.IGNORECASE,
)
_REBUTTAL = re.compile(
    r"\b(denial|denials|those claims|the claims|these claims|such claims|allegations?|accusations?)\b",
    re.IGNORECASE,
)
_GENERIC_SPEAKER = re.compile(
    r"\b(the statement|the army|the military|the media wing|the ministry|the spokesman|the spokesperson|"
    r"the foreign office|the government|it)\s*$",
    re.IGNORECASE,
)


class ActorIndex:
    """Actors by id and a lexicon over their names."""

    def __init__(self, entries: Iterable[Mapping[str, Any]]) -> None:
        self.actors: dict[str, Actor] = {}
        self._lexicon = Lexicon()
        for entry in entries:
            actor = Actor(
                id=str(entry["id"]),
                name=str(entry["name"]),
                side=str(entry.get("side", "other")),
                kind=str(entry.get("kind", "government")),
                member_of=entry.get("member_of"),
            )
            self.actors[actor.id] = actor
            self._lexicon.add(
                actor.id, [actor.name, *(entry.get("aliases") or [])], bool(entry.get("case_sensitive"))
            )
        for key, name, side in _COUNTRY_GOVERNMENT.values():
            self.actors.setdefault(key, Actor(key, name, side, "government", None))

    def organisation(self, actor_id: str) -> str:
        """The organisation a person speaks for (the actor itself when it is one)."""
        actor = self.actors.get(actor_id)
        if actor is None or actor.member_of is None or actor.member_of not in self.actors:
            return actor_id
        return actor.member_of

    def find(self, text: str) -> list[tuple[Actor, int, int]]:
        """Actors named in `text` with their spans."""
        return [(self.actors[m.ids[0]], m.start, m.end) for m in self._lexicon.find(text)]


# A headline that names its source after a colon or dash: "... toll rises to 25: ISPR".
_HEADLINE_SOURCE = re.compile(r"\s*[:\u2014\u2013]\s*([^:\u2014\u2013]{2,60}?)\s*$")
#: An actor named within this many characters of a clause's start is its subject.
SUBJECT_CHARS = 30
_CLAUSE_BREAK = re.compile(r",?\s+(?:while|whereas|but|however)\s+|;\s+")
# A country or capital as the subject of a speech verb speaks for its government ("Pakistan says").
_COUNTRY_SPEAKER = re.compile(r"\b(Pakistan|Islamabad|Afghanistan|Kabul)\s+(has\s+|had\s+|have\s+)?$")
_COUNTRY_GOVERNMENT = {
    "pakistan": ("pakistan-government", "Government of Pakistan", "pakistan"),
    "islamabad": ("pakistan-government", "Government of Pakistan", "pakistan"),
    "afghanistan": ("afghanistan-government", "Government of Afghanistan", "afghanistan"),
    "kabul": ("afghanistan-government", "Government of Afghanistan", "afghanistan"),
}


def _stance(verb: str, said: str) -> str:
    """The stance of what an actor said through `verb` (`said` is the clause's reported words)."""
    verb = verb.lower()
    negated = bool(_NEGATION.search(said))
    if verb in _DENY_VERBS:
        rebuttal = _REBUTTAL.search(said[:40]) and not re.search(
            r"not true|baseless|false", said[:60], re.IGNORECASE
        )
        return "asserts" if rebuttal else "denies"
    if verb in _OPPOSE_VERBS:
        return "opposes"
    return "denies" if negated else "asserts"


def _clauses(start: int, end: int, text: str) -> list[tuple[int, int]]:
    spans = []
    cursor = start
    for match in _CLAUSE_BREAK.finditer(text, start, end):
        spans.append((cursor, match.start()))
        cursor = match.end()
    spans.append((cursor, end))
    return spans


def find_statements(
    text: str, spans: Iterable[tuple[int, int]], actors: ActorIndex, last_speaker: Actor | None = None
) -> list[Statement]:
    """Attributed statements in the given sentence spans of `text` (at most one per clause)."""
    statements: list[Statement] = []
    for start, end in spans:
        headline = _HEADLINE_SOURCE.search(text, start, end)
        if headline is not None:
            named = actors.find(headline.group(1))
            if named and headline.end() >= end - 1:
                speaker = named[0][0]
                last_speaker = speaker
                said = text[start : headline.start()]
                statements.append(
                    Statement(
                        speaker.id, speaker.name, speaker.side, "says", _stance("says", said), start, end
                    )
                )
                continue
        for clause_start, clause_end in _clauses(start, end, text):
            clause = text[clause_start:clause_end]
            named = actors.find(clause)
            for verb in _VERBS.finditer(clause):
                found = _speaker(clause, verb, named, last_speaker, actors)
                if found is None:
                    continue
                speaker, inverted = found
                last_speaker = speaker
                said = clause[: verb.start()] if inverted else clause[verb.end() :]
                statements.append(
                    Statement(
                        speaker.id,
                        speaker.name,
                        speaker.side,
                        verb.group(1).lower(),
                        _stance(verb.group(1), said),
                        start,
                        end,
                    )
                )
                break
    return statements


def _speaker(
    clause: str,
    verb: re.Match[str],
    named: list[tuple[Actor, int, int]],
    last: Actor | None,
    actors: ActorIndex,
) -> tuple[Actor, bool] | None:
    """Who speaks through `verb`, and whether the attribution is inverted (`"...," said X`)."""
    if verb.group(1).lower() == "according to":
        after = [a for a in named if 0 <= a[1] - verb.end() <= 25]
        return (after[0][0], True) if after else None
    before = [a for a in named if a[2] <= verb.start() and verb.start() - a[2] <= 60]
    country = _COUNTRY_SPEAKER.search(clause[: verb.start()])
    if country and (not before or before[-1][2] < country.start()):
        key = _COUNTRY_GOVERNMENT[country.group(1).lower()][0]
        return actors.actors[key], False
    if before:
        # The clause's subject when it opens the clause ("FO says ... TTP hideouts, rejects ..."), else
        # the actor nearest the verb ("... overrun by the Taliban, the ISPR said").
        if before[0][1] <= SUBJECT_CHARS:
            return before[0][0], False
        return before[-1][0], False
    if last is not None and _GENERIC_SPEAKER.search(clause[: verb.start()]):
        return last, False
    inverted = [a for a in named if 0 <= a[1] - verb.end() <= 30]
    quoted_before = re.search(r"[,\"\u201d']\s*$", clause[: verb.start()])
    if (
        inverted
        and quoted_before
        and re.match(r"^[\s,]*(\w+\.?\s+){0,3}$", clause[verb.end() : inverted[0][1]])
    ):
        return inverted[0][0], True
    return None
