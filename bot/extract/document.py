"""Prepare a report's text for extraction: drop page furniture and datelines; sentences are split by
`split_sentences` (shared with the figures extractor).

Offsets are kept: `story_text` blanks out furniture with spaces instead of deleting it, so every claim's
character offsets still point into the text as stored.
"""

from __future__ import annotations

import re

from bot.extract.figures import split_sentences

__all__ = ["split_sentences", "story_text"]

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
