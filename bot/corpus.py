"""Read article files in the corpus format (`key: value` header, `---`, body), as `ingest` replays them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.errors import CorpusError
from bot.models import Entry


def read_article_file(path: Path) -> tuple[Entry, str]:
    """The entry described by an article file and its body text."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read: {exc}") from None
    header: dict[str, str] = {}
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if line.strip() == "---":
            body = "\n".join(lines[number:])
            break
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise CorpusError(f"{path}:{number}: expected `key: value` or `---`")
        header[key.strip().lower()] = value.strip()
    else:
        raise CorpusError(f"{path}: no `---` line between header and body")
    for key in ("url", "title"):
        if not header.get(key):
            raise CorpusError(f"{path}: header has no {key}:")
    published = None
    if header.get("published"):
        try:
            published = datetime.fromisoformat(header["published"].replace("Z", "+00:00"))
        except ValueError:
            raise CorpusError(f"{path}: published: not an ISO 8601 time: {header['published']!r}") from None
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
    entry = Entry(
        link=header["url"],
        guid=header.get("guid") or None,
        title=header["title"],
        summary=body.strip(),
        published=published,
        source=header.get("source") or "unknown",
    )
    return entry, body.strip()


def read_corpus(paths: list[Path]) -> list[Entry]:
    """Entries of all files (folders are expanded to their *.txt), in published order."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.txt")) if path.is_dir() else [path])
    entries = [read_article_file(p)[0] for p in files]
    far_past = datetime(1970, 1, 1, tzinfo=UTC)
    return sorted(entries, key=lambda e: (e.published or far_past, e.link))
