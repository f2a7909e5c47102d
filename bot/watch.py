"""Is an entry on-topic? Watched keywords and exclude words, case-insensitive, on word boundaries.

Unicode-safe: boundaries are Unicode word characters, so Urdu, Pashto and Dari keywords work too.
Arabic-script spelling variants are folded before matching (Arabic and Persian kaf and yeh, heh forms,
short-vowel marks, tatweel), and a zero-width non-joiner counts as part of a word, as it does in
Persian and Pashto writing (`افغان‌ها` is one word). A keyword ending in `*` matches any ending
(`Afghan*` matches Afghan, Afghans, Afghanistan); without it, `Afghan` does not match `Afghanistan`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Characters that join a word without being `\w`: zero-width non-joiner and joiner.
_JOINERS = "\u200c\u200d"
_WORD_CHAR = rf"[\w{_JOINERS}]"
#: Arabic-script spellings of one letter made one: kaf, yeh and alef maksura, heh forms; marks removed.
_FOLD = str.maketrans(
    {
        "\u0643": "\u06a9",  # Arabic kaf -> Persian/Urdu keheh
        "\u064a": "\u06cc",  # Arabic yeh -> Farsi yeh
        "\u0649": "\u06cc",  # alef maksura -> Farsi yeh
        "\u06c1": "\u0647",  # Urdu heh goal -> heh
        "\u06d5": "\u0647",  # ae -> heh
        "\u0629": "\u0647",  # teh marbuta -> heh
        "\u06c0": "\u0647",  # heh with yeh above -> heh
        "\u0640": None,  # tatweel (kashida), a stretching stroke only
        **{chr(c): None for c in range(0x064B, 0x0660)},  # harakat: short vowels, shadda, sukun
        "\u0670": None,  # superscript alef
    }
)


def fold(text: str) -> str:
    """Text in the form keywords are matched in: NFKC, Arabic-script variants folded."""
    return unicodedata.normalize("NFKC", text).translate(_FOLD)


def _pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    parts = []
    for word in sorted(words, key=len, reverse=True):
        word = fold(word)
        if word.endswith("*"):
            parts.append(re.escape(word[:-1]) + f"{_WORD_CHAR}*")
        else:
            parts.append(re.escape(word))
    if not parts:
        return None
    body = "|".join(p.replace(r"\ ", r"\s+") for p in parts)
    return re.compile(rf"(?<!{_WORD_CHAR})(?:{body})(?!{_WORD_CHAR})", re.IGNORECASE | re.UNICODE)


@dataclass(frozen=True, slots=True)
class Watch:
    """Compiled keyword and exclude patterns."""

    keywords: re.Pattern[str] | None
    exclude: re.Pattern[str] | None

    def matches(self, *texts: str) -> bool:
        """True when any text holds a keyword and none holds an exclude word."""
        text = fold("\n".join(texts))
        if self.keywords is None or not self.keywords.search(text):
            return False
        return not (self.exclude is not None and self.exclude.search(text))


def compile_watch(keywords: tuple[str, ...], exclude: tuple[str, ...] = ()) -> Watch:
    """A Watch for these keywords and exclude words."""
    return Watch(_pattern(keywords), _pattern(exclude))
