"""Benchmark 5: alert latency, from the poll that sees a conflicting report to the Slack message accepted.

Each run: a fresh store; `borderwatch poll --once` (a subprocess, with SLACK_BOT_TOKEN and SLACK_BASE_URL
pointing at the loopback Slack of bench/loopworld.py) sees the first three seed reports and posts the
new incident; then the feed shows the last two (the Afghan denial against the Pakistani confirmation,
and the soldiers' return) and a second `poll --once` runs. Latency is the time from the feed server
sending that feed to the Slack server accepting the message: the first message of the poll, and the
conflict's. The Slack server also gives the highest message rate it saw per channel.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.measure import ROOT, Row, child_env, median, percentile, run_child, server_process

GOAL_P95_S = 2.0
GOAL_RATE = 1.0


def _get(port: int, path: str) -> Any:
    response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
    response.raise_for_status()
    return response.json()


def _max_rate(posts: list[dict[str, Any]]) -> tuple[float, float]:
    """Most messages in any one-second window of one channel, and the shortest gap between two (s)."""
    by_channel: dict[str, list[float]] = {}
    for post in posts:
        by_channel.setdefault(str(post["channel"]), []).append(float(post["time"]))
    most, gap = 0, float("inf")
    for times in by_channel.values():
        times.sort()
        for i, start in enumerate(times):
            most = max(most, sum(1 for t in times[i:] if t < start + 1.0))
            if i:
                gap = min(gap, start - times[i - 1])
    return float(most), gap


def run(runs: int, details: dict[str, Any]) -> list[Row]:
    """`runs` two-poll runs; returns the table rows."""
    first: list[float] = []
    last: list[float] = []
    conflict: list[float] = []
    all_posts: list[dict[str, Any]] = []
    failures: list[str] = []
    watch = yaml.safe_load((ROOT / "config" / "watch.yaml").read_text(encoding="utf-8"))["watch"]
    with server_process("bench.loopworld") as port:
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="bench-alert-") as tmp:
                config = Path(tmp) / "alerts.yaml"
                config.write_text(yaml.safe_dump({
                    "feeds": [{"name": "Loopback News", "url": f"http://127.0.0.1:{port}/feed.xml",
                               "interval": "10m", "fetch_articles": False}],
                    "watch": watch,
                    "slack": {"channel": "#border-desk"},
                    "network": {"timeout": 10},
                }))  # fmt: skip
                env = child_env(SLACK_BOT_TOKEN="xoxb-bench", SLACK_BASE_URL=f"http://127.0.0.1:{port}/api/")
                poll = [sys.executable, "-m", "bot", "--config", str(config), "--db", str(Path(tmp) / "a.db"),
                        "-q", "poll", "--once"]  # fmt: skip
                _get(port, "/_control/reset")
                _get(port, "/_control/reveal/3")
                setup = run_child(poll, env=env)
                _get(port, "/_control/reveal/5")
                measured = run_child(poll, env=env)
                stats = _get(port, "/_stats")
                if setup.returncode or measured.returncode:
                    failures.append((setup.stderr + measured.stderr)[-1500:])
                    continue
                seen = stats["served"].get("5")
                after = [p for p in stats["posts"] if seen is not None and p["time"] >= seen]
                all_posts += stats["posts"]
                if after:
                    first.append(after[0]["time"] - seen)
                    last.append(after[-1]["time"] - seen)
                clash = [p for p in after if "conflict" in p["text"].lower()]
                if clash:
                    conflict.append(clash[0]["time"] - seen)
    most, gap = _max_rate(all_posts)
    details["alerts"] = {"runs": runs, "first_s": first, "last_s": last, "conflict_s": conflict, "posts": len(all_posts),
                         "max_per_second": most, "min_gap_s": gap, "failures": failures}  # fmt: skip
    name = f"5 alert latency ({runs} runs)"
    rows = [
        Row(name, "poll sees report -> first message, p50", "s", median(first), {}, "", None),
        Row(name, "poll sees report -> first message, p95", "s", percentile(first, 95), {},
            f"< {GOAL_P95_S:g} s", percentile(first, 95) < GOAL_P95_S if first else None),
        Row(name, "poll sees report -> last message of the poll, p95", "s", percentile(last, 95), {}, "", None,
            "later messages of one poll wait for the 1 message/s pacing"),
        Row(name, "poll sees report -> conflict message, p50", "s", median(conflict), {}, "", None),
        Row(name, "poll sees report -> conflict message, p95", "s", percentile(conflict, 95), {},
            f"< {GOAL_P95_S:g} s", percentile(conflict, 95) < GOAL_P95_S if conflict else None,
            f"{len(conflict)} of {runs} runs raised a conflict message"),
        Row(name, "most messages in one second, one channel", "msg", most, {}, f"<= {GOAL_RATE:g}",
            most <= GOAL_RATE, f"{len(all_posts)} messages; shortest gap {gap:.2f} s"),
    ]  # fmt: skip
    if failures:
        rows.append(Row(name, "failed runs", "", float(len(failures)), {}, "", False, failures[0][-300:]))
    return rows
