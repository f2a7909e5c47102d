"""The Slack sink: Block Kit messages, routing to channels, one thread per incident, exactly-once delivery.

Two modes, both configured from the environment only (issue 4): a bot token (`SLACK_BOT_TOKEN`,
`chat.postMessage`, threads, parent edited with `chat.update`; `SLACK_BASE_URL` overrides the Web API
base URL) or an incoming webhook (`SLACK_WEBHOOK_URL`: no threads, each alert stands alone).

Text from the internet (titles, quotes, source names) is escaped (`&`, `<`, `>`) everywhere and marked
`verbatim`, so an article titled `<!channel>` pings nobody. Each message carries its alert ids as
message metadata, which is how a send interrupted by a crash is found again instead of repeated.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from http.client import HTTPException
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient
from sqlite_utils import Database

from bot import store
from bot.alerts.console import KIND_LABELS
from bot.alerts.outbox import DeliveryError, Sent, Sink
from bot.config import Config, SlackConfig
from bot.watch import Watch, compile_watch

logger = logging.getLogger("borderwatch")

METADATA_EVENT = "borderwatch_alert"
#: Slack's limits: blocks per message, characters per section text; we keep the fallback text short.
MAX_BLOCKS = 50
SECTION_LIMIT = 3000
TEXT_LIMIT = 3000
QUOTE_LIMIT = 300
#: A Retry-After up to this long is waited out inside the call; a longer one becomes the outbox's backoff.
MAX_INLINE_WAIT = 30
#: How far before the in-flight time to look for an interrupted send (clock skew between us and Slack).
LOOKUP_MARGIN = timedelta(minutes=10)
#: Errors no retry fixes: reported once, the alert stays queued.
PERMANENT_ERRORS = {
    "invalid_auth": "the token in SLACK_BOT_TOKEN was rejected",
    "not_authed": "no token was sent",
    "token_revoked": "the token in SLACK_BOT_TOKEN was revoked",
    "token_expired": "the token in SLACK_BOT_TOKEN has expired",
    "account_inactive": "the bot user or workspace is deactivated",
    "missing_scope": "the app lacks a scope (see config/slack-app-manifest.yaml)",
    "channel_not_found": "no such channel, or a private one the bot is not in",
    "not_in_channel": "the bot is not in this channel: /invite it there",
    "is_archived": "the channel is archived",
    "restricted_action": "posting in this channel is restricted",
}
TOKEN_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
#: Errors about the message's blocks: it is sent again as plain text.
BLOCK_ERRORS = {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_blocks"}
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_URL = re.compile(r"^https?://[^\s<>|]+$", re.IGNORECASE)


class SlackSetupError(Exception):
    """Slack cannot be used as configured (no token, no default channel)."""


# --- rendering (pure) --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A Slack message: Block Kit blocks and the plain `text` fallback (notifications, old clients)."""

    text: str
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """Slack's three control characters as entities: untrusted text can neither ping nor link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
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
    return _clip(escape(str(value)), limit)


def _link(url: Any, label: str) -> str:
    """A link to an http(s) URL; anything else is shown as escaped text."""
    if not isinstance(url, str) or not url:
        return ""
    if not _URL.match(url):
        return _safe(url, 200)
    return f"<{escape(url)}|{label}>"


def _when(published: Any) -> str:
    """A stored time as `2021-07-26 04:30 UTC`."""
    try:
        when = datetime.fromisoformat(str(published))
    except ValueError:
        return _safe(published, 40) if published else "time unknown"
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _clip(text, SECTION_LIMIT) if len(text) > SECTION_LIMIT else text,
            "verbatim": True}  # fmt: skip


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _json(value: Any, empty: Any) -> Any:
    if isinstance(value, dict | list):
        return value
    try:
        loaded = json.loads(value or "null")
    except (TypeError, ValueError):
        return empty
    return loaded if isinstance(loaded, type(empty)) else empty


def _place(alert: Mapping[str, Any], incident: Mapping[str, Any] | None) -> str | None:
    """The place named by the alert's details, else the incident's."""
    value = _json(alert.get("details"), {}).get("place") or (incident or {}).get("place")
    if isinstance(value, dict):
        value = value.get("name")
    return str(value) if value else None


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").upper()).capitalize()


def _icon(kind: str) -> str:
    if kind.endswith("_conflict"):
        return ":warning:"
    if kind.endswith("_change"):
        return ":arrows_counterclockwise:"
    return {"new_incident": ":new:", "feed_failing": ":satellite_antenna:"}.get(kind, ":newspaper:")


def _evidence_line(item: Mapping[str, Any], quote_limit: int = QUOTE_LIMIT) -> str:
    """`> quote` and `source · time · link` for one piece of evidence."""
    source = _safe(item.get("source") or "unknown source", 100)
    link = _link(item.get("url"), "article")
    meta = " \u00b7 ".join(part for part in (f"_{source}_", _when(item.get("published")), link) if part)
    quote = _safe(item.get("quote") or "", quote_limit)
    return (f"> \u201c{quote}\u201d\n" if quote else "") + meta


def _side_evidence(side: Mapping[str, Any], evidence: list[Any]) -> list[int]:
    """Which evidence items a side cites: by index, or by URL (one or a list of either)."""
    refs = side.get("evidence")
    refs = refs if isinstance(refs, list) else [refs]
    found: list[int] = []
    for ref in refs:
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(evidence):
            index: int | None = ref
        elif isinstance(ref, str) and ref:
            index = next(
                (i for i, e in enumerate(evidence) if isinstance(e, dict) and e.get("url") == ref), None
            )
        else:
            index = None
        if index is not None and isinstance(evidence[index], dict) and index not in found:
            found.append(index)
    return found


def _sides_blocks(evidence: list[Any], sides: list[Any]) -> list[dict[str, Any]]:
    """One section per side (label, value, how many sources back it, its quotes), then unclaimed evidence."""
    blocks: list[dict[str, Any]] = []
    used: set[int] = set()
    for side in sides:
        if not isinstance(side, dict):
            continue
        cited = _side_evidence(side, evidence)
        used.update(cited)
        count = side.get("sources")
        if isinstance(count, list):
            count = len(count)
        if not isinstance(count, int) or isinstance(count, bool):
            count = len({str(evidence[i].get("source")) for i in cited}) or (
                1 if side.get("source") else None
            )
        backing = f" \u00b7 {count} source{'s' if count != 1 else ''}" if count is not None else ""
        head = f"*{_safe(side.get('label') or 'Side', 200)}: {_safe(side.get('value', '?'), 200)}*{backing}"
        lines = [head] + [_evidence_line(evidence[i]) for i in cited[:3]]
        if not cited and side.get("source"):
            lines.append(f"_{_safe(side['source'], 100)}_")
        blocks.append(_section("\n".join(lines)))
    for index, item in enumerate(evidence):
        if index not in used and isinstance(item, dict):
            blocks.append(_section(_evidence_line(item)))
    return blocks


def _fit(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most MAX_BLOCKS blocks, saying how many were left out."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    kept = blocks[: MAX_BLOCKS - 1]
    return [*kept, _context(f"\u2026 and {len(blocks) - len(kept)} more not shown")]


def render_alert(alert: Mapping[str, Any], incident: Mapping[str, Any] | None = None) -> Message:
    """The message for one alert row: headline, kind, place, then each side with its sources and quotes."""
    kind = str(alert.get("kind") or "alert")
    headline = _safe(alert.get("summary") or _label(kind), 1000)
    place = _place(alert, incident)
    facts = [f"{_icon(kind)} {_label(kind)}"]
    if alert.get("incident_id"):
        facts.append(f"incident #{alert['incident_id']}")
    if place:
        facts.append(f":round_pushpin: {_safe(place, 200)}")
    facts.append(f"alert #{alert.get('id', '?')}")
    details = _json(alert.get("details"), {})
    blocks = [_section(f"*{headline}*"), _context(" \u00b7 ".join(facts))]
    blocks += _sides_blocks(_json(alert.get("evidence"), []), _json(details.get("sides"), []))
    text = _clip(headline + (f" \u2014 {_safe(place, 200)}" if place else ""), TEXT_LIMIT)
    return Message(text, _fit(blocks))


def render_batch(alerts: Sequence[Mapping[str, Any]], incident: Mapping[str, Any] | None = None) -> Message:
    """One reply for a burst of an incident's alerts (the cooldown): what changed since the last message."""
    if len(alerts) == 1:
        return render_alert(alerts[0], incident)
    blocks = [_section(f"*{len(alerts)} changes since the last alert*")]
    for alert in alerts:
        kind = str(alert.get("kind") or "alert")
        evidence = [e for e in _json(alert.get("evidence"), []) if isinstance(e, dict)]
        lines = [f"{_icon(kind)} *{_safe(alert.get('summary') or _label(kind), 600)}*"]
        lines += [_evidence_line(item, 150) for item in evidence[:3]]
        if len(evidence) > 3:
            lines.append(f"_and {len(evidence) - 3} more sources_")
        blocks.append(_section("\n".join(lines)))
    summaries = "; ".join(_safe(a.get("summary") or "", 300) for a in alerts)
    return Message(_clip(f"{len(alerts)} changes: {summaries}", TEXT_LIMIT), _fit(blocks))


def render_parent(
    first: Mapping[str, Any], incident: Mapping[str, Any] | None, alert_count: int, latest: str | None
) -> Message:
    """The thread's parent, edited to show the incident's current picture above its first alert."""
    incident = incident or {}
    title = _safe(incident.get("title") or first.get("summary") or "incident", 500)
    facts = []
    place = _place(first, incident)
    if place:
        facts.append(f":round_pushpin: {_safe(place, 200)}")
    if incident.get("status"):
        facts.append(f"status: {_safe(incident['status'], 100)}")
    articles, sources = incident.get("articles"), incident.get("sources")
    if articles:
        facts.append(f"{articles} articles" + (f" from {sources} sources" if sources else ""))
    facts.append(f"{alert_count} alert{'s' if alert_count != 1 else ''}")
    head = [
        _section(f"*Incident #{first.get('incident_id', '?')}: {title}*"),
        _context(" \u00b7 ".join(facts)),
    ]
    if latest and alert_count > 1:
        head.append(_section(f"Latest: {_safe(latest, 600)}"))
    blocks = [*head, {"type": "divider"}, *render_alert(first, incident).blocks]
    text = _clip(
        f"Incident #{first.get('incident_id', '?')}: {title} \u2014 {alert_count} alerts", TEXT_LIMIT
    )
    return Message(text, _fit(blocks))


# --- routing (pure) ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _matcher(words: tuple[str, ...]) -> Watch:
    return compile_watch(words)


def route_channels(
    slack: SlackConfig, alert: Mapping[str, Any], incident: Mapping[str, Any] | None = None
) -> tuple[str, ...]:
    """Every channel whose route matches the alert (kind globs, place, topic words), else the default one."""
    details = _json(alert.get("details"), {})
    place = _place(alert, incident) or ""
    topic_text = [str(alert.get("summary") or ""), str((incident or {}).get("title") or ""),
                  str((incident or {}).get("event") or ""), str(details.get("event") or "")]  # fmt: skip
    channels: list[str] = []
    for route in slack.routes:
        if route.kinds and not any(fnmatchcase(str(alert.get("kind")), k) for k in route.kinds):
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


# --- the Web API client --------------------------------------------------------------------------------


def _is_post(request: HttpRequest) -> bool:
    """chat.postMessage is not idempotent: a blind retry may post twice. The outbox retries it instead,
    after looking the message up."""
    return "chat.postMessage" in request.url


class _SkipPosts(RetryHandler):
    """A retry handler that never retries chat.postMessage (see `_is_post`); mixed in before the real one."""

    def _can_retry(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:  # fmt: skip
        return not _is_post(request) and super()._can_retry(
            state=state, request=request, response=response, error=error
        )


class _IdempotentServerErrorRetryHandler(_SkipPosts, ServerErrorRetryHandler):
    """Retries 5xx answers, but not of posts."""


class _IdempotentConnectionErrorRetryHandler(_SkipPosts, ConnectionErrorRetryHandler):
    """Retries dropped connections, but not of posts."""


class _ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Waits out a 429's short Retry-After in the call; a long one is left to the outbox's backoff."""

    def _can_retry(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:  # fmt: skip
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        return response is not None and _retry_after(response.headers) <= MAX_INLINE_WAIT


def _retry_after(headers: Mapping[str, Any]) -> float:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError, IndexError):
                return 1.0
    return 1.0


def _retry_handlers() -> list[RetryHandler]:
    return [
        _ShortRateLimitRetryHandler(max_retry_count=2),
        _IdempotentServerErrorRetryHandler(max_retry_count=2),
        _IdempotentConnectionErrorRetryHandler(max_retry_count=2),
    ]


def _quiet_logger() -> logging.Logger:
    """slack-sdk logs request URLs (a webhook URL is a secret) and errors we report ourselves."""
    sdk = logging.getLogger("borderwatch.slack_sdk")
    sdk.setLevel(logging.CRITICAL)
    sdk.propagate = False
    return sdk


def make_web_client(token: str, base_url: str | None = None, timeout: float = 15.0) -> WebClient:
    """A WebClient with our retry handlers (429, and 5xx/connection errors on idempotent calls)."""
    return WebClient(
        token=token,
        base_url=base_url or WebClient.BASE_URL,
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes a float; the annotation says int
        retry_handlers=_retry_handlers(),
        logger=_quiet_logger(),
    )


class _Redactor:
    """Removes the secrets from any text that may end up in a log, the DB or an error message."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = [s for s in secrets if s]

    def __call__(self, text: object) -> str:
        result = str(text)
        for secret in self.secrets:
            result = result.replace(secret, "[redacted]")
        return result


def _api_error(exc: SlackApiError, channel: str | None, post: bool, redact: _Redactor) -> DeliveryError:
    """A DeliveryError for a Slack answer that was not ok."""
    response = exc.response
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"http_{status}")
    if status == 429:
        wait = _retry_after(response.headers)
        return DeliveryError(
            f"rate limited by Slack (429, retry after {wait:.0f}s)", retry_after=wait, code=code
        )
    if status >= 500:
        return DeliveryError(f"Slack answered HTTP {status}", uncertain=post, code=code)
    where = f" ({channel})" if channel else ""
    if code in PERMANENT_ERRORS:
        needed = f"; needs {data['needed']}" if data.get("needed") else ""
        message = f"{code}: {PERMANENT_ERRORS[code]}{where}{needed}"
        return DeliveryError(message, permanent=True, every_channel=code in TOKEN_ERRORS, code=code)
    return DeliveryError(f"Slack error {redact(_clip(code, 200))}{where}", code=code)


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
        self.redact = _Redactor([client.token or ""])
        self._last_post: dict[str, float] = {}

    # -- the Sink protocol

    def route(self, alert: dict[str, Any]) -> tuple[str, ...]:
        """The channels this alert's kind, place and topic route it to."""
        return route_channels(self.slack, alert, self._incident(alert.get("incident_id")))

    def send(self, alerts: Sequence[dict[str, Any]], channel: str) -> Sent:
        """Post one message about `alerts`: the incident's parent, or a reply in its thread."""
        first = alerts[0]
        incident_id = first.get("incident_id")
        incident = self._incident(incident_id)
        thread_ts = self._thread(incident_id, channel)
        message = render_batch(alerts, incident)
        ids = [int(a["id"]) for a in alerts]
        kwargs: dict[str, Any] = {
            "channel": channel, "text": message.text, "blocks": message.blocks, "unfurl_links": False,
            "unfurl_media": False, "metadata": _metadata(ids),
        }  # fmt: skip
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            kwargs["reply_broadcast"] = any(a.get("kind") in self.slack.broadcast_kinds for a in alerts)
        try:
            response = self._post(channel, kwargs)
        except DeliveryError as exc:
            if not thread_ts or exc.code != "thread_not_found":
                raise
            # Somebody deleted the thread's parent: this message opens a new thread.
            logger.warning("thread of incident %s in %s is gone; starting a new one", incident_id, channel)
            self.db.execute(
                "delete from slack_threads where incident_id = ? and channel = ?", [incident_id, channel]
            )
            thread_ts = None
            response = self._post(
                channel, {k: v for k, v in kwargs.items() if k not in ("thread_ts", "reply_broadcast")}
            )
        ts = str(response["ts"])
        self._remember_channel(channel, response.get("channel"))
        if incident_id is not None and not thread_ts:
            self.db.table("slack_threads").insert({"incident_id": incident_id, "channel": channel, "ts": ts},
                                                  replace=True)  # fmt: skip
        elif thread_ts and incident_id is not None:
            self._update_parent(int(incident_id), channel, thread_ts, incident)
        return Sent(ts)

    def find_sent(self, alert: dict[str, Any], channel: str, since: datetime) -> Sent | None:
        """The message carrying `alert` in `channel`: top level (history), else in its thread."""
        channel_id = self._channel_id(channel)
        oldest = f"{(since - LOOKUP_MARGIN).timestamp():.6f}"
        incident_id = alert.get("incident_id")
        thread_ts = self._thread(incident_id, channel)
        alert_id = int(alert["id"])
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
            self.db.table("slack_threads").insert({"incident_id": incident_id, "channel": channel, "ts": ts},
                                                  replace=True)  # fmt: skip
        return Sent(ts, ids)

    # -- Slack calls

    def _call(
        self, method: Callable[..., SlackResponse], channel: str | None, /, **kwargs: Any
    ) -> SlackResponse:
        """Call the Web API; every failure becomes a DeliveryError without secrets in it."""
        post = method == self.client.chat_postMessage
        try:
            return method(**kwargs)
        except SlackApiError as exc:
            raise _api_error(exc, channel, post, self.redact) from None
        except (OSError, HTTPException, SlackClientError) as exc:
            raise DeliveryError(f"no answer from Slack: {self.redact(exc) or type(exc).__name__}",
                                uncertain=post) from None  # fmt: skip

    def _post(self, channel: str, kwargs: dict[str, Any]) -> SlackResponse:
        """chat.postMessage, at most `max_per_second` per channel; blocks Slack refuses go as plain text."""
        interval = 1.0 / self.slack.max_per_second if self.slack.max_per_second > 0 else 0.0
        last = self._last_post.get(channel)
        if last is not None and (wait := last + interval - self.clock()) > 0:
            self.sleep(wait)
        try:
            return self._call(self.client.chat_postMessage, channel, **kwargs)
        except DeliveryError as exc:
            if exc.code not in BLOCK_ERRORS:
                raise
            logger.warning("Slack refused the blocks of alert message (%s); sending plain text", exc.code)
            return self._call(self.client.chat_postMessage, channel, **{**kwargs, "blocks": None})
        finally:
            self._last_post[channel] = self.clock()

    def _search(
        self, method: Callable[..., SlackResponse], channel: str, alert_id: int, /, **kwargs: Any
    ) -> tuple[dict[str, Any], tuple[int, ...]] | None:
        """Page through history or replies for the message whose metadata carries `alert_id`."""
        cursor = None
        for _ in range(20):
            response = self._call(
                method, channel, include_all_metadata=True, limit=200, cursor=cursor, **kwargs
            )
            for message in response.get("messages") or []:
                ids = _carried(message)
                if alert_id in ids:
                    return dict(message), ids
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not response.get("has_more") or not cursor:
                return None
        return None

    def _update_parent(
        self, incident_id: int, channel: str, parent_ts: str, incident: dict[str, Any] | None
    ) -> None:
        """Edit the thread's parent to show the incident's current picture; a failure is only logged.."""
        sql = """select a.* from alert_deliveries d join alerts a on a.id = d.alert_id
                 where d.channel = ? and d.ts = ? order by a.id limit 1"""
        first = next(store.rows(self.db, sql, [channel, parent_ts]), None)
        if first is None:
            return
        count, latest = self.db.execute(
            "select count(*), (select summary from alerts where incident_id = ? order by id desc limit 1) "
            "from alerts where incident_id = ?",
            [incident_id, incident_id],
        ).fetchone()
        message = render_parent(first, incident, int(count), latest)
        try:
            self._call(
                self.client.chat_update, channel, channel=self._channel_id(channel), ts=parent_ts,
                text=message.text, blocks=message.blocks, metadata=_metadata([int(first["id"])]),
            )  # fmt: skip
        except DeliveryError as exc:
            logger.warning("parent message of incident %s in %s not updated: %s", incident_id, channel, exc)

    # -- the store

    def _incident(self, incident_id: Any) -> dict[str, Any] | None:
        if incident_id is None:
            return None
        row = next(self.db.table("incidents").rows_where("id = ?", [incident_id], limit=1), None)
        return dict(row) if row else None

    def _thread(self, incident_id: Any, channel: str) -> str | None:
        if incident_id is None:
            return None
        row = self.db.execute(
            "select ts from slack_threads where incident_id = ? and channel = ?", [incident_id, channel]
        ).fetchone()
        return str(row[0]) if row else None

    def _remember_channel(self, name: str, channel_id: Any) -> None:
        if isinstance(channel_id, str) and channel_id and channel_id != name:
            self.db.table("slack_channels").insert({"name": name, "id": channel_id}, replace=True)

    def _channel_id(self, name: str) -> str:
        """The channel's id (history and chat.update need it): as configured, remembered, or listed."""
        if _CHANNEL_ID.match(name):
            return name
        row = self.db.execute("select id from slack_channels where name = ?", [name]).fetchone()
        if row:
            return str(row[0])
        wanted = name.lstrip("#")
        cursor = None
        for _ in range(50):
            response = self._call(
                self.client.conversations_list, name, types="public_channel,private_channel",
                exclude_archived=True, limit=1000, cursor=cursor,
            )  # fmt: skip
            for channel in response.get("channels") or []:
                if channel.get("name") == wanted:
                    self._remember_channel(name, channel["id"])
                    return str(channel["id"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        message = f"channel_not_found: {PERMANENT_ERRORS['channel_not_found']} ({name})"
        raise DeliveryError(message, permanent=True, code="channel_not_found")


def _metadata(alert_ids: list[int]) -> dict[str, Any]:
    payload: dict[str, Any] = {"alert_id": alert_ids[0]}
    if len(alert_ids) > 1:
        payload["alert_ids"] = ",".join(str(i) for i in alert_ids)
    return {"event_type": METADATA_EVENT, "event_payload": payload}


def _carried(message: Mapping[str, Any]) -> tuple[int, ...]:
    """The alert ids a message's metadata says it carries."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != METADATA_EVENT:
        return ()
    payload = metadata.get("event_payload") or {}
    ids = [str(payload.get("alert_id")), *str(payload.get("alert_ids") or "").split(",")]
    return tuple(int(i) for i in ids if i.strip().isdigit())


# --- the incoming-webhook sink -----------------------------------------------------------------------

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
        self.redact = _Redactor([client.url, client.url.rstrip("/").rsplit("/", 1)[-1]])
        self._last_post: float | None = None

    def route(self, alert: dict[str, Any]) -> tuple[str, ...]:
        """A webhook has one channel, fixed when it was made."""
        return ("webhook",)

    def send(self, alerts: Sequence[dict[str, Any]], channel: str) -> Sent:
        """Post the alerts, one message each."""
        for alert in alerts:
            self.send_message(render_alert(alert))
        return Sent()

    def find_sent(self, alert: dict[str, Any], channel: str, since: datetime) -> Sent | None:
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
        try:
            response = self.client.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
        except (OSError, HTTPException, SlackClientError) as exc:
            raise DeliveryError(
                f"no answer from the Slack webhook: {self.redact(exc)}", uncertain=True
            ) from None
        status, body = response.status_code, _clip(str(response.body or ""), 100)
        if status == 200:
            return
        if status == 429:
            wait = _retry_after(response.headers)
            raise DeliveryError(
                f"rate limited by Slack (429, retry after {wait:.0f}s)", retry_after=wait, code=body
            )
        if status >= 500:
            raise DeliveryError(f"the Slack webhook answered HTTP {status}", uncertain=True, code=body)
        if body in WEBHOOK_PERMANENT or status in (403, 404, 410):
            hint = WEBHOOK_PERMANENT.get(body, "the webhook URL does not work")
            message = f"{self.redact(body)}: {hint} (HTTP {status})"
            raise DeliveryError(message, permanent=True, every_channel=True, code=body)
        raise DeliveryError(f"the Slack webhook answered HTTP {status}: {self.redact(body)}", code=body)


# --- set-up from the environment ---------------------------------------------------------------------


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
        handlers: list[RetryHandler] = [_ShortRateLimitRetryHandler(max_retry_count=2)]
        seconds: Any = timeout  # urllib takes a float; the annotation says int
        client = WebhookClient(webhook, timeout=seconds, retry_handlers=handlers, logger=_quiet_logger())
        return WebhookSink(client, cfg.slack)
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


#: The bot scopes config/slack-app-manifest.yaml asks for: posting, and reading back after a crash.
SCOPES = (
    "chat:write",
    "chat:write.public",
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
)


def check_slack(
    cfg: Config, db: Database, env: Mapping[str, str] | None = None, timeout: float = 15.0
) -> SlackCheck:
    """Check the token (`auth.test`) and post a test message to the default channel."""
    sink = make_slack_sink(cfg, db, env, timeout)
    text = "borderwatch is connected: alerts about the Afghanistan\u2013Pakistan border will appear here."
    message = Message(
        text,
        [_section(f":white_check_mark: {text}"), _context("a test message from `borderwatch slack test`")],
    )
    if isinstance(sink, WebhookSink):
        sink.send_message(message)
        return SlackCheck("incoming webhook", None, None, "the webhook's channel", None)
    assert isinstance(sink, SlackSink)
    if not cfg.slack.channel:
        raise SlackSetupError(
            f"{cfg.path or 'config'}: slack.channel: no default channel to post the test message to"
        )
    auth = sink._call(sink.client.auth_test, None)
    granted = {k.lower(): v for k, v in auth.headers.items()}.get("x-oauth-scopes")
    missing = tuple(s for s in SCOPES if s not in str(granted).replace(" ", "").split(",")) if granted else ()
    response = sink._post(cfg.slack.channel, {"channel": cfg.slack.channel, "text": message.text,
                                              "blocks": message.blocks, "unfurl_links": False})  # fmt: skip
    sink._remember_channel(cfg.slack.channel, response.get("channel"))
    team, bot = auth.get("team"), auth.get("user")
    return SlackCheck("bot token", team, bot, cfg.slack.channel, str(response["ts"]), missing)
