"""The SQLite log on real files: one transaction per message, replay, cursors, masking."""

from __future__ import annotations

import json
import random
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_corpus import CORPUS, MANIFEST, SETTINGS
from test_imap_integration import EXPECTED_STATUS

from watcher.config import package_file
from watcher.daemon.ingest import RunReport, ingest
from watcher.errors import LockedError
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources.base import Cursor, RawMessage, SourceKey
from watcher.store.schema import MIGRATIONS
from watcher.store.store import Store


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def corpus_messages() -> list[RawMessage]:
    names = sorted(MANIFEST["messages"])
    # INTERNALDATE stands in for the missing Date of no-date-header-code.eml.
    arrived_at = datetime(2024, 6, 5, 9, 0, tzinfo=UTC)
    return [
        RawMessage(
            SourceKey("home", "me@imap.test", "INBOX", 7, uid),
            (CORPUS / name).read_bytes(),
            arrived_at,
        )
        for uid, name in enumerate(names, start=1)
    ]


def snapshot(store: Store) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    statuses = [(r.platform, r.account, r.status, r.since) for r in store.current_status()]
    log = [
        (r.platform, r.account, r.from_status or "", r.to_status, r.mail_date, r.message_id or "")
        for r in store.transitions()
    ]
    return statuses, log


def test_statuses_the_corpus_implies(tmp_path: Path, pack: RulePack) -> None:
    with Store.open(tmp_path / "log.sqlite3") as store:
        ingest(store, pack, SETTINGS, corpus_messages(), RunReport())
        status = {(r.platform, r.account): r.status for r in store.current_status()}
    assert status == EXPECTED_STATUS


def test_processing_order_does_not_change_statuses_or_log(tmp_path: Path, pack: RulePack) -> None:
    messages = corpus_messages()
    with Store.open(tmp_path / "a.sqlite3") as store:
        ingest(store, pack, SETTINGS, messages, RunReport())
        reference = snapshot(store)
    rng = random.Random(20240626)
    for attempt in range(5):
        shuffled = messages[:]
        rng.shuffle(shuffled)
        with Store.open(tmp_path / f"b{attempt}.sqlite3") as store:
            ingest(store, pack, SETTINGS, shuffled, RunReport())
            assert snapshot(store) == reference


def test_suspicious_and_unrecognized_mail_is_recorded_but_changes_no_status(
    tmp_path: Path, pack: RulePack
) -> None:
    names = ["spoof-forged-authentication-results.eml", "unrecognized-meta-privacy-mail.eml"]
    messages = [
        RawMessage(SourceKey("home", "me@imap.test", "INBOX", 1, n), (CORPUS / name).read_bytes())
        for n, name in enumerate(names, start=1)
    ]
    with Store.open(tmp_path / "log.sqlite3") as store:
        ingest(store, pack, SETTINGS, messages, RunReport())
        rows = store.query(
            "SELECT kind, suspicious, counted, auth_reasons FROM messages ORDER BY uid"
        )
        assert [(r["kind"], r["suspicious"], r["counted"]) for r in rows] == [
            ("objection_accepted", 1, 0),
            ("unrecognized", 0, 0),
        ]
        assert "dmarc=fail" in json.loads(rows[0]["auth_reasons"])[0]
        assert store.current_status() == []


def test_same_mail_under_a_new_uid_is_not_processed_twice(tmp_path: Path, pack: RulePack) -> None:
    raw = (CORPUS / "de-2024-code-facebook.eml").read_bytes()
    first = RawMessage(SourceKey("home", "me@imap.test", "INBOX", 1, 5), raw)
    reupload = RawMessage(SourceKey("home", "me@imap.test", "INBOX", 2, 1), raw)
    with Store.open(tmp_path / "log.sqlite3") as store:
        report = RunReport()
        ingest(store, pack, SETTINGS, [first, reupload], report)
        assert (report.recorded, report.duplicates) == (1, 1)
        assert store.count("messages") == 1
        assert store.count("transitions") == 1


def test_verification_code_is_masked_in_the_database(tmp_path: Path, pack: RulePack) -> None:
    raw = RawMessage(
        SourceKey("home", "me@imap.test", "INBOX", 1, 1),
        (CORPUS / "de-2024-code-facebook.eml").read_bytes(),
    )
    path = tmp_path / "log.sqlite3"
    with Store.open(path) as store:
        ingest(store, pack, SETTINGS, [raw], RunReport())
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert "48****" in dump
    assert "482913" not in dump


def test_store_codes_keeps_the_code_when_asked(tmp_path: Path, pack: RulePack) -> None:
    raw = RawMessage(
        SourceKey("home", "me@imap.test", "INBOX", 1, 1),
        (CORPUS / "de-2024-code-facebook.eml").read_bytes(),
    )
    with Store.open(tmp_path / "log.sqlite3", store_codes=True) as store:
        ingest(store, pack, SETTINGS, [raw], RunReport())
        assert json.loads(store.query("SELECT fields FROM messages")[0]["fields"]) == {
            "code": "482913"
        }


def test_database_is_created_private_and_strict(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "log.sqlite3"
    Store.open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    with pytest.raises(sqlite3.IntegrityError):
        # STRICT: a text UIDVALIDITY is refused, not silently stored.
        conn.execute(
            "INSERT INTO cursors (identity, folder, uidvalidity, last_uid, updated_at) "
            "VALUES ('a', 'INBOX', 'not a number', 1, 'now')"
        )


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    with Store.open(path) as store:
        store.move_cursor("me@imap.test", "INBOX", Cursor(3, 42))
    with Store.open(path) as store:
        assert store.cursor("me@imap.test", "INBOX") == Cursor(3, 42)


def test_second_run_lock_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite3"
    with Store.open(path) as first, Store.open(path) as second:
        first.acquire_run_lock()
        with pytest.raises(LockedError, match="already processing mail"):
            second.acquire_run_lock()


def test_current_status_view_is_readable_with_plain_sql(tmp_path: Path, pack: RulePack) -> None:
    path = tmp_path / "log.sqlite3"
    with Store.open(path) as store:
        ingest(store, pack, SETTINGS, corpus_messages(), RunReport())
    rows = (
        sqlite3.connect(path)
        .execute(
            "SELECT platform, account, status FROM current_status WHERE account = ?",
            ("anna.insta@example.org",),
        )
        .fetchall()
    )
    assert rows == [("instagram", "anna.insta@example.org", "accepted")]
