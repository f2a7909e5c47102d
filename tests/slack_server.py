"""A Slack-compatible Web API server on 127.0.0.1, for tests (issue 4).

It speaks enough of the Web API for the real slack-sdk `WebClient(base_url=...)`: `auth.test`,
`chat.postMessage`, `chat.update`, `conversations.history`, `conversations.replies` and
`conversations.list`, plus an incoming webhook at `/services/...`. It checks the Bearer token and
Slack's size limits, stores messages the way Slack does (threads, broadcasts, metadata shown only with
`include_all_metadata`), records every call, and can inject faults into the next calls of a method:

    server.fail("chat.postMessage", "429", retry_after=1)   # rate limited, not processed
    server.fail("chat.postMessage", "500")                   # server error, not processed
    server.fail("chat.postMessage", "error", error="not_in_channel")
    server.fail("chat.postMessage", "slow", delay=3)          # processed and stored, answered too late
    server.fail("chat.postMessage", "drop")                   # processed and stored, connection dropped
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "xoxb-test"
WEBHOOK_PATH = "/services/T0000/B0000/webhooksecret0001"
CHANNELS = {"border-desk": "C0DESK0001", "border-feed": "C0FEED0001", "border-private": "G0PRIV0001"}


@dataclass
class Fault:
    """A fault injected into the next `times` calls of a method."""

    kind: str
    times: int = 1
    retry_after: int = 1
    delay: float = 3.0
    error: str = "internal_error"


@dataclass
class Call:
    """One request the server saw."""

    method: str
    params: dict[str, Any]
    status: int = 200
    fault: str | None = None


@dataclass
class SlackState:
    """Everything the server stores and records."""

    token: str = TOKEN
    scopes: str = "chat:write,chat:write.public,channels:history,groups:history,channels:read,groups:read"
    channels: dict[str, str] = field(default_factory=lambda: dict(CHANNELS))
    not_in: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    last_ts: float = 0.0


class SlackServer:
    """The server, in a thread; use as a context manager."""

    def __init__(self) -> None:
        self.state = SlackState()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.slack = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> SlackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{WEBHOOK_PATH}"

    def fail(self, method: str, kind: str, **options: Any) -> None:
        """Inject a fault into the next call(s) of `method` (`webhook` for the incoming webhook)."""
        with self.lock:
            self.state.faults.setdefault(method, []).append(Fault(kind, **options))

    # -- views for assertions

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.state.messages)

    def calls(self, method: str) -> list[Call]:
        return [c for c in self.state.calls if c.method == method]

    def parents(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.state.messages
            if not m.get("thread_ts") and (channel is None or m["channel"] == channel)
        ]

    def replies(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.state.messages
            if m.get("thread_ts") and (channel is None or m["channel"] == channel)
        ]

    # -- the Web API

    def _next_fault(self, method: str) -> Fault | None:
        queue = self.state.faults.get(method) or []
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    def _next_ts(self) -> str:
        now = max(time.time(), self.state.last_ts + 0.000001)
        self.state.last_ts = now
        return f"{now:.6f}"

    def _channel_id(self, value: Any, by_name: bool) -> str | None:
        value = str(value or "")
        if value in self.state.channels.values():
            return value
        if by_name:
            return self.state.channels.get(value.lstrip("#"))
        return None

    def handle(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The JSON answer to an authorised call (the caller holds the lock)."""
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        answer: dict[str, Any] = handler(params)
        return answer

    def _api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://borderwatch-test.slack.com/", "team": "Borderwatch Test",
                "user": "borderwatch", "team_id": "T0000", "user_id": "U0000", "bot_id": "B0000"}  # fmt: skip

    def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(params.get("channel"), by_name=True)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.state.not_in:
            return {"ok": False, "error": "not_in_channel"}
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        text = params.get("text") or ""
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if len(text) > 40_000:
            return {"ok": False, "error": "msg_too_long"}
        if blocks and (len(blocks) > 50 or any(len(t) > 3000 for t in _section_texts(blocks))):
            return {"ok": False, "error": "invalid_blocks"}
        thread_ts = params.get("thread_ts")
        if thread_ts and not any(
            m["ts"] == thread_ts and m["channel"] == channel for m in self.state.messages
        ):
            return {"ok": False, "error": "thread_not_found"}
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        message = {
            "channel": channel, "ts": self._next_ts(), "text": text, "blocks": blocks, "thread_ts": thread_ts,
            "reply_broadcast": bool(params.get("reply_broadcast")), "metadata": metadata,
            "unfurl_links": params.get("unfurl_links"), "link_names": params.get("link_names"),
        }  # fmt: skip
        self.state.messages.append(message)
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": _public(message, True)}

    def _api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(params.get("channel"), by_name=False)  # Slack wants the id here
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        for message in self.state.messages:
            if message["channel"] == channel and message["ts"] == params.get("ts"):
                blocks = params.get("blocks")
                message.update(text=params.get("text") or message["text"],
                               blocks=json.loads(blocks) if isinstance(blocks, str) else blocks)  # fmt: skip
                if params.get("metadata"):
                    message["metadata"] = params["metadata"]
                self.state.updates.append(dict(params, channel=channel))
                return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"]}
        return {"ok": False, "error": "message_not_found"}

    def _page(self, items: list[dict[str, Any]], params: dict[str, Any], key: str) -> dict[str, Any]:
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {"ok": True, key: page, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}  # fmt: skip

    def _api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(params.get("channel"), by_name=False)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(params.get("oldest") or 0)
        metadata = _truthy(params.get("include_all_metadata"))
        found = [_public(m, metadata) for m in reversed(self.state.messages)
                 if m["channel"] == channel and float(m["ts"]) > oldest
                 and (not m["thread_ts"] or m["reply_broadcast"])]  # fmt: skip
        return self._page(found, params, "messages")

    def _api_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_id(params.get("channel"), by_name=False)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        parent = params.get("ts")
        oldest = float(params.get("oldest") or 0)
        metadata = _truthy(params.get("include_all_metadata"))
        thread = [m for m in self.state.messages if m["channel"] == channel
                  and (m["ts"] == parent or (m["thread_ts"] == parent and float(m["ts"]) > oldest))]  # fmt: skip
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return self._page([_public(m, metadata) for m in thread], params, "messages")

    def _api_conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        channels = [
            {"id": cid, "name": name, "is_private": cid.startswith("G")}
            for name, cid in self.state.channels.items()
        ]
        return self._page(channels, params, "channels")


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _public(message: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    """A stored message as Slack returns it (metadata only when asked for)."""
    shown = {"type": "message", "ts": message["ts"], "text": message["text"], "blocks": message["blocks"]}
    if message["thread_ts"]:
        shown["thread_ts"] = message["thread_ts"]
        if message["reply_broadcast"]:
            shown["subtype"] = "thread_broadcast"
    if with_metadata and message["metadata"]:
        shown["metadata"] = message["metadata"]
    return shown


def _section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        b["text"]["text"] for b in blocks if b.get("type") == "section" and isinstance(b.get("text"), dict)
    ]


def text_fields(value: Any) -> list[str]:
    """Every `text` string anywhere in a payload (top-level text, blocks, context elements)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                found.append(item)
            else:
                found += text_fields(item)
    elif isinstance(value, list):
        for item in value:
            found += text_fields(item)
    return found


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _params(self) -> dict[str, Any]:
        url = urlsplit(self.path)
        params: dict[str, Any] = dict(parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if body:
            if "json" in (self.headers.get("Content-Type") or ""):
                params.update(json.loads(body))
            else:
                params.update(parse_qsl(body.decode("utf-8")))
        return params

    def _serve(self) -> None:
        server: SlackServer = self.server.slack  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        params = self._params()
        if path.startswith("/services/"):
            self._webhook(server, path, params)
            return
        method = path.removeprefix("/api/")
        auth = self.headers.get("Authorization") or ""
        with server.lock:
            call = Call(method, params)
            server.state.calls.append(call)
            fault = server._next_fault(method)
            call.fault = fault.kind if fault else None
            if fault and fault.kind == "429":
                call.status = 429
                self._answer(
                    429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)}
                )
                return
            if fault and fault.kind == "500":
                call.status = 500
                self._answer(500, {"ok": False, "error": "fatal_error"})
                return
            if fault and fault.kind == "error":
                self._answer(200, {"ok": False, "error": fault.error})
                return
            if not auth.startswith("Bearer "):
                answer: dict[str, Any] = {"ok": False, "error": "not_authed"}
            elif auth.removeprefix("Bearer ") != server.state.token:
                answer = {"ok": False, "error": "invalid_auth"}
            else:
                answer = server.handle(method, params)
        if fault and fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault and fault.kind == "slow":
            server.stopping.wait(fault.delay)
        self._answer(200, answer, {"X-OAuth-Scopes": server.state.scopes} if method == "auth.test" else None)

    def _webhook(self, server: SlackServer, path: str, params: dict[str, Any]) -> None:
        with server.lock:
            call = Call("webhook", params)
            server.state.calls.append(call)
            fault = server._next_fault("webhook")
            call.fault = fault.kind if fault else None
            if path != WEBHOOK_PATH:
                call.status = 404
                self._answer_text(404, "no_service")
                return
            if fault and fault.kind in ("429", "500"):
                call.status = int(fault.kind)
                self._answer_text(call.status, "rate_limited" if fault.kind == "429" else "internal_error",
                                  {"Retry-After": str(fault.retry_after)})  # fmt: skip
                return
            blocks = params.get("blocks") or []
            if len(blocks) > 50 or any(len(t) > 3000 for t in _section_texts(blocks)):
                call.status = 400
                self._answer_text(400, "invalid_blocks")
                return
            server.state.webhook.append(params)
        self._answer_text(200, "ok")

    def _answer(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._answer_bytes(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)

    def _answer_text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._answer_bytes(status, text.encode(), "text/plain; charset=utf-8", headers)

    def _answer_bytes(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (a "slow" fault)
