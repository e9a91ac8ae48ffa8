"""The long-running watcher: IMAP IDLE push, polling as a safety net, notifications, reminders.

Threads, each with its own SQLite connection (WAL; writes serialize in SQLite itself):

* one IDLE worker per (account, folder) when the server advertises IDLE (RFC 2177; see
  watcher.daemon.idle): it keeps one connection in IDLE on the folder and, when the server
  reports new mail, runs :func:`watcher.daemon.runner.poll_account` for that folder on a
  second, short-lived connection.
* the scheduled jobs (watcher.daemon.jobs, APScheduler 3): every account and local source
  polled every ``poll_interval`` (the safety net, and the only way for servers without IDLE
  or with ``idle: false``), and the deadline reminders.
* the outputs (watcher.daemon.outputs): the sender drains the notification outbox after each
  commit; Home Assistant over MQTT and the Prometheus endpoint when configured.

This module holds what those threads share (the :class:`Daemon`: the poll every thread
runs, login failures, which heartbeat an IDLE worker owns) and supervises them: start,
SIGTERM/SIGINT, stop. Polls of one account are serialized by a per-account lock, so two
folders holding the same mail never record it twice. Each worker writes a heartbeat row
(watcher.daemon.health). On SIGTERM/SIGINT the message in hand is committed, connections
log out, and the process exits 0 within SHUTDOWN_SECONDS.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from watcher.clock import utc_now
from watcher.config import Account, Config
from watcher.daemon import systemd
from watcher.daemon.idle import FolderWorker, StopEvent, Stopping
from watcher.daemon.ingest import RunReport, settings_of
from watcher.daemon.jobs import Jobs
from watcher.daemon.outputs import Outputs
from watcher.daemon.runner import poll_account
from watcher.notify.plan import login_failed_items, notify_settings
from watcher.pipeline.process import Outcome
from watcher.pipeline.rules import RulePack
from watcher.pipeline.status import Transition
from watcher.store.store import Store

log = logging.getLogger(__name__)

# run_forever returns within this many seconds of SIGTERM, whatever the network does.
SHUTDOWN_SECONDS = 4.0


class Daemon:
    """Everything one ``meta-watcher run`` process shares between its threads: *config*,
    the rules *pack*, the *database* path, the stop flag, the scheduled jobs (``jobs``) and
    the outputs (``out``)."""

    def __init__(self, config: Config, pack: RulePack, database: Path) -> None:
        self.config = config
        self.pack = pack
        self.database = database
        self.settings = settings_of(config)
        self.notify = notify_settings(config)
        self.stop = StopEvent()
        self._lock = threading.Lock()
        self._account_locks = {a.name: threading.Lock() for a in config.accounts}
        self._idle_workers: set[str] = set()
        # The IDLE worker of each (account, folder), by heartbeat name (worker_name).
        self._workers: dict[str, FolderWorker] = {}
        self._login_failed: set[str] = set()
        self._reminders_dirty = threading.Event()
        self.out = Outputs(config, self.open_store, self.stop)
        self.jobs = Jobs(self)
        self.poll_stale_seconds = (
            2 * config.poll_interval
            + 60
            + max((a.timeout_seconds * 4 for a in config.accounts), default=0.0)
        )
        self.idle_stale_seconds = 3 * config.heartbeat_interval + 30

    # -------------------------------------------------------------- shared by the threads

    def open_store(self) -> Store:
        """A new connection to the database for the calling thread."""
        return Store.open(self.database, store_codes=self.config.store_codes)

    def on_recorded(self, outcome: Outcome, transitions: list[Transition]) -> None:
        """After each committed message: wake the outputs, note that reminders may have
        changed; stop early when asked to."""
        if transitions:
            self._reminders_dirty.set()
        self.out.recorded(outcome, transitions)
        if self.stop.is_set():
            raise Stopping

    def poll(self, store: Store, account: Account, folders: Sequence[str]) -> RunReport:
        """Process new mail in *folders* of *account* (one connection, runner.poll_account),
        serialized with every other poll of the account. Raises WatcherError or Stopping."""
        report = RunReport()
        with self._account_locks[account.name]:
            if self.stop.is_set():
                raise Stopping
            one = account.model_copy(update={"folders": tuple(folders)})
            poll_account(
                one, store, self.pack, self.settings, report, self.on_recorded, notify=self.notify
            )
        if report.recorded:
            log.info(
                "account %s folder %s: %d recorded, %d status change(s)",
                account.name,
                ",".join(folders),
                report.recorded,
                report.transitions,
            )
        self.login_ok(account)
        if self.out.metrics is not None:
            for folder in folders:
                self.out.metrics.polled(account.name, folder)
        self.reminders_if_changed(store)
        return report

    def reminders_if_changed(self, store: Store) -> None:
        """Recompute the deadline reminders when a status changed since the last time."""
        if self._reminders_dirty.is_set():
            self._reminders_dirty.clear()
            self.jobs.check_reminders(store)

    def login_failed(self, store: Store, account: Account, sentence: str) -> None:
        """Note that *account* cannot log in; notify once per failure episode (also across
        restarts: the heartbeat rows remember it)."""
        with self._lock:
            known = account.name in self._login_failed
            self._login_failed.add(account.name)
        if self.out.metrics is not None:
            self.out.metrics.login_failures.labels(account.name).inc()
        log.error("%s; retrying in %ds", sentence, round(self.config.login_retry))
        if known:
            return  # already notified
        items = login_failed_items(account.name, sentence, utc_now(), self.notify)
        if items and store.add_notifications(items):
            self.out.outbox_ready.set()

    def login_ok(self, account: Account) -> None:
        """Forget a login failure of *account* (the next one notifies again)."""
        with self._lock:
            self._login_failed.discard(account.name)

    def idle_reconnecting(self, account: Account, folder: str) -> None:
        """An IDLE session of (account, folder) ended and is reconnecting (metrics)."""
        if self.out.metrics is not None:
            self.out.metrics.idle_reconnects.labels(account.name, folder).inc()

    def is_idle(self, name: str) -> bool:
        """True while an IDLE worker owns the heartbeat *name*."""
        with self._lock:
            return name in self._idle_workers

    def set_idle(self, name: str, idle: bool) -> None:
        """Mark the heartbeat *name* as owned by its IDLE worker (or by the polls)."""
        with self._lock:
            (self._idle_workers.add if idle else self._idle_workers.discard)(name)

    def worker(self, name: str) -> FolderWorker | None:
        """The IDLE worker of the heartbeat *name* (account/folder), if one was started."""
        return self._workers.get(name)

    # -------------------------------------------------------------- supervision

    def run(self, main_store: Store) -> None:
        """Start every thread and job, wait for SIGTERM/SIGINT, stop within SHUTDOWN_SECONDS.
        Raises ConfigError when an output cannot start (metrics address, MQTT settings)."""
        config = self.config
        for name, beat in main_store.heartbeats().items():
            owner = name.partition("/")[0]
            if beat.state == "login_failed" and owner in self._account_locks:
                self._login_failed.add(owner)  # already notified before the restart
        self.jobs.prepare(utc_now())
        threads: list[threading.Thread] = []
        for account in config.accounts:
            if config.idle and account.idle:
                for folder in account.folders:
                    worker = FolderWorker(self, account, folder)
                    self._workers[worker.key] = worker
                    threads.append(worker)
        threads += self.out.start(self.database)

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info(
            "watching %d account(s) and %d local source(s): IDLE %s, polling every %ds, "
            "%d notification target(s)",
            len(config.accounts),
            len(config.local),
            "on" if config.idle else "off",
            int(config.poll_interval),
            len(config.notify),
        )
        self.out.outbox_ready.set()  # deliver what a previous run left pending
        for thread in threads:
            thread.start()
        self.jobs.start()
        systemd.notify(f"READY=1\nSTATUS=watching {len(threads)} worker(s)")
        while not self.stop.wait(3600):
            pass
        systemd.notify("STOPPING=1")
        self._stop_within(threads, main_store, time.monotonic() + SHUTDOWN_SECONDS)

    def _stop_within(
        self, threads: list[threading.Thread], main_store: Store, deadline: float
    ) -> None:
        """Stop the outputs and the schedule, wait for *threads* and running jobs until
        *deadline* (time.monotonic()); when something is still stuck in a network read,
        exit the process at once (everything committed is kept)."""
        self.out.close()
        self.jobs.shutdown()
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        while self.jobs.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck or self.jobs.running():
            log.warning(
                "stopped with work still waiting on the network (%s); everything committed "
                "is kept, the rest is picked up on the next start",
                ", ".join(stuck) or "a poll",
            )
            main_store.close()
            logging.shutdown()
            os._exit(0)  # a socket stuck in a read must not hold up docker stop
        log.info("stopped")


def run_forever(config: Config, store: Store, pack: RulePack) -> None:
    """Watch until SIGTERM/SIGINT: IDLE where possible, polls every ``poll_interval``,
    notifications and reminders. *store* holds the run lock; returns after a clean stop.

    Raises ConfigError when a notification target's URL is not understood.
    """
    Daemon(config, pack, store.path).run(store)
