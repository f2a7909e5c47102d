"""Find many names at once: an Aho-Corasick automaton over aliases, matched on word boundaries.

Shared by the gazetteer (places) and the actors list. Aliases written in capitals of four letters or
fewer (KP, UN, TTP), and entries marked `case_sensitive`, must match with their exact capitalisation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick


@dataclass(frozen=True, slots=True)
class Match:
    """One name found in a text."""

    ids: tuple[str, ...]
    start: int
    end: int
    surface: str


class Lexicon:
    """Aliases of many entries; `find` returns the longest non-overlapping matches in one pass."""

    def __init__(self) -> None:
        self._automaton = ahocorasick.Automaton()
        self._exact: dict[tuple[str, str], set[str]] = {}
        self._ready = False

    def add(self, entry_id: str, aliases: Iterable[str], case_sensitive: bool = False) -> None:
        """Register an entry's names."""
        for alias in aliases:
            alias = " ".join(str(alias).split())
            if not alias:
                continue
            key = alias.casefold()
            _, ids = self._automaton.get(key, (key, ()))
            self._automaton.add_word(key, (key, tuple(dict.fromkeys([*ids, entry_id]))))
            if case_sensitive or (alias.isupper() and len(alias) <= 4):
                self._exact.setdefault((key, entry_id), set()).add(alias)
        self._ready = False

    def find(self, text: str) -> list[Match]:
        """Longest matches, left to right, not overlapping, on word boundaries."""
        if not len(self._automaton):
            return []
        if not self._ready:
            self._automaton.make_automaton()
            self._ready = True
        folded = text.casefold()
        if len(folded) != len(text):  # a few characters change length when case-folded
            folded = "".join((c.casefold() or c)[0] for c in text)
        candidates = []
        for end_index, (key, ids) in self._automaton.iter(folded):
            end = end_index + 1
            start = end - len(key)
            if (start > 0 and folded[start - 1].isalnum()) or (end < len(folded) and folded[end].isalnum()):
                continue
            surface = text[start:end]
            allowed = tuple(i for i in ids if (key, i) not in self._exact or surface in self._exact[(key, i)])
            if allowed:
                candidates.append((start, end, allowed))
        matches: list[Match] = []
        taken_until = -1
        for start, end, ids in sorted(candidates, key=lambda c: (c[0], c[0] - c[1])):
            if start < taken_until:
                continue
            matches.append(Match(ids, start, end, text[start:end]))
            taken_until = end
        return matches
