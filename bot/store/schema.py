"""The store's schema: sqlite-utils migrations, registered (and so applied) in the order they are written.

A new migration goes at the end, named with the next number; `open_db` applies what a store lacks and
refuses a store made by a newer borderwatch (one with a migration this code does not know).
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("borderwatch")


@migrations()
def m001_initial(db: Database) -> None:
    """Feeds, articles (+ versions, LSH bands, full-text search), incidents, claims, alerts."""
    db.table("feeds").create(
        {
            "id": int,
            "name": str,
            "configured_url": str,
            "url": str,
            "etag": str,
            "last_modified": str,
            "last_checked": str,
            "last_ok": str,
            "last_status": int,
            "last_error": str,
            "consecutive_errors": int,
            "total_errors": int,
            "polls": int,
            "not_modified": int,
            "next_poll": str,
            "retired": int,
            "failing_notified": int,
            "entries_seen": int,
        },
        pk="id",
        not_null={"configured_url", "url"},
        defaults={
            "consecutive_errors": 0,
            "total_errors": 0,
            "polls": 0,
            "not_modified": 0,
            "retired": 0,
            "failing_notified": 0,
            "entries_seen": 0,
        },
    )
    db.table("feeds").create_index(["configured_url"], unique=True)
    db.table("articles").create(
        {
            "id": int,
            "url": str,
            "canonical_url": str,
            "guid": str,
            "feed_id": int,
            "source": str,
            "title": str,
            "published": str,
            "fetched": str,
            "updated": str,
            "text": str,
            "text_hash": str,
            "signature": bytes,
            "duplicate_of": int,
            "incident_id": int,
            "on_topic": int,
            "in_scope": int,
            "version": int,
            "summary_only": int,
            "entry_hash": str,
        },
        pk="id",
        not_null={"url", "canonical_url"},
        defaults={"version": 1, "on_topic": 1, "in_scope": 0, "summary_only": 0},
    )
    db.table("articles").create_index(["canonical_url"], unique=True)
    db.table("articles").create_index(["guid"])
    db.table("articles").create_index(["text_hash"])
    db.table("articles").create_index(["incident_id"])
    db.table("articles").create_index(["published"])
    db.table("articles").enable_fts(["title", "text"], create_triggers=True, tokenize="porter")
    db.table("article_versions").create(
        {
            "id": int,
            "article_id": int,
            "version": int,
            "title": str,
            "text": str,
            "text_hash": str,
            "fetched": str,
        },
        pk="id",
        foreign_keys=[("article_id", "articles", "id")],
    )
    db.table("article_versions").create_index(["article_id", "version"], unique=True)
    db.table("article_bands").create({"band_key": int, "article_id": int}, pk=("band_key", "article_id"))
    db.table("incidents").create(
        {
            "id": int,
            "title": str,
            "event": str,
            "status": str,
            "place": str,
            "place_id": str,
            "latitude": float,
            "longitude": float,
            "first_seen": str,
            "last_seen": str,
            "first_published": str,
            "last_published": str,
            "articles": int,
            "sources": int,
            "summary": str,
            "signature": str,
        },
        pk="id",
        defaults={"articles": 0, "sources": 0},
    )
    db.table("incidents").create_index(["last_published"])
    db.table("incident_keys").create({"key": str, "incident_id": int}, pk=("key", "incident_id"))
    db.table("claims").create(
        {
            "id": int,
            "incident_id": int,
            "article_id": int,
            "version": int,
            "type": str,
            "measure": str,
            "value": str,
            "low": float,
            "high": float,
            "actor": str,
            "stance": str,
            "event": str,
            "place_id": str,
            "role": str,
            "quote": str,
            "start": int,
            "end": int,
            "source": str,
            "source_key": str,
            "url": str,
            "published": str,
            "seen": str,
            "detail": str,
        },
        pk="id",
        foreign_keys=[("article_id", "articles", "id"), ("incident_id", "incidents", "id")],
    )
    db.table("claims").create_index(["incident_id", "type", "measure"])
    db.table("claims").create_index(["article_id"])
    db.table("alerts").create(
        {
            "id": int,
            "kind": str,
            "incident_id": int,
            "summary": str,
            "evidence": str,
            "details": str,
            "dedupe_key": str,
            "created": str,
            "delivered": str,
            "channel": str,
            "ts": str,
            "attempts": int,
            "last_error": str,
            "sending_since": str,
        },
        pk="id",
        not_null={"kind", "summary", "evidence", "dedupe_key", "created"},
        defaults={"attempts": 0},
    )
    db.table("alerts").create_index(["dedupe_key"], unique=True)
    db.table("alerts").create_index(["delivered"])
    db.table("alerts").create_index(["incident_id"])
    db.table("slack_threads").create(
        {"incident_id": int, "channel": str, "ts": str}, pk=("incident_id", "channel")
    )
    db.table("meta").create({"key": str, "value": str}, pk="key")


@migrations()
def m002_alert_deliveries(db: Database) -> None:
    """One delivery record per alert and channel (issue 4: an alert may go to several Slack channels),
    and Slack channel names resolved to ids (needed to look a message up after a crash)."""
    db.table("alert_deliveries").create(
        {
            "alert_id": int,
            "channel": str,
            "ts": str,
            "delivered": str,
            "attempts": int,
            "last_error": str,
            "sending_since": str,
            "next_attempt": str,
        },
        pk=("alert_id", "channel"),
        defaults={"attempts": 0},
    )
    db.table("alert_deliveries").create_index(["channel", "delivered"])
    db.table("slack_channels").create({"name": str, "id": str}, pk="name")


@migrations()
def m003_alerts_created_index(db: Database) -> None:
    """`changes --since` reads alerts by creation time: index it."""
    db.table("alerts").create_index(["created"], if_not_exists=True)


@migrations()
def m004_glossary_names(db: Database) -> None:
    """One word for one thing (docs/architecture.md): an incident's `incident_type` (not "event", which
    names a figure's verb) and grouping `profile` (not "signature", which is the MinHash); a claim's
    `side` (the column held the speaker's side under the name "actor")."""
    db.execute("alter table incidents rename column event to incident_type")
    db.execute("alter table incidents rename column signature to profile")
    db.execute("alter table claims rename column actor to side")


@migrations()
def m005_article_entries(db: Database) -> None:
    """The hash of each feed's item per article (issue 11): one article carried by two feeds with two
    summaries is an edit only when one feed's own item changes, not each time the other feed is read."""
    db.table("article_entries").create(
        {"article_id": int, "feed_id": int, "entry_hash": str}, pk=("article_id", "feed_id")
    )
    db.execute(
        """insert into article_entries (article_id, feed_id, entry_hash)
           select id, feed_id, entry_hash from articles where feed_id is not null and entry_hash is not null"""
    )
