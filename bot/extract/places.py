"""Places: a gazetteer matched in one pass (Aho-Corasick), with hierarchy, coordinates and roles."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.extract.lexicon import Lexicon

_PRECISION = {"crossing": 0, "pass": 0, "town": 1, "city": 1, "district": 2, "tribal_area": 2, "tehsil": 2,
              "region": 3, "province": 4, "country": 6}  # fmt: skip
#: Kinds finer than a province: two of these far apart are different places for one event.
SPECIFIC_KINDS = frozenset(
    {"district", "city", "town", "crossing", "pass", "tribal_area", "tehsil", "village"}
)

# What the words just before a place say it is the place of.
_ROLE_CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (role, re.compile(pattern + r"\W*(?:\w+\W+){0,10}$", re.IGNORECASE))
    for role, pattern in (
        ("returned", r"\b(returned|handed (over|back)|repatriat\w*|sent back|deported|released)\b"),
        (
            "crossed",
            r"\b(crossed|crosses|crossing (into|over|the border)|slipped across|refuge|asylum|safe passage|"
            r"fled|entered)\b",
        ),
        ("stationed", r"\b(stationed|based|deployed|posted)\b"),
        (
            "attacked",
            r"\b(attack\w*|strikes?|struck|bomb\w*|shell\w*|clash\w*|fir(e|ing)|raid\w*|"
            r"target\w*|hit|killed|blast|explosion|fighting)\b",
        ),
        ("closed", r"\b(closed|shut|sealed|suspended|reopen\w*)\b"),
    )
)


@dataclass(frozen=True, slots=True)
class Place:
    """A gazetteer entry."""

    id: str
    name: str
    kind: str
    parent: str | None
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class PlaceMention:
    """A place named in the text."""

    place_id: str
    name: str
    role: str | None
    start: int
    end: int


class Gazetteer:
    """Places by id, and an automaton over every name and alias (lowercased)."""

    def __init__(self, entries: Iterable[Mapping[str, Any]]) -> None:
        self.places: dict[str, Place] = {}
        self._lexicon = Lexicon()
        # Memos: the gazetteer never changes once built, and grouping asks the same pairs again and again.
        self._ancestors: dict[str, list[str]] = {}
        self._distances: dict[tuple[str, str], float | None] = {}
        for entry in entries:
            place = Place(
                id=str(entry["id"]),
                name=str(entry["name"]),
                kind=str(entry.get("kind", "town")),
                parent=entry.get("parent"),
                lat=entry.get("lat"),
                lon=entry.get("lon"),
            )
            self.places[place.id] = place
            self._lexicon.add(
                place.id, [place.name, *(entry.get("aliases") or [])], bool(entry.get("case_sensitive"))
            )

    def ancestors(self, place_id: str) -> list[str]:
        """The place and its parents, innermost first."""
        known = self._ancestors.get(place_id)
        if known is None:
            known = self._ancestors[place_id] = self._chain(place_id)
        return known

    def _chain(self, place_id: str) -> list[str]:
        chain: list[str] = []
        current: str | None = place_id
        while current and current in self.places and current not in chain:
            chain.append(current)
            current = self.places[current].parent
        return chain

    def country(self, place_id: str) -> str | None:
        """The id of the country the place lies in."""
        for pid in self.ancestors(place_id):
            if self.places[pid].kind == "country":
                return pid
        return None

    def is_specific(self, place_id: str) -> bool:
        """True for places finer than a province (district, town, crossing...)."""
        place = self.places.get(place_id)
        return place is not None and place.kind in SPECIFIC_KINDS

    def contains(self, outer: str, inner: str) -> bool:
        """True when `inner` lies within `outer` (or is it)."""
        return outer in self.ancestors(inner)

    def distance_km(self, a: str, b: str) -> float | None:
        """Great-circle distance between two places, when both have coordinates."""
        key = (a, b) if a <= b else (b, a)
        if key not in self._distances:
            self._distances[key] = self._distance(*key)
        return self._distances[key]

    def _distance(self, a: str, b: str) -> float | None:
        pa, pb = self.places.get(a), self.places.get(b)
        if pa is None or pb is None or None in (pa.lat, pa.lon, pb.lat, pb.lon):
            return None
        lat1, lon1, lat2, lon2 = map(math.radians, (pa.lat, pa.lon, pb.lat, pb.lon))  # type: ignore[arg-type]
        h = (
            math.sin((lat2 - lat1) / 2) ** 2
            + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        )
        return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(h)))

    def compatible(self, a: str, b: str, within_km: float = 60.0) -> bool:
        """True when two places can be the same place at different precision (or lie close together)."""
        if self.contains(a, b) or self.contains(b, a):
            return True
        shared = set(self.ancestors(a)) & set(self.ancestors(b))
        if any(self.places[pid].kind in ("district", "tribal_area", "city", "town") for pid in shared):
            return True  # Arandu and Chitral town both lie in Chitral district
        distance = self.distance_km(a, b)
        return distance is not None and distance <= within_km

    def find(self, text: str) -> list[PlaceMention]:
        """Every place named in `text` (longest match at each position), with its role where stated."""
        return [
            PlaceMention(self._prefer(list(m.ids)), m.surface, _role(text, m.start), m.start, m.end)
            for m in self._lexicon.find(text)
        ]

    def precision(self, place_id: str) -> int:
        """How fine a place is: 0 for a crossing or pass, up to 6 for a country (smaller is finer)."""
        return _PRECISION.get(self.places[place_id].kind, 5)

    def _prefer(self, ids: list[str]) -> str:
        """Of places sharing a name, the finest (a town over its district)."""
        return min(ids, key=self.precision)


_LOCATIVE = re.compile(
    r"\b(at|near|in|inside|via|through|along|on|outside|around)\s+"
    r"((the|a|an|its|their|eastern|western|northern|southern|northwestern|northeastern|southwestern|southeastern|"
    r"pakistani|afghan|border|town|city|village|district|province|tribal|area|region|crossing|point|post|"
    r"of|\w+'s)\s+){0,6}$",
    re.IGNORECASE,
)


def _role(text: str, start: int) -> str | None:
    """The role the words before a place give it (crossed at, returned at, attacked in, stationed in).

    Only a locative place has a role: "returned at Nawa Pass" does, "returned to Kabul" (a destination) doesn't.
    """
    sentence_start = max(text.rfind(".", 0, start), text.rfind("\n", 0, start)) + 1
    before = text[sentence_start:start]
    if not _LOCATIVE.search(before):
        return None
    for role, pattern in _ROLE_CUES:
        if pattern.search(before):
            return role
    return None
