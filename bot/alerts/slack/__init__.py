"""The Slack sink: Block Kit messages, routing to channels, one thread per incident, exactly-once delivery.

Two modes, both configured from the environment only (issue 4): a bot token (`SLACK_BOT_TOKEN`,
`chat.postMessage`, threads, parent edited with `chat.update`; `SLACK_BASE_URL` overrides the Web API
base URL) or an incoming webhook (`SLACK_WEBHOOK_URL`: no threads, each alert stands alone).

`render` builds the messages, `route` picks the channels, `client` wraps slack-sdk, `sink` and `webhook`
are the two sinks, and `setup` chooses one from the environment.
"""

from __future__ import annotations

from bot.alerts.slack.client import make_web_client
from bot.alerts.slack.render import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    Message,
    escape,
    render_alert,
    render_batch,
    render_parent,
)
from bot.alerts.slack.route import route_channels
from bot.alerts.slack.setup import SCOPES, SlackCheck, check_slack, make_slack_sink
from bot.alerts.slack.sink import SlackSink
from bot.alerts.slack.webhook import WebhookSink
from bot.errors import SlackSetupError

__all__ = [
    "MAX_BLOCKS",
    "SCOPES",
    "SECTION_LIMIT",
    "Message",
    "SlackCheck",
    "SlackSetupError",
    "SlackSink",
    "WebhookSink",
    "check_slack",
    "escape",
    "make_slack_sink",
    "make_web_client",
    "render_alert",
    "render_batch",
    "render_parent",
    "route_channels",
]
