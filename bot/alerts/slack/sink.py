"""The bot-token sink: one thread per incident and channel, its parent kept current, sends found again.

Posts with `chat.postMessage` (at most `max_per_second` per channel), edits a thread's parent with
`chat.update`, and after a crash looks an in-flight alert up in the channel's history and the incident's
thread by the alert ids each message carries as metadata.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.web import SlackResponse
from sqlite_utils import Database

from bot import store
from bot.alerts.outbox import Sent
from bot.alerts.slack.client import (
    BLOCK_ERRORS,
    PERMANENT_ERRORS,
    Redactor,
    call_api,
    carried,
    metadata,
)
from bot.alerts.slack.render import render_batch, render_parent
from bot.alerts.slack.route import route_channels
from bot.config import SlackConfig
from bot.errors import DeliveryError
from bot.models import Alert

logger = logging.getLogger("borderwatch")

#: How far before the in-flight time to look for an interrupted send (clock skew between us and Slack).
LOOKUP_MARGIN = timedelta(minutes=10)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class SlackSink:
    """Posts alerts with a bot token: a thread per incident and channel, the parent kept current."""

    name = "slack"

    def __init__(
        self,
        client: WebClient,
        db: Database,
        slack: SlackConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.db = db
        self.slack = slack
        self.cooldown = slack.cooldown
        self.clock = clock
        self.sleep = sleep
        self.redact = Redactor([client.token or ""])
        self._last_post: dict[str, float] = {}

    # -- the Sink protocol

    def route(self, alert: Alert) -> tuple[str, ...]:
        """The channels this alert's kind, place and topic route it to."""
        return route_channels(self.slack, alert, self._incident(alert.incident_id))

    def send(self, alerts: Sequence[Alert], channel: str) -> Sent:
        """Post one message about `alerts`: the incident's parent, or a reply in its thread."""
        incident_id = alerts[0].incident_id
        incident = self._incident(incident_id)
        thread_ts = self._thread(incident_id, channel)
        message = render_batch(alerts, incident)
        ids = [a.id for a in alerts]
        kwargs: dict[str, Any] = {
            "channel": channel, "text": message.text, "blocks": message.blocks, "unfurl_links": False,
            "unfurl_media": False, "metadata": metadata(ids),
        }  # fmt: skip
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            kwargs["reply_broadcast"] = any(a.kind in self.slack.broadcast_kinds for a in alerts)
        try:
            response = self.post(channel, kwargs)
        except DeliveryError as exc:
            if not thread_ts or incident_id is None or exc.code != "thread_not_found":
                raise
            # Somebody deleted the thread's parent: this message opens a new thread.
            logger.warning("thread of incident %s in %s is gone; starting a new one", incident_id, channel)
            store.forget_thread(self.db, incident_id, channel)
            thread_ts = None
            response = self.post(
                channel, {k: v for k, v in kwargs.items() if k not in ("thread_ts", "reply_broadcast")}
            )
        ts = str(response["ts"])
        self.remember_channel(channel, response.get("channel"))
        if incident_id is not None and not thread_ts:
            store.save_thread(self.db, incident_id, channel, ts)
        elif thread_ts and incident_id is not None:
            self._update_parent(incident_id, channel, thread_ts, incident)
        return Sent(ts)

    def find_sent(self, alert: Alert, channel: str, since: datetime) -> Sent | None:
        """The message carrying `alert` in `channel`: top level (history), else in its thread."""
        channel_id = self._channel_id(channel)
        oldest = f"{(since - LOOKUP_MARGIN).timestamp():.6f}"
        incident_id = alert.incident_id
        thread_ts = self._thread(incident_id, channel)
        alert_id = alert.id
        found = self._search(
            self.client.conversations_history, channel, alert_id, channel=channel_id, oldest=oldest
        )
        if found is None and thread_ts:
            found = self._search(self.client.conversations_replies, channel, alert_id, channel=channel_id,
                                 ts=thread_ts, oldest=oldest)  # fmt: skip
        if found is None:
            return None
        message, ids = found
        ts = str(message["ts"])
        is_parent = message.get("thread_ts") in (None, ts)
        if incident_id is not None and thread_ts is None and is_parent:
            store.save_thread(self.db, incident_id, channel, ts)
        return Sent(ts, ids)

    # -- Slack calls

    def call(
        self, method: Callable[..., SlackResponse], channel: str | None, /, **kwargs: Any
    ) -> SlackResponse:
        """Call the Web API; every failure becomes a DeliveryError without secrets in it."""
        return call_api(method, channel, self.redact, method == self.client.chat_postMessage, **kwargs)

    def post(self, channel: str, kwargs: dict[str, Any]) -> SlackResponse:
        """chat.postMessage, at most `max_per_second` per channel; blocks Slack refuses go as plain text."""
        interval = 1.0 / self.slack.max_per_second if self.slack.max_per_second > 0 else 0.0
        last = self._last_post.get(channel)
        if last is not None and (wait := last + interval - self.clock()) > 0:
            self.sleep(wait)
        try:
            return self.call(self.client.chat_postMessage, channel, **kwargs)
        except DeliveryError as exc:
            if exc.code not in BLOCK_ERRORS:
                raise
            logger.warning("Slack refused the blocks of alert message (%s); sending plain text", exc.code)
            return self.call(self.client.chat_postMessage, channel, **{**kwargs, "blocks": None})
        finally:
            self._last_post[channel] = self.clock()

    def _search(
        self, method: Callable[..., SlackResponse], channel: str, alert_id: int, /, **kwargs: Any
    ) -> tuple[dict[str, Any], tuple[int, ...]] | None:
        """Page through history or replies for the message whose metadata carries `alert_id`."""
        cursor = None
        for _ in range(20):
            response = self.call(
                method, channel, include_all_metadata=True, limit=200, cursor=cursor, **kwargs
            )
            for message in response.get("messages") or []:
                ids = carried(message)
                if alert_id in ids:
                    return dict(message), ids
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not response.get("has_more") or not cursor:
                return None
        return None

    def _update_parent(
        self, incident_id: int, channel: str, parent_ts: str, incident: dict[str, Any] | None
    ) -> None:
        """Edit the thread's parent to show the incident's current picture; a failure is only logged."""
        first = store.first_alert_of_message(self.db, channel, parent_ts)
        if first is None:
            return
        count, latest = store.tally_alerts(self.db, incident_id)
        message = render_parent(first, incident, count, latest)
        try:
            self.call(
                self.client.chat_update, channel, channel=self._channel_id(channel), ts=parent_ts,
                text=message.text, blocks=message.blocks, metadata=metadata([first.id]),
            )  # fmt: skip
        except DeliveryError as exc:
            logger.warning("parent message of incident %s in %s not updated: %s", incident_id, channel, exc)

    # -- the store

    def _incident(self, incident_id: int | None) -> dict[str, Any] | None:
        return None if incident_id is None else store.load_incident_row(self.db, incident_id)

    def _thread(self, incident_id: int | None, channel: str) -> str | None:
        return None if incident_id is None else store.thread_ts(self.db, incident_id, channel)

    def remember_channel(self, name: str, channel_id: Any) -> None:
        """Remember a channel's id as Slack answered it (not when it is the configured name itself)."""
        if isinstance(channel_id, str) and channel_id and channel_id != name:
            store.save_channel_id(self.db, name, channel_id)

    def _channel_id(self, name: str) -> str:
        """The channel's id (history and chat.update need it): as configured, remembered, or listed."""
        if _CHANNEL_ID.match(name):
            return name
        remembered = store.channel_id(self.db, name)
        if remembered is not None:
            return remembered
        wanted = name.lstrip("#")
        cursor = None
        for _ in range(50):
            response = self.call(
                self.client.conversations_list, name, types="public_channel,private_channel",
                exclude_archived=True, limit=1000, cursor=cursor,
            )  # fmt: skip
            for channel in response.get("channels") or []:
                if channel.get("name") == wanted:
                    self.remember_channel(name, channel["id"])
                    return str(channel["id"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        message = f"channel_not_found: {PERMANENT_ERRORS['channel_not_found']} ({name})"
        raise DeliveryError(message, permanent=True, code="channel_not_found")
