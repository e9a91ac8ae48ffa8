"""The database schema: versioned migrations (``PRAGMA user_version``), and how the store
opens transactions and writes times.

One file, STRICT tables, WAL. Times are ISO 8601 UTC strings. Each migration runs in its own
transaction, so an interrupted upgrade leaves the last complete version.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from watcher.errors import StoreError

log = logging.getLogger(__name__)

# A migration's text is history: once released it never changes (databases keep it in
# sqlite_master). Where a comment in it went stale, the correction is here: messages.identity
# and cursors.identity are user@host[:port] for IMAP and local:<source name> for local files.
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


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating it 0600 if needed) and migrate the database at *path*: WAL journal,
    foreign keys on, rows as sqlite3.Row, autocommit (transactions are explicit, see
    :func:`transaction`). Raises StoreError with the path when it cannot be created, opened
    or migrated."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Create it 0600 before SQLite does: the log names the user's accounts.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            migrate(conn, path)
        except BaseException:
            conn.close()
            raise
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"database {path} cannot be opened: {exc}") from None
    return conn


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the database at *path* to the newest schema, one migration per transaction.

    Raises StoreError when it was written by a newer meta-watcher; sqlite3.Error otherwise.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"database {path} was written by a newer meta-watcher "
            f"(schema {version}, this one knows {len(MIGRATIONS)})"
        )
    # A new database gets one line, not one per migration; an upgrade logs each step.
    fresh, ran = version == 0, 0
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        with transaction(conn):
            # Another watcher starting at the same moment may have migrated meanwhile.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= number:
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        ran = number
        log.log(
            logging.DEBUG if fresh else logging.INFO,
            "database %s migrated to schema %d",
            path,
            number,
        )
    if fresh and ran:
        log.info("database %s created (schema %d)", path, ran)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT on *conn*, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def iso(value: datetime | None) -> str | None:
    """Format an aware datetime as ISO 8601 UTC with a ``Z``-free ``+00:00`` offset."""
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def ms(value: datetime) -> str:
    """Fixed-width ISO 8601 UTC with milliseconds, so text comparison in SQL is time order."""
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
