"""The SQLite log: the only module with SQL. Migrations, recording, cursors, queries.

One file, STRICT tables, WAL, versioned migrations (``PRAGMA user_version``). Times are ISO 8601
UTC strings. A message, the transitions it causes and the cursor move commit in one
transaction, so a crash at any point leaves either all of it or none of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from watcher.codes import looks_like_code, mask_code, mask_codes_in
from watcher.crashpoint import crash_point
from watcher.errors import LockedError, StoreError
from watcher.pipeline.process import Outcome
from watcher.sources.base import Cursor
from watcher.status import Event, Transition, replay

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    # 1: the main job's log.
    """
    CREATE TABLE messages (
        id            INTEGER PRIMARY KEY,
        source        TEXT    NOT NULL,  -- account or local source name from the config
        identity      TEXT    NOT NULL,  -- user@host for IMAP, the path for local mail
        folder        TEXT    NOT NULL,
        uidvalidity   INTEGER NOT NULL,
        uid           INTEGER NOT NULL,
        message_id    TEXT,
        sha256        TEXT    NOT NULL,
        mail_date     TEXT,              -- Date header, else INTERNALDATE (date_source)
        date_source   TEXT    NOT NULL,
        sender        TEXT    NOT NULL,
        subject       TEXT    NOT NULL,
        kind          TEXT    NOT NULL,
        platform      TEXT,
        account       TEXT,
        language      TEXT,
        authenticity  TEXT    NOT NULL CHECK (authenticity IN ('pass', 'fail', 'none')),
        auth_reasons  TEXT    NOT NULL,  -- JSON array of plain sentences
        authserv_id   TEXT,
        suspicious    INTEGER NOT NULL CHECK (suspicious IN (0, 1)),
        counted       INTEGER NOT NULL CHECK (counted IN (0, 1)),
        rule_id       TEXT,
        fields        TEXT    NOT NULL,  -- JSON object; codes masked unless store_codes
        error         TEXT,
        processed_at  TEXT    NOT NULL,
        UNIQUE (identity, folder, uidvalidity, uid)
    ) STRICT;
    CREATE INDEX messages_by_message_id ON messages (identity, message_id);
    CREATE INDEX messages_by_sha256 ON messages (identity, sha256);
    CREATE INDEX messages_counted ON messages (platform, account) WHERE counted = 1;

    CREATE TABLE transitions (
        id           INTEGER PRIMARY KEY,
        platform     TEXT    NOT NULL,
        account      TEXT    NOT NULL,
        seq          INTEGER NOT NULL,   -- position in the account's replayed history
        from_status  TEXT,
        to_status    TEXT    NOT NULL,
        mail_date    TEXT    NOT NULL,   -- date of the mail that caused it
        recorded_at  TEXT    NOT NULL,
        message_ref  INTEGER NOT NULL REFERENCES messages (id),
        rule_id      TEXT,
        UNIQUE (platform, account, seq)
    ) STRICT;

    CREATE TABLE cursors (
        identity     TEXT    NOT NULL,
        folder       TEXT    NOT NULL,
        uidvalidity  INTEGER NOT NULL,
        last_uid     INTEGER NOT NULL,   -- highest UID processed (0: none yet)
        updated_at   TEXT    NOT NULL,
        PRIMARY KEY (identity, folder)
    ) STRICT;

    CREATE VIEW current_status AS
        SELECT t.platform, t.account, t.to_status AS status, t.mail_date AS since,
               m.message_id, m.subject, t.rule_id
        FROM transitions t JOIN messages m ON m.id = t.message_ref
        WHERE t.seq = (SELECT max(seq) FROM transitions x
                       WHERE x.platform = t.platform AND x.account = t.account);
    """,
    # 2: the daemon: notification outbox and worker heartbeats (watcher.daemon, watcher.notify).
    """
    CREATE TABLE outbox (
        id               INTEGER PRIMARY KEY,
        dedupe_key       TEXT    NOT NULL,  -- what caused it; with target, never twice
        target           TEXT    NOT NULL,  -- NotifyTarget.key, never the URL (it holds tokens)
        event            TEXT    NOT NULL,
        title            TEXT    NOT NULL,  -- codes masked
        body             TEXT    NOT NULL,  -- codes masked
        secret           TEXT,              -- the code while undelivered; NULL once done
        message_ref      INTEGER REFERENCES messages (id),
        state            TEXT    NOT NULL DEFAULT 'pending'
                                 CHECK (state IN ('pending', 'sent', 'dropped')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  TEXT    NOT NULL,
        last_error       TEXT,
        created_at       TEXT    NOT NULL,
        sent_at          TEXT,
        UNIQUE (dedupe_key, target)
    ) STRICT;
    CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE state = 'pending';

    CREATE TABLE heartbeats (
        worker               TEXT    PRIMARY KEY,  -- account/folder or local:name
        state                TEXT    NOT NULL,     -- ok, connecting, reconnecting, ...
        detail               TEXT,                 -- one sentence, no secrets
        beat_at              TEXT    NOT NULL,
        stale_after_seconds  REAL    NOT NULL,     -- stale when beat_at is older than this
        pid                  INTEGER NOT NULL
    ) STRICT;
    """,
    # 3: raw copies of unrecognized and suspicious Meta mail, so the current rules can be rerun
    # on it (`meta-watcher rules test --db ID`, `meta-watcher reclassify`). Never kept for
    # verification-code mail: its raw text holds the code.
    """
    CREATE TABLE raw_messages (
        message_ref   INTEGER PRIMARY KEY REFERENCES messages (id),
        raw           BLOB    NOT NULL,  -- the bytes as fetched (RFC 5322)
        kept_at       TEXT    NOT NULL,
        rechecked_at  TEXT               -- when `reclassify` last reran the rules on it
    ) STRICT;
    """,
    # 4: `status` counts the mail that needs a look (needs_attention) from these small partial
    # indexes instead of reading every row: 50 ms -> under 1 ms with 100,000 recorded messages
    # (bench/status_log.py).
    """
    CREATE INDEX messages_suspicious ON messages (id) WHERE suspicious = 1;
    CREATE INDEX messages_unrecognized ON messages (id)
        WHERE kind = 'unrecognized' AND suspicious = 0;
    CREATE INDEX messages_error ON messages (id) WHERE error IS NOT NULL;
    """,
    # 5: one mail in two watched mailboxes is announced once (Store._copy_seen_elsewhere looks
    # it up by Message-ID across mailboxes).
    """
    CREATE INDEX messages_by_message_id_only ON messages (message_id);
    """,
    # 6: privacy mail that no trusted server vouched for (status counts it without a scan).
    """
    CREATE INDEX messages_unverified ON messages (id)
        WHERE authenticity = 'none' AND counted = 0 AND suspicious = 0
          AND kind NOT IN ('other', 'unrecognized');
    """,
)


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the one clock the store uses)."""
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """Format an aware datetime as ISO 8601 UTC with a ``Z``-free ``+00:00`` offset."""
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


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


# Called inside Store.record's transaction with the outcome and the transitions it caused.
OutboxPlanner = Callable[[Outcome, list[Transition]], list[OutboxItem]]


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


class Store:
    """An open SQLite log. Use :meth:`open`; close with :meth:`close` or ``with``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, store_codes: bool) -> None:
        self._conn = conn
        self.path = path
        self._store_codes = store_codes
        self._lock_fd: int | None = None
        # When set, record() writes these notifications in the message's transaction.
        self.outbox_planner: OutboxPlanner | None = None

    @classmethod
    def open(cls, path: Path, store_codes: bool = False) -> Store:
        """Open (creating 0600 if needed) and migrate the database at *path*.

        Raises StoreError with the path when it cannot be created, opened or migrated.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Create it 0600 before SQLite does: the log names the user's accounts.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(conn, path, store_codes)
            store._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"database {path} cannot be opened: {exc}") from None
        return store

    def close(self) -> None:
        """Release the run lock (if held) and close the connection."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} was written by a newer meta-watcher "
                f"(schema {version}, this one knows {len(MIGRATIONS)})"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                # Another watcher starting at the same moment may have migrated meanwhile.
                if int(self._conn.execute("PRAGMA user_version").fetchone()[0]) >= number:
                    continue
                for statement in _statements(script):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {number}")
            log.info("database %s migrated to schema %d", self.path, number)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def acquire_run_lock(self) -> None:
        """Take the exclusive run lock (``<db>.lock``) so two watchers never process mail at
        once; raises LockedError when another process holds it."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LockedError(
                f"another meta-watcher is already processing mail into {self.path}"
            ) from None
        self._lock_fd = fd

    # ------------------------------------------------------------------ cursors

    def cursor(self, identity: str, folder: str) -> Cursor | None:
        """Return the folder's cursor, or None when it was never processed."""
        row = self._conn.execute(
            "SELECT uidvalidity, last_uid FROM cursors WHERE identity = ? AND folder = ?",
            (identity, folder),
        ).fetchone()
        return Cursor(row[0], row[1]) if row else None

    def _set_cursor(self, identity: str, folder: str, cursor: Cursor) -> None:
        self._conn.execute(
            "INSERT INTO cursors (identity, folder, uidvalidity, last_uid, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (identity, folder) DO UPDATE SET "
            "uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, "
            "updated_at = excluded.updated_at",
            (identity, folder, cursor.uidvalidity, cursor.last_uid, iso(utc_now())),
        )

    def move_cursor(self, identity: str, folder: str, cursor: Cursor) -> None:
        """Record that every UID up to ``cursor.last_uid`` has been processed."""
        with self.transaction():
            self._set_cursor(identity, folder, cursor)

    # ------------------------------------------------------------------ messages

    def already_recorded(self, identity: str, message_id: str | None, sha256: str) -> bool:
        """True when this account already has this mail: same Message-ID, else same content
        hash (a re-upload, a copy in another folder, or a rescan after UIDVALIDITY changed)."""
        if message_id:
            sql = "SELECT 1 FROM messages WHERE identity = ? AND message_id = ? LIMIT 1"
            if self._conn.execute(sql, (identity, message_id)).fetchone():
                return True
        sql = "SELECT 1 FROM messages WHERE identity = ? AND sha256 = ? LIMIT 1"
        return self._conn.execute(sql, (identity, sha256)).fetchone() is not None

    def record(self, outcome: Outcome, cursor: Cursor | None = None) -> list[Transition]:
        """Record *outcome* (when worth keeping), replay its account, move the cursor: one
        transaction. Returns the transitions added. Raises StoreError on a database error."""
        key = outcome.key
        try:
            with self.transaction():
                added: list[Transition] = []
                if outcome.worth_recording:
                    ref = self._insert_message(outcome)
                    if ref is not None and keeps_raw(outcome, self._store_codes):
                        self._keep_raw(ref, outcome)
                    if ref is not None and outcome.counted:
                        match = outcome.match
                        assert match.platform is not None
                        assert match.account is not None
                        added = self._replay_account(match.platform, match.account)
                    if (
                        ref is not None
                        and self.outbox_planner is not None
                        and not self._copy_seen_elsewhere(ref, outcome)
                    ):
                        self._insert_outbox(self.outbox_planner(outcome, added), ref)
                if cursor is not None:
                    self._set_cursor(key.identity, key.folder, cursor)
                crash_point("commit")
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path}: cannot record {key.label()}: {exc}") from None
        crash_point("committed")
        return added

    def _copy_seen_elsewhere(self, ref: int, outcome: Outcome) -> bool:
        """True when another watched mailbox already holds this mail (same Message-ID and
        kind, not suspicious): its copy is recorded as evidence but not announced again."""
        message_id = outcome.message.message_id
        if not message_id or outcome.suspicious:
            return False
        row = self._conn.execute(
            "SELECT 1 FROM messages WHERE message_id = ? AND kind = ? AND suspicious = 0 "
            "AND identity != ? AND id != ? LIMIT 1",
            (message_id, outcome.match.kind, outcome.key.identity, ref),
        ).fetchone()
        return row is not None

    def _insert_message(self, outcome: Outcome) -> int | None:
        key, msg, match, verdict = outcome.key, outcome.message, outcome.match, outcome.verdict
        fields = dict(outcome.fields)
        subject = msg.subject
        if match.kind == "verification_code" and not self._store_codes:
            if "code" in fields:
                fields["code"] = mask_code(fields["code"])
            subject = mask_codes_in(subject)
        sender = f"{msg.from_name} <{msg.from_addr}>" if msg.from_name else msg.from_addr
        cur = self._conn.execute(
            "INSERT INTO messages (source, identity, folder, uidvalidity, uid, message_id, "
            "sha256, mail_date, date_source, sender, subject, kind, platform, account, "
            "language, authenticity, auth_reasons, authserv_id, suspicious, counted, rule_id, "
            "fields, error, processed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (identity, folder, uidvalidity, uid) DO NOTHING",
            (
                key.source,
                key.identity,
                key.folder,
                key.uidvalidity,
                key.uid,
                msg.message_id,
                msg.sha256,
                iso(outcome.mail_at),
                outcome.date_source,
                sender,
                subject,
                match.kind,
                match.platform,
                match.account,
                match.language,
                outcome.verdict.result,
                json.dumps(list(verdict.reasons), ensure_ascii=False),
                verdict.authserv_id,
                int(outcome.suspicious),
                int(outcome.counted),
                match.rule_id,
                json.dumps(fields, ensure_ascii=False, sort_keys=True),
                msg.error,
                iso(utc_now()),
            ),
        )
        return cur.lastrowid if cur.rowcount == 1 else None

    def _replay_account(self, platform: str, account: str) -> list[Transition]:
        rows = self._conn.execute(
            "SELECT id, kind, mail_date, processed_at, rule_id, coalesce(message_id, sha256) "
            "FROM messages WHERE counted = 1 AND platform = ? AND account = ?",
            (platform, account),
        ).fetchall()
        events = [
            Event(
                ref=row[0],
                kind=row[1],
                mail_at=datetime.fromisoformat(row[2] or row[3]),
                rule_id=row[4],
                message_key=row[5],
            )
            for row in rows
        ]
        new = replay(events)
        old = self._conn.execute(
            "SELECT seq, from_status, to_status, message_ref FROM transitions "
            "WHERE platform = ? AND account = ? ORDER BY seq",
            (platform, account),
        ).fetchall()
        # Keep the common prefix; a mail older than the newest rewrites history after it.
        keep = 0
        for row, transition in zip(old, new, strict=False):
            same = (row[1], row[2], row[3]) == (
                transition.from_status,
                transition.to_status,
                transition.event.ref,
            )
            if not same:
                break
            keep += 1
        self._conn.execute(
            "DELETE FROM transitions WHERE platform = ? AND account = ? AND seq >= ?",
            (platform, account, keep),
        )
        now = iso(utc_now())
        for transition in new[keep:]:
            self._conn.execute(
                "INSERT INTO transitions (platform, account, seq, from_status, to_status, "
                "mail_date, recorded_at, message_ref, rule_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    platform,
                    account,
                    transition.seq,
                    transition.from_status,
                    transition.to_status,
                    iso(transition.event.mail_at),
                    now,
                    transition.event.ref,
                    transition.event.rule_id,
                ),
            )
        # Rows after a rewrite point are re-inserted; report only changes not logged before.
        before = {(row[1], row[2], row[3]) for row in old}
        return [t for t in new[keep:] if (t.from_status, t.to_status, t.event.ref) not in before]

    # ------------------------------------------------------------------ queries

    def current_status(self) -> list[StatusRow]:
        """Every (platform, account) with its current status, ordered by account."""
        rows = self._conn.execute(
            "SELECT platform, account, status, since, message_id, subject, rule_id "
            "FROM current_status ORDER BY account, platform"
        ).fetchall()
        return [StatusRow(*row) for row in rows]

    def transitions(self) -> list[TransitionRow]:
        """Every transition, oldest mail first."""
        rows = self._conn.execute(
            "SELECT t.platform, t.account, t.from_status, t.to_status, t.mail_date, "
            "t.recorded_at, m.message_id, m.subject, t.rule_id "
            "FROM transitions t JOIN messages m ON m.id = t.message_ref "
            "ORDER BY t.mail_date, t.account, t.platform, t.seq"
        ).fetchall()
        return [TransitionRow(*row) for row in rows]

    def needs_attention(self) -> dict[str, int]:
        """Counts of recorded mail a person should look at: ``suspicious`` look-alikes,
        ``unrecognized`` Meta privacy mail, mail with a parse ``error``, and ``unverified``
        privacy mail that changed nothing because no trusted server vouched for it."""
        # Each WHERE is exactly a partial index's (migrations 4 and 6), so no row is read.
        row = self._conn.execute(
            "SELECT (SELECT count(*) FROM messages WHERE suspicious = 1), "
            "(SELECT count(*) FROM messages WHERE kind = 'unrecognized' AND suspicious = 0), "
            "(SELECT count(*) FROM messages WHERE error IS NOT NULL), "
            "(SELECT count(*) FROM messages WHERE authenticity = 'none' AND counted = 0 "
            "AND suspicious = 0 AND kind NOT IN ('other', 'unrecognized'))"
        ).fetchone()
        return {"suspicious": row[0], "unrecognized": row[1], "error": row[2], "unverified": row[3]}

    def count(self, table: str) -> int:
        """Number of rows in *table* (messages, transitions or cursors)."""
        if table not in ("messages", "transitions", "cursors"):
            raise ValueError(table)
        return int(self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Run a read-only query (tests and reports)."""
        return list(self._conn.execute(sql, params).fetchall())

    def report_mails(self, account: str | None = None) -> list[MailRow]:
        """Every recorded mail that looks like one of Meta's privacy mails (a privacy kind or
        ``unrecognized``, authentic or not), oldest mail first; only those about *account*
        (case-insensitive) when given. For ``meta-watcher report``."""
        sql = (
            "SELECT id, source, identity, folder, uidvalidity, uid, message_id, sha256, "
            "mail_date, date_source, sender, subject, kind, platform, account, authenticity, "
            "auth_reasons, authserv_id, suspicious, counted, rule_id, fields, error, "
            "processed_at FROM messages WHERE kind != 'other'"
        )
        params: tuple[Any, ...] = ()
        if account is not None:
            sql += " AND lower(account) = lower(?)"
            params = (account,)
        rows = self._conn.execute(sql + " ORDER BY coalesce(mail_date, processed_at), id", params)
        return [
            MailRow(
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
            for row in rows.fetchall()
        ]

    # ------------------------------------------------------------------ outbox

    def _insert_outbox(self, items: Iterable[OutboxItem], message_ref: int | None) -> int:
        now = _ms(utc_now())
        added = 0
        for item in items:
            cur = self._conn.execute(
                "INSERT INTO outbox (dedupe_key, target, event, title, body, secret, "
                "message_ref, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (dedupe_key, target) DO NOTHING",
                (
                    item.dedupe_key,
                    item.target,
                    item.event,
                    item.title,
                    item.body,
                    item.secret,
                    message_ref,
                    now,
                    now,
                ),
            )
            added += cur.rowcount
        return added

    def add_notifications(self, items: Iterable[OutboxItem]) -> int:
        """Write notifications not caused by a message (reminders, login failures); an item
        whose (dedupe_key, target) is already in the outbox is skipped. Returns how many were
        added."""
        try:
            with self.transaction():
                return self._insert_outbox(items, None)
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path}: cannot write the outbox: {exc}") from None

    def due_notifications(self, now: datetime, limit: int = 100) -> list[OutboxRow]:
        """Pending notifications whose next attempt is due at *now*, oldest first."""
        rows = self._conn.execute(
            "SELECT id, dedupe_key, target, event, title, body, secret, attempts, created_at "
            "FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (_ms(now), limit),
        ).fetchall()
        return [
            OutboxRow(*row[:8], created_at=datetime.fromisoformat(row[8]))  # type: ignore[misc]
            for row in rows
        ]

    def next_notification_at(self) -> datetime | None:
        """When the earliest pending notification is due, or None when nothing is pending."""
        row = self._conn.execute(
            "SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'"
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def notification_sent(self, outbox_id: int) -> None:
        """Mark a notification delivered and erase its code."""
        with self.transaction():
            self._conn.execute(
                "UPDATE outbox SET state = 'sent', secret = NULL, sent_at = ?, "
                "attempts = attempts + 1, last_error = NULL WHERE id = ?",
                (_ms(utc_now()), outbox_id),
            )

    def notification_failed(self, outbox_id: int, error: str, retry_in_seconds: float) -> None:
        """Count a failed attempt; try again in *retry_in_seconds*. *error*: one sentence."""
        with self.transaction():
            self._conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ? WHERE id = ?",
                (error, _ms(utc_now() + timedelta(seconds=retry_in_seconds)), outbox_id),
            )

    def notification_dropped(self, outbox_id: int, reason: str) -> None:
        """Give a notification up (target removed from the config, too old); erase its code."""
        with self.transaction():
            self._conn.execute(
                "UPDATE outbox SET state = 'dropped', secret = NULL, last_error = ? WHERE id = ?",
                (reason, outbox_id),
            )

    # ------------------------------------------------------------------ heartbeats

    def beat(self, worker: str, state: str, detail: str | None, stale_after_seconds: float) -> None:
        """Record that *worker* is alive in *state* (``ok`` when all is well)."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO heartbeats (worker, state, detail, beat_at, stale_after_seconds, pid) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (worker) DO UPDATE SET "
                "state = excluded.state, detail = excluded.detail, beat_at = excluded.beat_at, "
                "stale_after_seconds = excluded.stale_after_seconds, pid = excluded.pid",
                (worker, state, detail, _ms(utc_now()), stale_after_seconds, os.getpid()),
            )

    def heartbeats(self) -> dict[str, Heartbeat]:
        """Every worker's last heartbeat, by worker name."""
        rows = self._conn.execute(
            "SELECT worker, state, detail, beat_at, stale_after_seconds, pid FROM heartbeats"
        ).fetchall()
        return {
            row[0]: Heartbeat(row[0], row[1], row[2], datetime.fromisoformat(row[3]), *row[4:])
            for row in rows
        }

    def counted_mail(self) -> list[CountedMail]:
        """Every counted privacy mail with its date and, for policy updates, the effective date
        (for deadline reminders), in mail-date order."""
        rows = self._conn.execute(
            "SELECT platform, account, kind, coalesce(mail_date, processed_at), "
            "json_extract(fields, '$.effective_date') FROM messages WHERE counted = 1 "
            "ORDER BY 4"
        ).fetchall()
        return [
            CountedMail(row[0], row[1], row[2], datetime.fromisoformat(row[3]), row[4])
            for row in rows
        ]

    # ------------------------------------------------------------------ raw copies, reclassify

    def _keep_raw(self, message_ref: int, outcome: Outcome) -> None:
        assert outcome.raw is not None
        self._conn.execute(
            "INSERT INTO raw_messages (message_ref, raw, kept_at) VALUES (?, ?, ?) "
            "ON CONFLICT (message_ref) DO NOTHING",
            (message_ref, outcome.raw, iso(utc_now())),
        )

    def has_message(self, message_ref: int) -> bool:
        """True when the messages table has a row with id *message_ref*."""
        sql = "SELECT 1 FROM messages WHERE id = ?"
        return self._conn.execute(sql, (message_ref,)).fetchone() is not None

    def kept_message(self, message_ref: int) -> KeptMessage | None:
        """The message with id *message_ref* and its raw copy; None when no copy is kept."""
        row = self._conn.execute(_KEPT_SQL + " WHERE m.id = ?", (message_ref,)).fetchone()
        return _kept(row) if row is not None else None

    def kept_messages(self) -> list[KeptMessage]:
        """Every message whose raw copy is kept, in the order they were recorded."""
        return [_kept(row) for row in self._conn.execute(_KEPT_SQL + " ORDER BY m.id")]

    def uncopied_count(self) -> int:
        """How many unrecognized or suspicious messages have no raw copy (recorded before
        copies were kept, or holding a code-like number): reclassify cannot rerun those."""
        row = self._conn.execute(
            "SELECT count(*) FROM messages m WHERE (m.kind = 'unrecognized' OR m.suspicious = 1) "
            "AND NOT EXISTS (SELECT 1 FROM raw_messages r WHERE r.message_ref = m.id)"
        ).fetchone()
        return int(row[0])

    def reclassify(self, message_ref: int, outcome: Outcome) -> list[Transition]:
        """Store *outcome*, the current rules' verdict on the kept message *message_ref*, in
        place of its old classification, and replay the accounts it leaves or joins: one
        transaction. A message that is now a verification-code mail loses its raw copy (the
        code stays masked in ``fields``). Returns the transitions added. Raises StoreError."""
        match, verdict = outcome.match, outcome.verdict
        fields = dict(outcome.fields)
        if "code" in fields and not self._store_codes:
            fields["code"] = mask_code(fields["code"])
        try:
            with self.transaction():
                old = self._conn.execute(
                    "SELECT platform, account, counted FROM messages WHERE id = ?",
                    (message_ref,),
                ).fetchone()
                if old is None:
                    raise StoreError(f"database {self.path} has no message {message_ref}")
                self._conn.execute(
                    "UPDATE messages SET kind = ?, platform = ?, account = ?, language = ?, "
                    "authenticity = ?, auth_reasons = ?, authserv_id = ?, suspicious = ?, "
                    "counted = ?, rule_id = ?, fields = ? WHERE id = ?",
                    (
                        match.kind,
                        match.platform,
                        match.account,
                        match.language,
                        verdict.result,
                        json.dumps(list(verdict.reasons), ensure_ascii=False),
                        verdict.authserv_id,
                        int(outcome.suspicious),
                        int(outcome.counted),
                        match.rule_id,
                        json.dumps(fields, ensure_ascii=False, sort_keys=True),
                        message_ref,
                    ),
                )
                if match.kind == "verification_code":
                    sql = "DELETE FROM raw_messages WHERE message_ref = ?"
                    self._conn.execute(sql, (message_ref,))
                else:
                    self._conn.execute(
                        "UPDATE raw_messages SET rechecked_at = ? WHERE message_ref = ?",
                        (iso(utc_now()), message_ref),
                    )
                accounts: list[tuple[str, str]] = []
                if old[2]:
                    accounts.append((old[0], old[1]))
                if outcome.counted:
                    assert match.platform is not None
                    assert match.account is not None
                    accounts.append((match.platform, match.account))
                added: list[Transition] = []
                for platform, account in dict.fromkeys(accounts):
                    added += self._replay_account(platform, account)
                if self.outbox_planner is not None:
                    self._insert_outbox(self.outbox_planner(outcome, added), message_ref)
        except sqlite3.Error as exc:
            raise StoreError(
                f"database {self.path}: cannot reclassify message {message_ref}: {exc}"
            ) from None
        return added


# A raw copy bigger than this is not kept: one hostile 25 MB mail must not bloat the log.
MAX_KEPT_RAW_BYTES = 2 * 1024 * 1024


def keeps_raw(outcome: Outcome, store_codes: bool) -> bool:
    """True when the store keeps *outcome*'s raw bytes: an ``unrecognized`` or suspicious
    mail, so the rules can be rerun on it after they change. Never a verification-code mail
    (its raw text holds the code), nor, unless *store_codes*, one whose text holds a
    code-like number (a code mail in a wording no rule knows yet), nor one over
    MAX_KEPT_RAW_BYTES."""
    if outcome.raw is None or len(outcome.raw) > MAX_KEPT_RAW_BYTES:
        return False
    kind = outcome.match.kind
    if kind == "verification_code" or not (kind == "unrecognized" or outcome.suspicious):
        return False
    text = f"{outcome.message.subject}\n{outcome.message.text}"
    return store_codes or not looks_like_code(text)


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


_KEPT_SQL = (
    "SELECT m.id, m.source, m.identity, m.folder, m.uidvalidity, m.uid, m.subject, m.kind, "
    "m.platform, m.account, m.rule_id, m.suspicious, m.counted, m.fields, m.mail_date, "
    "m.date_source, r.raw FROM raw_messages r JOIN messages m ON m.id = r.message_ref"
)


def _kept(row: sqlite3.Row) -> KeptMessage:
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


def _ms(value: datetime) -> str:
    # Fixed-width UTC with milliseconds, so text comparison in SQL is time order.
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _statements(script: str) -> list[str]:
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return [s for s in out if s.strip(" ;\n")]
