"""Benchmark 4: query latency on the largest store: full-text `search` (as `borderwatch search` runs it,
`bot.query.search_articles` on a read-only store) and the canned `conflicts` and `changes` queries."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from bench.measure import Row, median, percentile
from bench.stores import StoreInfo
from bot import query, store, views

GOAL_P95_MS = 100.0
#: What a desk editor types: a place, a word of every story, a phrase, a prefix, boolean queries.
TERMS = (
    "Torkham", "Taliban", "refugees", "ceasefire", "border crossing", '"Afghan soldiers"', "deport*",
    "Chaman OR Torkham", "killed AND Kurram", "Kabul", "Pakistan", "airstrike",
)  # fmt: skip


def _time(call: Any, repeat: int) -> tuple[list[float], float, int]:
    """Latencies in ms of `repeat` warm calls, the first (cold) call's, and the rows it returned."""
    started = time.perf_counter()
    rows = len(call().rows)
    cold = 1000 * (time.perf_counter() - started)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return times, cold, rows


def run(info: StoreInfo, repeat: int, details: dict[str, Any]) -> list[Row]:
    """Latency of each query kind; returns the table rows."""
    db = store.open_readonly(info.path)
    since = info.last - timedelta(days=1)
    kinds: dict[str, list[float]] = {"search": [], "conflicts": [], "changes": []}
    colds: dict[str, list[float]] = {"search": [], "conflicts": [], "changes": []}
    per_term: dict[str, dict[str, float]] = {}
    for term in TERMS:
        times, cold, found = _time(lambda term=term: query.search_articles(db, term), repeat)
        kinds["search"] += times
        colds["search"].append(cold)
        per_term[term] = {"p50_ms": median(times), "max_ms": max(times), "cold_ms": cold, "rows": found}
    for name, call in (("conflicts", lambda: views.list_conflicts(db)),
                       ("changes", lambda: views.list_changes(db, since))):  # fmt: skip
        times, cold, found = _time(call, repeat)
        kinds[name] += times
        colds[name].append(cold)
        per_term[name] = {"p50_ms": median(times), "max_ms": max(times), "cold_ms": cold, "rows": found}
    db.close()
    details["queries"] = {"store_articles": info.articles, "per_query": per_term}
    rows = []
    name = f"4 queries ({info.articles:,} articles)"
    for kind, times in kinds.items():
        p95 = percentile(times, 95)
        rows.append(Row(name, f"{kind} p50", "ms", median(times), {}, "", None))
        rows.append(Row(name, f"{kind} p95", "ms", p95, {}, f"< {GOAL_P95_MS:g} ms", p95 < GOAL_P95_MS,
                        f"first (cold) call max {max(colds[kind]):.0f} ms; {len(times)} warm calls"))  # fmt: skip
    slowest = max((k for k in per_term if k not in kinds), key=lambda k: per_term[k]["p50_ms"])
    rows.append(Row(name, f"slowest search term: {slowest}", "ms", per_term[slowest]["p50_ms"], {}, "", None,
                    f"{per_term[slowest]['rows']} rows returned"))  # fmt: skip
    return rows
