"""One poll cycle in a process of its own, so that its CPU seconds and peak RSS are its own.

    python -m bench.pollchild ours  --config CFG --db DB --now ISO
    python -m bench.pollchild plain --urls FILE --state FILE --timeout 5

`ours` runs `bot.app.build_pipeline` + `run_cycle(pipe, now=...)` (no delivery); `plain` is the
baseline: a sequential httpx loop with conditional GET (ETags kept in a JSON file) and
`feedparser.parse` on the bytes, storing nothing. Both print one JSON line with the figures measured
inside the process (the cycle alone, without interpreter start-up and imports).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import resource
import time
from datetime import datetime
from pathlib import Path
from typing import Any

#: Functions whose inclusive time makes up each stage of a poll (for the profile's stage breakdown).
STAGES = {
    "HTTP fetch": ("read_limited",),
    "feed parsing (feedparser)": ("_parse_within",),
    "entry text (HTML to text)": ("_html_to_text",),
    "process_entry (store + analyse)": ("process_entry",),
    "  of which extraction": ("extract_claims",),
    "  of which MinHash": ("minhash_signature",),
    "feed state (load/save)": ("load_feed_state", "save_feed_state"),
}


def _ours(args: argparse.Namespace) -> dict[str, Any]:
    from bot import store
    from bot.app import build_pipeline
    from bot.config import load_config
    from bot.cycle import CycleSummary, poll_feed, run_cycle

    logging.basicConfig(level=logging.ERROR)
    cfg = load_config(args.config)
    db = store.open_db(args.db)
    pipe = build_pipeline(cfg, db)
    rss_ready = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    now = datetime.fromisoformat(args.now)
    if args.profile:  # pyinstrument samples only its own thread: poll the feeds one by one in this one
        summary = CycleSummary(feeds=len(cfg.feeds))
        for index in range(len(cfg.feeds)):
            poll_feed(pipe, index, now, summary, force=True)
    else:
        summary = run_cycle(pipe, now=now, workers=args.workers)
    result = {
        "cycle_wall": time.perf_counter() - started,
        "cycle_cpu": time.process_time() - cpu,
        "rss_ready_mb": rss_ready,
        "polled": summary.polled,
        "not_modified": summary.not_modified,
        "entries": summary.entries,
        "new": summary.new,
        "alerts": summary.alerts,
        "errors": summary.errors,
    }
    pipe.close()
    return result


def _plain(args: argparse.Namespace) -> dict[str, Any]:
    import feedparser
    import httpx

    urls = Path(args.urls).read_text().split()
    state_path = Path(args.state)
    etags: dict[str, str] = json.loads(state_path.read_text()) if state_path.exists() else {}
    counts = {"polled": 0, "not_modified": 0, "entries": 0, "errors": 0}
    rss_ready = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu = time.perf_counter(), time.process_time()
    with httpx.Client(follow_redirects=True, timeout=args.timeout) as http:
        for url in urls:
            counts["polled"] += 1
            headers = {"If-None-Match": etags[url]} if url in etags else {}
            try:
                response = http.get(url, headers=headers)
            except httpx.HTTPError:
                counts["errors"] += 1
                continue
            if response.status_code == 304:
                counts["not_modified"] += 1
                continue
            if response.status_code != 200:
                counts["errors"] += 1
                continue
            if "etag" in response.headers:
                etags[url] = response.headers["etag"]
            parsed = feedparser.parse(io.BytesIO(response.content))
            counts["entries"] += len(parsed.entries)
    state_path.write_text(json.dumps(etags))
    return {
        "cycle_wall": time.perf_counter() - started,
        "cycle_cpu": time.process_time() - cpu,
        "rss_ready_mb": rss_ready,
        **counts,
    }


def main() -> None:
    """Run one cycle and print its figures as one JSON line."""
    parser = argparse.ArgumentParser(description="one poll cycle, measured")
    parser.add_argument("mode", choices=["ours", "plain"])
    parser.add_argument("--config")
    parser.add_argument("--db")
    parser.add_argument("--now")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--urls")
    parser.add_argument("--state")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--profile", help="write a pyinstrument text profile of the cycle here")
    args = parser.parse_args()
    run = _ours if args.mode == "ours" else _plain
    if args.profile:
        from pyinstrument import Profiler

        from bench.profiling import summarize

        profiler = Profiler(interval=0.002)
        profiler.start()
        result = run(args)
        profiler.stop()
        Path(args.profile).write_text(json.dumps(summarize(profiler, STAGES, result["cycle_wall"])))
    else:
        result = run(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
