"""Benchmark 2: ingest throughput, articles/s through `process_entry` into stores of 10k, 100k (and 1M).

Each run copies the cached store, then a child process (`python -m bench.ingest --db ...`) feeds it
new articles one by one through `bot.cycle.process_entry(pipe, entry, now, text=..., keep_all=True)`:
fingerprint, near-duplicate lookup, storage, claim extraction, incident grouping, comparison, alerts.
The child reports its wall time and CPU seconds; one core does all the work (the pipeline is serial).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import Row, child_env, median, run_child
from bench.stores import StoreInfo, bench_config, build_store, copy_store, entry_of, measured_articles

GOAL_RATE = 300.0
GOAL_GROWTH = 1.5
#: Functions whose inclusive time makes up each stage (for the profile's stage breakdown).
STAGES = {
    "fingerprint (MinHash)": ("entry_key", "fingerprint", "minhash_signature"),
    "near-duplicate lookup": ("find_near_duplicate",),
    "store article": ("insert_article", "find_article"),
    "extraction": ("extract_claims",),
    "grouping": ("choose_incident", "candidate_profiles"),
    "comparison": ("detect_changes", "load_claims"),
    "store claims/incident/alerts": (
        "insert_claims",
        "load_profile",
        "grow_profile",
        "save_incident",
        "insert_incident",
        "record_alert",
    ),
    "commit": ("__exit__",),
}


def run(sizes: list[int], count: int, runs: int, details: dict[str, Any], log: Any = print) -> list[Row]:
    """Measure ingest into each store size; returns the table rows."""
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        info = build_store(size, log)
        details.setdefault("stores", {})[size] = {
            "articles": info.articles, "incidents": info.incidents, "claims": info.claims, "alerts": info.alerts,
            "first": info.first.isoformat(), "last": info.last.isoformat(),
            "build_seconds": round(info.build_seconds, 1), "bytes": info.path.stat().st_size,
        }  # fmt: skip
        samples = [_one_run(info, count) for _ in range(runs)]
        details.setdefault("ingest", {})[size] = samples
        results[size] = {
            "rate": median([s["articles"] / s["wall"] for s in samples]),
            "cpu_rate": median([s["articles"] / s["cpu"] for s in samples]),
            "ms": median([1000 * s["wall"] / s["articles"] for s in samples]),
            "cpu_ms": median([1000 * s["cpu"] / s["articles"] for s in samples]),
            "rss": median([s["rss_mb"] for s in samples]),
            "alerts": median([s["alerts"] for s in samples]),
            "stored": median([s["stored"] for s in samples]),
        }
    rows = []
    base = results[sizes[0]]
    for size, r in results.items():
        name = f"2 ingest ({count} articles/run)"
        goal = f">= {GOAL_RATE:g}/s" if size == sizes[0] else ""
        met = r["rate"] >= GOAL_RATE if size == sizes[0] else None
        rows.append(Row(name, f"articles/s into {size:,} stored", "art/s", r["rate"], {}, goal, met,
                        f"CPU-bound rate {r['cpu_rate']:.0f}/s; {r['alerts']:.0f} alerts raised; "
                        f"peak RSS {r['rss']:.0f} MB"))  # fmt: skip
        rows.append(Row(name, f"ms per article at {size:,} (wall)", "ms", r["ms"], {}, "", None,
                        f"CPU {r['cpu_ms']:.1f} ms per article"))  # fmt: skip
    if len(results) > 1:
        largest = max(results)
        growth = results[largest]["cpu_ms"] / base["cpu_ms"]
        wall_growth = results[largest]["ms"] / base["ms"]
        rows.append(Row(f"2 ingest ({count} articles/run)", f"CPU cost per article {largest:,} / {sizes[0]:,}",
                        "x", growth, {}, f"<= {GOAL_GROWTH:g}x", growth <= GOAL_GROWTH,
                        f"wall-time ratio {wall_growth:.2f}x (the machine is shared: CPU seconds are the "
                        "steadier measure)"))  # fmt: skip
    return rows


def _one_run(info: StoreInfo, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        db = copy_store(info, Path(tmp) / "store.db")
        args = [sys.executable, "-m", "bench.ingest", "--db", str(db), "--size", str(info.articles),
                "--count", str(count)]  # fmt: skip
        result = run_child(args, env=child_env())
        if result.returncode != 0:
            raise RuntimeError(f"ingest child failed: {result.stderr[-3000:]}")
        return {**result.json(), "rss_mb": result.rss_mb}


def ingest_articles(
    db_path: Path, info: StoreInfo, count: int, profile: Path | None = None
) -> dict[str, Any]:
    """Feed `count` new articles into the store at `db_path`; returns wall, CPU and counts."""
    from bot import store
    from bot.app import build_pipeline
    from bot.cycle import process_entry

    db = store.open_db(db_path)
    pipe = build_pipeline(bench_config(), db)
    articles = list(measured_articles(info, count))
    profiler = None
    if profile is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    stored = alerts = duplicates = 0
    started, cpu = time.perf_counter(), time.process_time()
    for article in articles:
        outcome = process_entry(pipe, entry_of(article), article.published, text=article.text, keep_all=True)
        stored += int(outcome.stored)
        alerts += outcome.alerts
        duplicates += int(outcome.duplicate)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None and profile is not None:
        profiler.stop()
        from bench.profiling import summarize

        profile.write_text(json.dumps(summarize(profiler, STAGES, wall)))
    pipe.close()
    return {"articles": len(articles), "wall": wall, "cpu": cpu, "stored": stored, "alerts": alerts,
            "duplicates": duplicates}  # fmt: skip


def main() -> None:
    """The child: ingest into a copy of a cached store and print one JSON line."""
    parser = argparse.ArgumentParser(description="ingest into a store, measured")
    parser.add_argument("--db", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--profile")
    args = parser.parse_args()
    info = build_store(args.size)
    result = ingest_articles(Path(args.db), info, args.count, Path(args.profile) if args.profile else None)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
