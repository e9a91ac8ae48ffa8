"""``meta-watcher wait-code``: wait for Meta's verification code and hand it over.

Read-only and independent of the daemon: its own connections, EXAMINE, IDLE (or a poll every
2 s), nothing recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from watcher.backoff import Backoff
from watcher.clock import utc_now
from watcher.config import Account, Config
from watcher.daemon.idle import RECONNECT_INITIAL_SECONDS
from watcher.daemon.ingest import settings_of
from watcher.daemon.runner import search_plan
from watcher.errors import ConfigError, LoginError, ServerError, WatcherError
from watcher.kinds import CODE_KINDS
from watcher.pipeline.process import Outcome, Settings, process
from watcher.pipeline.rules import RulePack
from watcher.sources import imap
from watcher.sources.base import RawMessage, SourceKey

log = logging.getLogger(__name__)

# An IDLE wait wakes at least this often to notice that another folder found the code.
WAKE_SECONDS = 0.5


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
    in_spam: bool = False
    dated: datetime | None = None  # the mail's own Date header (aware UTC), when it has one


def require_accounts(config: Config) -> None:
    """Raise ConfigError when *config* has no IMAP account: wait-code watches IMAP only."""
    if not config.accounts:
        raise ConfigError("wait-code needs an IMAP account in the config (accounts: [...])")


def _mailboxes(config: Config, address: str | None) -> tuple[list[Account], bool]:
    """The accounts to watch for *address*, and whether the address named a mailbox."""
    require_accounts(config)
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
    watched: list[str] | None = None,
) -> FoundCode | None:
    """Wait until a verification code mail for *address* (a Meta account's address, or a
    config account's name or user name; None: any) arrives in a watched folder, or
    *timeout_seconds* pass. Mail that arrived up to *since_seconds* ago counts, so a code
    requested just before counts too (the newest one wins).

    Read-only and independent of the daemon: its own connections, EXAMINE, IDLE (or a poll
    every 2 s), nothing recorded. Mail that fails authenticity is never used. Raises
    ConfigError without accounts, LoginError when every account rejects the login.

    Besides each account's ``folders``, its spam folders are watched (unless ``junk: false``;
    :func:`_junk_of`); *watched*, when given, receives ``account/folder`` for each folder
    watched, for the message when nothing came.
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
        if outcome.match.kind not in CODE_KINDS or outcome.suspicious:
            return False
        if not outcome.fields.get("code"):
            return False
        if address is None or by_mailbox:
            return True
        return (outcome.match.account or "").lower() == address.lower()

    def watch(account: Account, folder: str, junk: bool) -> None:
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
                        return SourceKey(account.name, account.identity, folder, uv, uid, junk)

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

    pairs = [(a, f, False) for a in accounts for f in a.folders]
    for account in accounts:
        pairs += [(account, f, True) for f in _junk_of(account) if f not in account.folders]
    if watched is not None:
        watched.extend(f"{a.name}/{f}" for a, f, _junk in pairs)
    threads = [
        threading.Thread(target=watch, args=(a, f, j), name=f"wait:{a.name}/{f}", daemon=True)
        for a, f, j in pairs
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


def _junk_of(account: Account) -> list[str]:
    """*account*'s spam folders (:func:`watcher.sources.imap.junk_folders`), on a short
    connection of its own; [] with ``junk: false`` or when the server cannot be asked (the
    folder watchers then report the problem)."""
    if not account.junk:
        return []
    try:
        client = imap.connect(account)
    except WatcherError:
        return []
    try:
        return imap.junk_folders(client)
    except imap.CONNECTION_ERRORS:
        return []
    finally:
        imap.logout(client)


def _code_of(
    raw: RawMessage,
    pack: RulePack,
    settings: Settings,
    since_at: datetime,
    matches: Callable[[Outcome], bool],
) -> FoundCode | None:
    outcome = process(raw, pack, settings)
    arrived = raw.internal_at or outcome.mail_at
    if arrived is not None and arrived < since_at:
        return None
    if not matches(outcome):
        if outcome.suspicious and outcome.match.kind in CODE_KINDS:
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
        raw.key.in_spam,
        outcome.message.date_at,
    )
