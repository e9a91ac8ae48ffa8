"""The notification outbox: rows written in the transaction of the message that caused them
(or on their own, for reminders and login failures), drained after commit by the sender
(watcher.notify.apprise), retried until sent or dropped.

Each (dedupe_key, target) is stored once, so planning a notification twice sends it once; the
full code (``secret``) is erased once a notification is delivered or dropped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from watcher.clock import utc_now
from watcher.errors import StoreError
from watcher.store.rows import OutboxEntry, OutboxItem, OutboxRow
from watcher.store.schema import ms, transaction


def insert_outbox(
    conn: sqlite3.Connection, items: Iterable[OutboxItem], message_ref: int | None
) -> int:
    """Write *items* (caused by message *message_ref*, if any) inside the caller's
    transaction; an item whose (dedupe_key, target) is already there is skipped. Returns how
    many were added."""
    now = ms(utc_now())
    added = 0
    for item in items:
        cur = conn.execute(
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


class OutboxTable:
    """The Store's outbox methods (a mixin: the Store provides ``_conn`` and ``path``)."""

    _conn: sqlite3.Connection
    path: Path

    def add_notifications(self, items: Iterable[OutboxItem]) -> int:
        """Write notifications not caused by a message (reminders, login failures); an item
        whose (dedupe_key, target) is already in the outbox is skipped. Returns how many were
        added."""
        try:
            with transaction(self._conn):
                return insert_outbox(self._conn, items, None)
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path}: cannot write the outbox: {exc}") from None

    def due_notifications(self, now: datetime, limit: int = 100) -> list[OutboxRow]:
        """Pending notifications whose next attempt is due at *now*, oldest first."""
        rows = self._conn.execute(
            "SELECT id, dedupe_key, target, event, title, body, secret, attempts, created_at "
            "FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (ms(now), limit),
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
        with transaction(self._conn):
            self._conn.execute(
                "UPDATE outbox SET state = 'sent', secret = NULL, sent_at = ?, "
                "attempts = attempts + 1, last_error = NULL WHERE id = ?",
                (ms(utc_now()), outbox_id),
            )

    def notification_failed(self, outbox_id: int, error: str, retry_in_seconds: float) -> None:
        """Count a failed attempt; try again in *retry_in_seconds*. *error*: one sentence."""
        with transaction(self._conn):
            self._conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                "next_attempt_at = ? WHERE id = ?",
                (error, ms(utc_now() + timedelta(seconds=retry_in_seconds)), outbox_id),
            )

    def notification_dropped(self, outbox_id: int, reason: str) -> None:
        """Give a notification up (target removed from the config, too old); erase its code."""
        with transaction(self._conn):
            self._conn.execute(
                "UPDATE outbox SET state = 'dropped', secret = NULL, last_error = ? WHERE id = ?",
                (reason, outbox_id),
            )

    def outbox_entries(self, include_sent: bool = False) -> list[OutboxEntry]:
        """Pending and dropped notifications (and delivered ones with *include_sent*), oldest
        first, for ``meta-watcher outbox``."""
        sql = (
            "SELECT id, target, event, title, state, attempts, last_error, next_attempt_at, "
            "created_at FROM outbox WHERE state != 'sent' OR ? ORDER BY id"
        )
        return [
            OutboxEntry(
                id=row[0],
                target=row[1],
                event=row[2],
                title=row[3],
                state=row[4],
                attempts=row[5],
                last_error=row[6],
                next_attempt_at=datetime.fromisoformat(row[7]),
                created_at=datetime.fromisoformat(row[8]),
            )
            for row in self._conn.execute(sql, (int(include_sent),)).fetchall()
        ]

    def retry_notifications(self, outbox_id: int | None = None) -> int:
        """Make pending notifications due now (only *outbox_id* when given; a dropped one is
        queued again, its seven days to delivery counting anew). Returns how many rows changed;
        0 when *outbox_id* is unknown or already sent."""
        now = ms(utc_now())
        with transaction(self._conn):
            if outbox_id is None:
                cur = self._conn.execute(
                    "UPDATE outbox SET next_attempt_at = ? WHERE state = 'pending'", (now,)
                )
            else:
                cur = self._conn.execute(
                    "UPDATE outbox SET next_attempt_at = ?, state = 'pending', created_at = "
                    "CASE WHEN state = 'dropped' THEN ? ELSE created_at END "
                    "WHERE id = ? AND state != 'sent'",
                    (now, now, outbox_id),
                )
            return int(cur.rowcount)

    def outbox_state(self, outbox_id: int) -> str | None:
        """The state of outbox row *outbox_id* (pending, sent, dropped), None when unknown."""
        row = self._conn.execute("SELECT state FROM outbox WHERE id = ?", (outbox_id,)).fetchone()
        return str(row[0]) if row else None
