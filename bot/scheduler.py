"""The scheduler: one APScheduler interval job per feed, plus the alert delivery job, run until a stop signal.

Nothing else: `bot.app.run_forever` says what the jobs do and what stopping means.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.config import Config

#: The signals that stop `run`: SIGTERM (docker stop, systemd) and SIGINT (Ctrl-C).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def build_scheduler(
    cfg: Config,
    poll: Callable[[int], None],
    deliver: Callable[[], Any],
    deliver_every: float = 15.0,
    workers: int = 4,
) -> BackgroundScheduler:
    """A UTC scheduler: each feed its own interval job (jittered, never overlapping, misfires coalesced).

    It runs in a thread of its own, so the main thread is free to wait for a stop signal
    (`run_until_stopped`) and then for the running jobs to end.
    """
    scheduler = BackgroundScheduler(timezone=UTC, executors={"default": ThreadPoolExecutor(workers)})
    start = datetime.now(UTC) + timedelta(seconds=1)
    for index, feed in enumerate(cfg.feeds):
        if not feed.enabled:
            continue
        scheduler.add_job(
            poll,
            "interval",
            args=[index],
            seconds=feed.interval,
            jitter=max(1, int(feed.interval * 0.1)),
            next_run_time=start,
            id=f"feed-{index}",
            name=f"poll {feed.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(feed.interval),
        )
    scheduler.add_job(
        deliver,
        "interval",
        seconds=deliver_every,
        id="deliver",
        name="deliver alerts",
        max_instances=1,
        coalesce=True,
    )
    return scheduler


def run_until_stopped(
    scheduler: BackgroundScheduler, stop: Callable[[str], None], finish: Callable[[], None]
) -> None:
    """Run the scheduler until SIGTERM or SIGINT; then call `stop(signal name)` (running jobs see it and
    wind down), wait until every running job has ended, and call `finish()`.

    Issue 11: the caller closes the HTTP clients and the store only after this returns, never under a
    running poll. Further stop signals are absorbed until then.
    """
    with _stop_signals() as wait_for_signal:
        scheduler.start()
        signum = wait_for_signal()
        stop(signal.Signals(signum).name)
        scheduler.shutdown(wait=True)
        finish()


@contextmanager
def _stop_signals() -> Iterator[Callable[[], int]]:
    """While the block runs, SIGTERM and SIGINT only wake the `wait()` it yields, which returns the signal.

    A self-pipe: the C-level handler writes the signal's number to it (`signal.set_wakeup_fd`) from
    whichever thread the signal lands on, and the Python handler does nothing, so no lock is ever taken
    in a handler and a second signal during shutdown is absorbed instead of raising KeyboardInterrupt.
    """
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = {signum: signal.signal(signum, _absorb) for signum in STOP_SIGNALS}
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def wait() -> int:
        while True:
            byte = os.read(read_end, 1)  # a signal meanwhile only runs `_absorb`; the read goes on
            if byte and byte[0] in STOP_SIGNALS:
                return byte[0]

    try:
        yield wait
    finally:
        signal.set_wakeup_fd(previous_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(read_end)
        os.close(write_end)


def _absorb(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler of a stop signal: nothing (the wakeup byte has already been written)."""
