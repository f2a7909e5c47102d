"""The claim types one report yields: figures, places, positions (statements), status, and the whole.

Every claim keeps character offsets into `Claims.text` (the title, a blank line, then the body), so
every alert can quote its source. A new claim type is a dataclass here, a field of `Claims`, the rule
that finds it (a module of `extract/`) and its detector in `incidents/compare.py`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Statement:
    """An attributed statement about the incident."""

    actor_id: str
    actor_name: str
    side: str
    verb: str
    stance: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class FigureClaim:
    """A count of people in the incident: `measure` says what is counted in which event."""

    measure: str
    label: str
    low: float
    high: float | None
    phrase: str
    vague: bool
    actor_id: str | None
    start: int
    end: int
    sentence: tuple[int, int]
    counted: str
    implicit: bool = False


@dataclass(frozen=True, slots=True)
class PlaceClaim:
    """A place of the story (not of the page's furniture or of background sentences)."""

    place_id: str
    name: str
    role: str | None
    start: int
    end: int
    in_lead: bool
    primary: bool
    sentence: tuple[int, int]


@dataclass(frozen=True, slots=True)
class StatusClaim:
    """Where the incident stands on one axis."""

    axis: str
    state: str
    rank: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Claims:
    """Everything extracted from one report."""

    text: str
    incident_type: str | None
    in_scope: bool
    figures: tuple[FigureClaim, ...]
    places: tuple[PlaceClaim, ...]
    statements: tuple[Statement, ...]
    status: tuple[StatusClaim, ...]
    words: frozenset[str]

    def sentence(self, start: int, end: int) -> str:
        """The text of a claim's sentence, whitespace collapsed."""
        return " ".join(self.text[start:end].split())
