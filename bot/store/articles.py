"""The `articles` family: articles, their versions and their near-duplicate LSH bands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.fingerprint import band_keys, is_near_duplicate
from bot.store.db import insert_many, insert_row, iso


def find_article(
    db: Database, canonical: str, guid: str | None, feed_id: int | None
) -> dict[str, Any] | None:
    """The stored article with this canonical URL, else with this GUID from the same feed."""
    row = next(db.table("articles").rows_where("canonical_url = ?", [canonical], limit=1), None)
    if row is None and guid:
        where = "guid = ? and feed_id is ?" if feed_id is not None else "guid = ?"
        params: list[Any] = [guid, feed_id] if feed_id is not None else [guid]
        row = next(db.table("articles").rows_where(where, params, limit=1), None)
    return dict(row) if row else None


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


def insert_article(db: Database, record: dict[str, Any]) -> int:
    """Store a new article (version 1) and its LSH bands; returns its id."""
    article_id = insert_row(db, "articles", record)
    db.table("article_versions").insert(
        {
            "article_id": article_id,
            "version": 1,
            "title": record["title"],
            "text": record["text"],
            "text_hash": record["text_hash"],
            "fetched": record["fetched"],
        }
    )
    if record.get("signature"):
        insert_many(
            db,
            "article_bands",
            [{"band_key": k, "article_id": article_id} for k in band_keys(record["signature"])],
        )
    return article_id


def add_article_version(
    db: Database, article: dict[str, Any], title: str, text: str, text_hash: str, now: datetime
) -> int:
    """Keep an edited text beside the old one; returns the new version number."""
    version = int(article["version"] or 1) + 1
    db.table("article_versions").insert(
        {
            "article_id": article["id"],
            "version": version,
            "title": title,
            "text": text,
            "text_hash": text_hash,
            "fetched": iso(now),
        }
    )
    db.table("articles").update(
        article["id"],
        {"title": title, "text": text, "text_hash": text_hash, "version": version, "updated": iso(now)},
    )
    return version


def set_article_incident(db: Database, article_id: int, incident_id: int | None, in_scope: bool) -> None:
    """Record which incident an article reports."""
    db.table("articles").update(article_id, {"incident_id": incident_id, "in_scope": int(in_scope)})
