"""The transitions table (a mixin of Store): replaying an account's counted mail through
watcher.pipeline.status and writing what changed, including the accounts that an acceptance
covers in the same Accounts Center. Runs inside the transactions of watcher.store.store."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING

from watcher.clock import utc_now
from watcher.pipeline.status import Event, Transition, replay
from watcher.store.rows import COVERED_BY
from watcher.store.schema import iso

if TYPE_CHECKING:
    from watcher.pipeline.process import Outcome

log = logging.getLogger(__name__)

__all__ = ["COVERED_BY", "TransitionLog"]


class TransitionLog:
    """The Store's replay of accounts into ``transitions`` (a mixin: the Store provides
    ``_conn``)."""

    _conn: sqlite3.Connection

    def _replay_covered(self, outcome: Outcome) -> None:
        # An acceptance that covers the other accounts of its Accounts Center (fields
        # "covers", watcher.pipeline.process): they are replayed with it as their event.
        for other in (outcome.fields.get("covers") or "").split():
            platform, _, account = other.partition(":")
            for transition in self._replay_account(platform, account):
                log.info(
                    "status %s:%s %s -> %s (covered by the acceptance for %s:%s, same "
                    "Accounts Center)",
                    platform,
                    account,
                    transition.from_status or "(none)",
                    transition.to_status,
                    outcome.match.platform,
                    outcome.match.account,
                )

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
        # Acceptances of linked accounts that say they cover this one (same Accounts
        # Center); their transitions name the covering account as the rule:
        # "accounts-center:<platform>:<address>".
        me = f"{platform}:{account}"
        for row in self._conn.execute(
            "SELECT id, kind, mail_date, processed_at, platform, account, "
            "coalesce(message_id, sha256), json_extract(fields, '$.covers') FROM messages "
            "WHERE counted = 1 AND kind = 'objection_accepted' "
            "AND json_extract(fields, '$.covers') IS NOT NULL"
        ):
            if me in str(row[7]).split():
                events.append(
                    Event(
                        ref=row[0],
                        kind=row[1],
                        mail_at=datetime.fromisoformat(row[2] or row[3]),
                        rule_id=f"{COVERED_BY}{row[4]}:{row[5]}",
                        message_key=row[6],
                    )
                )
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
