"""The one table of alert kinds: name, label, icon, family, broadcast default.

Every module that names an alert kind takes it from here: the detectors in `compare.py`, the console
and Slack renderers (label, icon), the config (which kinds Slack broadcasts to the channel) and the
queries (`conflicts` and `changes` select by family). A new alert kind is one detector plus one row.
The names are what `../shared/tools/score.py` reads in `alerts.kind`: keep them stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["incident", "conflict", "change", "operations"]


@dataclass(frozen=True, slots=True)
class AlertKind:
    """One kind of alert.

    `family`: `incident` (a new incident), `conflict` (reports disagree), `change` (the story moved),
    `operations` (the bot's own health). `broadcast`: a Slack thread reply of this kind is also shown
    in the channel by default (`slack.broadcast_kinds`).
    """

    name: str
    label: str
    icon: str
    family: Family
    broadcast: bool = False


NEW_INCIDENT = AlertKind("new_incident", "New incident", ":new:", "incident")
FIGURE_CONFLICT = AlertKind("figure_conflict", "Figures conflict", ":warning:", "conflict", broadcast=True)
FIGURE_CHANGE = AlertKind("figure_change", "Figure changed", ":arrows_counterclockwise:", "change")
LOCATION_CONFLICT = AlertKind(
    "location_conflict", "Locations conflict", ":warning:", "conflict", broadcast=True
)
LOCATION_CHANGE = AlertKind("location_change", "Location changed", ":arrows_counterclockwise:", "change")
POSITION_CONFLICT = AlertKind(
    "position_conflict", "Positions conflict", ":warning:", "conflict", broadcast=True
)
POSITION_CHANGE = AlertKind("position_change", "Position changed", ":arrows_counterclockwise:", "change")
STATUS_CHANGE = AlertKind(
    "status_change", "Status changed", ":arrows_counterclockwise:", "change", broadcast=True
)
FEED_FAILING = AlertKind("feed_failing", "Feed failing", ":satellite_antenna:", "operations")

#: Every alert kind, in the order they are documented.
ALERT_KINDS: tuple[AlertKind, ...] = (
    NEW_INCIDENT,
    FIGURE_CONFLICT,
    FIGURE_CHANGE,
    LOCATION_CONFLICT,
    LOCATION_CHANGE,
    POSITION_CONFLICT,
    POSITION_CHANGE,
    STATUS_CHANGE,
    FEED_FAILING,
)
KINDS_BY_NAME: dict[str, AlertKind] = {kind.name: kind for kind in ALERT_KINDS}
#: An unknown name (a store written by a newer borderwatch) still renders.
_UNKNOWN_ICON = ":newspaper:"


def kind_named(name: str) -> AlertKind:
    """The kind called `name`; an unknown name gets a kind made from it (label from the name)."""
    found = KINDS_BY_NAME.get(name)
    if found is not None:
        return found
    return AlertKind(name, name.replace("_", " ").capitalize(), _UNKNOWN_ICON, "change")


def names_in_family(family: Family) -> tuple[str, ...]:
    """The names of every kind of one family, e.g. every conflict kind."""
    return tuple(kind.name for kind in ALERT_KINDS if kind.family == family)


def broadcast_names() -> tuple[str, ...]:
    """The kinds shown in the channel as well as in their incident's thread, by default."""
    return tuple(kind.name for kind in ALERT_KINDS if kind.broadcast)
