"""One pass over every configured source: new mail of each IMAP account and local source
through ingest.py (pipeline -> store, with notifications), then deadline reminders and one
attempt to deliver what is pending (``run --once``). A failing account or local source is
logged in one sentence and the others go on. The daemon (daemon.py) runs the same polls on
its schedule and from its IDLE workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from watcher.clock import utc_now
from watcher.config import Account, Config, LocalSource
from watcher.daemon.ingest import OnRecorded, RunReport, poll_source, settings_of
from watcher.errors import ServerError, WatcherError
from watcher.notify.apprise import Sender
from watcher.notify.plan import (
    NotifySettings,
    due_reminders,
    next_reminder_at,
    notify_settings,
    plan_reminders,
    reminder_items,
)
from watcher.pipeline.message import parse
from watcher.pipeline.process import Settings
from watcher.pipeline.rules import RulePack, claims_meta
from watcher.sources import imap
from watcher.sources.mailfiles import LocalMailbox
from watcher.store.store import Store

log = logging.getLogger(__name__)


def may_be_meta(pack: RulePack) -> Callable[[bytes], bool]:
    """A test on a message's raw ``From:`` field: False only when the mail cannot claim to be
    Meta (:func:`watcher.pipeline.rules.claims_meta`), so classification would call it
    ``other`` and it would not be recorded. Such mail, picked by the server's substring
    search, is skipped before its body is fetched."""

    def test(from_field: bytes) -> bool:
        header = parse(from_field)
        return header.error is not None or claims_meta(header, pack)

    return test


def search_plan(pack: RulePack) -> imap.SearchPlan:
    """The server-side search for *pack* (:func:`watcher.sources.imap.search_plan`); the
    header-fetch fallback decodes From and Subject with the parser classification uses."""
    return imap.search_plan(pack, _from_and_subject)


def _from_and_subject(header: bytes) -> tuple[str, str]:
    parsed = parse(header)
    return f"{parsed.from_name} <{parsed.from_addr}>", parsed.subject


def poll_account(
    account: Account,
    store: Store,
    pack: RulePack,
    settings: Settings,
    report: RunReport,
    on_recorded: OnRecorded | None = None,
    client: imap.Client | None = None,
    notify: NotifySettings | None = None,
) -> None:
    """Process new mail in every folder of *account*; raises WatcherError for the account.

    Each folder is first asked for its UIDVALIDITY and UIDNEXT with STATUS: when both match
    the cursor nothing is new and the folder is not opened. With *client* (an IMAPClient
    from :func:`watcher.sources.imap.connect`) the poll reuses that connection, leaves every
    folder unselected and does not log out, so a poll that finds nothing costs one round trip
    per folder; without it the poll connects and logs out.
    """
    source = imap.ImapAccount(
        account, search_plan(pack), may_be_meta(pack), settings.max_message_bytes, client
    )
    try:
        with source:
            poll_source(source, store, pack, settings, report, on_recorded, notify)
    except imap.CONNECTION_ERRORS as exc:
        # A bound the server went over (sources/imap/guard.py) is said in words.
        why = imap.guard_reason(exc) or type(exc).__name__
        raise ServerError(
            f"account {account.name}: connection to {account.host} failed during the poll "
            f"({why}); what was recorded stays recorded"
        ) from None


def poll_local(
    source: LocalSource,
    store: Store,
    pack: RulePack,
    settings: Settings,
    report: RunReport,
    on_recorded: OnRecorded | None = None,
    notify: NotifySettings | None = None,
) -> None:
    """Process every message of a local Maildir/mbox/.eml source not recorded yet."""
    with LocalMailbox(source.name, source.path) as mailbox:
        poll_source(mailbox, store, pack, settings, report, on_recorded, notify)


def run_once(
    config: Config,
    store: Store,
    pack: RulePack,
    on_recorded: OnRecorded | None = None,
    notify: NotifySettings | None = None,
) -> RunReport:
    """Poll every account and local source once. A source that fails adds one sentence to
    ``errors`` and is logged; the others still run."""
    report = RunReport()
    settings = settings_of(config)
    for account in config.accounts:
        try:
            poll_account(account, store, pack, settings, report, on_recorded, notify=notify)
        except WatcherError as exc:
            report.fail(exc)
    for source in config.local:
        try:
            poll_local(source, store, pack, settings, report, on_recorded, notify)
        except WatcherError as exc:
            report.fail(exc)
    return report


def queue_reminders(
    store: Store, notify: NotifySettings, now: datetime
) -> tuple[int, datetime | None]:
    """Write the deadline reminders due at *now* to the outbox (each once; reminder days are
    counted in local time). Returns how many were added and when the next one falls due
    (None: none planned)."""
    local_tz = datetime.now().astimezone().tzinfo
    assert local_tz is not None
    reminders = plan_reminders(
        store.counted_mail(), store.current_status(), notify.reminder_days, local_tz
    )
    items = reminder_items(due_reminders(reminders, now), notify)
    added = store.add_notifications(items) if items else 0
    if added:
        log.info("%d deadline reminder(s) due", added)
    return added, next_reminder_at(reminders, now)


def run_once_notifying(config: Config, store: Store, pack: RulePack) -> RunReport:
    """``run --once``: one pass like :func:`run_once`, writing notifications with each
    message, adding due reminders, then one attempt to deliver what is pending (what fails
    waits for the next run). Raises ConfigError first when a notification target's URL is not
    understood."""
    sender = Sender(config.notify) if config.notify else None
    notify = notify_settings(config)
    report = run_once(config, store, pack, notify=notify)
    queue_reminders(store, notify, utc_now())
    if sender is not None:
        sender.drain(store)
    return report
