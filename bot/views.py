"""The named reads: the canned queries that `borderwatch serve` shows and the CLI runs (latest alerts,
open conflicts, what changed, an incident's timeline, feed health, the map), and the CLI's listings
(alerts, store status and health, incidents, one incident). Every one runs through `bot.query.execute`:
read-only, with a time limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from bot.incidents.kinds import NEW_INCIDENT, Family, names_in_family
from bot.models import iso_utc
from bot.query import DEFAULT_TIMEOUT, QueryResult, execute


@dataclass(frozen=True, slots=True)
class CannedQuery:
    """A named query shown by `borderwatch serve` (and run by the matching CLI command)."""

    name: str
    title: str
    description: str
    sql: str


# --- canned queries ----------------------------------------------------------------------------------
# Written against the columns of migration m001 only, so later migrations that add columns don't break them.


def _kinds_of(family: Family) -> str:
    """An SQL list of the alert kinds of one family, e.g. every conflict kind."""
    return "(" + ", ".join(f"'{name}'" for name in names_in_family(family)) + ")"


_SOURCES = "(select group_concat(json_extract(e.value, '$.source'), '; ') from json_each(alerts.evidence) e)"

LATEST_ALERTS_SQL = f"""select alerts.id, alerts.created, alerts.kind, alerts.incident_id, alerts.summary,
       {_SOURCES} as sources, alerts.delivered
from alerts order by alerts.id desc limit 100"""

_CONFLICTS_SELECT = """select alerts.id, alerts.created, alerts.kind, alerts.incident_id,
       incidents.title as incident, alerts.summary,
       json_extract(alerts.evidence, '$[0].source') as a_source,
       json_extract(alerts.evidence, '$[0].quote') as a_quote,
       json_extract(alerts.evidence, '$[0].url') as a_url,
       json_extract(alerts.evidence, '$[1].source') as b_source,
       json_extract(alerts.evidence, '$[1].quote') as b_quote,
       json_extract(alerts.evidence, '$[1].url') as b_url,
       json_extract(alerts.details, '$.sides[0].label') || ': ' || json_extract(alerts.details, '$.sides[0].value')
         as a_claim,
       json_extract(alerts.details, '$.sides[1].label') || ': ' || json_extract(alerts.details, '$.sides[1].value')
         as b_claim,
       json_array_length(alerts.evidence) as evidence_count
from alerts left join incidents on incidents.id = alerts.incident_id
where alerts.kind in """ + _kinds_of("conflict")

OPEN_CONFLICTS_SQL = _CONFLICTS_SELECT + "\norder by alerts.id desc"

_CHANGES_SELECT = f"""select alerts.id, alerts.created, alerts.kind, alerts.incident_id,
       incidents.title as incident, alerts.summary, {_SOURCES} as sources,
       json_extract(alerts.evidence, '$[#-1].url') as url
from alerts left join incidents on incidents.id = alerts.incident_id
where (alerts.kind in {_kinds_of("change")} or alerts.kind = '{NEW_INCIDENT.name}')"""

CHANGES_SQL = _CHANGES_SELECT + "\n  and alerts.created >= :since\norder by alerts.created, alerts.id"

INCIDENT_TIMELINE_SQL = f"""select time, event, source, what, url from (
  select published as time, 0 as seq, 'report' as event, source, title as what, url
  from articles where incident_id = :incident_id
  union all
  select created, 1, kind, {_SOURCES}, summary, json_extract(evidence, '$[#-1].url')
  from alerts where incident_id = :incident_id
) order by time, seq"""

FEED_HEALTH_SQL = """select feeds.name, feeds.url, feeds.last_checked, feeds.last_ok, feeds.last_status,
       case when feeds.retired then 'retired' when feeds.consecutive_errors > 0 then 'failing' else 'ok' end
         as health,
       feeds.consecutive_errors, feeds.total_errors, feeds.polls, feeds.not_modified,
       feeds.etag is not null as has_etag, feeds.next_poll,
       (select count(*) from articles where articles.feed_id = feeds.id) as articles, feeds.last_error
from feeds order by feeds.name"""

INCIDENTS_MAP_SQL = """select id, title, place, status, latitude, longitude, first_seen, last_published,
       articles, sources
from incidents where latitude is not null and longitude is not null order by id desc"""

CANNED_QUERIES = (
    CannedQuery("latest_alerts", "Latest alerts", "The newest 100 alerts, with the outlets they cite.",
                LATEST_ALERTS_SQL),
    CannedQuery("open_conflicts", "Open conflicts",
                "Reports of one incident that disagree (figures, places, positions), with both sides.",
                OPEN_CONFLICTS_SQL),
    CannedQuery("incident_timeline", "Incident timeline",
                "Every report and alert of one incident in time order.", INCIDENT_TIMELINE_SQL),
    CannedQuery("feed_health", "Feed health", "Each feed's last poll, status, errors and articles stored.",
                FEED_HEALTH_SQL),
    CannedQuery("incidents_map", "Incidents on a map", "Incidents with a known place.", INCIDENTS_MAP_SQL),
)  # fmt: skip


def list_conflicts(
    db: Database, incident_id: int | None = None, limit: int = 100, timeout: float = DEFAULT_TIMEOUT
) -> QueryResult:
    """Conflict alerts (the conflict family of `incidents/kinds.py`), newest first, with the two sides'
    source, quote and URL (and, where the alert's details name them, who says what: `a_claim`, `b_claim`).

    The store keeps no resolution state yet, so every conflict alert counts as open.
    """
    sql = _CONFLICTS_SELECT
    params: dict[str, Any] = {}
    if incident_id is not None:
        sql += " and alerts.incident_id = :incident_id"
        params["incident_id"] = incident_id
    return execute(db, sql + f" order by alerts.id desc limit {int(limit)}", params, timeout)


def list_changes(db: Database, since: datetime, timeout: float = DEFAULT_TIMEOUT) -> QueryResult:
    """What moved since `since`: new incidents and alerts of the change family, oldest first."""
    return execute(db, CHANGES_SQL, {"since": iso_utc(since)}, timeout)


# --- the CLI's listings: alerts, health, incidents ------------------------------------------------------


def list_alerts(db: Database, pending: bool = False, limit: int = 50) -> QueryResult:
    """Recent alerts, newest first, with their delivery state (only undelivered ones with `pending`):
    `next_attempt` is when an undelivered alert is tried again (its earliest channel waiting a backoff)."""
    where = "where delivered is null" if pending else ""
    sql = (
        "select id, kind, incident_id, summary, created, delivered, channel, ts, attempts, "
        "(select min(d.next_attempt) from alert_deliveries d where d.alert_id = alerts.id "
        "and d.delivered is null and alerts.delivered is null) as next_attempt, last_error "
        f"from alerts {where} order by id desc limit :limit"
    )
    return execute(db, sql, {"limit": limit})


_STATUS_SQL = """select
  (select count(*) from feeds) as feeds,
  (select count(*) from feeds where consecutive_errors > 0 and not retired) as feeds_failing,
  (select count(*) from feeds where retired) as feeds_retired,
  (select count(*) from articles) as articles,
  (select count(*) from incidents) as incidents,
  (select count(*) from alerts) as alerts,
  (select count(*) from alerts where delivered is null) as alerts_pending,
  (select max(last_checked) from feeds) as last_poll"""


def store_status(db: Database) -> dict[str, Any]:
    """Counts for a one-screen health view: feeds (failing, retired), articles, incidents, alerts."""
    return execute(db, _STATUS_SQL).rows[0]


@dataclass(frozen=True, slots=True)
class Health:
    """What the health check (`status --check`) decided, and one line that says why."""

    healthy: bool
    reason: str


_CONFIGURED_FEEDS_SQL = """select name, configured_url, last_ok, consecutive_errors, retired, last_error
from feeds where configured_url in (select value from json_each(:urls))"""

_FAILING_DELIVERIES_SQL = """select count(*) as alerts, min(created) as oldest,
  (select last_error from alerts where delivered is null and last_error is not null and created <= :cutoff
   order by id desc limit 1) as last_error
from alerts where delivered is null and last_error is not null and created <= :cutoff"""


def check_health(
    db: Database, feeds: Sequence[tuple[str, str]], now: datetime, delivery_failing_after: float
) -> Health:
    """Healthy when at least one configured feed is, and no delivery has been failing for longer than
    `delivery_failing_after` seconds (an undelivered alert with an error, created before then).

    `feeds` are the (name, URL) of the config's enabled feeds: only they count, since a feed removed from
    the config keeps its row and the health it last had (issue 11). A feed is healthy when its last poll
    succeeded; one never polled is not yet.
    """
    reasons: list[str] = []
    healthy: list[str] = []
    if not feeds:
        reasons.append("no feeds configured (or all disabled): add one under `feeds:` in the config")
    else:
        rows = execute(db, _CONFIGURED_FEEDS_SQL, {"urls": json.dumps([url for _, url in feeds])}).rows
        by_url = {row["configured_url"]: row for row in rows}
        healthy = [url for _, url in feeds if _is_feed_healthy(by_url.get(url))]
        if not healthy:
            states = [f"{name}: {_feed_trouble(by_url.get(url))}" for name, url in feeds]
            more = f"; and {len(states) - 3} more" if len(states) > 3 else ""
            reasons.append("no configured feed is healthy (" + "; ".join(states[:3]) + more + ")")
    cutoff = iso_utc(now - timedelta(seconds=delivery_failing_after))
    failing = execute(db, _FAILING_DELIVERIES_SQL, {"cutoff": cutoff}).rows[0]
    if failing["alerts"]:
        plural = "alert" if failing["alerts"] == 1 else "alerts"
        reasons.append(
            f"{failing['alerts']} {plural} not delivered for more than {_duration_text(delivery_failing_after)} "
            f"(the oldest created {failing['oldest']}; last error {failing['last_error']})"
        )
    if reasons:
        return Health(False, "; ".join(reasons))
    pending = execute(db, "select count(*) as n from alerts where delivered is null").rows[0]["n"]
    return Health(True, f"{len(healthy)} of {len(feeds)} configured feeds healthy, {pending} alerts pending")


def _is_feed_healthy(row: dict[str, Any] | None) -> bool:
    return (
        row is not None
        and not row["retired"]
        and not row["consecutive_errors"]
        and row["last_ok"] is not None
    )


def _feed_trouble(row: dict[str, Any] | None) -> str:
    """What is wrong with a configured feed, in a few words."""
    if row is None or (row["last_ok"] is None and not row["consecutive_errors"]):
        return "not polled yet"
    if row["retired"]:
        return f"retired ({row['last_error']})"
    return f"{row['consecutive_errors']} failed polls in a row, last: {row['last_error']}"


def _duration_text(seconds: float) -> str:
    """`30m`, `2h`, `1d`, `90s`: a duration as the config writes it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def list_incidents(db: Database, limit: int = 50) -> QueryResult:
    """Incidents, latest first: type, place, status, reports, independent sources, alerts."""
    sql = """select i.id, i.incident_type, i.place, i.status, i.first_published, i.last_published, i.articles,
                    i.sources, (select count(*) from alerts a where a.incident_id = i.id) as alerts, i.title
             from incidents i order by i.last_published desc, i.id desc limit :limit"""
    return execute(db, sql, {"limit": limit})


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """One incident with its reports, its claims side by side, and its alerts."""

    incident: dict[str, Any]
    reports: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    alerts: list[dict[str, Any]]


def incident_detail(db: Database, incident_id: int) -> IncidentDetail | None:
    """Everything about one incident, or None when there is no such incident."""
    params = {"id": incident_id}
    head = execute(db, "select * from incidents where id = :id", params).rows
    if not head:
        return None
    reports = execute(
        db,
        "select published, source, title, url, version, duplicate_of from articles "
        "where incident_id = :id order by published, id",
        params,
    ).rows
    claims = execute(
        db,
        "select c.published, c.source, c.type, c.measure, c.value, c.source_key as said_by, c.quote, c.url "
        "from claims c where c.incident_id = :id order by c.type, c.measure, c.published, c.id",
        params,
    ).rows
    alerts = execute(
        db,
        "select id, kind, created, summary, delivered, ts from alerts where incident_id = :id order by id",
        params,
    ).rows
    return IncidentDetail(head[0], reports, claims, alerts)
