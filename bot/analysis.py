"""Glue between the store and the incident logic (placeholder until issue 3 lands)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from bot import store
from bot.config import Config
from bot.models import AlertDraft, Evidence, Report


@dataclass(frozen=True)
class Knowledge:
    """Gazetteer and actors."""


def load_knowledge(cfg: Config) -> Knowledge:
    """Load the gazetteer and actors named by the config."""
    return Knowledge()


def analyse_report(db: Database, knowledge: Knowledge, report: Report, now: datetime) -> list[AlertDraft]:
    """Attach the report to an incident and return the alerts it raises."""
    if report.duplicate_of is not None:
        original = db["articles"].get(report.duplicate_of)
        store.set_article_incident(db, report.article_id, original["incident_id"], True)
        return []
    incident_id = int(db["incidents"].insert({"title": report.title, "first_seen": store.iso(now)}).last_pk)
    store.set_article_incident(db, report.article_id, incident_id, True)
    quote = report.text.split("\n")[0][:300]
    evidence = Evidence(report.url, report.source, store.iso(report.published) or "", quote)
    return [AlertDraft("new_incident", incident_id, f"New incident: {report.title}", (evidence,), f"new:{incident_id}")]
