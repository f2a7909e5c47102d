"""The incoming-webhook sink: each alert posted on its own to the webhook's one channel (no threads)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from http.client import HTTPException
from typing import Any

from slack_sdk.errors import SlackClientError
from slack_sdk.webhook import WebhookClient

from bot.alerts.outbox import Sent
from bot.alerts.slack.client import BLOCK_ERRORS, Redactor, rate_limited
from bot.alerts.slack.render import Message, clip, render_alert
from bot.config import SlackConfig
from bot.errors import DeliveryError
from bot.models import Alert

#: Webhook answers (HTTP status, body) that no retry fixes.
WEBHOOK_PERMANENT = {
    "invalid_token": "the webhook URL in SLACK_WEBHOOK_URL was rejected",
    "no_service": "the webhook in SLACK_WEBHOOK_URL was removed or disabled",
    "no_active_hooks": "the webhook in SLACK_WEBHOOK_URL is disabled",
    "channel_not_found": "the webhook's channel no longer exists",
    "channel_is_archived": "the webhook's channel is archived",
    "action_prohibited": "an admin restricted posting to the webhook's channel",
    "posting_to_general_channel_denied": "the webhook may not post to #general",
    "team_disabled": "the workspace is disabled",
}


class WebhookSink:
    """Posts each alert on its own to an incoming webhook's channel (no threads, no lookups)."""

    name = "slack-webhook"
    cooldown = 0.0

    def __init__(
        self,
        client: WebhookClient,
        slack: SlackConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.slack = slack
        self.clock = clock
        self.sleep = sleep
        self.redact = Redactor([client.url, client.url.rstrip("/").rsplit("/", 1)[-1]])
        self._last_post: float | None = None

    def route(self, alert: Alert) -> tuple[str, ...]:
        """A webhook has one channel, fixed when it was made."""
        return ("webhook",)

    def send(self, alerts: Sequence[Alert], channel: str) -> Sent:
        """Post the alerts, one message each."""
        for alert in alerts:
            self.send_message(render_alert(alert))
        return Sent()

    def find_sent(self, alert: Alert, channel: str, since: datetime) -> Sent | None:
        """A webhook's channel cannot be read: an interrupted send is sent again (at least once)."""
        return None

    def send_message(self, message: Message) -> None:
        """Post one message, paced to `max_per_second`; blocks refused by Slack are resent as plain text."""
        interval = 1.0 / self.slack.max_per_second if self.slack.max_per_second > 0 else 0.0
        if self._last_post is not None and (wait := self._last_post + interval - self.clock()) > 0:
            self.sleep(wait)
        try:
            try:
                self._send(message.text, message.blocks)
            except DeliveryError as exc:
                if exc.code not in BLOCK_ERRORS and exc.code != "invalid_payload":
                    raise
                self._send(message.text, None)
        finally:
            self._last_post = self.clock()

    def _send(self, text: str, blocks: list[dict[str, Any]] | None) -> None:
        """One post; every answer but 200 becomes a DeliveryError without the webhook URL in it."""
        try:
            response = self.client.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
        except (OSError, HTTPException, SlackClientError) as exc:
            raise DeliveryError(
                f"no answer from the Slack webhook: {self.redact(exc)}", uncertain=True
            ) from None
        status, body = response.status_code, clip(str(response.body or ""), 100)
        if status == 200:
            return
        if status == 429:
            raise rate_limited(response.headers, body)
        if status >= 500:
            raise DeliveryError(f"the Slack webhook answered HTTP {status}", uncertain=True, code=body)
        if body in WEBHOOK_PERMANENT or status in (403, 404, 410):
            hint = WEBHOOK_PERMANENT.get(body, "the webhook URL does not work")
            message = f"{self.redact(body)}: {hint} (HTTP {status})"
            raise DeliveryError(message, permanent=True, every_channel=True, code=body)
        raise DeliveryError(f"the Slack webhook answered HTTP {status}: {self.redact(body)}", code=body)
