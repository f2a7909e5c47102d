"""Block Kit messages for alerts (pure): untrusted text escaped, clipped to Slack's limits, marked verbatim."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.incidents.kinds import kind_named
from bot.models import Alert, Evidence

#: Slack's limits: blocks per message, characters per section text; we keep the fallback text short.
MAX_BLOCKS = 50
SECTION_LIMIT = 3000
TEXT_LIMIT = 3000
QUOTE_LIMIT = 300
_URL = re.compile(r"^https?://[^\s<>|]+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Message:
    """A Slack message: Block Kit blocks and the plain `text` fallback (notifications, old clients)."""

    text: str
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """Slack's three control characters as entities: untrusted text can neither ping nor link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, cut on a whole word or entity, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp > cut.rfind(";"):
        cut = cut[:amp]
    return cut.rstrip() + "\u2026"


def _safe(value: Any, limit: int) -> str:
    """Untrusted `value` as escaped, clipped mrkdwn text."""
    return clip(escape(str(value)), limit)


def _link(url: str, label: str) -> str:
    """A link to an http(s) URL; anything else is shown as escaped text."""
    if not url:
        return ""
    if not _URL.match(url):
        return _safe(url, 200)
    return f"<{escape(url)}|{label}>"


def _when(published: str) -> str:
    """A stored time as `2021-07-26 04:30 UTC`."""
    try:
        when = datetime.fromisoformat(published)
    except ValueError:
        return _safe(published, 40) if published else "time unknown"
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _mrkdwn(text: str) -> dict[str, Any]:
    """A verbatim mrkdwn text object, clipped to a section's limit."""
    return {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT) if len(text) > SECTION_LIMIT else text,
            "verbatim": True}  # fmt: skip


def section(text: str) -> dict[str, Any]:
    """A section block of (already escaped) mrkdwn text."""
    return {"type": "section", "text": _mrkdwn(text)}


def context(text: str) -> dict[str, Any]:
    """A context block (small grey text) of (already escaped) mrkdwn text."""
    return {"type": "context", "elements": [_mrkdwn(text)]}


def place_of(alert: Alert, incident: Mapping[str, Any] | None) -> str | None:
    """The place named by the alert's details, else the incident's."""
    value = alert.details.get("place") or (incident or {}).get("place")
    if isinstance(value, dict):
        value = value.get("name")
    return str(value) if value else None


def _evidence_line(item: Evidence, quote_limit: int = QUOTE_LIMIT) -> str:
    """`> quote` and `source · time · link` for one piece of evidence."""
    source = _safe(item.source or "unknown source", 100)
    link = _link(item.url, "article")
    meta = " \u00b7 ".join(part for part in (f"_{source}_", _when(item.published), link) if part)
    quote = _safe(item.quote, quote_limit)
    return (f"> \u201c{quote}\u201d\n" if quote else "") + meta


def _side_evidence(side: Mapping[str, Any], evidence: Sequence[Evidence]) -> list[int]:
    """Which evidence items a side cites: by index, or by URL (one or a list of either)."""
    refs = side.get("evidence")
    refs = refs if isinstance(refs, list) else [refs]
    found: list[int] = []
    for ref in refs:
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(evidence):
            index: int | None = ref
        elif isinstance(ref, str) and ref:
            index = next((i for i, e in enumerate(evidence) if e.url == ref), None)
        else:
            index = None
        if index is not None and index not in found:
            found.append(index)
    return found


def _sides_blocks(evidence: Sequence[Evidence], sides: object) -> list[dict[str, Any]]:
    """One section per side (label, value, how many sources back it, its quotes), then unclaimed evidence."""
    blocks: list[dict[str, Any]] = []
    used: set[int] = set()
    for side in sides if isinstance(sides, list) else []:
        if not isinstance(side, dict):
            continue
        cited = _side_evidence(side, evidence)
        used.update(cited)
        count = side.get("sources")
        if isinstance(count, list):
            count = len(count)
        if not isinstance(count, int) or isinstance(count, bool):
            count = len({evidence[i].source for i in cited}) or (1 if side.get("source") else None)
        backing = f" \u00b7 {count} source{'s' if count != 1 else ''}" if count is not None else ""
        head = f"*{_safe(side.get('label') or 'Side', 200)}: {_safe(side.get('value', '?'), 200)}*{backing}"
        lines = [head] + [_evidence_line(evidence[i]) for i in cited[:3]]
        if not cited and side.get("source"):
            lines.append(f"_{_safe(side['source'], 100)}_")
        blocks.append(section("\n".join(lines)))
    for index, item in enumerate(evidence):
        if index not in used:
            blocks.append(section(_evidence_line(item)))
    return blocks


def _fit(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_BLOCKS blocks, saying how many were left out."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    kept = blocks[: MAX_BLOCKS - 1]
    return [*kept, context(f"\u2026 and {len(blocks) - len(kept)} more not shown")]


def render_alert(alert: Alert, incident: Mapping[str, Any] | None = None) -> Message:
    """The message for one alert: headline, kind, place, then each side with its sources and quotes."""
    kind = kind_named(alert.kind or "alert")
    headline = _safe(alert.summary or kind.label, 1000)
    place = place_of(alert, incident)
    facts = [f"{kind.icon} {kind.label}"]
    if alert.incident_id:
        facts.append(f"incident #{alert.incident_id}")
    if place:
        facts.append(f":round_pushpin: {_safe(place, 200)}")
    facts.append(f"alert #{alert.id}")
    blocks = [section(f"*{headline}*"), context(" \u00b7 ".join(facts))]
    blocks += _sides_blocks(alert.evidence, alert.details.get("sides"))
    text = clip(headline + (f" \u2014 {_safe(place, 200)}" if place else ""), TEXT_LIMIT)
    return Message(text, _fit(blocks))


def render_batch(alerts: Sequence[Alert], incident: Mapping[str, Any] | None = None) -> Message:
    """One reply for a burst of an incident's alerts (the cooldown): what changed since the last message."""
    if len(alerts) == 1:
        return render_alert(alerts[0], incident)
    blocks = [section(f"*{len(alerts)} changes since the last alert*")]
    for alert in alerts:
        kind = kind_named(alert.kind or "alert")
        evidence = alert.evidence
        lines = [f"{kind.icon} *{_safe(alert.summary or kind.label, 600)}*"]
        lines += [_evidence_line(item, 150) for item in evidence[:3]]
        if len(evidence) > 3:
            lines.append(f"_and {len(evidence) - 3} more sources_")
        blocks.append(section("\n".join(lines)))
    summaries = "; ".join(_safe(a.summary, 300) for a in alerts)
    return Message(clip(f"{len(alerts)} changes: {summaries}", TEXT_LIMIT), _fit(blocks))


def render_parent(
    first: Alert, incident: Mapping[str, Any] | None, alert_count: int, latest: str | None
) -> Message:
    """The thread's parent, edited to show the incident's current picture above its first alert."""
    incident = incident or {}
    title = _safe(incident.get("title") or first.summary or "incident", 500)
    facts = []
    place = place_of(first, incident)
    if place:
        facts.append(f":round_pushpin: {_safe(place, 200)}")
    if incident.get("status"):
        facts.append(f"status: {_safe(incident['status'], 100)}")
    articles, sources = incident.get("articles"), incident.get("sources")
    if articles:
        facts.append(f"{articles} articles" + (f" from {sources} sources" if sources else ""))
    facts.append(f"{alert_count} alert{'s' if alert_count != 1 else ''}")
    head = [
        section(f"*Incident #{first.incident_id}: {title}*"),
        context(" \u00b7 ".join(facts)),
    ]
    if latest and alert_count > 1:
        head.append(section(f"Latest: {_safe(latest, 600)}"))
    blocks = [*head, {"type": "divider"}, *render_alert(first, incident).blocks]
    text = clip(f"Incident #{first.incident_id}: {title} \u2014 {alert_count} alerts", TEXT_LIMIT)
    return Message(text, _fit(blocks))
