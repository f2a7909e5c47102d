"""The `articles` family: articles, their versions and their near-duplicate LSH bands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.fingerprint import Fingerprint, band_keys, is_near_duplicate, normalize_text
from bot.models import Entry
from bot.store.db import from_iso, insert_many, insert_row, iso


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """What the flow needs to know of an article already stored.

    `feed_entry_hash` is the hash of the item as the asking feed last carried it (`article_entries`),
    None when that feed never carried the article; for an entry of no feed, the article's own.
    """

    id: int
    url: str
    source: str
    published: datetime | None
    version: int
    duplicate_of: int | None
    feed_entry_hash: str | None
    text_hash: str | None
    summary_only: bool


_COLUMNS = (
    "a.id, a.url, a.source, a.published, a.version, a.duplicate_of, {seen}, a.text_hash, a.summary_only"
)


def find_article(db: Database, canonical: str, guid: str | None, feed_id: int | None) -> StoredArticle | None:
    """The stored article with this canonical URL, else with this GUID from the same feed."""
    if feed_id is None:
        select = f"select {_COLUMNS.format(seen='a.entry_hash')} from articles a"
        head: list[Any] = []
    else:
        select = f"""select {_COLUMNS.format(seen="e.entry_hash")} from articles a
                     left join article_entries e on e.article_id = a.id and e.feed_id = ?"""
        head = [feed_id]
    row = db.execute(f"{select} where a.canonical_url = ? limit 1", [*head, canonical]).fetchone()
    if row is None and guid:
        where = "a.guid = ? and a.feed_id is ?" if feed_id is not None else "a.guid = ?"
        params: list[Any] = [guid, feed_id] if feed_id is not None else [guid]
        row = db.execute(f"{select} where {where} limit 1", [*head, *params]).fetchone()
    return _stored(row) if row is not None else None


def find_republished(db: Database, prints: Fingerprint, title: str, source: str) -> StoredArticle | None:
    """The article of `source` that this entry republishes: the same title and text, else the same title
    over a near-duplicate text (a light edit).

    Some CMSs give an item a new GUID and link on every poll (issue 11): its content is then the only
    identity left. The near-duplicate must keep its title: pages of one outlet can share most of their
    text (a paywall, a consent wall) while their titles tell the stories apart. Across outlets a copy is
    a duplicate stored for its outlet (`find_near_duplicate`); within one outlet it is the same article.
    """
    select = f"select {_COLUMNS.format(seen='a.entry_hash')}, a.title from articles a"
    row = db.execute(
        f"{select} where a.text_hash = ? and a.source = ? order by a.id limit 1", [prints.text_hash, source]
    ).fetchone()
    if row is not None:
        return _stored(row[:-1])
    wanted = normalize_text(title)
    for article_id, other_source, _ in _band_candidates(db, prints.signature):
        if other_source == source:
            row = db.execute(f"{select} where a.id = ?", [article_id]).fetchone()
            if normalize_text(row[-1] or "") == wanted:
                return _stored(row[:-1])
    return None


def _stored(row: Any) -> StoredArticle:
    article_id, url, source, published, version, duplicate_of, seen_hash, text_hash, summary_only = row
    return StoredArticle(
        article_id, url, source, from_iso(published), int(version or 1), duplicate_of, seen_hash, text_hash,
        bool(summary_only),
    )  # fmt: skip


def set_entry_hash(db: Database, article_id: int, feed_id: int | None, entry_hash: str) -> None:
    """Remember the feed item's hash as this feed last carried it, so an unchanged item is not read again."""
    if feed_id is None:
        db.execute("update articles set entry_hash = ? where id = ?", [entry_hash, article_id])
        return
    db.execute(
        """insert into article_entries (article_id, feed_id, entry_hash) values (?, ?, ?)
           on conflict (article_id, feed_id) do update set entry_hash = excluded.entry_hash""",
        [article_id, feed_id, entry_hash],
    )


def find_near_duplicate(db: Database, signature: bytes | None, source: str) -> int | None:
    """The earliest stored article from another outlet whose text is a near-duplicate of `signature`."""
    for article_id, other_source, duplicate_of in _band_candidates(db, signature):
        if other_source != source:
            return int(duplicate_of or article_id)
    return None


def _band_candidates(db: Database, signature: bytes | None) -> list[tuple[int, str, int | None]]:
    """(id, source, duplicate_of) of the stored near-duplicates of `signature`, oldest first.

    Candidates come from the LSH band index; each is checked against the signature."""
    if signature is None:
        return []
    keys = band_keys(signature)
    marks = ",".join("?" * len(keys))
    rows = db.execute(
        f"""select distinct a.id, a.signature, a.source, a.duplicate_of from article_bands b
            join articles a on a.id = b.article_id where b.band_key in ({marks}) order by a.id limit 50""",
        keys,
    ).fetchall()
    return [
        (article_id, other_source, duplicate_of)
        for article_id, other, other_source, duplicate_of in rows
        if is_near_duplicate(signature, other)
    ]


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
    if feed_id is not None:
        set_entry_hash(db, article_id, feed_id, prints.entry_hash)
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
