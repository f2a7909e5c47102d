"""`borderwatch serve` (issue 5): Datasette on the seeds' store, on a free loopback port, read through httpx
and once through headless Chromium (Debian's /usr/bin/chromium)."""

from __future__ import annotations

import queue
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lxml.html
import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.serve import build_metadata, is_datasette_installed
from bot.views import CANNED_QUERIES
from tests.conftest import clean_env

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
READY = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")

needs_datasette = pytest.mark.skipif(
    not is_datasette_installed(), reason="datasette not installed (extra [web])"
)


@pytest.fixture(scope="module")
def server(seeds_db: Path) -> Iterator[str]:
    """`borderwatch serve --port 0` in a subprocess; yields its base URL once Uvicorn says it is listening."""
    if not is_datasette_installed():
        pytest.skip("datasette not installed (extra [web])")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--db", str(seeds_db), "serve", "--port", "0"],
                            cwd=ROOT, env=clean_env(), stderr=subprocess.PIPE, text=True)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()

    def read_log() -> None:  # keeps draining stderr so the server never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read_log, daemon=True).start()
    log = []
    while True:
        line = lines.get(timeout=120)
        log.append(line)
        if not line:
            pytest.fail("serve exited before listening:\n" + "".join(log))
        if match := READY.search(line):
            break
    base = match.group(1)
    yield base
    proc.terminate()  # SIGTERM: `serve` forwards it to Datasette and returns when Datasette has stopped
    assert proc.wait(timeout=60) == 0
    with pytest.raises(httpx.ConnectError):  # nothing left listening (no orphaned Datasette)
        httpx.get(base + "/-/versions.json")


def _alert_summaries(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("select summary from alerts order by id desc")]


def test_metadata_describes_the_store(server: str) -> None:
    metadata = httpx.get(server + "/-/metadata.json").json()
    assert metadata["title"] == "borderwatch"
    database = metadata["databases"]["borderwatch"]
    assert set(database["queries"]) == {q.name for q in CANNED_QUERIES}
    for table in ("articles", "incidents", "claims", "alerts", "feeds"):
        assert database["tables"][table]["description"] and database["tables"][table]["columns"], table
    page = httpx.get(server + "/borderwatch")
    assert page.status_code == 200
    assert all(f'href="/borderwatch/{q.name}"' in page.text for q in CANNED_QUERIES)


def test_latest_alerts_json(server: str, seeds_db: Path) -> None:
    response = httpx.get(server + "/borderwatch/latest_alerts.json", params={"_shape": "objects"})
    assert response.status_code == 200
    rows = response.json()["rows"]
    assert [r["summary"] for r in rows] == _alert_summaries(seeds_db)
    assert all(r["sources"] for r in rows if r["kind"] != "feed_failing")


def test_incident_timeline_json(server: str, seeds_db: Path) -> None:
    with sqlite3.connect(seeds_db) as conn:
        incident, reports, alerts = conn.execute(
            """select incident_id, count(*), (select count(*) from alerts where incident_id = a.incident_id)
               from articles a group by incident_id order by count(*) desc limit 1"""
        ).fetchone()
        urls = {r[0] for r in conn.execute("select url from articles where incident_id = ?", [incident])}
    response = httpx.get(
        server + "/borderwatch/incident_timeline.json", params={"incident_id": incident, "_shape": "array"}
    )
    assert response.status_code == 200
    timeline = response.json()
    assert len(timeline) == reports + alerts
    assert {e["url"] for e in timeline if e["event"] == "report"} == urls
    assert [e["time"] for e in timeline] == sorted(e["time"] for e in timeline)


@pytest.mark.parametrize("name", ["open_conflicts", "feed_health", "incidents_map"])
def test_other_canned_queries_run(server: str, seeds_db: Path, name: str) -> None:
    response = httpx.get(server + f"/borderwatch/{name}.json")
    assert response.status_code == 200 and response.json()["ok"] is True, response.text
    if name == "open_conflicts":
        with sqlite3.connect(seeds_db) as conn:
            expected = conn.execute("select count(*) from alerts where kind glob '*_conflict'").fetchone()[0]
        body = response.json()
        assert len(body["rows"]) == expected and {"a_quote", "b_quote", "a_url", "b_url"} <= set(
            body["columns"]
        )


def test_incidents_are_drawn_on_a_map(server: str) -> None:
    page = httpx.get(server + "/borderwatch/incidents").text
    assert "datasette-cluster-map.js" in page
    assert 'DATASETTE_CLUSTER_MAP_LATITUDE_COLUMN = "latitude"' in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
def test_latest_alerts_page_in_a_browser(server: str, seeds_db: Path, tmp_path: Path) -> None:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # loopback only, whatever the page asks
        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", server + "/borderwatch/latest_alerts",
    ]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    page = lxml.html.fromstring(dom)
    assert page.findtext(".//h1").strip() == "Latest alerts"
    shown = [
        " ".join(td.text_content().split())
        for td in page.xpath("//table//td[contains(@class, 'col-summary')]")
    ]
    assert shown == [" ".join(s.split()) for s in _alert_summaries(seeds_db)]


# --- without a server --------------------------------------------------------------------------------


def test_metadata_is_keyed_by_the_database_name() -> None:
    metadata: dict[str, Any] = build_metadata("state")
    assert list(metadata["databases"]) == ["state"]
    sql = metadata["databases"]["state"]["queries"]["incident_timeline"]["sql"]
    assert ":incident_id" in sql


@needs_datasette
def test_serve_without_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["--db", str(missing), "serve"])
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"Error: {missing}: no such database (run `borderwatch poll --once` or `ingest` first)\n"
    )


def test_serve_without_datasette(tmp_path: Path) -> None:
    # An interpreter where `import datasette` fails, as when the [web] extra is not installed.
    code = "import sys; sys.modules['datasette'] = None; from bot.cli import cli; cli()"
    db = tmp_path / "borderwatch.db"
    db.touch()
    proc = subprocess.run([sys.executable, "-c", code, "--db", str(db), "serve"], capture_output=True, text=True,
                          cwd=ROOT, env=clean_env())  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == "Error: datasette is not installed: pip install 'borderwatch[web]'\n"
