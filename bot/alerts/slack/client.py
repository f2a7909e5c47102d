"""The slack-sdk clients: retries that never repeat a post, secrets kept out of text, errors as DeliveryError.

A message carries its alert ids as message metadata (`metadata`, `carried`): that is how a send
interrupted by a crash is found again instead of repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
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

from bot.alerts.slack.render import clip
from bot.errors import DeliveryError

METADATA_EVENT = "borderwatch_alert"
#: A Retry-After up to this long is waited out inside the call; a longer one becomes the outbox's backoff.
MAX_INLINE_WAIT = 30
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


# --- retries -------------------------------------------------------------------------------------------


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
        return response is not None and retry_after(response.headers) <= MAX_INLINE_WAIT


def retry_after(headers: Mapping[str, Any]) -> float:
    """The seconds a 429 answer's Retry-After header asks for (1 if it is missing or unreadable)."""
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


# --- clients -------------------------------------------------------------------------------------------


def make_web_client(token: str, base_url: str | None = None, timeout: float = 15.0) -> WebClient:
    """A WebClient with our retry handlers (429, and 5xx/connection errors on idempotent calls)."""
    return WebClient(
        token=token,
        base_url=base_url or WebClient.BASE_URL,
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes a float; the annotation says int
        retry_handlers=_retry_handlers(),
        logger=_quiet_logger(),
    )


def make_webhook_client(url: str, timeout: float = 15.0) -> WebhookClient:
    """A WebhookClient that waits out a short 429 (a webhook post is never retried otherwise)."""
    handlers: list[RetryHandler] = [_ShortRateLimitRetryHandler(max_retry_count=2)]
    seconds: Any = timeout  # urllib takes a float; the annotation says int
    return WebhookClient(url, timeout=seconds, retry_handlers=handlers, logger=_quiet_logger())


class Redactor:
    """Removes the secrets from any text that may end up in a log, the DB or an error message."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = [s for s in secrets if s]

    def __call__(self, text: object) -> str:
        result = str(text)
        for secret in self.secrets:
            result = result.replace(secret, "[redacted]")
        return result


# --- errors --------------------------------------------------------------------------------------------


def call_api(
    method: Callable[..., SlackResponse], channel: str | None, redact: Redactor, post: bool, /, **kwargs: Any
) -> SlackResponse:
    """Call a Web API method; every failure becomes a DeliveryError without secrets in it.

    `post`: the call may have posted a message although no answer came (a failure is then `uncertain`).
    """
    try:
        return method(**kwargs)
    except SlackApiError as exc:
        raise _api_error(exc, channel, post, redact) from None
    except (OSError, HTTPException, SlackClientError) as exc:
        raise DeliveryError(f"no answer from Slack: {redact(exc) or type(exc).__name__}",
                            uncertain=post) from None  # fmt: skip


def rate_limited(headers: Mapping[str, Any], code: str) -> DeliveryError:
    """The DeliveryError for a 429 from Slack (Web API or webhook): retried after its Retry-After."""
    wait = retry_after(headers)
    return DeliveryError(f"rate limited by Slack (429, retry after {wait:.0f}s)", retry_after=wait, code=code)


def _api_error(exc: SlackApiError, channel: str | None, post: bool, redact: Redactor) -> DeliveryError:
    """A DeliveryError for a Slack answer that was not ok."""
    response = exc.response
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"http_{status}")
    if status == 429:
        return rate_limited(response.headers, code)
    if status >= 500:
        return DeliveryError(f"Slack answered HTTP {status}", uncertain=post, code=code)
    where = f" ({channel})" if channel else ""
    if code in PERMANENT_ERRORS:
        needed = f"; needs {data['needed']}" if data.get("needed") else ""
        message = f"{code}: {PERMANENT_ERRORS[code]}{where}{needed}"
        return DeliveryError(message, permanent=True, every_channel=code in TOKEN_ERRORS, code=code)
    return DeliveryError(f"Slack error {redact(clip(code, 200))}{where}", code=code)


# --- message metadata ----------------------------------------------------------------------------------


def metadata(alert_ids: list[int]) -> dict[str, Any]:
    """The message metadata that says which alerts a message carries."""
    payload: dict[str, Any] = {"alert_id": alert_ids[0]}
    if len(alert_ids) > 1:
        payload["alert_ids"] = ",".join(str(i) for i in alert_ids)
    return {"event_type": METADATA_EVENT, "event_payload": payload}


def carried(message: Mapping[str, Any]) -> tuple[int, ...]:
    """The alert ids a message's metadata says it carries."""
    meta = message.get("metadata") or {}
    if meta.get("event_type") != METADATA_EVENT:
        return ()
    payload = meta.get("event_payload") or {}
    ids = [str(payload.get("alert_id")), *str(payload.get("alert_ids") or "").split(",")]
    return tuple(int(i) for i in ids if i.strip().isdigit())
