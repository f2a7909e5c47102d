"""The scheduler: one APScheduler interval job per feed, plus the alert delivery job. Nothing else."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler

from bot.config import Config


def build_scheduler(
    cfg: Config,
    poll: Callable[[int], None],
    deliver: Callable[[], Any],
    deliver_every: float = 15.0,
    workers: int = 4,
) -> BlockingScheduler:
    """A UTC BlockingScheduler: each feed its own interval job (jittered, never overlapping, misfires coalesced)."""
    scheduler = BlockingScheduler(timezone=UTC, executors={"default": ThreadPoolExecutor(workers)})
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


def stop_on_signals(scheduler: BlockingScheduler) -> None:
    """Shut the scheduler down cleanly on SIGTERM and SIGINT."""

    def _stop(signum: int, frame: Any) -> None:
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
