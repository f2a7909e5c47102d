"""What kind of incident a report is about, where it stands, and which sentences are background.

- `classify_event`: the incident type (crossing, airstrike, clash, retaliation, infiltration, closure,
  deportation, attack, arrest) from cue words, the title weighing most; ties go to the cue that comes
  first in the title ("Afghan forces hit back after deadly airstrikes" is a retaliation).
- `find_status`: where the incident stands on its axis (custody: refuge → to be returned → returned;
  fighting: clashes → ceasefire; border: closed → reopened; deportation: deadline → deported), from
  verbs and tense ("would be returned" is not "have been returned").
- `is_background`: a sentence about another time (an earlier batch, "in recent weeks", "last year").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EVENT_CUES: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "crossing": r"\b(refuge\b|asylum\b|safe passage|crossed (the |a )?(border|into|over)\b|slipped across|repatriat\w*|"
        r"handed (them )?(over|back)|sought shelter|took shelter)",
        "airstrike": r"\b(air ?strikes?|air raids?|aerial (strikes?|bombardment)|jets?\b|drone strikes?|"
        r"(?-i:[A-Z][a-z]+) strikes\b|فضائی|بمباری|هوایی|بمبارد|"
        r"warplanes?|bombardment|cross-border strikes?|strikes? inside|target(ed|ing) (\w+ ){0,3}(hideouts|camps))",
        "retaliation": r"\b((?<!warning of )(?<!warn of )(?<!vowed )(?<!vow )(?<!pledged )retaliat\w*|hit back|"
        r"hits back|strik(e|es|ing) back|struck back|(operations?|attacks?|strikes?) (\w+ )?in response to)",
        "clash": r"\b(exchange of fire|exchang\w* (heavy |intense |small-arms )?fire|trad\w* (heavy )?fire|"
        r"clash(es|ed)?|skirmish\w*|cross-border (fire|firing|shelling)|shelling|heavy firing|"
        r"firing (at|along|on) the border|gunfight|cease-?fire|truce)\b",
        "infiltration": r"\b(infiltrat\w*|foil\w*|thwart\w*|repuls\w*|cross-border attacks?)\b",
        "closure": r"\b((border|crossing|gate|torkham|chaman|ghulam khan|angoor adda|kharlachi)\W+(\w+\W+){0,2}"
        r"(closed|shut|sealed|suspended)|closure|reopen\w*|(closed|shut|sealed|suspended) (the )?(border|crossing|trade)|"
        r"trade (resum\w*|halted|suspended)|resum\w* (trade|traffic)|trucks? (stranded|stuck))",
        "deportation": r"\b(deport\w*|expel\w*|expulsion|undocumented|illegal (migrants|immigrants|foreigners)|"
        r"deadline to leave|holding cent(re|er)s|forced to (flee|leave)|exodus)|ملک بدر|اخراج",
        "attack": r"\b(suicide (bomb\w*|attack\w*)|bombing|blast|explosion|ambush\w*|(terror|militant) attack)",
        "arrest": r"\b(arrest\w*|apprehended|taken into custody)\b",
    }.items()
}

_BACKGROUND = re.compile(
    r"\b(another batch|similar incident|similar circumstances|earlier this (month|year|week)|earlier in "
    r"(the )?(month|year|january|february|march|april|may|june|july|august|september|october|november|december)|"
    r"in (early|mid|late)[- ](january|february|march|april|may|june|july|august|september|october|november|"
    r"december)|last (week|month|year)|in recent (weeks|months|years|days)|over the past|for (years|decades)|"
    r"has long|have long|since (19|20)\d\d|in (19|20)\d\d|previous(ly)?|decades?|the day before|"
    r"a (week|month|year) ago|history)\b",
    re.IGNORECASE,
)
_PLACE_SCOPE = re.compile(r"\b(border|cross-border|durand line|frontier|pak-afghan|af-pak)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class StatusMention:
    """Where the incident stands, as one sentence says it."""

    axis: str
    state: str
    rank: int
    start: int
    end: int


# Each axis lists its states in order; a later state is progress (a status change).
STATUS_AXES: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    axis: tuple((state, re.compile(pattern, re.IGNORECASE)) for state, pattern in states)
    for axis, states in {
        "custody": (
            (
                "crossed",
                r"\b(given|granted|sought|seek|taken|take|took|requested) (\w+ )?(refuge|asylum|safe passage)|"
                r"\bcrossed (the border|into)",
            ),
            (
                "to be returned",
                r"\b(would|will|to|shall) be (\w+ )?(returned|repatriated|handed (over|back)|sent back)",
            ),
            (
                "returned",
                r"\b((have|has|had) (now )?been (\w+ )?(returned|repatriated|handed (over|back)|sent back)|"
                r"were (\w+ )?(returned|repatriated|handed (over|back))|(?<!be )repatriated\b|repatriates\b|"
                r"repatriation (took place|was completed)|returned to (their|afghan)\w*)",
            ),
        ),
        "fighting": (
            ("clashes", r"\b(clash(es|ed)?|exchange of fire|exchanged fire|firing|shelling|fighting)\b"),
            (
                "ceasefire",
                r"\b(cease-?fire|truce|(firing|fighting|shelling) (has |had )?(stopped|ceased|halted))\b",
            ),
        ),
        "border": (
            (
                "closed",
                r"\b((border|crossing|gate|torkham|chaman)\W+(\w+\W+){0,4}(closed|shut|sealed|suspended)|"
                r"(closed|shut|sealed|closure of) (the )?(\w+ )?(border|crossing|gate))\b",
            ),
            (
                "reopened",
                r"\b((?<!to )(?<!not )(?<!be )reopen(ed|s)\b|resum(ed|es|ption of) (trade|traffic|movement|crossings?))",
            ),
        ),
        "deportation": (
            (
                "deadline",
                r"\b(deadline|ordered to leave|(face|faced|facing) (\w+ )?(and )?deportation|"
                r"be (forcibly )?(deported|removed|expelled)|leave voluntarily)\b",
            ),
            (
                "deported",
                r"\b((?<!be )(?<!to )deported\b|(?<!be )(?<!to )expelled\b|deportations? (began|begin|begins|"
                r"started|starts|under ?way)|(were|have been|being) (forcibly )?(deported|removed|expelled))",
            ),
        ),
    }.items()
}


def classify_event(title: str, lead: str) -> str | None:
    """The incident type of a report: the headline's first cue (its main clause: "Afghan forces hit back
    after deadly airstrikes" is a retaliation), else the type with most cues in the lead."""
    first_in_title: dict[str, int] = {}
    lead_counts: dict[str, int] = {}
    for name, pattern in EVENT_CUES.items():
        match = pattern.search(title)
        if match:
            first_in_title[name] = match.start()
        count = len(pattern.findall(lead))
        if count:
            lead_counts[name] = count
    if first_in_title:
        return min(first_in_title, key=lambda n: (first_in_title[n], -lead_counts.get(n, 0)))
    if not lead_counts:
        return None
    return max(lead_counts, key=lambda n: lead_counts[n])


def is_background(sentence: str) -> bool:
    """True for a sentence about another time (an earlier batch, "in recent weeks", "last year")."""
    return bool(_BACKGROUND.search(sentence))


def mentions_border(text: str) -> bool:
    """True when the text speaks of the border (border, cross-border, Durand Line, frontier)."""
    return bool(_PLACE_SCOPE.search(text))


def find_status(text: str, spans: list[tuple[int, int]]) -> list[StatusMention]:
    """Status statements in the given sentence spans."""
    found: list[StatusMention] = []
    for start, end in spans:
        sentence = text[start:end]
        for axis, states in STATUS_AXES.items():
            best: StatusMention | None = None
            for rank, (state, pattern) in enumerate(states):
                if pattern.search(sentence) and (best is None or rank > best.rank):
                    best = StatusMention(axis, state, rank, start, end)
            if best is not None:
                found.append(best)
    return found
