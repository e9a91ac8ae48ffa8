"""What the store reads back: statuses, transitions, the mail a report or a person should
see, kept raw copies, and workers' heartbeats (a mixin of Store; the SQL of the queries)."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from watcher.clock import utc_now
from watcher.store.rows import (
    CountedMail,
    Heartbeat,
    KeptMessage,
    MailRow,
    StatusRow,
    TransitionRow,
    kept_from_row,
    mail_from_row,
)
from watcher.store.schema import connect, ms, transaction

_KEPT_SQL = (
    "SELECT m.id, m.source, m.identity, m.folder, m.uidvalidity, m.uid, m.subject, m.kind, "
    "m.platform, m.account, m.rule_id, m.suspicious, m.counted, m.fields, m.mail_date, "
    "m.date_source, r.raw FROM raw_messages r JOIN messages m ON m.id = r.message_ref"
)


class Queries:
    """The Store's reading methods and heartbeats (a mixin: the Store provides ``_conn``)."""

    _conn: sqlite3.Connection
    path: Path

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
        return [mail_from_row(row) for row in rows.fetchall()]

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

    def known_accounts(self) -> list[str]:
        """The Meta account addresses that recorded privacy mail names (any kind but
        ``other``), sorted; for "did you mean" lists of ``report`` and ``wait-code``."""
        rows = self._conn.execute(
            "SELECT DISTINCT account FROM messages WHERE account IS NOT NULL AND kind != 'other' "
            "ORDER BY account"
        ).fetchall()
        return [str(row[0]) for row in rows]

    def next_step_facts(self) -> dict[tuple[str, str], dict[str, str | None]]:
        """Per (platform, account), what ``status`` needs for its NEXT STEP column, from the
        counted mail: ``effective_date`` and ``form_link`` of the newest policy notice and
        ``newest_code_at`` (ISO 8601 UTC) of the newest code mail."""
        rows = self._conn.execute(
            "SELECT platform, account, kind, coalesce(mail_date, processed_at), "
            "json_extract(fields, '$.effective_date'), json_extract(fields, '$.form_link') "
            "FROM messages WHERE counted = 1 AND kind IN ('policy_update', 'verification_code') "
            "ORDER BY 4, id"
        ).fetchall()
        facts: dict[tuple[str, str], dict[str, str | None]] = {}
        for platform, account, kind, mail_at, effective, link in rows:
            mine = facts.setdefault((platform, account), {})
            if kind == "policy_update":
                mine["effective_date"], mine["form_link"] = effective, link
            else:
                mine["newest_code_at"] = mail_at
        return facts

    def has_message(self, message_ref: int) -> bool:
        """True when the messages table has a row with id *message_ref*."""
        sql = "SELECT 1 FROM messages WHERE id = ?"
        return self._conn.execute(sql, (message_ref,)).fetchone() is not None

    def kept_message(self, message_ref: int) -> KeptMessage | None:
        """The message with id *message_ref* and its raw copy; None when no copy is kept."""
        row = self._conn.execute(_KEPT_SQL + " WHERE m.id = ?", (message_ref,)).fetchone()
        return kept_from_row(row) if row is not None else None

    def kept_messages(self) -> list[KeptMessage]:
        """Every message whose raw copy is kept, in the order they were recorded."""
        return [kept_from_row(row) for row in self._conn.execute(_KEPT_SQL + " ORDER BY m.id")]

    def uncopied_count(self) -> int:
        """How many unrecognized or suspicious messages have no raw copy (recorded before
        copies were kept, or holding a code-like number): reclassify cannot rerun those."""
        row = self._conn.execute(
            "SELECT count(*) FROM messages m WHERE (m.kind = 'unrecognized' OR m.suspicious = 1) "
            "AND NOT EXISTS (SELECT 1 FROM raw_messages r WHERE r.message_ref = m.id)"
        ).fetchone()
        return int(row[0])

    def beat(self, worker: str, state: str, detail: str | None, stale_after_seconds: float) -> None:
        """Record that *worker* is alive in *state* (``ok`` when all is well)."""
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO heartbeats (worker, state, detail, beat_at, stale_after_seconds, pid) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (worker) DO UPDATE SET "
                "state = excluded.state, detail = excluded.detail, beat_at = excluded.beat_at, "
                "stale_after_seconds = excluded.stale_after_seconds, pid = excluded.pid",
                (worker, state, detail, ms(utc_now()), stale_after_seconds, os.getpid()),
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


class Reader(Queries):
    """The log opened for reading only what :class:`Queries` reads (``status``, ``log``):
    the same database as :class:`watcher.store.store.Store`, without its recording side, so
    these commands start without importing it. Use :meth:`open`; close with :meth:`close` or
    ``with``."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Reader:
        """Open (and migrate, as Store.open does) the database at *path*. Raises StoreError."""
        return cls(connect(path), path)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
