"""The console sink: one readable block per alert, with its sources. Used when no Slack is configured."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from bot.alerts.outbox import Sent
from bot.incidents.kinds import kind_named
from bot.models import Alert


def format_alert(alert: Alert) -> str:
    """A plain-text block for one alert."""
    label = kind_named(alert.kind).label.upper()
    incident = f" · incident #{alert.incident_id}" if alert.incident_id else ""
    lines = [f"== {label}{incident} · alert #{alert.id} · {alert.created}", f"   {alert.summary}"]
    for item in alert.evidence:
        quote = " ".join(item.quote.split())
        if len(quote) > 280:
            quote = quote[:277] + "..."
        lines.append(f"   - {item.source}, {item.published}: \u201c{quote}\u201d")
        lines.append(f"     {item.url}")
    return "\n".join(lines)


class ConsoleSink:
    """Writes alerts to a text stream (stdout by default)."""

    name = "console"
    cooldown = 0.0

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def route(self, alert: Alert) -> tuple[str, ...]:
        """Every alert goes to the one console."""
        return ("console",)

    def send(self, alerts: Sequence[Alert], channel: str) -> Sent:
        """Print the alerts; the console has no message ids."""
        for alert in alerts:
            print(format_alert(alert) + "\n", file=self.stream, flush=True)
        return Sent()

    def find_sent(self, alert: Alert, channel: str, since: datetime) -> Sent | None:
        """A console cannot be searched: an alert interrupted while printing is printed again."""
        return None
