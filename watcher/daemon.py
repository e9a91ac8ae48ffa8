"""The long-running watcher: IMAP IDLE push, polling as a safety net, notifications, reminders.

Threads, each with its own SQLite connection (WAL; writes serialize in SQLite itself):

* one IDLE worker per (account, folder) when the server advertises IDLE (RFC 2177): it keeps
  one connection in IDLE on the folder (opened with EXAMINE) and, when the server reports new
  mail, runs :func:`watcher.runner.poll_account` for that folder on a second, short-lived
  connection. IDLE is re-issued every ``idle_renew`` (RFC 2177 says within 29 minutes; some
  providers drop sessions after 10); after ``idle_silence`` without a word from the server, or
  an early wake-up with nothing to read, DONE + NOOP proves the connection. Every read has the
  account's socket timeout, TCP keepalive is on, and the silence clock counts suspended time,
  so a dropped session, a forgetful home router or a laptop that slept all end in a reconnect
  that is logged. Reconnects back off exponentially with jitter up to ``reconnect_max``; a
  rejected login waits ``login_retry`` and notifies once.
* APScheduler 3 (BackgroundScheduler) polls every account and local source every
  ``poll_interval`` (the safety net, and the only way for servers without IDLE or with
  ``idle: false``), and fires deadline reminders.
* the sender drains the notification outbox after each commit (see watcher.notify).

Polls of one account are serialized by a per-account lock, so two folders holding the same
mail never record it twice. Each worker writes a heartbeat row; ``meta-watcher health`` reads
them. SIGTERM/SIGINT: the message in hand is committed, connections log out, exit 0 within a
few seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from watcher import systemd
from watcher.backoff import Backoff
from watcher.clock import boot_clock, utc_now
from watcher.config import Account, Config
from watcher.errors import ConfigError, FolderError, LoginError, ServerError, WatcherError
from watcher.notify.apprise import Sender
from watcher.notify.plan import login_failed_items, notify_settings
from watcher.pipeline.process import Outcome, process
from watcher.pipeline.rules import RulePack
from watcher.pipeline.status import Transition
from watcher.runner import (
    RunReport,
    poll_account,
    poll_local,
    queue_reminders,
    search_plan,
    settings_of,
)
from watcher.sources import imap
from watcher.sources.base import RawMessage, SourceKey
from watcher.store.rows import Heartbeat
from watcher.store.store import Store

log = logging.getLogger(__name__)

# Reconnect backoff starts here and doubles up to Config.reconnect_max.
RECONNECT_INITIAL_SECONDS = 1.0
# The IDLE loop wakes at least this often to notice a stop request.
WAKE_SECONDS = 0.5
# An IDLE worker sleeps at most this long between looks at its clocks (heartbeat, silence,
# renewal); a stop request wakes it at once through StopEvent's pipe.
IDLE_WAIT_MAX_SECONDS = 60.0
# Logging out on the way down may take this long per connection.
SHUTDOWN_SOCKET_SECONDS = 1.5
# run_forever returns within this many seconds of SIGTERM, whatever the network does.
SHUTDOWN_SECONDS = 4.0
# Deadline reminders are recomputed at least this often (clock jumps, suspend).
REMINDER_CHECK_SECONDS = 3600.0


class Stopping(Exception):
    """Raised after a commit when the daemon is asked to stop, to end a long poll early."""


def worker_name(account: Account, folder: str) -> str:
    """The heartbeat name of an IMAP folder: ``account/folder``."""
    return f"{account.name}/{folder}"


def worker_names(config: Config) -> list[str]:
    """Every heartbeat the running daemon is expected to keep fresh for *config*."""
    names = [worker_name(a, f) for a in config.accounts for f in a.folders]
    return names + [f"local:{s.name}" for s in config.local]


@dataclass(frozen=True)
class WorkerHealth:
    """One expected worker: healthy or not, and one sentence saying so."""

    worker: str
    ok: bool
    sentence: str


def health_report(config: Config, beats: dict[str, Heartbeat], now: datetime) -> list[WorkerHealth]:
    """Judge every expected worker by its heartbeat: healthy when its state is ``ok`` and it
    reported within its own ``stale_after_seconds``. Pure."""
    out: list[WorkerHealth] = []
    for name in worker_names(config):
        beat = beats.get(name)
        if beat is None:
            out.append(WorkerHealth(name, False, "has never reported (is the daemon running?)"))
            continue
        age = (now - beat.beat_at).total_seconds()
        detail = f" ({beat.detail})" if beat.detail else ""
        if age > beat.stale_after_seconds:
            out.append(
                WorkerHealth(
                    name,
                    False,
                    f"last report {round(age)}s ago, expected every "
                    f"{round(beat.stale_after_seconds)}s: the daemon is stopped or stuck "
                    f"(last state {beat.state}{detail})",
                )
            )
        elif beat.state != "ok":
            out.append(WorkerHealth(name, False, f"{beat.state}{detail}"))
        else:
            out.append(WorkerHealth(name, True, f"ok{detail}, {round(age)}s ago"))
    return out


class StopEvent(threading.Event):
    """The daemon's stop flag, which IDLE waits can also poll like a socket: ``set()`` makes
    :meth:`fileno` readable. Waking twice a second to look at a plain Event cost an idle
    daemon about 2.6 CPU seconds per hour per folder (bench/steady_state.py)."""

    def __init__(self) -> None:
        super().__init__()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        weakref.finalize(self, _close_fds, self._read_fd, self._write_fd)

    def set(self) -> None:
        """Set the flag and wake every waiter polling :meth:`fileno`."""
        super().set()
        with contextlib.suppress(OSError):  # the pipe already holds a byte, or is closed
            os.write(self._write_fd, b"x")

    def fileno(self) -> int:
        """A descriptor that is readable once the flag is set (never drained)."""
        return self._read_fd


def _close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


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
        self.scheduler: Any = None
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
        """After each committed message: wake the sender; stop early when asked to."""
        self.outbox_ready.set()
        if transitions:
            self._reminders_dirty.set()
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

    def jobs_running(self) -> int:
        """How many scheduled jobs (polls, reminders) are running right now."""
        with self._lock:
            return self._jobs_running

    # -------------------------------------------------------------- lifecycle

    def run(self, main_store: Store) -> None:
        """Start every thread and job, wait for SIGTERM/SIGINT, stop within SHUTDOWN_SECONDS."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

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


class FolderWorker(threading.Thread):
    """One IDLE connection to (account, folder), reconnecting forever until stopped."""

    def __init__(self, daemon: Daemon, account: Account, folder: str) -> None:
        super().__init__(name=f"idle:{account.name}/{folder}", daemon=True)
        self.d = daemon
        self.account = account
        self.folder = folder
        self.key = worker_name(account, folder)
        self.where = f"account {account.name} folder {folder}"
        self.state = "connecting"

    def beat(self, store: Store, state: str, detail: str | None = None) -> None:
        """Write this worker's heartbeat (errors logged, never raised)."""
        self.state = state
        try:
            store.beat(self.key, state, detail, self.d.idle_stale_seconds)
        except WatcherError as exc:
            log.error("%s: cannot write heartbeat: %s", self.where, exc)

    def run(self) -> None:
        """Thread body: sessions until stopped; a failure backs off and reconnects."""
        try:
            store = self.d.open_store()
        except WatcherError as exc:
            log.error("%s: %s", self.where, exc)
            return
        try:
            self._loop(store)
        finally:
            # A login failure stays on record, so a restart does not notify it again.
            if self.d.is_idle(self.key) and self.state != "login_failed":
                self.beat(store, "stopped", "the daemon stopped")
            store.close()

    def _loop(self, store: Store) -> None:
        config = self.d.config
        backoff = Backoff(RECONNECT_INITIAL_SECONDS, config.reconnect_max)
        self.d.set_idle(self.key, True)
        self.beat(store, "connecting")
        while not self.d.stop.is_set():
            try:
                if self._session(store, backoff) == "no-idle":
                    return
                continue
            except Stopping:
                return
            except (LoginError, ConfigError) as exc:
                self.d.login_failed(store, self.account, str(exc))
                self.beat(store, "login_failed", str(exc))
                delay = config.login_retry
            except FolderError as exc:
                log.error("%s; retrying in %ds", exc, round(config.login_retry))
                self.beat(store, "error", str(exc))
                delay = config.login_retry
            except WatcherError as exc:
                delay = backoff.next()
                log.warning("%s; reconnecting in %.1fs", exc, delay)
                self.beat(store, "reconnecting", str(exc))
            except imap.CONNECTION_ERRORS as exc:
                delay = backoff.next()
                sentence = (
                    f"{self.where}: connection to {self.account.host} lost ({type(exc).__name__})"
                )
                log.warning("%s; reconnecting in %.1fs", sentence, delay)
                self.beat(store, "reconnecting", sentence)
            except Exception as exc:
                delay = backoff.next()
                log.error(
                    "%s: unexpected %s: %s; reconnecting in %.1fs",
                    self.where,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                log.debug("traceback", exc_info=True)
                self.beat(store, "reconnecting", f"unexpected {type(exc).__name__}")
            self.d.stop.wait(delay)

    def _session(self, store: Store, backoff: Backoff) -> str:
        """Connect, catch up, then IDLE until stopped; returns "no-idle" when the folder is
        left to the polls, raises on any failure."""
        account, config = self.account, self.d.config
        client = imap.connect(account)
        try:
            imap.enable_keepalive(client)
            if not imap.supports_idle(client):
                log.info(
                    "%s: %s does not advertise IDLE; polling every %ds",
                    self.where,
                    account.host,
                    round(config.poll_interval),
                )
                self.d.set_idle(self.key, False)
                self.d.poll(store, account, [self.folder])
                store.beat(self.key, "ok", "polling (no IDLE)", self.d.poll_stale_seconds)
                return "no-idle"
            imap.examine(client, account, self.folder)
            # Mail that arrives from here on is reported on this connection when IDLE starts.
            self.d.poll(store, account, [self.folder])
            backoff.reset()
            self.beat(store, "ok", "idling")
            log.info("%s: idling (renewed every %ds)", self.where, round(config.idle_renew))
            while not self.d.stop.is_set():
                probe = self._idle_round(client, store)
                if probe and not self.d.stop.is_set() and imap.noop(client):
                    self.d.poll(store, account, [self.folder])
            return "stopped"
        finally:
            if self.d.stop.is_set():
                with contextlib.suppress(OSError):
                    imap.set_timeout(client, SHUTDOWN_SOCKET_SECONDS)
            imap.logout(client)

    def _idle_round(self, client: Any, store: Store) -> bool:
        """One IDLE command, until renewal, silence, a stop request or a lost connection.
        Returns True when the connection should be probed with NOOP."""
        config = self.d.config
        if imap.idle_start(client):
            self.d.poll(store, self.account, [self.folder])
        started = last_heard = last_beat = boot_clock()
        probe = False
        while not self.d.stop.is_set():
            # Sleep until the next clock is due (or the server speaks, or a stop request).
            due = min(
                last_beat + config.heartbeat_interval,
                last_heard + config.idle_silence,
                started + config.idle_renew,
            )
            wait = min(max(due - boot_clock(), 0.05), IDLE_WAIT_MAX_SECONDS)
            news = imap.idle_wait(client, wait, self.d.stop.fileno())
            now = boot_clock()
            if news.closed:
                raise ServerError(f"{self.where}: {self.account.host} ended the session (BYE)")
            if news.heard:
                last_heard = now
            if news.new_mail:
                self.d.poll(store, self.account, [self.folder])
            if now - last_beat >= config.heartbeat_interval:
                self.beat(store, "ok", "idling")
                last_beat = now
            if news.suspect or now - last_heard >= config.idle_silence:
                log.debug(
                    "%s: server silent for %.0fs; probing with NOOP", self.where, now - last_heard
                )
                probe = True
                break
            if now - started >= config.idle_renew:
                log.debug("%s: renewing IDLE", self.where)
                break
        if self.d.stop.is_set():
            imap.set_timeout(client, SHUTDOWN_SOCKET_SECONDS)
            imap.idle_done(client)
        elif imap.idle_done(client):
            # Mail that arrived while leaving IDLE is reported in DONE's answer, never again.
            self.d.poll(store, self.account, [self.folder])
        return probe


def run_forever(config: Config, store: Store, pack: RulePack) -> None:
    """Watch until SIGTERM/SIGINT: IDLE where possible, polls every ``poll_interval``,
    notifications and reminders. *store* holds the run lock; returns after a clean stop.

    Raises ConfigError when a notification target's URL is not understood.
    """
    Daemon(config, pack, store.path).run(store)


# ---------------------------------------------------------------------- wait-code


@dataclass(frozen=True)
class FoundCode:
    """A verification code from a mail: for which (platform, account), where, when, and
    whether the mail's authenticity was verified."""

    code: str
    platform: str | None
    account: str | None
    mailbox: str
    arrived_at: datetime | None
    verified: bool


def _mailboxes(config: Config, address: str | None) -> tuple[list[Account], bool]:
    """The accounts to watch for *address*, and whether the address named a mailbox."""
    if not config.accounts:
        raise ConfigError("wait-code needs an IMAP account in the config (accounts: [...])")
    if address is None:
        return list(config.accounts), False
    wanted = address.lower()
    named = [a for a in config.accounts if wanted in (a.name.lower(), a.username.lower())]
    return (named, True) if named else (list(config.accounts), False)


def wait_for_code(
    config: Config,
    pack: RulePack,
    address: str | None,
    timeout_seconds: float,
    since_seconds: float,
) -> FoundCode | None:
    """Wait until a verification code mail for *address* (a Meta account's address, or a
    config account's name or user name; None: any) arrives in a watched folder, or
    *timeout_seconds* pass. Mail that arrived up to *since_seconds* ago counts, so a code
    requested just before counts too (the newest one wins).

    Read-only and independent of the daemon: its own connections, EXAMINE, IDLE (or a poll
    every 2 s), nothing recorded. Mail that fails authenticity is never used. Raises
    ConfigError without accounts, LoginError when every account rejects the login.
    """
    accounts, by_mailbox = _mailboxes(config, address)
    deadline = time.monotonic() + timeout_seconds
    since_at = utc_now() - timedelta(seconds=since_seconds)
    done = threading.Event()
    lock = threading.Lock()
    found: list[FoundCode] = []
    failures: list[WatcherError] = []
    settings = settings_of(config)
    plan = search_plan(pack)

    def matches(outcome: Outcome) -> bool:
        if outcome.match.kind != "verification_code" or outcome.suspicious:
            return False
        if not outcome.fields.get("code"):
            return False
        if address is None or by_mailbox:
            return True
        return (outcome.match.account or "").lower() == address.lower()

    def watch(account: Account, folder: str) -> None:
        backoff = Backoff(RECONNECT_INITIAL_SECONDS, 30.0)
        seen: set[int] = set()
        while not done.is_set() and time.monotonic() < deadline:
            try:
                client = imap.connect(account)
            except (LoginError, ConfigError) as exc:
                with lock:
                    failures.append(exc)
                return
            except WatcherError as exc:
                log.warning("%s; retrying", exc)
                done.wait(min(backoff.next(), max(0.0, deadline - time.monotonic())))
                continue
            try:
                state = imap.examine(client, account, folder)
                start = imap.first_uid_since(client, since_at) or state.uidnext or 1
                use_idle = config.idle and account.idle and imap.supports_idle(client)
                while not done.is_set():
                    uids = [u for u in imap.candidate_uids(client, plan, start) if u not in seen]

                    def key_for(uid: int, uv: int = state.uidvalidity) -> SourceKey:
                        return SourceKey(account.name, account.identity, folder, uv, uid)

                    hits: list[FoundCode] = []
                    for raw in imap.fetch_messages(
                        client, key_for, uids, settings.max_message_bytes
                    ):
                        seen.add(raw.key.uid)
                        hit = _code_of(raw, pack, settings, since_at, matches)
                        if hit is not None:
                            hits.append(hit)
                    if hits:
                        with lock:
                            found.extend(hits)
                        done.set()
                        return
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    if use_idle:
                        imap.idle_start(client)
                        until = time.monotonic() + min(remaining, 300.0)
                        while not done.is_set() and time.monotonic() < until:
                            news = imap.idle_wait(client, WAKE_SECONDS)
                            if news.closed:
                                raise ServerError(f"account {account.name}: session ended")
                            if news.new_mail or news.suspect:
                                break
                        imap.idle_done(client)
                    else:
                        done.wait(min(2.0, remaining))
                        imap.noop(client)
                backoff.reset()
            except WatcherError as exc:
                log.warning("%s; retrying", exc)
            except imap.CONNECTION_ERRORS as exc:
                log.warning(
                    "account %s: connection lost (%s); retrying", account.name, type(exc).__name__
                )
            finally:
                imap.logout(client)
            done.wait(min(backoff.next(), max(0.0, deadline - time.monotonic())))

    threads = [
        threading.Thread(target=watch, args=(a, f), name=f"wait:{a.name}/{f}", daemon=True)
        for a in accounts
        for f in a.folders
    ]
    for thread in threads:
        thread.start()
    while not done.is_set() and time.monotonic() < deadline:
        if all(not t.is_alive() for t in threads):
            break
        done.wait(0.2)
    done.set()
    if found:
        return max(found, key=lambda f: (f.arrived_at is not None, f.arrived_at))
    if failures and len(failures) >= len(threads):
        raise failures[0]
    return None


def _code_of(
    raw: RawMessage,
    pack: RulePack,
    settings: Any,
    since_at: datetime,
    matches: Callable[[Outcome], bool],
) -> FoundCode | None:
    outcome = process(raw, pack, settings)
    arrived = raw.internal_at or outcome.mail_at
    if arrived is not None and arrived < since_at:
        return None
    if not matches(outcome):
        if outcome.suspicious and outcome.match.kind == "verification_code":
            log.warning(
                "ignoring a code in %s: it failed authenticity (%s)",
                raw.key.label(),
                "; ".join(outcome.verdict.reasons),
            )
        return None
    code = outcome.fields.get("code")
    assert code is not None
    return FoundCode(
        code,
        outcome.match.platform,
        outcome.match.account,
        raw.key.label(),
        arrived,
        outcome.verdict.result == "pass",
    )
