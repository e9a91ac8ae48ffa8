"""Recording processed mail: each message of a source goes through the pipeline and into the
store, with its cursor move and its notifications in one transaction (watcher.store). Used by
every pass over the sources (runner.py) and by ``scan --db``; imports nothing of IMAP."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from watcher.clock import utc_now
from watcher.codes import mask_code
from watcher.config import Config
from watcher.crashpoint import crash_point
from watcher.errors import WatcherError
from watcher.kinds import OTHER
from watcher.notify.plan import NotifySettings, plan_notifications
from watcher.pipeline.process import Outcome, Settings, process
from watcher.pipeline.rules import RulePack
from watcher.pipeline.status import Transition
from watcher.progress import FolderProgress, current_progress
from watcher.sources.base import Cursor, MailSource, RawMessage
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
        accounts_centers=config.accounts_centers,
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


def unread(outcome: Outcome, error: str) -> Outcome:
    """*outcome* of a message the source could not fetch in full (*error*, one sentence),
    made a record of that failure: the error is the message's, it is not counted, and its
    Message-ID is left out (its content hash is that of the header read, if any), so a
    complete copy found later in another folder is not taken for a duplicate of it."""
    message = replace(outcome.message, error=error, message_id=None)
    return replace(outcome, message=message, counted=False)


def ingest(
    store: Store,
    pack: RulePack,
    settings: Settings,
    messages: Iterable[RawMessage],
    report: RunReport,
    cursor_for: Callable[[RawMessage], Cursor | None] = lambda _raw: None,
    on_recorded: OnRecorded | None = None,
    notify: NotifySettings | None = None,
    progress: FolderProgress | None = None,
) -> None:
    """Process and record each of *messages* in order, skipping mail the account already has
    (same Message-ID or content). *cursor_for* gives the cursor to commit with each message;
    with *notify*, the notifications a message causes are planned and written in its
    transaction (so they exist exactly when it is recorded). *progress* counts each message
    fetched and recorded."""
    for raw in messages:
        report.fetched += 1
        if progress is not None:
            progress.fetched()
        outcome = process(raw, pack, settings)
        # A message the source could not read within its bounds (RawMessage.fetch_error: a
        # server sending a literal larger than it announced) is recorded with that error like
        # an unparseable one, so the cursor moves past it.
        fetch_error = raw.fetch_error
        if fetch_error:
            outcome = unread(outcome, fetch_error)
        crash_point("parse")
        cursor = cursor_for(raw)
        if (
            outcome.worth_recording
            and not fetch_error
            and store.already_recorded(
                raw.key.identity, outcome.message.message_id, outcome.message.sha256
            )
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
            if progress is not None:
                progress.recorded()
            # Meta's privacy mail (and look-alikes) at INFO; ordinary mail only with -v: a
            # first scan of 6,000 messages must not print 6,000 lines.
            ordinary = outcome.match.kind == OTHER and not outcome.suspicious
            log.log(logging.DEBUG if ordinary else logging.INFO, "%s", describe(outcome))
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
            label = f"{source.name}/{folder}" if folder else source.name
            tracker = current_progress().folder(label, scan.total)
            try:
                ingest(
                    store,
                    pack,
                    settings,
                    scan.messages,
                    report,
                    cursor_for=lambda raw: raw.key.cursor(),
                    on_recorded=on_recorded,
                    notify=notify,
                    progress=tracker,
                )
            finally:
                if tracker is not None:
                    tracker.close()
            if scan.end is not None:
                store.move_cursor(source.identity, folder, scan.end)
