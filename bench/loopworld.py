"""The loopback world of the alert-latency benchmark, in a process of its own: a feed and a Slack Web API.

    python -m bench.loopworld          # prints `READY <port>`, serves until killed

- `GET /feed.xml`: the seed reports (`../shared/corpus/seeds`, else the bundled ones) as RSS, the first
  `N` of them (`GET /_control/reveal/N`), with an ETag; the time each N was first served is recorded.
- `POST /api/<method>`: enough of Slack for slack-sdk's WebClient (`chat.postMessage`, `chat.update`,
  `conversations.list/history/replies`, `auth.test`); every accepted `chat.postMessage` is recorded
  with its arrival time, channel and text.
- `GET /_stats`: the recorded times as JSON; `GET /_control/reset`: forget them.
Binds 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from bot.demo import load_items, render_rss

SHARED_SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "seeds"
SEEDS = (
    SHARED_SEEDS if SHARED_SEEDS.is_dir() else Path(__file__).resolve().parent.parent / "bot" / "demo_data"
)
CHANNEL_ID = "C0BENCH001"


class _World(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.items = load_items(sorted(SEEDS.glob("*.txt")))
        self.shown = 0
        self.lock = threading.Lock()
        self.served: dict[int, float] = {}
        self.posts: list[dict[str, Any]] = []
        self.ts = 1_700_000_000.0


class _Handler(BaseHTTPRequestHandler):
    server: _World
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        world = self.server
        parts = self.path.strip("/").split("/")
        if parts[0] == "_control":
            with world.lock:
                if parts[1] == "reveal":
                    world.shown = int(parts[2])
                else:
                    world.served, world.posts = {}, []
            self._reply(200, b"{}")
        elif parts[0] == "_stats":
            with world.lock:
                body = json.dumps({"served": world.served, "posts": world.posts}).encode()
            self._reply(200, body, {"Content-Type": "application/json"})
        elif parts[0] == "feed.xml":
            base = f"http://127.0.0.1:{world.server_address[1]}"
            with world.lock:
                shown = world.shown
            body = render_rss(world.items[:shown], base, full_text=True)
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self._reply(304, b"", {"ETag": etag})
                return
            self._reply(200, body, {"Content-Type": "application/rss+xml", "ETag": etag})
            with world.lock:
                world.served.setdefault(shown, time.time())
        else:
            self._reply(404, b"not found")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        world = self.server
        arrived = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        if "json" in (self.headers.get("Content-Type") or ""):
            params: dict[str, Any] = json.loads(raw or "{}")
        else:
            params = dict(parse_qsl(raw))
        method = self.path.rsplit("/", 1)[-1]
        answer: dict[str, Any] = {"ok": True}
        with world.lock:
            if method == "chat.postMessage":
                world.ts += 1
                ts = f"{world.ts:.6f}"
                world.posts.append({"time": arrived, "channel": params.get("channel"), "ts": ts,
                                    "text": str(params.get("text", ""))[:300],
                                    "thread_ts": params.get("thread_ts")})  # fmt: skip
                answer.update(channel=CHANNEL_ID, ts=ts, message={"ts": ts})
            elif method == "chat.update":
                answer.update(channel=CHANNEL_ID, ts=params.get("ts"))
            elif method == "conversations.list":
                answer.update(channels=[{"id": CHANNEL_ID, "name": "border-desk"}], response_metadata={})
            elif method in ("conversations.history", "conversations.replies"):
                answer.update(messages=[], has_more=False, response_metadata={})
            elif method == "auth.test":
                answer.update(team="bench", user="borderwatch")
        self._reply(200, json.dumps(answer).encode(), {"Content-Type": "application/json"})


def main() -> None:
    """Serve until killed."""
    world = _World()
    print(f"READY {world.server_address[1]}", flush=True)
    world.serve_forever()


if __name__ == "__main__":
    main()
