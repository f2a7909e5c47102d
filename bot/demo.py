"""The demo: the bundled seed reports served as a feed on 127.0.0.1, revealed one per poll cycle.

`FeedServer` is a real HTTP server (RSS with ETag/Last-Modified and 304s, plus an HTML page per
article); the tests use it too.
"""

from __future__ import annotations

import hashlib
import html
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bot.corpus import read_article_file
from bot.models import Entry

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"


@dataclass(frozen=True, slots=True)
class Item:
    """One article the server publishes: its entry and its full body."""

    entry: Entry
    body: str
    slug: str


def load_items(paths: Sequence[Path]) -> list[Item]:
    """Items from article files, in published order."""
    items = []
    for path in paths:
        entry, body = read_article_file(path)
        items.append(Item(entry, body, path.stem))
    return sorted(items, key=lambda i: (i.entry.published is None, i.entry.published, i.slug))


def render_rss(
    items: Sequence[Item], base_url: str, title: str = "Loopback News", full_text: bool = True
) -> bytes:
    """An RSS 2.0 document whose links point at this server's article pages."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>',
        f"<title>{html.escape(title)}</title><link>{base_url}/</link><description>demo</description>",
    ]
    for item in items:
        entry = item.entry
        link = f"{base_url}/articles/{item.slug}.html"
        date = format_datetime(entry.published) if entry.published else ""
        summary = item.body.split("\n\n")[0] if not full_text else item.body
        parts.append(
            "<item>"
            f"<title>{html.escape(entry.title)}</title><link>{html.escape(link)}</link>"
            f'<guid isPermaLink="false">{html.escape(entry.link)}</guid>'
            f"<pubDate>{date}</pubDate>"
            f'<source url="{base_url}/feed.xml">{html.escape(entry.source)}</source>'
            f"<description>{html.escape(summary)}</description>"
            "</item>"
        )
    parts.append("</channel></rss>")
    return "\n".join(parts).encode("utf-8")


def render_atom(items: Sequence[Item], base_url: str, title: str = "Loopback News") -> bytes:
    """An Atom 1.0 document whose links point at this server's article pages (full text in `content`)."""
    updated = max((i.entry.published for i in items if i.entry.published), default=None)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{html.escape(title)}</title><id>{html.escape(base_url)}/</id>",
        f'<link rel="self" href="{html.escape(base_url)}/atom.xml"/>',
        f"<updated>{updated.isoformat() if updated else '1970-01-01T00:00:00+00:00'}</updated>",
    ]
    for item in items:
        entry = item.entry
        stamp = entry.published.isoformat() if entry.published else "1970-01-01T00:00:00+00:00"
        parts.append(
            "<entry>"
            f"<title>{html.escape(entry.title)}</title>"
            f'<link rel="alternate" href="{html.escape(base_url)}/articles/{item.slug}.html"/>'
            f"<id>{html.escape(entry.link)}</id><updated>{stamp}</updated><published>{stamp}</published>"
            f"<author><name>{html.escape(entry.source)}</name></author>"
            f"<source><title>{html.escape(entry.source)}</title></source>"
            f'<content type="text">{html.escape(item.body)}</content>'
            "</entry>"
        )
    parts.append("</feed>")
    return "\n".join(parts).encode("utf-8")


def render_page(item: Item) -> bytes:
    """A plain article page for one item."""
    paragraphs = "".join(f"<p>{html.escape(p.strip())}</p>" for p in item.body.split("\n") if p.strip())
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(item.entry.title)}</title></head><body>"
        f"<header><nav>Home | World | Asia</nav></header><article><h1>{html.escape(item.entry.title)}</h1>"
        f"{paragraphs}</article><footer>All rights reserved.</footer></body></html>"
    ).encode()


class FeedServer:
    """A loopback feed server; `reveal(n)` sets how many items the feed shows."""

    def __init__(self, items: Sequence[Item], full_text: bool = True) -> None:
        self.items = list(items)
        self.full_text = full_text
        self.shown = len(self.items)
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path.split("?")[0] == "/feed.xml":
                    body = render_rss(
                        server.items[: server.shown], server.base_url, full_text=server.full_text
                    )
                    etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                    if self.headers.get("If-None-Match") == etag:
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.end_headers()
                        return
                    self._send(200, body, "application/rss+xml; charset=utf-8", {"ETag": etag})
                    return
                for item in server.items[: server.shown]:
                    if self.path == f"/articles/{item.slug}.html":
                        self._send(200, render_page(item), "text/html; charset=utf-8", {})
                        return
                self._send(404, b"not found", "text/plain", {})

            def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def feed_url(self) -> str:
        """The feed's URL."""
        return f"{self.base_url}/feed.xml"

    def reveal(self, count: int) -> None:
        """Show the first `count` items."""
        self.shown = max(0, min(count, len(self.items)))

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def demo_items() -> list[Item]:
    """The bundled seed reports."""
    return load_items(sorted(DEMO_DATA.glob("*.txt")))
