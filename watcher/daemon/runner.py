"""One pass over every configured source: fetch new mail, process it, record it.

This is where the flow is wired together: source (watcher.sources) -> process (pipeline) ->
store. Each message is recorded with its cursor move in one transaction; a failing account or
local source is logged in one sentence and the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from watcher.clock import utc_now
from watcher.codes import mask_code
from watcher.config import Account, Config, LocalSource
from watcher.crashpoint import crash_point
from watcher.errors import ServerError, WatcherError
from watcher.notify.apprise import Sender
from watcher.notify.plan import (
    NotifySettings,
    due_reminders,
    next_reminder_at,
    notify_settings,
    plan_notifications,
    plan_reminders,
    reminder_items,
)
from watcher.pipeline.message import parse
from watcher.pipeline.process import Outcome, Settings, process
from watcher.pipeline.rules import RulePack, claims_meta
from watcher.pipeline.status import Transition
from watcher.sources import imap
from watcher.sources.base import Cursor, MailSource, RawMessage
from watcher.sources.mailfiles import LocalMailbox
from watcher.store.store import Store

log = logging.getLogger(__name__)

OnRecorded = Callable[[Outcome, list[Transition]], None]


@dataclass
class RunReport:
    """Counts for one pass: messages fetched, recorded, skipped as already seen; errors are
    one sentence each; ``exit_code`` is the exit code of the first error (0 without)."""

    fetched: int = 0
    recorded: int = 0
    duplicates: int = 0
    transitions: int = 0
    errors: list[str] = field(default_factory=list)
    exit_code: int = 0

    def fail(self, exc: WatcherError) -> None:
        """Add *exc* as one sentence, log it, and remember its exit code."""
        self.errors.append(str(exc))
        self.exit_code = self.exit_code or exc.exit_code
        log.error("%s", exc)


def settings_of(config: Config) -> Settings:
    """The subset of *config* the pure middle needs."""
    return Settings(
        trusted_authserv_ids=config.trusted_authserv_ids,
        trust_unauthenticated=config.trust_unauthenticated,
        max_message_bytes=config.max_message_bytes,
    )


def describe(outcome: Outcome) -> str:
    """One log line about *outcome*: kind, rule, account, authenticity; codes masked."""
    match = outcome.match
    parts = [outcome.key.label(), match.kind]
    if match.rule_id:
        parts.append(f"rule={match.rule_id}")
    if match.platform:
        parts.append(f"{match.platform}:{match.account}")
    parts.append(f"auth={outcome.verdict.result}")
    if outcome.suspicious:
        parts.append("SUSPICIOUS (" + "; ".join(outcome.verdict.reasons) + ")")
    for name, value in outcome.fields.items():
        parts.append(f"{name}={mask_code(value) if name == 'code' else value}")
    if outcome.message.error:
        parts.append(f"error={outcome.message.error}")
    # Parts quote the mail (link hosts, the sender): control characters must not start a
    # forged log line.
    return " ".join(" ".join(parts).split())


def ingest(
    store: Store,
    pack: RulePack,
    settings: Settings,
    messages: Iterable[RawMessage],
    report: RunReport,
    cursor_for: Callable[[RawMessage], Cursor | None] = lambda _raw: None,
    on_recorded: OnRecorded | None = None,
    notify: NotifySettings | None = None,
) -> None:
    """Process and record each of *messages* in order, skipping mail the account already has
    (same Message-ID or content). *cursor_for* gives the cursor to commit with each message;
    with *notify*, the notifications a message causes are planned and written in its
    transaction (so they exist exactly when it is recorded)."""
    for raw in messages:
        report.fetched += 1
        outcome = process(raw, pack, settings)
        crash_point("parse")
        cursor = cursor_for(raw)
        if outcome.worth_recording and store.already_recorded(
            raw.key.identity, outcome.message.message_id, outcome.message.sha256
        ):
            report.duplicates += 1
            log.debug("%s already recorded (same Message-ID or content)", raw.key.label())
            if cursor is not None:
                store.move_cursor(raw.key.identity, raw.key.folder, cursor)
            continue
        with store.recording(outcome, cursor) as recording:
            if notify is not None and recording.announce:
                recording.notify(
                    plan_notifications(outcome, recording.transitions, notify, utc_now())
                )
        added = recording.transitions
        if outcome.worth_recording:
            report.recorded += 1
            log.info("%s", describe(outcome))
        for transition in added:
            report.transitions += 1
            log.info(
                "status %s:%s %s -> %s (mail of %s)",
                outcome.match.platform,
                outcome.match.account,
                transition.from_status or "(none)",
                transition.to_status,
                transition.event.mail_at.date().isoformat(),
            )
        if on_recorded is not None:
            on_recorded(outcome, added)


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


def poll_source(
    source: MailSource,
    store: Store,
    pack: RulePack,
    settings: Settings,
    report: RunReport,
    on_recorded: OnRecorded | None = None,
    notify: NotifySettings | None = None,
) -> None:
    """Process the new mail of every folder of *source*: each message is recorded with its
    cursor move (IMAP) and notifications (with *notify*), and the folder's cursor is moved to
    where the scan ended."""
    for folder in source.folders:
        cursor = store.cursor(source.identity, folder)
        with source.new_messages(folder, cursor) as scan:
            ingest(
                store,
                pack,
                settings,
                scan.messages,
                report,
                cursor_for=lambda raw: raw.key.cursor(),
                on_recorded=on_recorded,
                notify=notify,
            )
            if scan.end is not None:
                store.move_cursor(source.identity, folder, scan.end)


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
        raise ServerError(
            f"account {account.name}: connection to {account.host} failed during the poll "
            f"({type(exc).__name__}); what was recorded stays recorded"
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
