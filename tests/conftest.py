"""Shared fixtures: a real SQLite store in tmp_path, configs, loopback HTTP servers, the fault tally.

Every server here listens on 127.0.0.1 (or ::1) only. `LoopbackServer` is a small threaded
http.server whose routes are plain Python callables, so a test can serve a feed, a 304, a redirect,
a handler that sleeps, trickles or cuts the connection, and read back every request it received.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from bot import store
from bot.app import build_pipeline
from bot.config import Config, parse_config
from bot.cycle import Pipeline
from bot.demo import Item, load_items, render_atom, render_page, render_rss

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
#: The shared folder beside the project (corpora, score.py); CI has it, a lone clone may not.
SHARED = ROOT.parent / "shared"
SHARED_SEEDS = SHARED / "corpus" / "seeds"
#: The seed reports: the shared copy, else the one shipped with the demo (same five files).
SEEDS = SHARED_SEEDS if SHARED_SEEDS.is_dir() else ROOT / "bot" / "demo_data"
SEED_FILES = sorted(SEEDS.glob("*.txt"))
FAULT_SUMMARY = Path(__file__).resolve().parent / ".fault-summary.json"
#: A fixed "now" after the seed reports (July 2021), so that nothing depends on the wall clock.
NOW = datetime(2021, 7, 27, 12, 0, tzinfo=UTC)


# --- ../shared ---------------------------------------------------------------------------------------


def shared_absent(relative: str = "corpus/seeds") -> str | None:
    """Why a test that reads `../shared/RELATIVE` cannot run here, or None when that path exists."""
    if (SHARED / relative).exists():
        return None
    return f"../shared/{relative} is absent: clone the project beside shared/ to run this"


def pytest_configure(config: pytest.Config) -> None:
    """Register the `needs_shared` marker."""
    config.addinivalue_line(
        "markers",
        "needs_shared(relative='corpus/seeds'): the test reads ../shared/RELATIVE; skipped when it is absent",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `skip`, with the reason, every test marked `needs_shared` whose part of ../shared is absent."""
    for item in items:
        for mark in item.iter_markers("needs_shared"):
            reason = shared_absent(*mark.args, **mark.kwargs)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))
                break


@pytest.fixture
def seed_dir() -> Path:
    """The folder of the five seed reports: ../shared/corpus/seeds, else the identical copy the package
    ships for the demo (`bot/demo_data`), so these tests run in a clone on its own too."""
    return SEEDS


# --- loopback HTTP ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request a LoopbackServer received."""

    method: str
    path: str
    headers: dict[str, str]


Handler = Callable[[BaseHTTPRequestHandler], None]


def reply(
    body: bytes | str = b"",
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "text/xml",
) -> Handler:
    """A route that answers with a fixed status, body and headers."""
    data = body.encode() if isinstance(body, str) else body

    def handle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        merged = {"Content-Type": content_type, "Content-Length": str(len(data)), **(headers or {})}
        for key, value in merged.items():
            request.send_header(key, value)
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)

    return handle


def conditional(
    body: bytes, content_type: str = "application/rss+xml; charset=utf-8", **extra: str
) -> Handler:
    """A route that serves `body` with an ETag and Last-Modified, and 304 to a matching conditional GET."""
    etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
    modified = "Mon, 26 Jul 2021 18:00:00 GMT"

    def handle(request: BaseHTTPRequestHandler) -> None:
        # As RFC 9110 says: If-None-Match, when sent, decides alone; If-Modified-Since only without it.
        tag = request.headers.get("If-None-Match")
        if tag == etag or (tag is None and request.headers.get("If-Modified-Since") == modified):
            request.send_response(304)
            request.send_header("ETag", etag)
            request.end_headers()
            return
        reply(body, 200, {"ETag": etag, "Last-Modified": modified, **extra}, content_type)(request)

    return handle


class LoopbackServer:
    """A threaded HTTP server on a loopback address; `routes` maps a path to a handler."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Handler] = {}
        self.log: list[Seen] = []
        self.lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                with server.lock:
                    server.log.append(Seen("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
                handler = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if handler is None:
                    reply(b"not found", 404, content_type="text/plain")(self)
                    return
                try:
                    handler(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class _Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True
            block_on_close = False
            request_queue_size = 128

        self.httpd = _Server((host, 0), _Handler)
        port = self.httpd.server_address[1]
        self.base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        self.port = port
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this server."""
        return self.base_url + path

    def hits(self, path: str) -> int:
        """How many requests asked for `path` (query string ignored)."""
        with self.lock:
            return sum(1 for seen in self.log if seen.path.split("?")[0] == path)

    def requests_for(self, path: str) -> list[Seen]:
        """The requests for `path`, oldest first."""
        with self.lock:
            return [seen for seen in self.log if seen.path.split("?")[0] == path]

    def start(self) -> LoopbackServer:
        """Start serving in a daemon thread."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A LoopbackServer on 127.0.0.1."""
    srv = LoopbackServer().start()
    yield srv
    srv.stop()


def ipv6_loopback_available() -> bool:
    """True when this machine can listen on ::1."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- seed reports as feeds ----------------------------------------------------------------------------


def seed_items() -> list[Item]:
    """The five seed reports, in published order."""
    return load_items(SEED_FILES)


def serve_seeds(srv: LoopbackServer, items: list[Item] | None = None, feed_path: str = "/feed.xml",
                atom: bool = False, full_text: bool = True) -> str:  # fmt: skip
    """Serve the items as a conditional-GET feed plus one HTML page each; returns the feed URL."""
    items = seed_items() if items is None else items
    if atom:
        srv.routes[feed_path] = conditional(
            render_atom(items, srv.base_url), "application/atom+xml; charset=utf-8"
        )
    else:
        srv.routes[feed_path] = conditional(render_rss(items, srv.base_url, full_text=full_text))
    for item in items:
        srv.routes[f"/articles/{item.slug}.html"] = reply(
            render_page(item), content_type="text/html; charset=utf-8"
        )
    return srv.url(feed_path)


def rss(items_xml: str, title: str = "Test feed", extra: str = "") -> bytes:
    """An RSS 2.0 document around raw `<item>` XML."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>http://example.org/</link><description>t</description>{extra}"
        f"{items_xml}</channel></rss>"
    ).encode()


def rss_item(
    title: str, link: str, description: str, guid: str | None = None, published: datetime | None = None
) -> str:
    """One RSS `<item>` (text is escaped)."""
    from html import escape

    parts = [f"<title>{escape(title)}</title>", f"<link>{escape(link)}</link>",
             f"<description>{escape(description)}</description>"]  # fmt: skip
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{escape(guid)}</guid>')
    if published is not None:
        parts.append(f"<pubDate>{format_datetime(published)}</pubDate>")
    return "<item>" + "".join(parts) + "</item>"


# --- store, config, pipeline --------------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where this test's SQLite store lives."""
    return tmp_path / "borderwatch.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    """A migrated store, a real SQLite file in tmp_path."""
    database = store.open_db(db_path)
    yield database
    database.close()


def config_from(data: dict[str, Any], path: Path | None = None) -> Config:
    """A Config from a dict, validated like a file."""
    return parse_config(data, path or Path("test.yaml"))


@pytest.fixture
def make_config() -> Callable[..., Config]:
    """make_config(feeds=[(name, url), ...] or dicts, keywords=..., **top-level keys) -> Config."""

    def make(feeds: list[Any] | None = None, keywords: list[str] | None = None, **extra: Any) -> Config:
        feed_list = []
        for feed in feeds or []:
            if isinstance(feed, tuple):
                feed_list.append({"name": feed[0], "url": feed[1], "fetch_articles": False})
            else:
                feed_list.append(feed)
        network = {"allow_private": ["127.0.0.0/8", "::1/128"], "timeout": 5, **extra.pop("network", {})}
        return config_from({"feeds": feed_list, "watch": {"keywords": keywords or ["Afghan*", "Taliban", "Zyzzyva"]},
                            "network": network, **extra})  # fmt: skip

    return make


@pytest.fixture
def make_pipeline(db: Database) -> Iterator[Callable[[Config], Pipeline]]:
    """make_pipeline(cfg) -> a Pipeline on the test store; closed after the test."""
    made: list[Pipeline] = []

    def make(cfg: Config) -> Pipeline:
        pipe = build_pipeline(cfg, db)
        made.append(pipe)
        return pipe

    yield make
    for pipe in made:
        pipe.close()


def article_count(db: Database) -> int:
    """Rows in `articles`."""
    return int(db.execute("select count(*) from articles").fetchone()[0])


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run `python -m bot ARGS` in a subprocess and return what it did."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("SLACK_BOT_TOKEN", None)
    full_env.pop("SLACK_WEBHOOK_URL", None)
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, env=full_env)  # fmt: skip


def write_config(tmp_path: Path, feed_url: str, interval: str = "10m") -> Path:
    """A config file with the one loopback feed (article pages fetched) and the seed keywords."""
    path = tmp_path / "bot.yaml"
    path.write_text(
        f"feeds:\n  - name: Loopback News\n    url: {feed_url}\n    interval: {interval}\n"
        "watch:\n  keywords: [Afghan*, Taliban]\n"
        "network:\n  allow_private: [127.0.0.0/8]\n  timeout: 5\n",
        encoding="utf-8",
    )
    return path


# --- the fault tally ----------------------------------------------------------------------------------


@dataclass
class FaultTally:
    """What the fault suite tried and what it lost: written to tests/.fault-summary.json."""

    cases: int = 0
    faults: int = 0
    articles_lost: int = 0
    articles_duplicated: int = 0
    alerts_lost: int = 0
    alerts_duplicated: int = 0
    names: list[str] = field(default_factory=list)

    def record(self, name: str, faults: int = 1, articles_lost: int = 0, articles_duplicated: int = 0,
               alerts_lost: int = 0, alerts_duplicated: int = 0) -> None:  # fmt: skip
        """Count one case (and the faults it injected) with what it lost or duplicated."""
        self.cases += 1
        self.faults += faults
        self.articles_lost += articles_lost
        self.articles_duplicated += articles_duplicated
        self.alerts_lost += alerts_lost
        self.alerts_duplicated += alerts_duplicated
        self.names.append(name)


_TALLY = FaultTally()


@pytest.fixture
def fault_tally() -> FaultTally:
    """The session's fault tally."""
    return _TALLY


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the fault summary when fault cases ran."""
    if _TALLY.cases:
        payload = {k: v for k, v in asdict(_TALLY).items() if k != "names"}
        payload["case_names"] = sorted(set(_TALLY.names))
        FAULT_SUMMARY.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault figures at the end of the run."""
    if _TALLY.cases:
        t = _TALLY
        terminalreporter.write_line(
            f"fault suite: cases={t.cases} faults={t.faults} articles lost={t.articles_lost} "
            f"duplicated={t.articles_duplicated} alerts lost={t.alerts_lost} duplicated={t.alerts_duplicated} "
            f"(written to {FAULT_SUMMARY.relative_to(ROOT)})"
        )


@pytest.fixture
def http() -> Iterator[Any]:
    """The feed client (short timeouts), closed after the test."""
    from bot.net.client import make_client

    client = make_client(timeout=5.0)
    yield client
    client.close()


def clean_env() -> dict[str, str]:
    """The environment without Slack settings or a store path, so a CLI subprocess can never post anywhere."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BORDERWATCH_DB"))}


@pytest.fixture(scope="session")
def seeds_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store made by the real CLI's `ingest` of the seed reports (named so Datasette calls it `borderwatch`)."""
    db = tmp_path_factory.mktemp("seeds") / "borderwatch.db"
    files = [str(p) for p in sorted(SEEDS.glob("*.txt"))]
    subprocess.run([sys.executable, "-m", "bot", "-q", "--db", str(db), "ingest", "--no-deliver", *files],
                   cwd=ROOT, env=clean_env(), check=True, capture_output=True)  # fmt: skip
    return db
