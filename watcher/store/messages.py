"""The messages table's writes (a mixin of Store): whether an account already has a mail,
inserting a classified mail, keeping its raw copy, rewriting its classification after
``reclassify``, and whether another watched mailbox already holds it. Runs inside the
transactions that watcher.store.store opens; what to keep is decided by
watcher.pipeline.evidence."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from watcher.clock import utc_now
from watcher.kinds import CODE_KINDS
from watcher.pipeline.evidence import stored_fields, stored_subject
from watcher.store.schema import iso

if TYPE_CHECKING:
    from watcher.pipeline.process import Outcome


class MessageLog:
    """The Store's writes to ``messages`` and ``raw_messages`` (a mixin: the Store provides
    ``_conn`` and ``_store_codes``)."""

    _conn: sqlite3.Connection
    _store_codes: bool

    def already_recorded(self, identity: str, message_id: str | None, sha256: str) -> bool:
        """True when this account already has this mail: same Message-ID, else same content
        hash (a re-upload, a copy in another folder, or a rescan after UIDVALIDITY changed)."""
        if message_id:
            sql = "SELECT 1 FROM messages WHERE identity = ? AND message_id = ? LIMIT 1"
            if self._conn.execute(sql, (identity, message_id)).fetchone():
                return True
        sql = "SELECT 1 FROM messages WHERE identity = ? AND sha256 = ? LIMIT 1"
        return self._conn.execute(sql, (identity, sha256)).fetchone() is not None

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
        fields = stored_fields(outcome, self._store_codes)
        subject = stored_subject(outcome, self._store_codes)
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

    def _keep_raw(self, message_ref: int, outcome: Outcome) -> None:
        assert outcome.raw is not None
        self._conn.execute(
            "INSERT INTO raw_messages (message_ref, raw, kept_at) VALUES (?, ?, ?) "
            "ON CONFLICT (message_ref) DO NOTHING",
            (message_ref, outcome.raw, iso(utc_now())),
        )

    def _reclassify_row(self, message_ref: int, outcome: Outcome) -> None:
        """Overwrite the classification of message *message_ref* with *outcome*'s; a mail that
        is now a verification-code mail loses its raw copy, any other is marked rechecked."""
        match, verdict = outcome.match, outcome.verdict
        fields = stored_fields(outcome, self._store_codes)
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
        if match.kind in CODE_KINDS:
            sql = "DELETE FROM raw_messages WHERE message_ref = ?"
            self._conn.execute(sql, (message_ref,))
        else:
            self._conn.execute(
                "UPDATE raw_messages SET rechecked_at = ? WHERE message_ref = ?",
                (iso(utc_now()), message_ref),
            )
