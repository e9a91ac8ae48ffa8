"""The rows the store reads and writes, as frozen dataclasses (no SQL here)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.sources.base import MessageRef, SourceKey

# The rule_id of a transition caused by a linked account's acceptance that covers the whole
# Accounts Center: this prefix, then "<platform>:<address>" of the covering account.
COVERED_BY = "accounts-center:"


@dataclass(frozen=True)
class OutboxItem:
    """A notification to write to the outbox: one target, one cause.

    ``dedupe_key`` names the cause (a message, a reminder, a login failure); the outbox holds
    each (dedupe_key, target) once, so planning the same notification twice sends it once.
    ``title``/``body`` have codes masked; ``secret`` is the full code, put back at send time
    and erased once the notification is delivered or dropped.
    """

    dedupe_key: str
    target: str
    event: str
    title: str
    body: str
    secret: str | None = None


@dataclass(frozen=True)
class OutboxRow:
    """A pending outbox row, as the sender sees it."""

    id: int
    dedupe_key: str
    target: str
    event: str
    title: str
    body: str
    secret: str | None
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as ``meta-watcher outbox`` shows it (never the code: ``title`` is
    masked). ``state``: pending, sent or dropped; ``last_error``: why the last attempt failed
    or why it was dropped; times are aware UTC."""

    id: int
    target: str
    event: str
    title: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class Heartbeat:
    """One worker's last report: state, detail sentence, when, and when it counts as stale."""

    worker: str
    state: str
    detail: str | None
    beat_at: datetime
    stale_after_seconds: float
    pid: int


@dataclass(frozen=True)
class CountedMail:
    """A counted privacy mail, for deadline reminders: kind, mail date, effective date."""

    platform: str
    account: str
    kind: str
    mail_at: datetime
    effective_date: str | None  # ISO date from the policy mail, when it states one


@dataclass(frozen=True)
class MailRow:
    """One recorded mail as ``meta-watcher report`` shows it: where it is (source, identity,
    folder, uidvalidity, uid), what it is, and the authenticity verdict with the authserv-id
    of the trusted server it rests on. ``mail_date`` and ``processed_at`` are ISO 8601 UTC."""

    id: int
    source: str
    identity: str
    folder: str
    uidvalidity: int
    uid: int
    message_id: str | None
    sha256: str
    mail_date: str | None
    date_source: str
    sender: str
    subject: str
    kind: str
    platform: str | None
    account: str | None
    authenticity: str
    auth_reasons: tuple[str, ...]
    authserv_id: str | None
    suspicious: bool
    counted: bool
    rule_id: str | None
    fields: dict[str, str | None]
    error: str | None
    processed_at: str

    @property
    def key(self) -> SourceKey:
        """Where the mail was when it was recorded."""
        # Imported here: status and log read rows without the sources.
        from watcher.sources.base import SourceKey

        return SourceKey(self.source, self.identity, self.folder, self.uidvalidity, self.uid)

    def ref(self) -> MessageRef:
        """What a source needs to fetch this mail again (MailSource.fetch_original)."""
        from watcher.sources.base import MessageRef

        return MessageRef(self.key, self.message_id, self.sha256)


@dataclass(frozen=True)
class StatusRow:
    """One row of ``current_status``."""

    platform: str
    account: str
    status: str
    since: str
    message_id: str | None
    subject: str
    rule_id: str | None


@dataclass(frozen=True)
class TransitionRow:
    """One row of ``transitions`` with the causing mail's Message-ID and subject."""

    platform: str
    account: str
    from_status: str | None
    to_status: str
    mail_date: str
    recorded_at: str
    message_id: str | None
    subject: str
    rule_id: str | None


@dataclass(frozen=True)
class KeptMessage:
    """A recorded message whose raw bytes are kept, with its classification as stored.

    ``id`` is the messages-table id (``rules test --db ID``); ``mail_date`` is ISO 8601 UTC and
    ``date_source`` says whether it came from the Date header or INTERNALDATE.
    """

    id: int
    source: str
    identity: str
    folder: str
    uidvalidity: int
    uid: int
    subject: str
    kind: str
    platform: str | None
    account: str | None
    rule_id: str | None
    suspicious: bool
    counted: bool
    fields: dict[str, str | None]
    mail_date: str | None
    date_source: str
    raw: bytes


def kept_from_row(row: sqlite3.Row) -> KeptMessage:
    """A KeptMessage from a row of the store's kept-message query (its column order)."""
    return KeptMessage(
        id=row[0],
        source=row[1],
        identity=row[2],
        folder=row[3],
        uidvalidity=row[4],
        uid=row[5],
        subject=row[6],
        kind=row[7],
        platform=row[8],
        account=row[9],
        rule_id=row[10],
        suspicious=bool(row[11]),
        counted=bool(row[12]),
        fields=json.loads(row[13]),
        mail_date=row[14],
        date_source=row[15],
        raw=bytes(row[16]),
    )


def mail_from_row(row: sqlite3.Row) -> MailRow:
    """A MailRow from a row of the store's report query (its column order)."""
    return MailRow(
        id=row[0],
        source=row[1],
        identity=row[2],
        folder=row[3],
        uidvalidity=row[4],
        uid=row[5],
        message_id=row[6],
        sha256=row[7],
        mail_date=row[8],
        date_source=row[9],
        sender=row[10],
        subject=row[11],
        kind=row[12],
        platform=row[13],
        account=row[14],
        authenticity=row[15],
        auth_reasons=tuple(json.loads(row[16])),
        authserv_id=row[17],
        suspicious=bool(row[18]),
        counted=bool(row[19]),
        rule_id=row[20],
        fields=json.loads(row[21]),
        error=row[22],
        processed_at=row[23],
    )
