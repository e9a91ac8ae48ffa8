"""Keep polling: APScheduler runs :func:`watcher.runner.run_once` every ``poll_interval``.

SIGTERM and SIGINT stop the scheduler after the pass in hand has committed.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from watcher.config import Config
from watcher.rules import RulePack
from watcher.runner import run_once
from watcher.store import Store, utc_now

log = logging.getLogger(__name__)


def run_forever(config: Config, store: Store, pack: RulePack) -> None:
    """Poll now, then every ``config.poll_interval`` seconds, until SIGTERM/SIGINT."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    stop = threading.Event()
    scheduler = BlockingScheduler(timezone="UTC")

    def poll() -> None:
        if stop.is_set():
            return
        report = run_once(config, store, pack)
        log.info(
            "poll done: %d fetched, %d recorded, %d transitions, %d errors",
            report.fetched,
            report.recorded,
            report.transitions,
            len(report.errors),
        )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # max_instances=1 and coalesce: a slow pass never overlaps the next one.
    scheduler.add_job(
        poll,
        "interval",
        seconds=config.poll_interval,
        max_instances=1,
        coalesce=True,
        next_run_time=utc_now(),
    )
    log.info(
        "watching %d account(s) and %d local source(s), polling every %ds",
        len(config.accounts),
        len(config.local),
        int(config.poll_interval),
    )
    scheduler.start()
