"""Routing (pure): which Slack channels an alert goes to, by its kind, place and topic words."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from bot.alerts.slack.render import place_of
from bot.config import SlackConfig
from bot.models import Alert
from bot.watch import Watch, compile_watch


@functools.lru_cache(maxsize=256)
def _matcher(words: tuple[str, ...]) -> Watch:
    """A route's place or topic words, compiled once."""
    return compile_watch(words)


def route_channels(
    slack: SlackConfig, alert: Alert, incident: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """Every channel whose route matches the alert (kind globs, place, topic words), else the default one."""
    details = alert.details
    place = place_of(alert, incident) or ""
    incident = incident or {}
    # Alerts stored before the names of m004 carry the incident type as `event`.
    topic_text = [alert.summary, str(incident.get("title") or ""),
                  str(incident.get("incident_type") or ""),
                  str(details.get("incident_type") or details.get("event") or "")]  # fmt: skip
    channels: list[str] = []
    for route in slack.routes:
        if route.kinds and not any(fnmatchcase(alert.kind, k) for k in route.kinds):
            continue
        if route.places and not _matcher(route.places).matches(place):
            continue
        if route.topics and not _matcher(route.topics).matches("\n".join(topic_text)):
            continue
        if route.channel not in channels:
            channels.append(route.channel)
    if not channels and slack.channel:
        channels.append(slack.channel)
    return tuple(channels)
