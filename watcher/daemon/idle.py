"""One IDLE worker per (account, folder): a connection kept in IMAP IDLE (RFC 2177) that
polls its folder when the server reports new mail, and reconnects forever until stopped.

IDLE is re-issued every ``idle_renew`` (RFC 2177 says within 29 minutes; some providers drop
sessions after 10); after ``idle_silence`` without a word from the server, or an early wake-up
with nothing to read, DONE + NOOP proves the connection. Every read has the account's socket
timeout, TCP keepalive is on, and the silence clock counts suspended time, so a dropped
session, a forgetful home router or a laptop that slept all end in a reconnect that is
logged. Reconnects back off exponentially with jitter up to ``reconnect_max``; a rejected
login waits ``login_retry`` and notifies once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from typing import Protocol

from watcher.backoff import Backoff
from watcher.clock import boot_clock
from watcher.config import Account, Config
from watcher.daemon.health import worker_name
from watcher.daemon.ingest import RunReport
from watcher.errors import ConfigError, FolderError, LoginError, ServerError, WatcherError
from watcher.sources import imap
from watcher.store.store import Store

log = logging.getLogger(__name__)

# Reconnect backoff starts here and doubles up to Config.reconnect_max.
RECONNECT_INITIAL_SECONDS = 1.0
# An IDLE worker sleeps at most this long between looks at its clocks (heartbeat, silence,
# renewal); a stop request wakes it at once through StopEvent's pipe.
IDLE_WAIT_MAX_SECONDS = 60.0
# Logging out on the way down may take this long per connection.
SHUTDOWN_SOCKET_SECONDS = 1.5
# Mail a safety poll found counts as unannounced by IDLE only when IDLE said nothing from
# this long before that poll started until this long after it ended: a prompt server's EXISTS
# for mail that arrived just before the poll may cross it on the wire.
UNANNOUNCED_GRACE_SECONDS = 2.0


class Stopping(Exception):
    """Raised after a commit when the daemon is asked to stop, to end a long poll early."""


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


class IdleHost(Protocol):
    """What an IDLE worker needs of the daemon (watcher.daemon.daemon.Daemon)."""

    config: Config
    stop: StopEvent
    idle_stale_seconds: float
    poll_stale_seconds: float

    def open_store(self) -> Store:
        """A database connection for the worker's thread."""
        ...

    def poll(self, store: Store, account: Account, folders: Sequence[str]) -> RunReport:
        """Process new mail in *folders* of *account* (raises WatcherError or Stopping)."""
        ...

    def login_failed(self, store: Store, account: Account, sentence: str) -> None:
        """Note (and notify once) that *account* cannot log in."""
        ...

    def is_idle(self, name: str) -> bool:
        """True while an IDLE worker owns the heartbeat *name*."""
        ...

    def set_idle(self, name: str, idle: bool) -> None:
        """Mark the heartbeat *name* as owned by its IDLE worker (or by the polls)."""
        ...

    def idle_reconnecting(self, account: Account, folder: str) -> None:
        """An IDLE session of (account, folder) ended and is reconnecting (metrics)."""
        ...


class FolderWorker(threading.Thread):
    """One IDLE connection to (account, folder), reconnecting forever until stopped."""

    def __init__(self, daemon: IdleHost, account: Account, folder: str) -> None:
        super().__init__(name=f"idle:{account.name}/{folder}", daemon=True)
        self.d = daemon
        self.account = account
        self.folder = folder
        self.key = worker_name(account, folder)
        self.where = f"account {account.name} folder {folder}"
        self.state = "connecting"
        # How often IDLE is re-issued; shortened once the server is seen to push late.
        self.renew = daemon.config.idle_renew
        self._backoff: Backoff | None = None
        # boot_clock() times: since when this session has been in IDLE after its catch-up
        # poll (None between sessions), when IDLE (or DONE, NOOP) last announced new mail,
        # and the (start, end) of a safety poll that found mail here, to be judged.
        self._idling_since: float | None = None
        self._announced_at = float("-inf")
        self._found_by_poll: tuple[float, float] | None = None
        self._found_lock = threading.Lock()

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
                self.d.idle_reconnecting(self.account, self.folder)
            except imap.CONNECTION_ERRORS as exc:
                delay = backoff.next()
                sentence = (
                    f"{self.where}: connection to {self.account.host} lost ({type(exc).__name__})"
                )
                log.warning("%s; reconnecting in %.1fs", sentence, delay)
                self.beat(store, "reconnecting", sentence)
                self.d.idle_reconnecting(self.account, self.folder)
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
                self.d.idle_reconnecting(self.account, self.folder)
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
            # The backoff is reset once the server has accepted IDLE (in _idle_round), not
            # here: a server that answers IDLE with a bare BAD would otherwise be reconnected
            # to (and polled) about once a second forever.
            self._backoff = backoff
            self._idling_since = boot_clock()
            self.beat(store, "ok", "idling")
            log.info("%s: idling (renewed every %ds)", self.where, round(self.renew))
            while not self.d.stop.is_set():
                probe = self._idle_round(client, store)
                if probe and not self.d.stop.is_set() and imap.noop(client):
                    self._announced(boot_clock())
                    self.pushed_late("in its answer to NOOP")
                    self.d.poll(store, account, [self.folder])
            return "stopped"
        finally:
            self._idling_since = None
            if self.d.stop.is_set():
                with contextlib.suppress(OSError):
                    imap.set_timeout(client, SHUTDOWN_SOCKET_SECONDS)
            imap.logout(client)

    def _idle_round(self, client: imap.Client, store: Store) -> bool:
        """One IDLE command, until renewal, silence, a stop request or a lost connection.
        Returns True when the connection should be probed with NOOP."""
        config = self.d.config
        pending = imap.idle_start(client)
        if self._backoff is not None:
            self._backoff.reset()  # the session works: IDLE was accepted
        if pending:
            self._announced(boot_clock())
            self.d.poll(store, self.account, [self.folder])
        started = last_heard = last_beat = boot_clock()
        probe = False
        while not self.d.stop.is_set():
            # Sleep until the next clock is due (or the server speaks, or a stop request).
            due = min(
                last_beat + config.heartbeat_interval,
                last_heard + config.idle_silence,
                started + self.renew,
            )
            wait = min(max(due - boot_clock(), 0.05), IDLE_WAIT_MAX_SECONDS)
            news = imap.idle_wait(client, wait, self.d.stop.fileno())
            now = boot_clock()
            if news.closed:
                raise ServerError(f"{self.where}: {self.account.host} ended the session (BYE)")
            if news.heard:
                last_heard = now
            if news.new_mail:
                self._announced(now)
                self.d.poll(store, self.account, [self.folder])
            else:
                self._judge_poll_finding(now)
            if now - last_beat >= config.heartbeat_interval:
                self.beat(store, "ok", "idling")
                last_beat = now
            if news.suspect or now - last_heard >= config.idle_silence:
                log.debug(
                    "%s: server silent for %.0fs; probing with NOOP", self.where, now - last_heard
                )
                probe = True
                break
            if now - started >= self.renew:
                log.debug("%s: renewing IDLE", self.where)
                break
        if self.d.stop.is_set():
            imap.set_timeout(client, SHUTDOWN_SOCKET_SECONDS)
            imap.idle_done(client)
        elif imap.idle_done(client):
            # Mail that arrived while leaving IDLE is reported in DONE's answer, never again.
            self._announced(boot_clock())
            self.pushed_late("only when IDLE ended")
            self.d.poll(store, self.account, [self.folder])
        return probe

    def found_by_poll(self, started: float, ended: float) -> None:
        """A safety poll of this folder on another connection, from *started* to *ended*
        (boot_clock() seconds), found new mail. Called from the poll's thread. When this
        worker was in IDLE all along, IDLE did not announce that mail in time: judged once
        UNANNOUNCED_GRACE_SECONDS have passed (:meth:`_judge_poll_finding`)."""
        idling_since = self._idling_since
        if idling_since is None or idling_since > started:
            return  # not in IDLE when the poll began: the catch-up poll's job, not IDLE's
        with self._found_lock:
            self._found_by_poll = (started, ended)

    def _announced(self, now: float) -> None:
        """The server announced new mail at *now* (IDLE, DONE or NOOP): a safety poll's
        finding due before is judged first, by what was announced until then."""
        self._judge_poll_finding(now)
        self._announced_at = now

    def _judge_poll_finding(self, now: float) -> None:
        """Once the grace after a safety poll that found mail is over: when IDLE announced
        nothing from UNANNOUNCED_GRACE_SECONDS before that poll until that long after it
        (this runs before an announcement at *now* is noted), the server pushes late and the
        poll got there first (Courier reports only every IMAP_IDLE_TIMEOUT, Mailutils only on
        DONE): :meth:`pushed_late`."""
        with self._found_lock:
            found = self._found_by_poll
            if found is None or now < found[1] + UNANNOUNCED_GRACE_SECONDS:
                return
            self._found_by_poll = None
        if self._announced_at < found[0] - UNANNOUNCED_GRACE_SECONDS:
            self.pushed_late("only to a poll on another connection")

    def pushed_late(self, how: str) -> None:
        """The server reported new mail *how* ("only when IDLE ended"), not during IDLE: GNU
        Mailutils imap4d reports only on DONE or NOOP, Courier only every IMAP_IDLE_TIMEOUT
        (60 s). From now on this folder's IDLE is renewed every ``idle_renew_late``, so such
        mail is seen within that long instead of at the silence probe; said once in the log."""
        shorter = min(self.d.config.idle_renew_late, self.d.config.idle_renew)
        if self.renew <= shorter:
            return
        self.renew = shorter
        log.info(
            "%s: %s reported new mail %s, not during IDLE; renewing IDLE every %ss from now on "
            "so new mail is noticed sooner",
            self.where,
            self.account.host,
            how,
            f"{shorter:g}",
        )
