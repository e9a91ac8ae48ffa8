"""`meta-watcher report`: the evidence timeline in md, html, csv and json, and the originals."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from daemonproc import run_in_process
from dovecot import DovecotServer
from test_corpus import CORPUS, MANIFEST

from watcher.report.objections import build_report
from watcher.report.render import render
from watcher.store.store import Store

TRUSTED = MANIFEST["trusted_authserv_ids"]


def mw(*args: str, expect: int = 0) -> Result:
    """`meta-watcher ARGS` in this process, without the test environment's META_WATCHER_*
    settings; fails the test on another exit code than *expect*."""
    env = {k: None for k in os.environ if k.startswith("META_WATCHER")}
    return run_in_process(*args, env=env, expect=expect)


def mw_process(*args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    """`python -m watcher ARGS` as a user runs it (the exit status of a real process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_WATCHER")}
    done = subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def write_config(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "config.yaml"
    data = {"database": str(tmp_path / "log.sqlite3"), "trusted_authserv_ids": TRUSTED, **extra}
    path.write_text(yaml.safe_dump(data))
    return path


def variant(name: str, date: str, message_id: str, subject_suffix: str = "") -> bytes:
    """A corpus mail with another Date and Message-ID (and optionally a longer Subject)."""
    raw = (CORPUS / name).read_bytes()
    raw = re.sub(rb"(?m)^Date: .*$", f"Date: {date}".encode(), raw, count=1)
    raw = re.sub(rb"(?m)^Message-ID: .*$", f"Message-ID: <{message_id}>".encode(), raw, count=1)
    if subject_suffix:
        raw = re.sub(
            rb"(?m)^(Subject:.*(?:\r?\n[ \t].*)*)$",
            lambda m: m[1].rstrip(b"\r") + subject_suffix.encode(),
            raw,
            count=1,
        )
    return raw


def scan(config: Path, tmp_path: Path, folder: Path) -> None:
    files = [str(p) for p in sorted(folder.glob("*.eml"))]
    mw("scan", "--config", str(config), "--db", str(tmp_path / "log.sqlite3"), *files)


@pytest.fixture
def corpus_db(tmp_path: Path) -> Path:
    """The whole corpus scanned into a database, as `scan --db` records it."""
    config = write_config(tmp_path)
    files = [str(p) for p in sorted(CORPUS.glob("*.eml"))]
    mw("scan", "--config", str(config), "--db", str(tmp_path / "log.sqlite3"), *files)
    return config


def test_markdown_report_lists_each_accounts_mails_verdicts_and_deadline(
    corpus_db: Path,
) -> None:
    out = mw("report", "--config", str(corpus_db), "--account", "anna.beispiel@example.org").stdout
    assert out.count("\n## ") == 1
    assert "## Facebook — anna.beispiel@example.org" in out
    assert "- Current status: accepted (since 2024-06-03)" in out
    assert "- Effective date of Meta's policy: 2024-06-26" in out
    # The objection: code mail 3 June 2024, answer due one month later, answered the same day.
    assert (
        "| 2024-06-03 | yes (2024-06-26) | 2024-07-03 | objection accepted | 2024-06-03 | "
        "answered in time |"
    ) in out
    # Every mail with Message-ID and the server its verdict rests on; spoofs are marked.
    # Values written by the sender are code spans: no link or HTML can start in them.
    assert "`<7f34310d-987d-11ef-af80-9c18cea208af@facebookmail.com>`" in out
    assert "pass (Authentication-Results of mx.home.example)" in out
    assert out.count("SUSPICIOUS: failed authenticity, not counted") == 2
    assert "FAILED at mx.home.example: sender domain meta-support-center.com" in out
    assert "| notified | code_received | `Dein Bestätigungscode für deine Anfrage` |" in out


def test_all_formats_carry_the_same_timeline(corpus_db: Path) -> None:
    outputs = {
        fmt: mw("report", "--config", str(corpus_db), "--format", fmt).stdout
        for fmt in ("md", "html", "csv", "json")
    }
    data = json.loads(outputs["json"])
    rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    mails = [(a["account"], m) for a in data["accounts"] for m in a["mails"]]
    assert len(rows) == len(mails) > 15
    assert {r["message_id"] for r in rows} == {m["message_id"] or "" for _, m in mails}
    for account in data["accounts"]:
        assert account["account"] in outputs["md"]
        assert account["account"] in outputs["html"]
        for transition in account["transitions"]:
            assert transition["message_id"] in {m["message_id"] for m in account["mails"]}
    anna = next(a for a in data["accounts"] if a["account"] == "anna.insta@example.org")
    assert anna["objections"] == [
        {
            "objected_at": "2024-06-03T18:02:44+00:00",
            "objection_message_id": anna["objections"][0]["objection_message_id"],
            "effective_date": "2024-06-26",
            "before_effective_date": True,
            "answer_due_at": "2024-07-03T18:02:44+00:00",
            "answer_kind": "objection_accepted",
            "answer_message_id": anna["objections"][0]["answer_message_id"],
            "answered_at": "2024-06-03T18:41:09+00:00",
            "verdict": "in_time",
        }
    ]
    code_row = next(r for r in rows if r["kind"] == "verification_code" and "insta" in r["account"])
    assert code_row["answer_verdict"] == "in_time"
    assert code_row["status_change"] == "notified -> code_received"
    assert len(code_row["sha256"]) == 64


def test_late_overdue_and_pending_answers(tmp_path: Path) -> None:
    mails = tmp_path / "mails"
    mails.mkdir()
    (mails / "code.eml").write_bytes(
        variant("de-2024-code-facebook.eml", "Mon, 03 Jun 2024 11:02:44 -0700", "c1@fb")
    )
    (mails / "late.eml").write_bytes(
        variant("html-only-accepted-facebook.eml", "Mon, 15 Jul 2024 09:00:00 -0700", "a1@fb")
    )
    # No Date header: the report falls back to the file's time, set here to 1 March 2025.
    no_date = mails / "firma.eml"
    shutil.copy(CORPUS / "no-date-header-code.eml", no_date)
    march = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()
    os.utime(no_date, (march, march))
    config = write_config(tmp_path)
    scan(config, tmp_path, mails)

    with Store.open(tmp_path / "log.sqlite3") as store:
        later = build_report(store, now=datetime(2025, 6, 1, tzinfo=UTC))
        early = build_report(store, now=datetime(2025, 3, 20, tzinfo=UTC))
    verdicts = {a.account: [o.verdict for o in a.objections] for a in later.accounts}
    assert verdicts == {"anna.beispiel@example.org": ["late"], "firma@example.com": ["overdue"]}
    firma = next(a for a in early.accounts if a.account == "firma@example.com")
    assert [o.verdict for o in firma.objections] == ["pending"]
    assert firma.objections[0].due_at == datetime(2025, 4, 1, 12, 0, tzinfo=UTC)
    md = render(later, "md")
    assert "| 2024-06-03 | unknown (no effective date stated) | 2024-07-03 |" in md
    assert "answered late" in md
    assert "no answer within the month: overdue" in md


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_one_self_contained_escaped_printable_page(tmp_path: Path) -> None:
    mails = tmp_path / "mails"
    mails.mkdir()
    hostile = '<script>alert("x")</script><img src=https://tracker.example/p.gif>'
    (mails / "policy.eml").write_bytes(
        variant("de-2024-policy-facebook.eml", "Thu, 23 May 2024 03:14:07 -0700", "p@fb", hostile)
    )
    config = write_config(tmp_path)
    scan(config, tmp_path, mails)
    out = tmp_path / "report.html"
    mw("report", "--config", str(config), "--format", "html", "--output", str(out))
    page = out.read_text()
    parser = _Tags()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags
    assert "img" not in tags
    assert not [a for _, a in parser.tags if "src" in a or "href" in a]  # nothing external
    assert tags.count("style") == 1
    assert "@media print" in page
    assert "@page" in page
    assert hostile in "".join(parser.text)  # shown as text, exactly
    assert page.startswith("<!DOCTYPE html>")


def test_unknown_account_gives_an_empty_report_and_a_note(corpus_db: Path) -> None:
    done = mw("report", "--config", str(corpus_db), "--account", "nobody@example.org")
    assert "No Meta privacy mail has been recorded." in done.stdout
    assert "no Meta privacy mail recorded for nobody@example.org" in done.stderr


def _sums(folder: Path) -> dict[str, str]:
    lines = (folder / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ") for line in lines)}


def _flags(server: DovecotServer, user: str) -> dict[int, tuple[bytes, ...]]:
    with server.client(user) as client:
        client.select_folder("INBOX", readonly=True)
        return {u: tuple(sorted(f)) for u, f in client.get_flags(client.search(["ALL"])).items()}


def test_export_eml_fetches_the_originals_read_only_from_imap(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    names = [
        "de-2024-policy-facebook.eml",
        "de-2024-code-facebook.eml",
        "fb-friend-notification.eml",
    ]
    for name in names:
        dovecot.append(user, "INBOX", (CORPUS / name).read_bytes())
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    account = {
        "name": "home",
        "host": dovecot.host,
        "port": dovecot.port,
        "ca_file": str(dovecot.ca_file),
        "username": user,
        "password_file": str(secret),
    }
    config = write_config(tmp_path, accounts=[account])
    mw("run", "--once", "--config", str(config))
    flags_before = _flags(dovecot, user)

    out = tmp_path / "evidence"
    done = mw("report", "--config", str(config), "--export-eml", str(out))
    assert "exported 2 of 2 mail(s)" in done.stderr  # the friend notification is no evidence
    sums = _sums(out)
    assert sorted(sums) == sorted(p.name for p in out.glob("*.eml"))
    originals = {hashlib.sha256((CORPUS / n).read_bytes()).hexdigest() for n in names[:2]}
    assert set(sums.values()) == originals
    for name, digest in sums.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
        assert oct((out / name).stat().st_mode & 0o777) == oct(0o600)
    assert "2024-06-03_facebook_verification_code_" in " ".join(sums)
    assert _flags(dovecot, user) == flags_before  # nothing marked \\Seen, nothing moved

    # The mail moves to a new UID (copied and expunged by the user): found by Message-ID.
    with dovecot.client(user) as client:
        client.select_folder("INBOX")
        first = min(client.search(["ALL"]))
        client.copy([first], "INBOX")
        client.delete_messages([first])
        client.expunge()
    again = tmp_path / "again"
    done = mw("report", "--config", str(config), "--export-eml", str(again))
    assert set(_sums(again).values()) == originals


def test_export_eml_from_a_local_maildir_and_says_what_is_missing(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    shutil.copy(CORPUS / "de-2024-accepted-instagram.eml", maildir / "new" / "1.host")
    shutil.copy(CORPUS / "en-2024-code-instagram-subject.eml", maildir / "new" / "2.host")
    config = write_config(tmp_path, local=[{"name": "archive", "path": str(maildir)}])
    mw("run", "--once", "--config", str(config))
    (maildir / "new" / "2.host").unlink()  # the user deleted one since
    out = tmp_path / "evidence"
    done = mw_process("report", "--config", str(config), "--export-eml", str(out), expect=1)
    assert "exported 1 of 2 mail(s)" in done.stderr
    assert (
        f"not exported: local source archive ({maildir}) no longer holds this mail" in done.stderr
    )
    (name,) = _sums(out)
    assert (out / name).read_bytes() == (CORPUS / "de-2024-accepted-instagram.eml").read_bytes()


def test_report_without_a_database_says_nothing_is_recorded(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = mw("report", "--config", str(config), "--format", "json")
    assert json.loads(done.stdout)["accounts"] == []
    assert not (tmp_path / "log.sqlite3").exists()


def test_deadline_is_one_calendar_month(tmp_path: Path) -> None:
    mails = tmp_path / "mails"
    mails.mkdir()
    (mails / "code.eml").write_bytes(
        variant("de-2024-code-facebook.eml", "Fri, 31 Jan 2025 10:00:00 +0000", "c31@fb")
    )
    config = write_config(tmp_path)
    scan(config, tmp_path, mails)
    with Store.open(tmp_path / "log.sqlite3") as store:
        report = build_report(store, now=datetime(2025, 2, 1, tzinfo=UTC))
    (objection,) = report.accounts[0].objections
    # 31 January + one month = 28 February (the month has no 31st).
    assert objection.due_at == datetime(2025, 2, 28, 10, 0, tzinfo=UTC)
    assert objection.due_at - objection.objected_at == timedelta(days=28)


def test_deadline_counts_from_the_last_code_before_the_answer(tmp_path: Path) -> None:
    # The form was sent twice (the first code expired unused); Meta answered 26 days after
    # the second code, 35 days after the first: in time.
    mails = tmp_path / "mails"
    mails.mkdir()
    for name, date, mid in (
        ("de-2024-code-facebook.eml", "Sat, 01 Jun 2024 10:00:00 +0000", "c1@fb"),
        ("de-2024-code-facebook.eml", "Mon, 10 Jun 2024 10:00:00 +0000", "c2@fb"),
        ("html-only-accepted-facebook.eml", "Fri, 05 Jul 2024 10:00:00 +0000", "a1@fb"),
    ):
        (mails / f"{mid}.eml").write_bytes(variant(name, date, mid))
    config = write_config(tmp_path)
    scan(config, tmp_path, mails)
    with Store.open(tmp_path / "log.sqlite3") as store:
        report = build_report(store, now=datetime(2024, 8, 1, tzinfo=UTC))
    (objection,) = report.accounts[0].objections
    assert objection.objected_at == datetime(2024, 6, 10, 10, 0, tzinfo=UTC)
    assert objection.due_at == datetime(2024, 7, 10, 10, 0, tzinfo=UTC)
    assert objection.verdict == "in_time"


def test_export_eml_of_files_recorded_by_scan(corpus_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "evidence"
    args = ["report", "--config", str(corpus_db), "--account", "anna.insta@example.org"]
    done = mw(*args, "--export-eml", str(out))
    assert "exported 4 of 4 mail(s)" in done.stderr
    corpus = {hashlib.sha256(p.read_bytes()).hexdigest() for p in CORPUS.glob("*.eml")}
    assert set(_sums(out).values()) <= corpus
