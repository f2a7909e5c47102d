"""Alerts: the outbox worker and its sinks (console here, Slack in `bot.alerts.slack`)."""
