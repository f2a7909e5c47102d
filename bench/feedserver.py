"""A loopback feed server for the polling benchmark: N feeds of realistic size, some slow, failing or moved.

Run it in its own process (`python -m bench.feedserver --feeds 1000`) so that serving does not take the
GIL from the client being measured; it prints `READY <port>` once every feed is rendered. Feed `i`:

- `/feed/<i>.xml`: RSS 2.0, 20-50 items, 30-80 KB, about 5% of items on the watched topic (reports of
  shared stories, so that incidents form across feeds), the rest off-topic news-like text;
- 2% answer 500, 0.5% never answer (a client times out), 3% answer after 200-600 ms, 3% redirect
  (301 or 302) to `/moved/<i>.xml`;
- every feed has an ETag; a request whose If-None-Match matches gets 304. At generation 1 (set with
  `GET /_control/generation/1`) a third of the feeds have 2-5 new items and a new ETag.

`GET /_stats` returns the counts of requests by status since the last `GET /_control/reset`.
Only ever binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.articles import Article, StoryMaker, offtopic_text

#: The benchmark's "now": every item is published in the three days before it.
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
HANG_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How feed `i` answers."""

    kind: str  # ok | slow | error | hang | redirect
    delay: float = 0.0
    status: int = 200


def behaviour(index: int) -> Behaviour:
    """The fixed behaviour of feed `index` (spread evenly over the index range)."""
    slot = index % 200
    if slot in (7, 107, 57, 157):
        return Behaviour("error", status=500)
    if slot == 33:
        return Behaviour("hang")
    if slot % 33 == 5:  # 3%
        return Behaviour("slow", delay=0.2 + 0.4 * random.Random(index).random())
    if slot % 33 == 20:  # 3%
        return Behaviour("redirect", status=301 if index % 2 else 302)
    return Behaviour("ok")


def changes_at_generation_1(index: int) -> bool:
    """A third of the feeds have news at generation 1."""
    return index % 3 == 0


def _item(title: str, link: str, text: str, published: datetime, source: str) -> str:
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n") if p.strip())
    return (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f'<guid isPermaLink="true">{escape(link)}</guid><pubDate>{format_datetime(published)}</pubDate>'
        f"<source>{escape(source)}</source><description>{escape(paragraphs)}</description></item>"
    )


class FeedSet:
    """Every feed's items at generations 0 and 1, rendered once."""

    def __init__(self, feeds: int, seed: int = 1) -> None:
        self.feeds = feeds
        rng = random.Random(seed)
        maker = StoryMaker(seed=seed, start=NOW - timedelta(days=3), stories_per_day=feeds / 6)
        self.items: list[list[str]] = []
        self.fresh: list[list[str]] = []
        pool: list[Article] = []
        for index in range(feeds):
            count = rng.randint(20, 50)
            target = rng.randint(30_000, 80_000)
            per_item = max(400, target // count - 350)
            rendered = [self._one(index, n, rng, per_item, pool, maker) for n in range(count + 5)]
            self.fresh.append(rendered[:5])
            self.items.append(rendered[5:])

    def _one(
        self, index: int, number: int, rng: random.Random, size: int, pool: list[Article], maker: StoryMaker
    ) -> str:
        published = NOW - timedelta(minutes=5 * number + rng.randint(0, 4000))
        if rng.random() < 0.05:
            if not pool:
                pool.extend(maker.make_story())
            article = pool.pop()
            when = min(article.published, NOW - timedelta(minutes=1))
            return _item(article.title, article.url, article.text[: size + 600], when, article.source)
        link = f"https://outlet{index}.example.com/news/{number}-{rng.randrange(10**9)}"
        text = offtopic_text(rng, size)
        title = text.split(". ")[0][:90]
        return _item(title, link, text, published, f"Outlet {index}")

    def render(self, index: int, generation: int) -> tuple[bytes, str]:
        """The feed document and its ETag."""
        version = 1 if generation >= 1 and changes_at_generation_1(index) else 0
        items = self.items[index]
        if version:
            new = self.fresh[index][: 2 + index % 4]
            items = new + items[: len(items) - len(new)]
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Outlet {index}</title><link>https://outlet{index}.example.com/</link>"
            f"<description>News from outlet {index}</description>" + "".join(items) + "</channel></rss>"
        )
        return body.encode("utf-8"), f'"{index}-{version}"'


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, feeds: FeedSet) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.feeds = feeds
        self.generation = 0
        self.cache: dict[tuple[int, int], tuple[bytes, str]] = {}
        self.stats: dict[str, int] = {}
        self.lock = threading.Lock()
        for index in range(feeds.feeds):
            for generation in (0, 1):
                self.cache[(index, generation)] = feeds.render(index, generation)

    def count(self, key: str, amount: int = 1) -> None:
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + amount


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.server.count(str(status))
        self.server.count("bytes", len(body))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = self.path.strip("/").split("/")
        if parts[0] == "_control":
            if parts[1:2] == ["generation"]:
                self.server.generation = int(parts[2])
            with self.server.lock:
                self.server.stats = {}
            self._send(200, b"ok")
            return
        if parts[0] == "_stats":
            with self.server.lock:
                body = json.dumps(self.server.stats).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if len(parts) != 2 or parts[0] not in ("feed", "moved") or not parts[1].endswith(".xml"):
            self._send(404, b"not found")
            return
        index = int(parts[1].removesuffix(".xml"))
        how = behaviour(index)
        if parts[0] == "feed" and how.kind == "redirect":
            self._send(how.status, b"", {"Location": f"/moved/{index}.xml"})
            return
        if how.kind == "hang":
            self.server.count("hang")
            time.sleep(HANG_SECONDS)
            self.close_connection = True
            return
        if how.kind == "slow":
            time.sleep(how.delay)
        if how.kind == "error":
            self._send(500, b"internal server error", {"Content-Type": "text/plain"})
            return
        body, etag = self.server.cache[(index, self.server.generation)]
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", {"ETag": etag})
            return
        self._send(200, body, {"Content-Type": "application/rss+xml; charset=utf-8", "ETag": etag})


def main() -> None:
    """Render the feeds, then serve them until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    server = _Server(FeedSet(args.feeds, args.seed))
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
