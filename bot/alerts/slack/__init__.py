"""The Slack sink: Block Kit messages, routing to channels, one thread per incident, exactly-once delivery.

Two modes, both configured from the environment only (issue 4): a bot token (`SLACK_BOT_TOKEN`,
`chat.postMessage`, threads, parent edited with `chat.update`; `SLACK_BASE_URL` overrides the Web API
base URL) or an incoming webhook (`SLACK_WEBHOOK_URL`: no threads, each alert stands alone).

`render` builds the messages, `route` picks the channels, `client` wraps slack-sdk, `sink` and `webhook`
are the two sinks, and `setup` chooses one from the environment.
"""

from __future__ import annotations

from bot.alerts.slack.client import make_web_client
from bot.alerts.slack.render import MAX_BLOCKS, SECTION_LIMIT, render_alert
from bot.alerts.slack.route import route_channels
from bot.alerts.slack.setup import SCOPES, check_slack, make_slack_sink
from bot.alerts.slack.sink import SlackSink
from bot.alerts.slack.webhook import WebhookSink

__all__ = [
    "MAX_BLOCKS",
    "SCOPES",
    "SECTION_LIMIT",
    "SlackSink",
    "WebhookSink",
    "check_slack",
    "make_slack_sink",
    "make_web_client",
    "render_alert",
    "route_channels",
]
