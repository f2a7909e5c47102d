"""Measuring: child processes (wall time, CPU seconds and peak RSS from `wait4`), loopback servers run
as subprocesses, medians and percentiles, and a description of the machine."""

from __future__ import annotations

import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True, slots=True)
class ChildRun:
    """One child process: its wall time, CPU seconds (user + system), peak RSS and what it printed."""

    wall: float
    cpu: float
    rss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        """The last line of stdout as JSON (children report their in-process figures that way)."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else {}


def run_child(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 900.0, cwd: Path | None = None
) -> ChildRun:
    """Run `args` to completion; CPU and peak RSS come from the kernel's rusage of that one child."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=cwd or ROOT, text=True)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,
            proc.returncode,
            out.read(),
            err.read(),
        )


@contextmanager
def server_process(module: str, *args: str) -> Iterator[int]:
    """Start `python -m module args` (a loopback server that prints `READY <port>`); yield its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=child_env()
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the server renders its content first; an exit gives an empty line
        if not line.startswith("READY"):
            raise RuntimeError(f"{module} did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def child_env(**extra: str) -> dict[str, str]:
    """The environment for children: ours, with the repository importable and no Slack secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def median(values: Sequence[float]) -> float:
    """The median (0 for no values)."""
    return float(statistics.median(values)) if values else 0.0


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile, nearest-rank (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, Python, SQLite and the load when the run started."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gb": round(memory, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }


@dataclass
class Row:
    """One line of the results table: our figure, the peers' figures beside it, the goal and whether it is met."""

    benchmark: str
    metric: str
    unit: str
    ours: float | None
    peers: dict[str, float] = field(default_factory=dict)
    goal: str = ""
    met: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """For results.json."""
        return asdict(self)
