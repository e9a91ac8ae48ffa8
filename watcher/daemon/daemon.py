"""The long-running watcher: IMAP IDLE push, polling as a safety net, notifications, reminders.

Threads, each with its own SQLite connection (WAL; writes serialize in SQLite itself):

* one IDLE worker per (account, folder) when the server advertises IDLE (RFC 2177; see
  watcher.daemon.idle): it keeps one connection in IDLE on the folder and, when the server
  reports new mail, runs :func:`watcher.daemon.runner.poll_account` for that folder on a
  second, short-lived connection.
* APScheduler 3 (BackgroundScheduler) polls every account and local source every
  ``poll_interval`` (the safety net, and the only way for servers without IDLE or with
  ``idle: false``), and fires deadline reminders.
* the sender drains the notification outbox after each commit (watcher.notify.apprise).

Polls of one account are serialized by a per-account lock, so two folders holding the same
mail never record it twice. Each worker writes a heartbeat row (watcher.daemon.health).
SIGTERM/SIGINT: the message in hand is committed, connections log out, exit 0 within seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from watcher.clock import utc_now
from watcher.codes import mask_code
from watcher.config import Account, Config
from watcher.daemon import systemd
from watcher.daemon.health import worker_name
from watcher.daemon.idle import FolderWorker, StopEvent, Stopping
from watcher.daemon.ingest import RunReport, settings_of
from watcher.daemon.runner import poll_account, poll_local, queue_reminders
from watcher.errors import ConfigError, FolderError, LoginError, ServerError, WatcherError
from watcher.kinds import CODE_KINDS
from watcher.notify.apprise import Sender
from watcher.notify.mqtt import HomeAssistantPublisher, publish_store, publisher_for
from watcher.notify.plan import login_failed_items, notify_settings
from watcher.pipeline.process import Outcome
from watcher.pipeline.rules import RulePack
from watcher.pipeline.status import Transition
from watcher.sources.credentials import mqtt_password
from watcher.store.store import Store

if TYPE_CHECKING:
    from watcher.daemon.metrics import Metrics

log = logging.getLogger(__name__)

# run_forever returns within this many seconds of SIGTERM, whatever the network does.
SHUTDOWN_SECONDS = 4.0
# Deadline reminders are recomputed at least this often (clock jumps, suspend).
REMINDER_CHECK_SECONDS = 3600.0


class Daemon:
    """Everything one ``meta-watcher run`` process shares between its threads."""

    def __init__(self, config: Config, pack: RulePack, database: Path) -> None:
        self.config = config
        self.pack = pack
        self.database = database
        self.settings = settings_of(config)
        self.notify = notify_settings(config)
        self.stop = StopEvent()
        self.outbox_ready = threading.Event()
        self._lock = threading.Lock()
        self._account_locks = {a.name: threading.Lock() for a in config.accounts}
        self._idle_workers: set[str] = set()
        self._login_failed: set[str] = set()
        self._reminders_dirty = threading.Event()
        self._jobs_running = 0
        self.sender = Sender(config.notify) if config.notify else None
        # Home Assistant over MQTT (watcher.notify.mqtt): started in run(); its own threads
        # publish, so a broker that is down never holds up mail processing.
        self.mqtt: HomeAssistantPublisher | None = None
        self.mqtt_dirty = threading.Event()
        # The Prometheus endpoint (watcher.daemon.metrics), when ``metrics:`` is set.
        self.metrics: Metrics | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.poll_stale_seconds = (
            2 * config.poll_interval
            + 60
            + max((a.timeout_seconds * 4 for a in config.accounts), default=0.0)
        )
        self.idle_stale_seconds = 3 * config.heartbeat_interval + 30

    # -------------------------------------------------------------- shared helpers

    def open_store(self) -> Store:
        """A new connection to the database for the calling thread."""
        return Store.open(self.database, store_codes=self.config.store_codes)

    def on_recorded(self, _outcome: Outcome, transitions: list[Transition]) -> None:
        """After each committed message: wake the sender and the MQTT publisher; stop early
        when asked to."""
        self.outbox_ready.set()
        if self.metrics is not None:
            self.metrics.messages.labels(_outcome.match.kind).inc()
        if transitions:
            self._reminders_dirty.set()
            self.mqtt_dirty.set()
        if self.mqtt is not None:
            self._publish_code(_outcome)
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
        if self.metrics is not None:
            for folder in folders:
                self.metrics.polled(account.name, folder)
        if self._reminders_dirty.is_set():
            self._reminders_dirty.clear()
            self.check_reminders(store)
        return report

    def login_failed(self, store: Store, account: Account, sentence: str) -> None:
        """Note that *account* cannot log in; notify once per failure episode (also across
        restarts: the heartbeat rows remember it)."""
        with self._lock:
            known = account.name in self._login_failed
            self._login_failed.add(account.name)
        if self.metrics is not None:
            self.metrics.login_failures.labels(account.name).inc()
        log.error("%s; retrying in %ds", sentence, round(self.config.login_retry))
        if known:
            return  # already notified
        items = login_failed_items(account.name, sentence, utc_now(), self.notify)
        if items and store.add_notifications(items):
            self.outbox_ready.set()

    def login_ok(self, account: Account) -> None:
        """Forget a login failure of *account* (the next one notifies again)."""
        with self._lock:
            self._login_failed.discard(account.name)

    def idle_reconnecting(self, account: Account, folder: str) -> None:
        """An IDLE session of (account, folder) ended and is reconnecting (metrics)."""
        if self.metrics is not None:
            self.metrics.idle_reconnects.labels(account.name, folder).inc()

    def is_idle(self, name: str) -> bool:
        """True while an IDLE worker owns the heartbeat *name*."""
        with self._lock:
            return name in self._idle_workers

    def set_idle(self, name: str, idle: bool) -> None:
        """Mark the heartbeat *name* as owned by its IDLE worker (or by the polls)."""
        with self._lock:
            (self._idle_workers.add if idle else self._idle_workers.discard)(name)

    # -------------------------------------------------------------- reminders

    def check_reminders(self, store: Store) -> None:
        """Write due deadline reminders to the outbox (each once) and schedule the next."""
        added, upcoming = queue_reminders(store, self.notify, utc_now())
        if added:
            self.outbox_ready.set()
        if upcoming is not None and self.scheduler is not None and not self.stop.is_set():
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
        self._guarded("reminders", lambda store: self.check_reminders(store))

    # -------------------------------------------------------------- scheduled polls

    def _guarded(self, what: str, job: Callable[[Store], None]) -> None:
        if self.stop.is_set():
            return
        try:
            store = self.open_store()
        except WatcherError as exc:
            log.error("%s: %s", what, exc)
            return
        with self._lock:
            self._jobs_running += 1
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
                self._jobs_running -= 1

    def poll_job(self, account: Account) -> None:
        """APScheduler job: poll every folder of *account*; keep the heartbeats of folders
        that no IDLE worker owns."""

        def job(store: Store) -> None:
            names = [worker_name(account, f) for f in account.folders]
            mine = [n for n in names if not self.is_idle(n)]
            try:
                self.poll(store, account, account.folders)
            except (LoginError, ConfigError) as exc:
                self.login_failed(store, account, str(exc))
                for name in mine:
                    store.beat(name, "login_failed", str(exc), self.poll_stale_seconds)
                return
            except (ServerError, FolderError) as exc:
                log.warning("%s; next poll in %ds", exc, round(self.config.poll_interval))
                for name in mine:
                    store.beat(name, "error", str(exc), self.poll_stale_seconds)
                return
            for name in mine:
                store.beat(name, "ok", "polling", self.poll_stale_seconds)

        self._guarded(f"account {account.name}", job)

    def local_job(self) -> None:
        """APScheduler job: process new mail of every local source."""

        def job(store: Store) -> None:
            for source in self.config.local:
                name = f"local:{source.name}"
                report = RunReport()
                try:
                    poll_local(
                        source,
                        store,
                        self.pack,
                        self.settings,
                        report,
                        self.on_recorded,
                        self.notify,
                    )
                except WatcherError as exc:
                    log.error("%s", exc)
                    store.beat(name, "error", str(exc), self.poll_stale_seconds)
                    continue
                if report.recorded:
                    log.info("local source %s: %d recorded", source.name, report.recorded)
                if self.metrics is not None:
                    self.metrics.polled(source.name, "")
                store.beat(name, "ok", "polling", self.poll_stale_seconds)
            if self._reminders_dirty.is_set():
                self._reminders_dirty.clear()
                self.check_reminders(store)

        self._guarded("local sources", job)

    # -------------------------------------------------------------- sender

    def sender_loop(self) -> None:
        """Thread: deliver due notifications whenever a commit added some or a retry is due."""
        assert self.sender is not None
        store = self.open_store()
        try:
            while not self.stop.is_set():
                self.outbox_ready.clear()
                try:
                    self.sender.drain(store, self.stop)
                    upcoming = store.next_notification_at()
                except WatcherError as exc:
                    log.error("notifications: %s", exc)
                    upcoming = None
                wait = 60.0
                if upcoming is not None:
                    wait = min(60.0, max(0.05, (upcoming - utc_now()).total_seconds()))
                self.outbox_ready.wait(wait)
        finally:
            store.close()

    def _publish_code(self, outcome: Outcome) -> None:
        # The latest code of an account for Home Assistant, masked unless notify_codes.
        code = outcome.fields.get("code")
        if self.mqtt is None or not code or outcome.suspicious:
            return
        if outcome.match.kind not in CODE_KINDS:
            return
        shown = code if self.config.notify_codes else (mask_code(code) or code)
        account = outcome.match.account or outcome.key.source
        self.mqtt.publish_code_event(account, shown, outcome.mail_at or utc_now())

    def mqtt_loop(self) -> None:
        """Thread: publish every account's status at start and after each status change
        (and hourly: a new day changes nothing, but a broker without persistence might have
        lost the retained states). The publisher republishes everything on reconnect."""
        assert self.mqtt is not None
        store = self.open_store()
        try:
            while not self.stop.is_set():
                self.mqtt_dirty.clear()
                try:
                    publish_store(self.mqtt, store)
                except WatcherError as exc:
                    log.error("MQTT: %s", exc)
                self.mqtt_dirty.wait(3600)
        finally:
            store.close()

    def jobs_running(self) -> int:
        """How many scheduled jobs (polls, reminders) are running right now."""
        with self._lock:
            return self._jobs_running

    # -------------------------------------------------------------- lifecycle

    def run(self, main_store: Store) -> None:
        """Start every thread and job, wait for SIGTERM/SIGINT, stop within SHUTDOWN_SECONDS."""
        config = self.config
        for name, beat in main_store.heartbeats().items():
            owner = name.partition("/")[0]
            if beat.state == "login_failed" and owner in self._account_locks:
                self._login_failed.add(owner)  # already notified before the restart
        self.scheduler = scheduler = BackgroundScheduler(
            timezone="UTC", executors={"default": ThreadPoolExecutor(4)}
        )
        now = utc_now()
        threads: list[threading.Thread] = []
        for account in config.accounts:
            use_idle = config.idle and account.idle
            if use_idle:
                for folder in account.folders:
                    threads.append(FolderWorker(self, account, folder))
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
        if self.sender is not None:
            threads.append(threading.Thread(target=self.sender_loop, name="sender", daemon=True))
        if config.metrics is not None:
            from watcher.daemon.metrics import Metrics  # prometheus-client only when asked

            self.metrics = Metrics(self.database)
            try:
                self.metrics.serve(config.metrics)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"metrics: cannot listen on {config.metrics}: {exc}") from None
        if config.mqtt is not None:
            try:
                self.mqtt = publisher_for(config.mqtt, mqtt_password(config.mqtt))
            except ValueError as exc:
                raise ConfigError(f"mqtt: {exc}") from None
            threads.append(threading.Thread(target=self.mqtt_loop, name="mqtt", daemon=True))

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
        self.outbox_ready.set()  # deliver what a previous run left pending
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
        for thread in threads:
            thread.start()
        scheduler.start()
        systemd.notify(f"READY=1\nSTATUS=watching {len(threads)} worker(s)")
        while not self.stop.wait(3600):
            pass
        systemd.notify("STOPPING=1")
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        self.outbox_ready.set()
        self.mqtt_dirty.set()
        if self.mqtt is not None:
            self.mqtt.close(timeout=1.0)  # "offline" for Home Assistant
        if self.metrics is not None:
            self.metrics.close()
        scheduler.shutdown(wait=False)
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        while self.jobs_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck or self.jobs_running():
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
