"""One pass over every configured source: fetch new mail, process it, record it.

This is where the flow is wired together: source (imap, mailfiles) -> process (pipeline) ->
store. Each message is recorded with its cursor move in one transaction; a failing account or
local source is logged in one sentence and the others go on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from watcher.codes import mask_code
from watcher.config import Account, Config, LocalSource
from watcher.crashpoint import crash_point
from watcher.errors import ServerError, WatcherError
from watcher.pipeline.process import Outcome, Settings, process
from watcher.pipeline.rules import RulePack
from watcher.sources.base import Cursor, RawMessage, SourceKey
from watcher.status import Transition
from watcher.store import Store

if TYPE_CHECKING:
    from watcher.imap import FolderState, SearchPlan

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
) -> None:
    """Process and record each of *messages* in order, skipping mail the account already has
    (same Message-ID or content). *cursor_for* gives the cursor to commit with each message."""
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
        added = store.record(outcome, cursor)
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
    Meta (:func:`watcher.rules.claims_meta`), so classification would call it ``other`` and
    it would not be recorded. Such mail, picked by the server's substring search, is skipped
    before its body is fetched."""
    from watcher.pipeline.message import parse
    from watcher.pipeline.rules import claims_meta

    def test(from_field: bytes) -> bool:
        header = parse(from_field)
        return header.error is not None or claims_meta(header, pack)

    return test


def poll_account(
    account: Account,
    store: Store,
    pack: RulePack,
    settings: Settings,
    report: RunReport,
    on_recorded: OnRecorded | None = None,
    client: Any = None,
) -> None:
    """Process new mail in every folder of *account*; raises WatcherError for the account.

    Each folder is first asked for its UIDVALIDITY and UIDNEXT with STATUS: when both match
    the cursor nothing is new and the folder is not opened. With *client* (an IMAPClient
    from :func:`watcher.imap.connect`) the poll reuses that connection, leaves every folder
    unselected and does not log out, so a poll that finds nothing costs one round trip per
    folder; without it the poll connects and logs out.
    """
    from watcher import imap  # imapclient is imported only when an account is polled

    plan = imap.search_plan(pack)
    wanted = may_be_meta(pack)
    own = client is None
    if own:
        client = imap.connect(account)
    try:
        for folder in account.folders:
            cursor = store.cursor(account.identity, folder)
            status = imap.folder_status(client, folder)
            if (
                status is not None
                and status.uidnext is not None
                and cursor is not None
                and cursor.uidvalidity == status.uidvalidity
                and cursor.last_uid + 1 >= status.uidnext
            ):
                continue  # nothing new: no EXAMINE, SEARCH or FETCH
            state = imap.examine(client, account, folder)
            try:
                _poll_folder(
                    client,
                    account,
                    folder,
                    state,
                    cursor,
                    store,
                    pack,
                    settings,
                    report,
                    plan,
                    wanted,
                    on_recorded,
                )
            finally:
                if not own:
                    imap.unselect(client)
    except imap.CONNECTION_ERRORS as exc:
        raise ServerError(
            f"account {account.name}: connection to {account.host} failed during the poll "
            f"({type(exc).__name__}); what was recorded stays recorded"
        ) from None
    finally:
        if own:
            imap.logout(client)


def _poll_folder(
    client: Any,
    account: Account,
    folder: str,
    state: FolderState,
    cursor: Cursor | None,
    store: Store,
    pack: RulePack,
    settings: Settings,
    report: RunReport,
    plan: SearchPlan,
    wanted: Callable[[bytes], bool],
    on_recorded: OnRecorded | None,
) -> None:
    from watcher import imap

    if cursor is None or cursor.uidvalidity != state.uidvalidity:
        if cursor is not None:
            log.warning(
                "account %s folder %s: UIDVALIDITY changed (%d -> %d); rescanning, "
                "mail already recorded is recognised by Message-ID",
                account.name,
                folder,
                cursor.uidvalidity,
                state.uidvalidity,
            )
        start = 1
    else:
        start = cursor.last_uid + 1
    if state.uidnext is not None and start >= state.uidnext:
        return  # nothing new
    highest = imap.highest_uid(client, state, start)
    if highest < start:
        return
    uidvalidity = state.uidvalidity

    def key_for(uid: int) -> SourceKey:
        return SourceKey(account.name, account.identity, folder, uidvalidity, uid)

    # A big scan is searched in UID ranges, so the server searches the next range while the
    # mail of the previous one is classified. Ranges count messages, not UID numbers: a
    # folder whose few UIDs are spread up to 2^32 is searched once.
    ranges = max(
        1, min(_ceil_div(highest - start + 1, SEARCH_RANGE), _ceil_div(state.exists, SEARCH_RANGE))
    )
    step = _ceil_div(highest - start + 1, ranges)

    def fetched() -> Iterator[RawMessage]:
        for low in range(start, highest + 1, step):
            high = min(low + step - 1, highest)
            uids = imap.candidate_uids(client, plan, low, high)
            yield from imap.fetch_messages(
                client, key_for, uids, settings.max_message_bytes, wanted
            )

    ingest(
        store,
        pack,
        settings,
        read_ahead(fetched, READ_AHEAD_MESSAGES, account.timeout_seconds * 2),
        report,
        cursor_for=lambda raw: Cursor(raw.key.uidvalidity, raw.key.uid),
        on_recorded=on_recorded,
    )
    store.move_cursor(account.identity, folder, Cursor(uidvalidity, highest))


# Messages per server-side search during a scan: a 50,000-message first scan is searched in
# 7 ranges, all but the first while earlier mail is being classified.
SEARCH_RANGE = 8192
# Messages fetched ahead of classification (one FETCH batch): bounds memory.
READ_AHEAD_MESSAGES = 50

T = TypeVar("T")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def read_ahead(
    produce: Callable[[], Iterator[T]], depth: int, join_timeout_seconds: float
) -> Iterator[T]:
    """Yield what *produce* yields, running it in a helper thread up to *depth* items ahead,
    so waiting for the network overlaps with the caller's work. An exception in *produce* is
    raised here; when the caller stops early the helper stops after its current item and is
    joined (at most *join_timeout_seconds*), so the caller may use the connection again."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in produce():
                if not put("item", item):
                    return
            put("done", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put("error", exc)

    helper = threading.Thread(target=run, name="read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        helper.join(join_timeout_seconds)


def poll_local(
    source: LocalSource,
    store: Store,
    pack: RulePack,
    settings: Settings,
    report: RunReport,
    on_recorded: OnRecorded | None = None,
) -> None:
    """Process every message of a local Maildir/mbox/.eml source not recorded yet."""
    from watcher.mailfiles import read_source

    ingest(
        store,
        pack,
        settings,
        read_source(source.path, source.name),
        report,
        on_recorded=on_recorded,
    )


def run_once(
    config: Config, store: Store, pack: RulePack, on_recorded: OnRecorded | None = None
) -> RunReport:
    """Poll every account and local source once. A source that fails adds one sentence to
    ``errors`` and is logged; the others still run."""
    report = RunReport()
    settings = settings_of(config)
    for account in config.accounts:
        try:
            poll_account(account, store, pack, settings, report, on_recorded)
        except WatcherError as exc:
            report.fail(exc)
    for source in config.local:
        try:
            poll_local(source, store, pack, settings, report, on_recorded)
        except WatcherError as exc:
            report.fail(exc)
    return report
