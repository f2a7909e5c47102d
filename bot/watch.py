"""Is an entry on-topic? Watched keywords and exclude words, case-insensitive, on word boundaries.

Unicode-safe: boundaries are Unicode word characters, so Urdu, Pashto and Dari keywords work too.
A keyword ending in `*` matches any ending (`Afghan*` matches Afghan, Afghans, Afghanistan).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.extract.text import story_text

#: How much of the story, after the title, exclude words are looked for in.
LEAD_CHARS = 600


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

    def matches(self, title: str, body: str = "") -> bool:
        """True when the title or story holds a keyword and the title or lead holds no exclude word.

        Page furniture ("Related", "Read more" blocks) is left out: a link to a cricket preview under a
        story about a border clash does not make the story about cricket.
        """
        title = unicodedata.normalize("NFKC", title)
        story = " ".join(story_text(unicodedata.normalize("NFKC", body)).split())
        if self.keywords is None or not (self.keywords.search(title) or self.keywords.search(story)):
            return False
        lead = f"{title}\n{story[:LEAD_CHARS]}"
        return not (self.exclude is not None and self.exclude.search(lead))


def compile_watch(keywords: tuple[str, ...], exclude: tuple[str, ...] = ()) -> Watch:
    """A Watch for these keywords and exclude words."""
    return Watch(_pattern(keywords), _pattern(exclude))
