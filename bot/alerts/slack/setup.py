"""Setting Slack up from the environment: which sink (bot token or webhook), and `borderwatch slack test`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sqlite_utils import Database

from bot.alerts.outbox import Sink
from bot.alerts.slack.client import make_web_client, make_webhook_client
from bot.alerts.slack.render import Message, context, section
from bot.alerts.slack.sink import SlackSink
from bot.alerts.slack.webhook import WebhookSink
from bot.config import Config
from bot.errors import SlackSetupError

#: The bot scopes config/slack-app-manifest.yaml asks for: posting, and reading back after a crash.
SCOPES = (
    "chat:write",
    "chat:write.public",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
)


def make_slack_sink(
    cfg: Config, db: Database, env: Mapping[str, str] | None = None, timeout: float = 15.0
) -> Sink:
    """The Slack sink the environment asks for: bot token (preferred) or incoming webhook."""
    env = os.environ if env is None else env
    token = env.get("SLACK_BOT_TOKEN", "").strip()
    webhook = env.get("SLACK_WEBHOOK_URL", "").strip()
    if token:
        if not cfg.slack.channel and not cfg.slack.routes:
            raise SlackSetupError(
                f"{cfg.path or 'config'}: slack.channel: SLACK_BOT_TOKEN is set but no channel is configured"
            )
        return SlackSink(make_web_client(token, env.get("SLACK_BASE_URL") or None, timeout), db, cfg.slack)
    if webhook:
        return WebhookSink(make_webhook_client(webhook, timeout), cfg.slack)
    raise SlackSetupError("neither SLACK_BOT_TOKEN nor SLACK_WEBHOOK_URL is set in the environment")


@dataclass(frozen=True, slots=True)
class SlackCheck:
    """What `borderwatch slack test` found."""

    mode: str
    team: str | None
    bot: str | None
    channel: str
    ts: str | None
    missing_scopes: tuple[str, ...] = ()


def check_slack(
    cfg: Config, db: Database, env: Mapping[str, str] | None = None, timeout: float = 15.0
) -> SlackCheck:
    """Check the token (`auth.test`) and post a test message to the default channel."""
    sink = make_slack_sink(cfg, db, env, timeout)
    text = "borderwatch is connected: alerts about the Afghanistan\u2013Pakistan border will appear here."
    message = Message(
        text, [section(f":white_check_mark: {text}"), context("a test message from `borderwatch slack test`")]
    )
    if isinstance(sink, WebhookSink):
        sink.send_message(message)
        return SlackCheck("incoming webhook", None, None, "the webhook's channel", None)
    assert isinstance(sink, SlackSink)
    if not cfg.slack.channel:
        raise SlackSetupError(
            f"{cfg.path or 'config'}: slack.channel: no default channel to post the test message to"
        )
    auth = sink.call(sink.client.auth_test, None)
    granted = {k.lower(): v for k, v in auth.headers.items()}.get("x-oauth-scopes")
    missing = tuple(s for s in SCOPES if s not in str(granted).replace(" ", "").split(",")) if granted else ()
    response = sink.post(cfg.slack.channel, {"channel": cfg.slack.channel, "text": message.text,
                                             "blocks": message.blocks, "unfurl_links": False})  # fmt: skip
    sink.remember_channel(cfg.slack.channel, response.get("channel"))
    team, bot = auth.get("team"), auth.get("user")
    return SlackCheck("bot token", team, bot, cfg.slack.channel, str(response["ts"]), missing)
