"""Value types shared by three or more modules (feeds, store, cycle, alerts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


def iso_utc(when: datetime) -> str:
    """A time as the store and evidence write it: ISO 8601 in UTC, to the second (naive means UTC)."""
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class FeedState:
    """What we remember about a feed between polls (a row of the `feeds` table)."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    consecutive_errors: int = 0
    next_poll: datetime | None = None
    retired: bool = False
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a feed (or one article file replayed by `ingest`)."""

    link: str
    guid: str | None
    title: str
    summary: str
    published: datetime | None
    source: str
    feed_url: str | None = None
    fetch_page: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    """One version of a stored article, ready for claim extraction and incident grouping."""

    article_id: int
    version: int
    url: str
    source: str
    title: str
    text: str
    published: datetime
    duplicate_of: int | None = None
    summary_only: bool = False


@dataclass(frozen=True, slots=True)
class Evidence:
    """One side of an alert: where the claim was read."""

    url: str
    source: str
    published: str
    quote: str

    def as_dict(self) -> dict[str, str]:
        """The JSON shape stored in `alerts.evidence`."""
        return {"url": self.url, "source": self.source, "published": self.published, "quote": self.quote}


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert decided by the incident logic, before it is stored in the outbox."""

    kind: str
    incident_id: int | None
    summary: str
    evidence: tuple[Evidence, ...]
    dedupe_key: str
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alert:
    """A stored alert (a row of the `alerts` outbox) as the sinks route and render it.

    The store reads it (`store.pending_alerts`) and parses its JSON columns once: `evidence` keeps the
    items that are objects, a missing or non-text field read as ""; `details` is {} unless the column
    holds a JSON object. `created` is the time text as stored (the console prints it as it is);
    `sending_since` is when an earlier run started sending it (None: not in flight).
    """

    id: int
    kind: str
    incident_id: int | None
    summary: str
    evidence: tuple[Evidence, ...]
    details: dict[str, object]
    created: str
    sending_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredClaim:
    """A claim of one report as the incident keeps it: what is claimed, by whom, where it was read.

    `type` is figure, position, status or place; `key` what is measured (a figure's measure, a
    position's actor, a status axis, a place's role); `side` the party the speaker belongs to.
    """

    type: str
    key: str
    value: str
    low: float | None
    high: float | None
    article_id: int
    source: str
    source_key: str
    side: str
    evidence: Evidence
    vague: bool = False
    label: str = ""
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True, slots=True)
class IncidentProfile:
    """What grouping needs to know of a stored incident: its type, when it was last reported, and the
    places, lead words and figures of its reports so far (stored as JSON in `incidents.profile`)."""

    id: int
    incident_type: str | None
    last_published: datetime
    places: frozenset[str]
    words: frozenset[str]
    primary: frozenset[str] = frozenset()
    figures: tuple[tuple[str, float, float | None], ...] = ()
    #: The words again, in the order first seen: a full profile keeps its first words.
    words_in_order: tuple[str, ...] = ()
