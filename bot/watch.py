"""Is an entry on-topic? Watched keywords and exclude words, case-insensitive, on word boundaries.

Unicode-safe: boundaries are Unicode word characters, so Urdu, Pashto and Dari keywords work too.
A keyword ending in `*` matches any ending (`Afghan*` matches Afghan, Afghans, Afghanistan).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


def _pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    parts = []
    for word in sorted(words, key=len, reverse=True):
        word = unicodedata.normalize("NFKC", word)
        if word.endswith("*"):
            parts.append(re.escape(word[:-1]) + r"\w*")
        else:
            parts.append(re.escape(word))
    if not parts:
        return None
    body = "|".join(p.replace(r"\ ", r"\s+") for p in parts)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE | re.UNICODE)


@dataclass(frozen=True, slots=True)
class Watch:
    """Compiled keyword and exclude patterns."""

    keywords: re.Pattern[str] | None
    exclude: re.Pattern[str] | None

    def matches(self, *texts: str) -> bool:
        """True when any text holds a keyword and none holds an exclude word."""
        text = unicodedata.normalize("NFKC", "\n".join(texts))
        if self.keywords is None or not self.keywords.search(text):
            return False
        return not (self.exclude is not None and self.exclude.search(text))


def compile_watch(keywords: tuple[str, ...], exclude: tuple[str, ...] = ()) -> Watch:
    """A Watch for these keywords and exclude words."""
    return Watch(_pattern(keywords), _pattern(exclude))
