"""`borderwatch serve`: the store in Datasette, read-only, with notes on every table and the canned queries.

Datasette runs as a subprocess (`python -m datasette serve DB --metadata FILE`), so it stays an optional
dependency (`pip install 'borderwatch[web]'`) and nothing of ours imports it. Datasette opens a file it
was given like this with `mode=ro` (not `immutable=1`, which would hide what the running bot writes to the
WAL), and none of our canned queries writes. The incidents table and the `incidents_map` query have
`latitude`/`longitude` columns, which `datasette-cluster-map` draws on a map.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from bot.errors import ServeError
from bot.incidents.kinds import ALERT_KINDS
from bot.views import CANNED_QUERIES

logger = logging.getLogger("borderwatch")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: The `alerts.kind` column's help: every kind with its family (from `incidents/kinds.py`).
ALERT_KIND_HELP = "; ".join(f"{kind.name} ({kind.family})" for kind in ALERT_KINDS)

TABLE_NOTES: dict[str, dict[str, Any]] = {
    "articles": {
        "description": "On-topic reports, one row per canonical URL; full-text search on title and text.",
        "sort_desc": "published",
        "facets": ["source", "incident_id"],
        "columns": {
            "url": "The link as the feed gave it",
            "canonical_url": "The URL without tracking parameters or fragment: one row per canonical URL",
            "source": "The outlet's name",
            "published": "Publication time (UTC, ISO 8601)",
            "fetched": "When the bot first stored it",
            "updated": "When the text last changed (older texts are in article_versions)",
            "text": "The article text as extracted from the page or the feed",
            "duplicate_of": "The earlier article from another outlet whose text this repeats (wire copy)",
            "incident_id": "The incident this report belongs to",
            "in_scope": "1 if the report is about a watched incident",
            "version": "How many texts of this article have been seen",
            "summary_only": "1 if only the feed's summary was available",
        },
    },
    "incidents": {
        "description": "Events on the border and the reports about each; mapped where the place is known.",
        "label_column": "title",
        "sort_desc": "last_published",
        "columns": {
            "title": "A headline for the incident",
            "incident_type": "What happened (crossing, clash, closure, ...)",
            "status": "The latest reported state of the incident",
            "place": "Where, as named in the reports",
            "place_id": "The gazetteer entry for the place",
            "latitude": "Latitude of the place (WGS 84)",
            "longitude": "Longitude of the place (WGS 84)",
            "first_seen": "When the bot first saw a report of it (UTC)",
            "last_published": "Publication time of the newest report (UTC)",
            "articles": "Reports grouped into it",
            "sources": "Distinct outlets among them",
        },
    },
    "claims": {
        "description": "What each report says about its incident: figures, places, positions, status.",
        "facets": ["type", "source"],
        "columns": {
            "type": "figure, place, position or status",
            "measure": "What a figure counts (killed, crossed, ...)",
            "value": "The claim as read, e.g. 46 or 'returned'",
            "low": "Lower bound of a figure ('at least 40' gives 40)",
            "high": "Upper bound of a figure",
            "side": "The side the speaker speaks for (pakistan, afghanistan, militant, ...)",
            "stance": "The position taken (confirms, denies, ...)",
            "quote": "The sentence the claim was read from",
            "source": "The outlet that printed it",
            "url": "The report it comes from",
        },
    },
    "alerts": {
        "description": "Alerts raised (the delivery outbox): new incidents, conflicts, changes.",
        "sort_desc": "id",
        "facets": ["kind"],
        "columns": {
            "kind": ALERT_KIND_HELP,
            "summary": "One line saying what happened",
            "evidence": "JSON array of the cited reports: url, source, published, quote",
            "details": "JSON with the values compared",
            "dedupe_key": "The same key is never alerted twice",
            "created": "When the alert was raised (UTC)",
            "delivered": "When it reached Slack or the console; empty while pending",
            "channel": "The Slack channel it went to",
            "attempts": "Delivery attempts so far",
            "last_error": "Why the last delivery failed",
        },
    },
    "feeds": {
        "description": "Each polled feed's state: conditional GET validators, errors, backoff.",
        "columns": {
            "configured_url": "The URL in the config",
            "url": "The URL polled now (after permanent redirects)",
            "etag": "ETag of the last response, sent back as If-None-Match",
            "last_modified": "Last-Modified of the last response, sent back as If-Modified-Since",
            "last_checked": "Time of the last poll (UTC)",
            "last_ok": "Time of the last successful poll (UTC)",
            "last_status": "HTTP status of the last poll",
            "consecutive_errors": "Failures in a row (drives the backoff)",
            "not_modified": "Polls answered 304 Not Modified",
            "next_poll": "Earliest time of the next poll (UTC)",
            "retired": "1 if the feed is gone (410) and no longer polled",
        },
    },
    "article_bands": {"hidden": True},
}


def is_datasette_installed() -> bool:
    """True if the `web` extra (datasette) is importable."""
    return importlib.util.find_spec("datasette") is not None


def build_metadata(db_name: str) -> dict[str, Any]:
    """Datasette metadata for a store served under `db_name` (its file name without `.db`)."""
    queries = {q.name: {"title": q.title, "description": q.description, "sql": q.sql} for q in CANNED_QUERIES}
    return {
        "title": "borderwatch",
        "description": (
            "Reports about the Afghanistan-Pakistan border, the incidents they describe and the alerts "
            "raised when reports disagree or change. Read-only."
        ),
        "databases": {
            db_name: {
                "description": "The borderwatch store. Start with the canned queries below.",
                "tables": TABLE_NOTES,
                "queries": queries,
            }
        },
        "plugins": {
            "datasette-cluster-map": {"latitude_column": "latitude", "longitude_column": "longitude"}
        },
    }


def datasette_command(db_path: Path, metadata_path: Path, host: str, port: int) -> list[str]:
    """The command line that serves `db_path` read-only with our metadata."""
    return [sys.executable, "-m", "datasette", "serve", str(db_path), "--metadata", str(metadata_path),
            "--host", host, "--port", str(port)]  # fmt: skip


def run_datasette(db_path: Path, host: str = "127.0.0.1", port: int = 8001) -> int:
    """Serve the store until Datasette exits (Ctrl-C, SIGTERM); returns its exit status."""
    if not is_datasette_installed():
        raise ServeError("datasette is not installed: pip install 'borderwatch[web]'")
    if not db_path.is_file():
        raise ServeError(f"{db_path}: no such database (run `borderwatch poll --once` or `ingest` first)")
    if host not in LOOPBACK_HOSTS:
        logger.warning(
            "serving %s on %s: anyone who can reach this address can read the store", db_path, host
        )
    with tempfile.TemporaryDirectory(prefix="borderwatch-serve-") as tmp:
        metadata_path = Path(tmp) / "metadata.json"
        metadata_path.write_text(json.dumps(build_metadata(db_path.stem), indent=2), encoding="utf-8")
        process = subprocess.Popen(datasette_command(db_path, metadata_path, host, port))

        def _forward(signum: int, frame: FrameType | None) -> None:
            process.send_signal(signum)  # Datasette shuts down; we return when it has

        previous = signal.signal(signal.SIGTERM, _forward)
        try:
            status = process.wait()
        except KeyboardInterrupt:  # the terminal sent SIGINT to Datasette too
            status = process.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
            if process.poll() is None:
                process.terminate()
                process.wait()
    # Uvicorn shuts down cleanly on SIGTERM/SIGINT, then re-raises the signal: that is a normal stop.
    return 0 if status in (-signal.SIGTERM, -signal.SIGINT) else status
