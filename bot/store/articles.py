"""The `articles` family: articles, their versions and their near-duplicate LSH bands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.fingerprint import Fingerprint, band_keys, is_near_duplicate
from bot.models import Entry
from bot.store.db import from_iso, insert_many, insert_row, iso


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """What the flow needs to know of an article already stored."""

    id: int
    url: str
    source: str
    published: datetime | None
    version: int
    duplicate_of: int | None
    entry_hash: str | None
    text_hash: str | None
    summary_only: bool


def find_article(db: Database, canonical: str, guid: str | None, feed_id: int | None) -> StoredArticle | None:
    """The stored article with this canonical URL, else with this GUID from the same feed."""
    columns = "id, url, source, published, version, duplicate_of, entry_hash, text_hash, summary_only"
    row = db.execute(
        f"select {columns} from articles where canonical_url = ? limit 1", [canonical]
    ).fetchone()
    if row is None and guid:
        where = "guid = ? and feed_id is ?" if feed_id is not None else "guid = ?"
        params: list[Any] = [guid, feed_id] if feed_id is not None else [guid]
        row = db.execute(f"select {columns} from articles where {where} limit 1", params).fetchone()
    if row is None:
        return None
    article_id, url, source, published, version, duplicate_of, entry_hash, text_hash, summary_only = row
    return StoredArticle(
        article_id, url, source, from_iso(published), int(version or 1), duplicate_of, entry_hash, text_hash,
        bool(summary_only),
    )  # fmt: skip


def set_entry_hash(db: Database, article_id: int, entry_hash: str) -> None:
    """Remember the feed item's hash as last seen, so an unchanged item is not fetched again."""
    db.execute("update articles set entry_hash = ? where id = ?", [entry_hash, article_id])


def find_near_duplicate(db: Database, signature: bytes | None, source: str) -> int | None:
    """The earliest stored article from another outlet whose text is a near-duplicate of `signature`."""
    if signature is None:
        return None
    keys = band_keys(signature)
    marks = ",".join("?" * len(keys))
    rows = db.execute(
        f"""select distinct a.id, a.signature, a.source, a.duplicate_of from article_bands b
            join articles a on a.id = b.article_id where b.band_key in ({marks}) order by a.id limit 50""",
        keys,
    ).fetchall()
    for article_id, other, other_source, duplicate_of in rows:
        if other_source != source and is_near_duplicate(signature, other):
            return int(duplicate_of or article_id)
    return None


def insert_article(
    db: Database,
    entry: Entry,
    prints: Fingerprint,
    text: str,
    *,
    feed_id: int | None,
    published: datetime,
    now: datetime,
    duplicate_of: int | None,
    on_topic: bool,
    summary_only: bool,
) -> int:
    """Store a new article (version 1) and its LSH bands; returns its id."""
    article_id = insert_row(
        db,
        "articles",
        {
            "url": entry.link,
            "canonical_url": prints.canonical_url,
            "guid": entry.guid,
            "feed_id": feed_id,
            "source": entry.source,
            "title": entry.title,
            "published": iso(published),
            "fetched": iso(now),
            "text": text,
            "text_hash": prints.text_hash,
            "signature": prints.signature,
            "duplicate_of": duplicate_of,
            "on_topic": int(on_topic),
            "version": 1,
            "summary_only": int(summary_only),
            "entry_hash": prints.entry_hash,
        },
    )
    db.table("article_versions").insert(
        {
            "article_id": article_id,
            "version": 1,
            "title": entry.title,
            "text": text,
            "text_hash": prints.text_hash,
            "fetched": iso(now),
        }
    )
    if prints.signature:
        insert_many(
            db,
            "article_bands",
            [{"band_key": k, "article_id": article_id} for k in band_keys(prints.signature)],
        )
    return article_id


def add_article_version(
    db: Database, article: StoredArticle, title: str, text: str, text_hash: str, now: datetime
) -> int:
    """Keep an edited text beside the old one; returns the new version number."""
    version = article.version + 1
    db.table("article_versions").insert(
        {
            "article_id": article.id,
            "version": version,
            "title": title,
            "text": text,
            "text_hash": text_hash,
            "fetched": iso(now),
        }
    )
    db.table("articles").update(
        article.id,
        {"title": title, "text": text, "text_hash": text_hash, "version": version, "updated": iso(now)},
    )
    return version


def set_article_incident(db: Database, article_id: int, incident_id: int | None, in_scope: bool) -> None:
    """Record which incident an article reports."""
    db.table("articles").update(article_id, {"incident_id": incident_id, "in_scope": int(in_scope)})


def article_incident(db: Database, article_id: int) -> tuple[int | None, bool]:
    """The incident an article was attached to (None if none) and whether it was in scope."""
    row = db.execute("select incident_id, in_scope from articles where id = ?", [article_id]).fetchone()
    return (row[0], bool(row[1])) if row else (None, False)
