"""`python -m bench`: run the benchmarks, print one table, write bench/results.json.

    python -m bench                 # full run (under 20 minutes on 2 cores once the stores are cached)
    python -m bench --quick         # about a minute: small sizes, one run each
    python -m bench --huge          # also ingest into a store of 1M articles (builds it once: long)
    python -m bench --only ingest,queries
    python -m bench --report        # print the table of the last results.json as Markdown

Everything runs on 127.0.0.1. Benchmarks measure; they never assert timings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.measure import Row, child_env, machine, run_child

RESULTS = Path(__file__).resolve().parent / "results.json"
BENCHMARKS = ("polling", "ingest", "neardup", "queries", "alerts", "profile")


@dataclass(frozen=True, slots=True)
class Plan:
    """Sizes and repetitions of one run."""

    feeds: int
    poll_runs: int
    peer_feeds: int
    peer_runs: int
    sizes: tuple[int, ...]
    ingest_count: int
    ingest_runs: int
    distinct: int
    copies: int
    query_repeat: int
    alert_runs: int
    profile_feeds: int
    profile_articles: int


QUICK = Plan(
    feeds=30,
    poll_runs=1,
    peer_feeds=30,
    peer_runs=1,
    sizes=(10_000,),
    ingest_count=100,
    ingest_runs=1,
    distinct=200,
    copies=20,
    query_repeat=3,
    alert_runs=2,
    profile_feeds=0,
    profile_articles=80,
)
FULL = Plan(
    feeds=1000,
    poll_runs=3,
    peer_feeds=200,
    peer_runs=2,
    sizes=(10_000, 100_000),
    ingest_count=800,
    ingest_runs=3,
    distinct=2000,
    copies=200,
    query_repeat=10,
    alert_runs=10,
    profile_feeds=150,
    profile_articles=300,
)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("%", "x"):
        return f"{value:.1f}{unit if unit == 'x' else '%'}"
    if unit == "":
        return f"{value:.3f}" if value <= 1 else f"{value:.1f}"
    number = f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return f"{number} {unit}"


def _cells(row: dict[str, Any]) -> list[str]:
    peers = "; ".join(f"{k} {_fmt(v, row['unit'])}" for k, v in row["peers"].items())
    met = {True: "yes", False: "NO", None: ""}[row["met"]]
    return [row["metric"], _fmt(row["ours"], row["unit"]), peers, row["goal"], met]


def print_table(rows: list[dict[str, Any]], out: Any = sys.stdout) -> None:
    """The results as an aligned text table, one block per benchmark."""
    header = ["metric", "borderwatch", "peers", "goal", "met"]
    cells = [_cells(r) for r in rows]
    widths = [max(len(header[i]), *(len(c[i]) for c in cells)) if cells else len(header[i]) for i in range(5)]
    widths = [min(w, 60) for w in widths]
    current = None
    for row, cell in zip(rows, cells, strict=True):
        if row["benchmark"] != current:
            current = row["benchmark"]
            print(f"\n== {current}", file=out)
            print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), file=out)
        print("  " + "  ".join(c[:60].ljust(w) for c, w in zip(cell, widths, strict=True)), file=out)
        if row["note"]:
            print("      " + row["note"], file=out)


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown table (for bench/README.md), the benchmark named once per block."""
    lines = ["| benchmark | metric | borderwatch | peers | goal | met |", "|---|---|---|---|---|---|"]
    current = None
    for row in results["rows"]:
        cells = _cells(row)
        name = row["benchmark"] if row["benchmark"] != current else ""
        current = row["benchmark"]
        lines.append(f"| {name} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _profile(plan: Plan, details: dict[str, Any], log: Any) -> None:
    """pyinstrument over the slowest stages: ingest at the largest size, and a poll cycle (one thread)."""
    import importlib.util

    from bench.stores import build_store, copy_store

    if importlib.util.find_spec("pyinstrument") is None:
        log("pyinstrument is not installed (pip install -e '.[bench]'): no profiles")
        return
    largest = max(plan.sizes)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        out = Path(tmp) / "ingest.json"
        db = copy_store(build_store(largest, log), Path(tmp) / "store.db")
        args = [sys.executable, "-m", "bench.ingest", "--db", str(db), "--size", str(largest), "--count",
                str(plan.profile_articles), "--profile", str(out)]  # fmt: skip
        result = run_child(args, env=child_env())
        if out.exists():
            details.setdefault("profile", {})["ingest"] = json.loads(out.read_text())
        else:
            details.setdefault("profile", {})["ingest_error"] = result.stderr[-2000:]
    if plan.profile_feeds:
        from bench.feedserver import NOW
        from bench.measure import server_process
        from bench.polling import _config

        with server_process("bench.feedserver", "--feeds", str(plan.profile_feeds)) as port, \
                tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:  # fmt: skip
            config, out = Path(tmp) / "p.yaml", Path(tmp) / "poll.json"
            _config(port, plan.profile_feeds, config)
            args = [sys.executable, "-m", "bench.pollchild", "ours", "--config", str(config), "--db",
                    str(Path(tmp) / "p.db"), "--now", NOW.isoformat(), "--profile", str(out)]  # fmt: skip
            result = run_child(args, env=child_env())
            if out.exists():
                details["profile"]["poll"] = json.loads(out.read_text())
            else:
                details["profile"]["poll_error"] = result.stderr[-2000:]


def _print_profile(details: dict[str, Any]) -> None:
    for name, data in details.get("profile", {}).items():
        if not isinstance(data, dict):
            print(f"\n== profile {name}: failed\n{data}")
            continue
        print(f"\n== profile: {name} (pyinstrument, {data['total_s']:.1f} s sampled)")
        for stage, figure in data.get("stages", {}).items():
            print(f"  {stage:<34} {figure['seconds']:7.2f} s  {figure['percent']:5.1f}%")
        print("  top functions by own time:")
        for item in data["top_self"][:10]:
            print(f"    {item['percent']:5.1f}%  {item['seconds']:6.2f} s  {item['function']}")


def main() -> None:
    """Parse the options, run what was asked, print and save the results."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each (about a minute)")
    parser.add_argument(
        "--huge", action="store_true", help="also ingest into 1M stored articles (builds it once)"
    )
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--feeds", type=int, help="feeds in the polling benchmark (peers poll as many)")
    parser.add_argument("--runs", type=int, help="runs of the polling and ingest benchmarks")
    parser.add_argument("--report", action="store_true", help="print the last results.json as Markdown")
    args = parser.parse_args()
    if args.report:
        print(markdown(json.loads(RESULTS.read_text())))
        return
    plan = QUICK if args.quick else FULL
    if args.feeds or args.runs or args.huge:
        plan = replace(plan, feeds=args.feeds or plan.feeds, peer_feeds=args.feeds or plan.peer_feeds,
                       poll_runs=args.runs or plan.poll_runs, peer_runs=args.runs or plan.peer_runs,
                       ingest_runs=args.runs or plan.ingest_runs,
                       sizes=plan.sizes + ((1_000_000,) if args.huge else ()))  # fmt: skip
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    details: dict[str, Any] = {"plan": asdict(plan), "machine": machine()}
    rows: list[Row] = []
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f}s] {message}", file=sys.stderr, flush=True)

    log(f"machine: {details['machine']['cores']} cores, {details['machine']['cpu']}, Python "
        f"{details['machine']['python']}, load {details['machine']['load_at_start']}")  # fmt: skip
    if "polling" in chosen:
        from bench import polling

        log(f"1 polling: ours on {plan.feeds} feeds x {plan.poll_runs} runs, peers on {plan.peer_feeds} feeds x "
            f"{plan.peer_runs} runs; 2 cycles each")  # fmt: skip
        rows += polling.run(plan.feeds, plan.poll_runs, details, plan.peer_feeds, plan.peer_runs)
    if "ingest" in chosen:
        from bench import ingest

        log(f"2 ingest: {plan.ingest_count} articles x {plan.ingest_runs} runs into {list(plan.sizes)}")
        rows += ingest.run(list(plan.sizes), plan.ingest_count, plan.ingest_runs, details, log)
    if "neardup" in chosen:
        from bench import neardup

        log(f"3 near-duplicates: {plan.distinct} distinct articles + {plan.copies} copies per edit level")
        rows += neardup.run(plan.distinct, plan.copies, details)
    if "queries" in chosen:
        from bench import queries
        from bench.stores import build_store

        largest = max(s for s in plan.sizes)
        log(f"4 queries on the {largest:,}-article store")
        rows += queries.run(build_store(largest, log), plan.query_repeat, details)
    if "alerts" in chosen:
        from bench import alertlat

        log(f"5 alert latency: {plan.alert_runs} runs")
        rows += alertlat.run(plan.alert_runs, details)
    if "profile" in chosen:
        log("profiling ingest and a poll cycle (pyinstrument)")
        _profile(plan, details, log)
    details["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    details["seconds"] = round(time.perf_counter() - started, 1)
    results = {"rows": [r.as_dict() for r in rows], **details}
    RESULTS.write_text(json.dumps(results, indent=1, default=str))
    m = details["machine"]
    print(f"\nborderwatch benchmarks: {m['cores']} cores, {m['cpu']}, {m['memory_gb']} GB, Python {m['python']}, "
          f"SQLite {m['sqlite']}; load {m['load_at_start']} -> {m['load_at_end']}; {details['seconds']:.0f} s")  # fmt: skip
    print_table(results["rows"])
    _print_profile(details)
    print(f"\nwritten: {RESULTS}")


if __name__ == "__main__":
    main()
