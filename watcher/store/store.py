"""The SQLite log: the only package with SQL. This module opens the database (connection,
run lock, transactions, cursors) and records messages: a message, the transitions it causes,
its notifications and the cursor move commit in one transaction, so a crash at any point
leaves either all of it or none of it. The rows themselves are written by the mixins in
messages.py (the messages table) and transitions.py (replaying accounts).

The store writes what it is given: what to keep of a message is decided by
watcher.pipeline.evidence, and which notifications a message causes by the caller, who plans
them inside the open transaction (:meth:`Store.recording`) from the transitions it reports.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.clock import utc_now
from watcher.crashpoint import crash_point
from watcher.errors import LockedError, StoreError
from watcher.pipeline.evidence import keeps_raw
from watcher.pipeline.status import Transition
from watcher.sources.base import Cursor
from watcher.store.messages import MessageLog
from watcher.store.outbox import OutboxTable, insert_outbox
from watcher.store.queries import Queries
from watcher.store.rows import OutboxItem
from watcher.store.schema import connect, iso, transaction
from watcher.store.transitions import TransitionLog

if TYPE_CHECKING:
    from watcher.pipeline.process import Outcome

log = logging.getLogger(__name__)

# Imported from here by watcher.cli.status (see watcher.store.transitions).
__all__ = ["Recording", "Store"]


class Recording:
    """A message being recorded, inside its transaction (see :meth:`Store.recording`).

    ``ref`` is its messages-table id (None when nothing was inserted: not worth keeping, or
    already recorded at that place), ``transitions`` the status changes it caused.
    :meth:`notify` writes notifications into the same transaction.
    """

    def __init__(
        self, store: Store, outcome: Outcome, ref: int | None, transitions: list[Transition]
    ) -> None:
        self._store = store
        self._outcome = outcome
        self.ref = ref
        self.transitions = transitions

    @functools.cached_property
    def announce(self) -> bool:
        """True when the message is new here and no other watched mailbox already holds it
        (a copy is recorded as evidence but not announced again)."""
        return self.ref is not None and not self._store._copy_seen_elsewhere(
            self.ref, self._outcome
        )

    def notify(self, items: Iterable[OutboxItem]) -> int:
        """Write *items* to the outbox with this message, when it is to be announced.
        Returns how many were added."""
        if not self.announce:
            return 0
        return insert_outbox(self._store._conn, items, self.ref)


class Store(OutboxTable, Queries, MessageLog, TransitionLog):
    """An open SQLite log. Use :meth:`open`; close with :meth:`close` or ``with``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, store_codes: bool) -> None:
        self._conn = conn
        self.path = path
        self._store_codes = store_codes
        self._lock_fd: int | None = None

    @classmethod
    def open(cls, path: Path, store_codes: bool = False) -> Store:
        """Open (creating 0600 if needed) and migrate the database at *path*.

        Raises StoreError with the path when it cannot be created, opened or migrated.
        """
        return cls(connect(path), path, store_codes)

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

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        return transaction(self._conn)

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

    # ------------------------------------------------------------------ recording

    @contextlib.contextmanager
    def recording(self, outcome: Outcome, cursor: Cursor | None = None) -> Iterator[Recording]:
        """Record *outcome* (when worth keeping), replay its account and move the cursor, in
        one transaction that stays open while the caller adds notifications
        (``Recording.notify``); it commits when the ``with`` block ends, or rolls back when
        the block raises. Raises StoreError on a database error."""
        key = outcome.key
        try:
            with self.transaction():
                ref: int | None = None
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
                        self._replay_covered(outcome)
                if cursor is not None:
                    self._set_cursor(key.identity, key.folder, cursor)
                yield Recording(self, outcome, ref, added)
                crash_point("commit")
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path}: cannot record {key.label()}: {exc}") from None
        crash_point("committed")

    def record(self, outcome: Outcome, cursor: Cursor | None = None) -> list[Transition]:
        """:meth:`recording` without notifications; returns the transitions added."""
        with self.recording(outcome, cursor) as done:
            return done.transitions

    # ------------------------------------------------------------------ reclassifying

    @contextlib.contextmanager
    def reclassifying(self, message_ref: int, outcome: Outcome) -> Iterator[Recording]:
        """Store *outcome*, the current rules' verdict on the kept message *message_ref*, in
        place of its old classification, and replay the accounts it leaves or joins: one
        transaction, open while the caller adds notifications (like :meth:`recording`). A
        message that is now a verification-code mail loses its raw copy (the code stays
        masked in ``fields``). Raises StoreError."""
        match = outcome.match
        try:
            with self.transaction():
                old = self._conn.execute(
                    "SELECT platform, account, counted FROM messages WHERE id = ?",
                    (message_ref,),
                ).fetchone()
                if old is None:
                    raise StoreError(f"database {self.path} has no message {message_ref}")
                self._reclassify_row(message_ref, outcome)
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
                recording = Recording(self, outcome, message_ref, added)
                recording.announce = True  # reclassified: announced like new mail
                yield recording
        except sqlite3.Error as exc:
            raise StoreError(
                f"database {self.path}: cannot reclassify message {message_ref}: {exc}"
            ) from None

    def reclassify(self, message_ref: int, outcome: Outcome) -> list[Transition]:
        """:meth:`reclassifying` without notifications; returns the transitions added."""
        with self.reclassifying(message_ref, outcome) as done:
            return done.transitions
