"""Upgrading the SQLite log from every earlier schema version to the current one.

Each older database is built the way the release that had that schema built it: the Store's
own migration code, run with the migration list cut after version N (MIGRATIONS[:N]). Rows are
then written into every table that version has, and the current Store opens the file. What
must hold: the schema is the one a new database gets, every old row is still there unchanged
and readable through the Store's methods (status, log, cursors, outbox, heartbeats, raw
copies), the counts behind ``status`` see rows written before their indexes existed, the
upgraded log still records mail, and opening it again changes nothing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_corpus import CORPUS, SETTINGS

from watcher.config import package_file
from watcher.pipeline.process import process
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources.base import Cursor, RawMessage, SourceKey
from watcher.store import schema
from watcher.store.schema import MIGRATIONS
from watcher.store.store import Store

CURRENT = len(MIGRATIONS)
OLDER = range(1, CURRENT)  # every schema an earlier release wrote

IDENTITY = "carla@imap.example"
CARLA = "carla@example.org"
DAVID = "david@example.org"
RAW_UNRECOGNIZED = (
    b"From: Facebook <notification@facebookmail.com>\r\nTo: carla@example.org\r\n"
    b"Subject: Neues zu KI bei Meta\r\nMessage-ID: <unrecognized-6@facebookmail.com>\r\n\r\n"
    b"Eine Mitteilung in einem Wortlaut, den noch keine Regel kennt.\r\n"
)


def _rows(columns: tuple[str, ...], *values: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in values]


def _message(
    ref: int,
    kind: str,
    *,
    platform: str | None = "facebook",
    account: str | None = CARLA,
    mail_date: str | None,
    subject: str,
    authenticity: str = "pass",
    suspicious: int = 0,
    counted: int = 0,
    fields: dict[str, str] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "id": ref,
        "source": "carla",
        "identity": IDENTITY,
        "folder": "INBOX",
        "uidvalidity": 7,
        "uid": 100 + ref,
        "message_id": f"<{kind}-{ref}@facebookmail.com>",
        "sha256": f"{ref:064x}",
        "mail_date": mail_date,
        "date_source": "date",
        "sender": "Facebook <notification@facebookmail.com>",
        "subject": subject,
        "kind": kind,
        "platform": platform,
        "account": account,
        "language": "de",
        "authenticity": authenticity,
        "auth_reasons": json.dumps(["DKIM pass for facebookmail.com"]),
        "authserv_id": "mx.home.example" if authenticity == "pass" else None,
        "suspicious": suspicious,
        "counted": counted,
        "rule_id": f"{kind}.de" if kind not in ("other", "unrecognized") else None,
        "fields": json.dumps(fields or {}, sort_keys=True),
        "error": error,
        "processed_at": "2024-05-25T08:00:00+00:00",
    }


# What a log of each era holds: counted privacy mail of two accounts and the transitions it
# replays to, one mail of each kind `status` points out (suspicious, unrecognized, error,
# unverified), cursors, and (from schema 2) the outbox and heartbeats, (from schema 3) a raw copy.
ROWS: dict[str, list[dict[str, Any]]] = {
    "messages": [
        _message(
            1,
            "policy_update",
            mail_date="2024-05-22T10:00:00+00:00",
            subject="Wir informieren dich über KI bei Meta",
            counted=1,
            fields={"effective_date": "2024-06-26"},
        ),
        _message(
            2,
            "verification_code",
            mail_date="2024-05-23T09:00:00+00:00",
            subject="Dein Bestätigungscode lautet 48****",
            counted=1,
            fields={"code": "48****"},
        ),
        _message(
            3,
            "objection_accepted",
            mail_date="2024-05-24T11:30:00+00:00",
            subject="Wir werden deinem Widerspruch nachkommen",
            counted=1,
        ),
        _message(
            4,
            "policy_update",
            platform="instagram",
            account=DAVID,
            mail_date="2024-05-22T12:00:00+00:00",
            subject="We're updating our Privacy Policy",
            counted=1,
            fields={"effective_date": "2024-06-26"},
        ),
        _message(
            5,
            "policy_update",
            mail_date="2024-05-22T13:00:00+00:00",
            subject="KI bei Meta: jetzt widersprechen",
            authenticity="fail",
            suspicious=1,
        ),
        _message(
            6,
            "unrecognized",
            mail_date="2024-05-23T14:00:00+00:00",
            subject="Neues zu KI bei Meta",
        ),
        _message(
            7,
            "other",
            platform=None,
            account=None,
            mail_date=None,
            subject="Newsletter",
            error="message text is over 500000 characters: not read in full",
        ),
        _message(
            8,
            "objection_rejected",
            platform="instagram",
            account=DAVID,
            mail_date="2024-05-26T09:00:00+00:00",
            subject="Wir können deinem Widerspruch nicht nachkommen",
            authenticity="none",
        ),
    ],
    "transitions": _rows(
        ("id", "platform", "account", "seq", "from_status", "to_status", "mail_date",
         "recorded_at", "message_ref", "rule_id"),
        (1, "facebook", CARLA, 0, None, "notified", "2024-05-22T10:00:00+00:00",
         "2024-05-25T08:00:00+00:00", 1, "policy_update.de"),
        (2, "facebook", CARLA, 1, "notified", "code_received", "2024-05-23T09:00:00+00:00",
         "2024-05-25T08:00:00+00:00", 2, "verification_code.de"),
        (3, "facebook", CARLA, 2, "code_received", "accepted", "2024-05-24T11:30:00+00:00",
         "2024-05-25T08:00:00+00:00", 3, "objection_accepted.de"),
        (4, "instagram", DAVID, 0, None, "notified", "2024-05-22T12:00:00+00:00",
         "2024-05-25T08:00:00+00:00", 4, "policy_update.de"),
    ),
    "cursors": _rows(
        ("identity", "folder", "uidvalidity", "last_uid", "updated_at"),
        (IDENTITY, "INBOX", 7, 108, "2024-05-26T09:05:00+00:00"),
        ("/home/carla/Mail/meta.mbox", "", 0, 3, "2024-05-26T09:05:00+00:00"),
    ),
    "outbox": _rows(
        ("id", "dedupe_key", "target", "event", "title", "body", "secret", "message_ref",
         "state", "attempts", "next_attempt_at", "last_error", "created_at", "sent_at"),
        (1, "message:2", "ntfy", "verification_code", "Facebook: code 48****",
         "Code for carla@example.org: 48****", "482913", 2, "pending", 2,
         "2024-05-23T09:10:00.000+00:00", "HTTP 502", "2024-05-23T09:01:00.000+00:00", None),
        (2, "message:3", "ntfy", "objection_accepted", "Facebook: objection accepted",
         "carla@example.org", None, 3, "sent", 1, "2024-05-24T11:31:00.000+00:00", None,
         "2024-05-24T11:31:00.000+00:00", "2024-05-24T11:31:02.000+00:00"),
    ),
    "heartbeats": _rows(
        ("worker", "state", "detail", "beat_at", "stale_after_seconds", "pid"),
        (f"{IDENTITY}/INBOX", "ok", None, "2024-05-26T09:05:00.000+00:00", 900.0, 4242),
    ),
    "raw_messages": _rows(
        ("message_ref", "raw", "kept_at", "rechecked_at"),
        (6, RAW_UNRECOGNIZED, "2024-05-25T08:00:00+00:00", None),
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def build_old_database(path: Path, version: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Create *path* at schema *version* with the Store's own migration code, as the release
    with that schema did: watcher.store.schema.migrate reads the module-level MIGRATIONS, which
    is cut after *version* for the call, then write ROWS into every table that schema has."""
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", MIGRATIONS[:version])
        Store.open(path).close()
    conn = sqlite3.connect(path)
    try:
        # The cut took effect: this really is the older schema, not the current one.
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        for table, rows in ROWS.items():
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if not columns:
                continue  # a table a later migration adds
            for row in rows:
                names = [name for name in row if name in columns]
                conn.execute(
                    f"INSERT INTO {table} ({', '.join(names)}) "
                    f"VALUES ({', '.join('?' for _ in names)})",
                    [row[name] for name in names],
                )
        conn.commit()
    finally:
        conn.close()


def tables_of(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows}


def schema_of(path: Path) -> list[tuple[str, str, str, str]]:
    """Every table, index and view with its SQL, by name."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
    finally:
        conn.close()
    return [tuple(row) for row in rows]


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a fixed order (by their repr: rows mix NULL, text, blobs)."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in tables
        }
    finally:
        conn.close()


def migration_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "migrated to schema" in r.getMessage()]


@pytest.mark.parametrize("version", OLDER)
def test_older_schema_upgrades_with_rows_intact_and_readable(
    version: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "log.sqlite3"
    build_old_database(path, version, monkeypatch)
    old_tables = tables_of(path)
    before = dump(path)
    Store.open(tmp_path / "fresh.sqlite3").close()

    caplog.set_level(logging.INFO, logger="watcher.store")
    caplog.clear()
    with Store.open(path) as store:
        assert store.query("PRAGMA user_version")[0][0] == CURRENT

        # The log as `status` and `log` show it.
        assert [(r.platform, r.account, r.status, r.since, r.message_id) for r in
                store.current_status()] == [
            ("facebook", CARLA, "accepted", "2024-05-24T11:30:00+00:00",
             "<objection_accepted-3@facebookmail.com>"),
            ("instagram", DAVID, "notified", "2024-05-22T12:00:00+00:00",
             "<policy_update-4@facebookmail.com>"),
        ]  # fmt: skip
        assert [(r.account, r.from_status, r.to_status, r.subject) for r in
                store.transitions()] == [
            (CARLA, None, "notified", "Wir informieren dich über KI bei Meta"),
            (DAVID, None, "notified", "We're updating our Privacy Policy"),
            (CARLA, "notified", "code_received", "Dein Bestätigungscode lautet 48****"),
            (CARLA, "code_received", "accepted", "Wir werden deinem Widerspruch nachkommen"),
        ]  # fmt: skip
        # Counted from partial indexes that later migrations built over these old rows.
        assert store.needs_attention() == {
            "suspicious": 1,
            "unrecognized": 1,
            "error": 1,
            "unverified": 1,
        }
        assert [(m.kind, m.fields) for m in store.report_mails(CARLA)] == [
            ("policy_update", {"effective_date": "2024-06-26"}),
            ("policy_update", {}),
            ("verification_code", {"code": "48****"}),
            ("unrecognized", {}),
            ("objection_accepted", {}),
        ]
        assert [(c.account, c.kind, c.effective_date) for c in store.counted_mail()] == [
            (CARLA, "policy_update", "2024-06-26"),
            (DAVID, "policy_update", "2024-06-26"),
            (CARLA, "verification_code", None),
            (CARLA, "objection_accepted", None),
        ]

        # Where scanning resumes, and what is not fetched twice.
        assert store.cursor(IDENTITY, "INBOX") == Cursor(7, 108)
        assert store.cursor("/home/carla/Mail/meta.mbox", "") == Cursor(0, 3)
        assert store.already_recorded(IDENTITY, "<objection_accepted-3@facebookmail.com>", "x")
        assert store.count("messages") == len(ROWS["messages"])

        # The daemon's tables: kept when the old schema had them, empty and usable if not.
        far_future = datetime(2100, 1, 1, tzinfo=UTC)
        pending = store.due_notifications(far_future)
        beats = store.heartbeats()
        if "outbox" in old_tables:
            assert [(n.id, n.event, n.secret, n.attempts) for n in pending] == [
                (1, "verification_code", "482913", 2)
            ]
            assert store.next_notification_at() == datetime(2024, 5, 23, 9, 10, tzinfo=UTC)
            assert list(beats) == [f"{IDENTITY}/INBOX"]
            assert beats[f"{IDENTITY}/INBOX"].pid == 4242
        else:
            assert pending == []
            assert beats == {}
        kept = store.kept_messages()
        if "raw_messages" in old_tables:
            assert [(k.id, k.kind, k.raw) for k in kept] == [(6, "unrecognized", RAW_UNRECOGNIZED)]
            assert store.uncopied_count() == 1  # the suspicious mail
        else:
            assert kept == []
            assert store.uncopied_count() == 2  # recorded before copies were kept

    # Every migration after the old version ran once, in order; nothing else changed.
    assert migration_log(caplog) == [
        f"database {path} migrated to schema {n}" for n in range(version + 1, CURRENT + 1)
    ]
    assert schema_of(path) == schema_of(tmp_path / "fresh.sqlite3")
    after = dump(path)
    assert {table: after[table] for table in before} == before
    assert all(after[table] == [] for table in after.keys() - before.keys())

    # Opening again is a no-op: no migration, same schema, same rows.
    caplog.clear()
    Store.open(path).close()
    assert migration_log(caplog) == []
    assert schema_of(path) == schema_of(tmp_path / "fresh.sqlite3")
    assert dump(path) == after


@pytest.mark.parametrize("version", OLDER)
def test_upgraded_log_records_new_mail_and_moves_cursors(
    version: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pack: RulePack
) -> None:
    path = tmp_path / "log.sqlite3"
    build_old_database(path, version, monkeypatch)
    raw = RawMessage(
        SourceKey("carla", IDENTITY, "INBOX", 7, 109),
        (CORPUS / "de-2024-policy-facebook.eml").read_bytes(),
    )
    with Store.open(path) as store:
        added = store.record(process(raw, pack, SETTINGS), Cursor(7, 109))
        store.beat(f"{IDENTITY}/INBOX", "ok", None, 600.0)
        assert [(t.from_status, t.to_status) for t in added] == [(None, "notified")]
    with Store.open(path) as store:
        statuses = {(r.platform, r.account): r.status for r in store.current_status()}
        assert statuses == {
            ("facebook", CARLA): "accepted",
            ("facebook", "anna.beispiel@example.org"): "notified",
            ("instagram", DAVID): "notified",
        }
        assert store.cursor(IDENTITY, "INBOX") == Cursor(7, 109)
        assert store.count("messages") == len(ROWS["messages"]) + 1
        assert store.heartbeats()[f"{IDENTITY}/INBOX"].stale_after_seconds == 600.0
