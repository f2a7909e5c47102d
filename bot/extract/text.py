"""Prepare a report's text for extraction: drop page furniture and datelines, split sentences.

Offsets are kept: `story_text` blanks out furniture with spaces instead of deleting it, so every claim's
character offsets still point into the text as stored.
"""

from __future__ import annotations

import re

# A line that starts the page's furniture: everything from it to the end is not the story.
_FURNITURE_HEAD = re.compile(
    r"^\s*(check also|must read|read more|read also|also read|related( articles| stories| news)?|"
    r"you may also like|more from|recommended|trending|most read|popular|latest news|more stories|"
    r"see also|about (the )?author|about admin|share this|tags?:|follow us|subscribe)\b.*$",
    re.IGNORECASE,
)
# Single lines that are furniture wherever they stand (breadcrumbs, captions, widgets).
_FURNITURE_LINE = re.compile(
    r"^\s*(home\s*/.*|accessibility links|breaking news|skip to (main )?content|advertisement|"
    r"(file|file photo|photo)\s*[-–:].*|.*\(@\w+\)\s+\w+ \d{1,2}, \d{4}\s*|[A-Z]{2} News|"
    r"(published|updated|posted)( on)?:? .{0,40}\d{4}.*)$",
    re.IGNORECASE,
)
_DATELINE = re.compile(r"^\s*([A-Z][A-Z .'-]{2,40}(,\s*[A-Z][A-Za-z ]{2,30})?)\s*(\(\w+\))?\s*[:–—-]\s+")
_ABBREVIATIONS = (
    "gen", "lt", "col", "maj", "capt", "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gov", "st", "no",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "vs", "etc",
    "inc", "ltd", "co", "corp", "u.s", "u.k", "u.n", "e.g", "i.e", "brig", "sgt", "cpl", "adm", "govt",
)  # fmt: skip
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+|$)")


def story_text(text: str) -> str:
    """The text with page furniture (trailing "Check Also" blocks, breadcrumbs, captions) blanked out."""
    out: list[str] = []
    cut = False
    for line in text.split("\n"):
        if cut or _FURNITURE_HEAD.match(line) and len(line) < 80:
            cut = True
            out.append(" " * len(line))
        elif _FURNITURE_LINE.match(line):
            out.append(" " * len(line))
        else:
            match = _DATELINE.match(line)
            out.append(" " * match.end() + line[match.end() :] if match else line)
    return "\n".join(out)


def _is_abbreviation(text: str, end: int) -> bool:
    """True when the full stop at `end` closes an abbreviation, an initial or a decimal."""
    start = end
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    word = text[start:end].lower()
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return True
    return end + 1 < len(text) and text[end + 1].isdigit()


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of `text`; a line break always ends a sentence."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for line in text.split("\n"):
        start = 0
        for match in _SENTENCE_END.finditer(line):
            dot = match.start()
            if line[dot] == "." and match.end() - dot == 1 and _is_abbreviation(line, dot):
                continue
            _add_span(spans, line, offset, start, match.end())
            start = match.end()
        _add_span(spans, line, offset, start, len(line))
        offset += len(line) + 1
    return spans


def _add_span(spans: list[tuple[int, int]], line: str, offset: int, start: int, end: int) -> None:
    chunk = line[start:end]
    stripped = chunk.strip()
    if len(stripped) < 3:
        return
    lead = len(chunk) - len(chunk.lstrip())
    spans.append((offset + start + lead, offset + start + lead + len(stripped)))
