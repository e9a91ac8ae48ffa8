"""The daemon's schedule: APScheduler 3 (a BackgroundScheduler with 4 threads) polls every
account and the local sources every ``poll_interval`` (the safety net under IDLE, and the
only way for servers without IDLE or with ``idle: false``), recomputes deadline reminders
hourly and at the next one due, and pings the systemd watchdog.

Each job opens its own database connection, logs a failure in one sentence and never
raises into the scheduler. A safety poll that finds new mail in a folder kept in IDLE tells
that folder's worker (:meth:`watcher.daemon.idle.FolderWorker.found_by_poll`): the server
may push late.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from watcher.clock import boot_clock, utc_now
from watcher.config import Account
from watcher.daemon import systemd
from watcher.daemon.health import worker_name
from watcher.daemon.idle import Stopping
from watcher.daemon.ingest import RunReport
from watcher.daemon.runner import poll_local, queue_reminders
from watcher.errors import ConfigError, FolderError, LoginError, ServerError, WatcherError
from watcher.sources.base import Cursor
from watcher.store.store import Store

if TYPE_CHECKING:
    from watcher.daemon.daemon import Daemon

log = logging.getLogger(__name__)

# Deadline reminders are recomputed at least this often (clock jumps, suspend).
REMINDER_CHECK_SECONDS = 3600.0
# Scheduled jobs that may run at once (polls of different accounts, reminders, watchdog).
JOB_THREADS = 4


class Jobs:
    """The scheduled work of one daemon (*daemon*: watcher.daemon.daemon.Daemon): the
    scheduler is built with :meth:`prepare` (jobs may be added from then on, e.g. the next
    reminder), runs after :meth:`start` and stops with :meth:`shutdown`; :meth:`running`
    counts the jobs in progress (the daemon waits for them on the way down)."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()
        self._running = 0

    def prepare(self, now: datetime) -> None:
        """Create the scheduler with every job, not started yet. Accounts kept in IDLE are
        first polled one ``poll_interval`` after *now* (their IDLE workers catch up at once);
        the others, the local sources and the reminders at *now*."""
        config = self.d.config
        self.scheduler = scheduler = BackgroundScheduler(
            timezone="UTC", executors={"default": ThreadPoolExecutor(JOB_THREADS)}
        )
        for account in config.accounts:
            use_idle = config.idle and account.idle
            # max_instances=1 + coalesce: a slow poll never overlaps the next one; no
            # misfire limit, so a poll missed during a suspend runs once on wake-up.
            scheduler.add_job(
                self.poll_job,
                "interval",
                args=(account,),
                seconds=config.poll_interval,
                id=f"poll:{account.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=now + timedelta(seconds=config.poll_interval) if use_idle else now,
            )
        if config.local:
            scheduler.add_job(
                self.local_job,
                "interval",
                seconds=config.poll_interval,
                id="local",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=now,
            )
        scheduler.add_job(
            self._reminder_job,
            "interval",
            seconds=REMINDER_CHECK_SECONDS,
            id="reminders",
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=now,
        )
        watchdog = systemd.watchdog_seconds()
        if watchdog is not None:
            # Pinged from the scheduler: if its thread hangs, systemd restarts the service.
            scheduler.add_job(
                lambda: systemd.notify("WATCHDOG=1"),
                "interval",
                seconds=max(watchdog / 2, 0.5),
                id="watchdog",
                coalesce=True,
            )

    def start(self) -> None:
        """Start running the jobs :meth:`prepare` added (in the scheduler's threads)."""
        assert self.scheduler is not None, "prepare() first"
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop scheduling; jobs in progress finish on their own (see :meth:`running`)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def running(self) -> int:
        """How many scheduled jobs (polls, reminders) are running right now."""
        with self._lock:
            return self._running

    # -------------------------------------------------------------- reminders

    def check_reminders(self, store: Store) -> None:
        """Write due deadline reminders to the outbox (each once) and schedule the next."""
        d = self.d
        added, upcoming = queue_reminders(store, d.notify, utc_now())
        if added:
            d.out.outbox_ready.set()
        if upcoming is not None and self.scheduler is not None and not d.stop.is_set():
            self.scheduler.add_job(
                self._reminder_job,
                "date",
                run_date=upcoming,
                id="reminder-next",
                replace_existing=True,
                misfire_grace_time=None,
            )
            log.debug("next deadline reminder at %s", upcoming.isoformat(timespec="minutes"))

    def _reminder_job(self) -> None:
        self._guarded("reminders", self.check_reminders)

    # -------------------------------------------------------------- polls

    def _guarded(self, what: str, job: Callable[[Store], None]) -> None:
        """Run *job* with its own database connection; log what it raises in one sentence."""
        if self.d.stop.is_set():
            return
        try:
            store = self.d.open_store()
        except WatcherError as exc:
            log.error("%s: %s", what, exc)
            return
        with self._lock:
            self._running += 1
        try:
            job(store)
        except Stopping:
            pass
        except WatcherError as exc:
            log.error("%s", exc)
        except Exception as exc:
            log.error("%s failed unexpectedly: %s: %s", what, type(exc).__name__, exc)
            log.debug("traceback", exc_info=True)
        finally:
            store.close()
            with self._lock:
                self._running -= 1

    def poll_job(self, account: Account) -> None:
        """APScheduler job: poll every folder of *account*; keep the heartbeats of folders
        that no IDLE worker owns, and tell the IDLE workers whose folder the poll found new
        mail in (their server did not announce it in time, or not at all)."""
        d = self.d

        def job(store: Store) -> None:
            names = [worker_name(account, f) for f in account.folders]
            mine = [n for n in names if not d.is_idle(n)]
            idling = {
                folder: worker
                for folder, name in zip(account.folders, names, strict=True)
                if (worker := d.worker(name)) is not None and d.is_idle(name)
            }
            before = {f: store.cursor(account.identity, f) for f in idling}
            started = boot_clock()
            try:
                d.poll(store, account, account.folders)
            except (LoginError, ConfigError) as exc:
                d.login_failed(store, account, str(exc))
                for name in mine:
                    store.beat(name, "login_failed", str(exc), d.poll_stale_seconds)
                return
            except (ServerError, FolderError) as exc:
                log.warning("%s; next poll in %ds", exc, round(d.config.poll_interval))
                for name in mine:
                    store.beat(name, "error", str(exc), d.poll_stale_seconds)
                return
            for name in mine:
                store.beat(name, "ok", "polling", d.poll_stale_seconds)
            ended = boot_clock()
            for folder, worker in idling.items():
                if moved(before[folder], store.cursor(account.identity, folder)):
                    # New mail in a folder kept in IDLE, found by this poll first.
                    worker.found_by_poll(started, ended)

        self._guarded(f"account {account.name}", job)

    def local_job(self) -> None:
        """APScheduler job: process new mail of every local source."""
        d = self.d

        def job(store: Store) -> None:
            for source in d.config.local:
                name = f"local:{source.name}"
                report = RunReport()
                try:
                    poll_local(source, store, d.pack, d.settings, report, d.on_recorded, d.notify)
                except WatcherError as exc:
                    log.error("%s", exc)
                    store.beat(name, "error", str(exc), d.poll_stale_seconds)
                    continue
                if report.recorded:
                    log.info("local source %s: %d recorded", source.name, report.recorded)
                if d.out.metrics is not None:
                    d.out.metrics.polled(source.name, "")
                store.beat(name, "ok", "polling", d.poll_stale_seconds)
            d.reminders_if_changed(store)

        self._guarded("local sources", job)


def moved(before: Cursor | None, after: Cursor | None) -> bool:
    """True when a folder's cursor went from *before* to a higher UID of the same UIDVALIDITY,
    or was first set (a poll found new mail there; the folder was empty when its IDLE worker
    caught up). A UIDVALIDITY change is no news."""
    if after is None:
        return False
    if before is None:
        return True
    return after.uidvalidity == before.uidvalidity and after.last_uid > before.last_uid
