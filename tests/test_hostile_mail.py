"""Hostile and broken mail: nothing escapes, nothing hangs, nothing is fetched from the network.

Fixed regression inputs live in tests/regress (one small .eml each; the 20 MB body and the
5,000-level nesting are generated here). The fuzz runs use the strategies in
tests/fuzz/strategies.py; set META_WATCHER_LONG=1 for the long run (20,000 examples instead of
300, and a longer atheris run).
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dovecot import DovecotServer
from fuzz.strategies import hostile_mail
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.config import package_file
from watcher.daemon.ingest import RunReport, describe, ingest
from watcher.kinds import KINDS, OTHER
from watcher.notify.apprise import fit
from watcher.pipeline.message import MAX_TEXT_CHARS, parse
from watcher.pipeline.process import Outcome, Settings, process
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources.base import RawMessage, SourceKey
from watcher.store.store import Store

TESTS = Path(__file__).resolve().parent
REGRESS = TESTS / "regress"
CORPUS = TESTS / "corpus"
LONG = os.environ.get("META_WATCHER_LONG") == "1"
SETTINGS = Settings(trusted_authserv_ids=("mx.home.example",))
INTERNAL_AT = datetime(2024, 6, 4, 9, 30, tzinfo=UTC)
FUZZ_EXAMPLES = 20_000 if LONG else 300
PACK = load_rules(package_file("rules.yaml"))  # module level: hypothesis tests take no fixtures
TRUNCATED = f"message text is over {MAX_TEXT_CHARS} characters: not read in full"


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def run(name_or_raw: str | bytes, pack: RulePack, settings: Settings = SETTINGS) -> Outcome:
    raw = (REGRESS / name_or_raw).read_bytes() if isinstance(name_or_raw, str) else name_or_raw
    key = SourceKey("regress", "regress", "", 0, 1)
    return process(RawMessage(key, raw, INTERNAL_AT), pack, settings)


# ----------------------------------------------------------------- fixed regression inputs


@pytest.mark.parametrize(
    "name", ["address-lone-quote.eml", "address-group-c.eml", "undisclosed-recipients.eml"]
)
def test_broken_address_headers_give_no_sender_and_never_count(name: str, pack: RulePack) -> None:
    outcome = run(name, pack)
    assert outcome.message.from_addr == ""
    assert outcome.message.error is None
    # No From address: the mail cannot claim Meta by domain, so it is not a privacy kind.
    assert outcome.match.kind == OTHER
    assert not outcome.counted
    # Delivered-To still names the account; junk never becomes an address.
    assert "anna.beispiel@example.org" in outcome.message.recipients
    assert all("@" in r and " " not in r for r in outcome.message.recipients)


def test_address_group_keeps_its_member_address(pack: RulePack) -> None:
    assert "anna@example.org" in run("address-group-c.eml", pack).message.recipients


@pytest.mark.parametrize(
    "from_value",
    [
        "notification@facebookmail.com <x@attacker.example>",
        '"a" notification@facebookmail.com <x@attacker.example>',
        "notification@facebookmail.com x@attacker.example",
    ],
)
def test_from_that_reads_as_two_mailboxes_has_no_sender(from_value: str, pack: RulePack) -> None:
    """CVE-2023-27043: a From whose words read as more mailboxes than its commas separate
    must not yield either address, on every Python the README promises."""
    raw = (REGRESS / "address-group-c.eml").read_bytes()
    raw = raw.replace(b"From: (c):", b"From: " + from_value.encode())
    outcome = run(raw, pack)
    assert outcome.message.from_addr == ""
    assert not outcome.counted


@pytest.mark.parametrize(
    "name", ["date-two-digit-year.eml", "date-three-digit-year.eml", "date-missing.eml"]
)
def test_unusable_date_falls_back_to_internaldate(name: str, pack: RulePack) -> None:
    outcome = run(name, pack)
    assert outcome.message.date_at is None
    assert outcome.date_source == "internaldate"
    assert outcome.mail_at == INTERNAL_AT
    # Still a genuine policy mail: the date problem costs nothing else.
    assert outcome.match.kind == "policy_update"
    assert outcome.counted


def test_unusable_date_without_internaldate_is_none_never_year_101(pack: RulePack) -> None:
    raw = (REGRESS / "date-three-digit-year.eml").read_bytes()
    outcome = process(RawMessage(SourceKey("r", "r", "", 0, 1), raw), pack, SETTINGS)
    assert outcome.mail_at is None
    assert outcome.date_source == "none"


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        # One broken base64 word must not hide the good one before it.
        ("rfc2047-bad-base64-length.eml", "Wir aktualisieren unsere Datenschutzrichtlinie"),
        (
            "rfc2047-unknown-charset.eml",
            "Wir aktualisieren unsere DatenschutzrichtlinieKI bei Meta",
        ),
        ("rfc2047-utf7.eml", "Datenschutzrichtlinie für KI bei Meta"),
    ],
)
def test_odd_encoded_words_decode_as_far_as_possible(
    name: str, subject: str, pack: RulePack
) -> None:
    outcome = run(name, pack)
    assert outcome.message.subject.startswith(subject)
    assert outcome.match.kind == "policy_update"
    assert outcome.fields == {"effective_date": "2024-06-26"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("body-8bit-no-charset-utf8.eml", "wir stützen uns"),
        ("body-8bit-no-charset-cp1252.eml", "„Hallo“ Anna €"),
        ("body-8bit-no-charset-latin1.eml", "Hallo\x81\x8d Anna"),
        ("charset-label-lies-latin1-is-utf8.eml", "wir stützen uns"),
        ("charset-label-lies-utf8-is-cp1252.eml", "wir stützen uns"),
        ("charset-label-unknown.eml", "wir stützen uns"),
    ],
)
def test_undeclared_or_lying_charsets_decode_utf8_then_cp1252_then_latin1(
    name: str, expected: str, pack: RulePack
) -> None:
    outcome = run(name, pack)
    assert expected in outcome.message.text.replace("\n", " ").lower() or (
        expected in outcome.message.text
    )
    assert outcome.match.kind == "policy_update"
    assert outcome.fields == {"effective_date": "2024-06-26"}
    assert outcome.counted


def test_header_named_headers_is_just_a_header(pack: RulePack) -> None:
    outcome = run("header-named-headers.eml", pack)
    assert outcome.message.from_addr == "notification@facebookmail.com"
    assert outcome.match.kind == "policy_update"
    assert outcome.counted


def test_1200_byte_subject_is_kept_whole_and_classified(pack: RulePack) -> None:
    outcome = run("subject-1200-bytes.eml", pack)
    assert len(outcome.message.subject.encode("utf-8")) >= 1200
    assert outcome.message.subject.endswith("KI bei Meta äöüß€😀")
    assert outcome.match.kind == "policy_update"


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(
    title=st.text(min_size=0, max_size=400),
    body=st.text(min_size=0, max_size=2000),
    title_max=st.integers(0, 300),
    body_max=st.integers(0, 3000),
)
def test_notification_texts_are_cut_on_character_boundaries(
    title: str, body: str, title_max: int, body_max: int
) -> None:
    cut_title, cut_body = fit(title, body, title_max, body_max)
    for text, limit in ((cut_title, max(title_max, 0)), (cut_body, body_max)):
        data = text.encode("utf-8")
        assert len(data) <= limit
    if title_max > 0 and len(title.encode("utf-8")) <= title_max:
        assert cut_title == title


def test_1200_byte_subject_reaches_the_notification_cut_safely(pack: RulePack) -> None:
    """The subject of a suspicious mail goes into the warning: delivered through Apprise to a
    real receiver as valid UTF-8, and cut on a character boundary where a target has limits."""
    from httpreceiver import Receiver

    from watcher.config import NotifyTarget
    from watcher.notify.apprise import Sender
    from watcher.notify.plan import NotifySettings, plan_notifications

    raw = (REGRESS / "subject-1200-bytes.eml").read_bytes()
    raw = raw.replace(
        b"From: Facebook <notification@facebookmail.com>", b"From: Meta <x@gmail.com>"
    )
    outcome = run(raw, pack)
    assert outcome.suspicious
    assert outcome.mail_at is not None
    with Receiver() as rx:
        target = NotifyTarget(url=rx.url)  # type: ignore[arg-type]
        settings = NotifySettings(targets=((target.key, ()),))
        items = plan_notifications(outcome, [], settings, outcome.mail_at)
        assert len(items) == 1
        assert outcome.message.subject in items[0].body
        error = Sender([target]).send(target.key, items[0].title, items[0].body, warning=True)
        assert error is None
        got = rx.wait_for(1, 10)
    assert len(got) == 1
    assert outcome.message.subject in got[0].message
    for title_max, body_max in ((32, 250), (100, 1024), (250, 512)):
        title, body = fit(items[0].title, items[0].body, title_max, body_max)
        assert len(title.encode()) <= title_max
        assert len(body.encode()) <= body_max
        assert body.endswith("…")
        assert "\ufffd" not in body


def test_link_with_line_breaks_cannot_forge_a_log_line(pack: RulePack) -> None:
    """Found by atheris: an href of "https:" plus line breaks was quoted in the reason, and the
    reason in the log line, which then read like a status change of its own."""
    outcome = run("href-with-line-breaks.eml", pack)
    assert outcome.suspicious
    line = describe(outcome)
    assert "\n" not in line
    assert "\r" not in line
    assert all("\n" not in reason for reason in outcome.verdict.reasons)
    assert "links point outside Meta's domains" in line


def test_50_levels_of_nested_multipart_reach_the_innermost_text(pack: RulePack) -> None:
    outcome = run("multipart-nested-50.eml", pack)
    assert outcome.message.error is None
    assert "KI bei Meta" in outcome.message.text
    assert outcome.match.kind == "policy_update"
    assert outcome.counted


def _nested(levels: int) -> bytes:
    head = (REGRESS / "multipart-nested-50.eml").read_bytes().split(b"Message-ID:")[0]
    body = b""
    for i in range(levels):
        body += b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i, i + 1)
    body += b"--b%d\r\nContent-Type: text/plain\r\n\r\nKI bei Meta\r\n" % levels
    for i in reversed(range(levels + 1)):
        body += b"--b%d--\r\n" % i
    return (
        head
        + b"Message-ID: <nested-%d@facebookmail.com>\r\nMIME-Version: 1.0\r\n" % levels
        + b'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
        + body
    )


def huge_single_line(size: int) -> bytes:
    line = b"KI bei Meta Datenschutzrichtlinie widersprechen https://www.facebook.com/x "
    return (REGRESS / "huge-single-line-body.eml").read_bytes() + (line * (size // len(line)))


@pytest.mark.timeout(120)
def test_20_mb_single_line_body_is_read_within_bounds_and_flagged(pack: RulePack) -> None:
    raw = huge_single_line(20 * 1024 * 1024)
    assert len(raw) > 20_000_000
    outcome = run(raw, pack)
    # Past the text limit the mail is flagged: recorded and surfaced, never counted.
    assert outcome.message.error == TRUNCATED
    assert len(outcome.message.text) <= MAX_TEXT_CHARS
    assert outcome.message.size == len(raw)
    assert outcome.worth_recording
    assert not outcome.counted


def test_message_over_the_size_limit_is_recorded_with_its_error_not_parsed(
    pack: RulePack, tmp_path: Path
) -> None:
    raw = huge_single_line(3 * 1024 * 1024)
    small = Settings(trusted_authserv_ids=SETTINGS.trusted_authserv_ids, max_message_bytes=1 << 20)
    outcome = run(raw, pack, small)
    assert outcome.message.error is not None
    assert "over the 1048576-byte limit" in outcome.message.error
    assert outcome.message.text == ""
    # The header is still read, so the log says what the mail was.
    assert outcome.message.from_addr == "notification@facebookmail.com"
    assert not outcome.counted
    with Store.open(tmp_path / "log.sqlite3") as store:
        report = RunReport()
        key = SourceKey("big", "big", "INBOX", 1, 7)
        ingest(store, pack, small, [RawMessage(key, raw, INTERNAL_AT)], report)
        rows = store.query("SELECT uid, error, subject FROM messages")
    assert [(r["uid"], "limit" in r["error"]) for r in rows] == [(7, True)]


def test_message_over_the_size_limit_is_not_downloaded_over_imap(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    """With max_message_bytes 1 MB, a 3 MB Meta mail costs its header only: the server sends
    far less than the message, and the log records it with its error."""
    import sqlite3

    from daemonproc import cli, write_config

    user, password = dovecot_user
    dovecot.append(user, "INBOX", huge_single_line(3 * 1024 * 1024))
    config = write_config(tmp_path, dovecot, user, password, [], max_message_bytes=1 << 20)
    done = cli("run", "--once", "--config", str(config))
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    try:
        rows = conn.execute("SELECT error, counted FROM messages").fetchall()
    finally:
        conn.close()
    assert len(rows) == 1
    assert "over the 1048576-byte limit" in rows[0][0]
    assert rows[0][1] == 0
    from faultproxy import wait_until

    # Dovecot logs each session's byte count when the session ends.
    assert wait_until(lambda: bool(dovecot.session_bytes(user)), 10), dovecot.log_text()[-2000:]
    sent = [out for _in, out in dovecot.session_bytes(user)]
    print(f"size limit: server sent {max(sent)} bytes for a {3 << 20}-byte message")
    assert max(sent) < 200_000, sent


def test_default_size_limit_is_25_mb() -> None:
    from watcher.config import Config

    assert Settings().max_message_bytes == 25 * 1024 * 1024
    assert Config().max_message_bytes == 25 * 1024 * 1024


@pytest.mark.timeout(120)
def test_unparseable_mail_is_recorded_with_its_error_and_the_next_is_processed(
    pack: RulePack, tmp_path: Path
) -> None:
    """5,000 nested multiparts exhaust the email package's recursion: recorded, not fatal."""
    broken = _nested(5000)
    assert run(broken, pack).message.error is not None
    genuine = (CORPUS / "de-2024-policy-facebook.eml").read_bytes()
    messages = [
        RawMessage(SourceKey("s", "s", "INBOX", 1, 1), broken, INTERNAL_AT),
        RawMessage(SourceKey("s", "s", "INBOX", 1, 2), genuine, INTERNAL_AT),
    ]
    with Store.open(tmp_path / "log.sqlite3") as store:
        ingest(store, pack, SETTINGS, messages, RunReport())
        rows = store.query("SELECT uid, kind, counted, error FROM messages ORDER BY uid")
        statuses = store.current_status()
    assert rows[0]["uid"] == 1
    assert rows[0]["error"]
    assert (rows[1]["uid"], rows[1]["kind"], rows[1]["counted"]) == (2, "policy_update", 1)
    assert [s.status for s in statuses] == ["notified"]


@pytest.mark.timeout(120)  # the quadratic renderer this guards against took 389 s here
@pytest.mark.parametrize(
    "html",
    [
        b"<div>" * 400_000 + b"KI bei Meta",
        b"<p>KI bei Meta</p>" * 150_000,
        b"<a href='https://www.facebook.com/'>" * 200_000,
        b"<table><tr><td>" * 130_000,
        b"<!--" + b"x" * 3_000_000,
    ],
    ids=["deep-divs", "many-paragraphs", "deep-links", "deep-tables", "open-comment"],
)
def test_html_rendering_is_bounded(html: bytes, pack: RulePack) -> None:
    head = (REGRESS / "huge-single-line-body.eml").read_bytes()
    raw = head.replace(b'text/plain; charset="utf-8"', b'text/html; charset="utf-8"') + html
    outcome = run(raw, pack)
    assert outcome.message.error in (None, TRUNCATED)
    assert len(outcome.message.text) <= MAX_TEXT_CHARS


# ----------------------------------------------------------------- fuzzing


def check_invariants(raw: bytes, outcome: Outcome) -> None:
    """What must hold for any input bytes."""
    msg = outcome.message
    assert msg.sha256 == hashlib.sha256(raw).hexdigest()
    assert len(msg.text) <= MAX_TEXT_CHARS
    assert outcome.verdict.result in ("pass", "fail", "none")
    if outcome.mail_at is not None:
        assert outcome.mail_at.tzinfo is not None
        assert outcome.mail_at == INTERNAL_AT or 1990 <= outcome.mail_at.year <= 2100
    if outcome.suspicious:
        assert outcome.fields == {}
        assert not outcome.counted
    if outcome.counted:
        assert outcome.match.kind in KINDS
        assert outcome.verdict.result == "pass"
    # Everything the store writes must be valid UTF-8 (SQLite refuses lone surrogates).
    for text in (msg.subject, msg.from_name, msg.from_addr, msg.message_id or "", msg.text):
        text.encode("utf-8")
    # A log line is one line: hostile mail must not forge the next log entry.
    line = describe(outcome)
    assert "\n" not in line
    assert "\r" not in line


@pytest.mark.timeout(2400 if LONG else 300)  # 20,000 examples: about 10 minutes here
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(raw=hostile_mail())
def test_fuzzed_mail_never_raises_and_keeps_the_invariants(raw: bytes) -> None:
    outcome = process(RawMessage(SourceKey("f", "f", "", 0, 1), raw, INTERNAL_AT), PACK, SETTINGS)
    check_invariants(raw, outcome)


@pytest.mark.timeout(2400 if LONG else 300)
@settings(
    max_examples=max(30, FUZZ_EXAMPLES // 10),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(batch=st.lists(hostile_mail(), min_size=1, max_size=5))
def test_fuzzed_batches_are_all_recorded_and_the_next_mail_still_counts(batch: list[bytes]) -> None:
    sentinel = (CORPUS / "en-uk-2024-accepted-facebook.eml").read_bytes()
    sentinel = sentinel.replace(b"Message-ID: <", b"Message-ID: <sentinel-", 1)
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "log.sqlite3") as store:
        report = RunReport()
        messages = [
            RawMessage(SourceKey("f", "f", "INBOX", 1, uid), raw, INTERNAL_AT)
            for uid, raw in enumerate([*batch, sentinel], start=1)
        ]
        ingest(store, PACK, SETTINGS, messages, report)
        last = store.query("SELECT kind, counted FROM messages WHERE uid = ?", (len(messages),))
        errors = store.query("SELECT count(*) FROM messages WHERE error IS NOT NULL")[0][0]
    assert report.fetched == len(messages)
    assert [tuple(r) for r in last] == [("objection_accepted", 1)]
    # Every message that could not be understood is in the log (or was a duplicate of one).
    unparsed = sum(1 for raw in batch if parse(raw, SETTINGS.max_message_bytes).error)
    assert errors + report.duplicates >= unparsed


@pytest.mark.timeout(2400 if LONG else 300)
def test_atheris_harness_runs_clean(tmp_path: Path) -> None:
    """libFuzzer-guided run over the same code (tests/fuzz/atheris_parse.py)."""
    try:
        import atheris  # noqa: F401
    except ImportError:
        pytest.fail(
            "atheris is not installed: run `pip install atheris` "
            "(or `pip install -e .[test]`; wheels exist for Linux x86_64)"
        )
    runs = 200_000 if LONG else 3_000
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for path in [*CORPUS.glob("*.eml"), *REGRESS.glob("*.eml")]:
        (seeds / path.name).write_bytes(path.read_bytes())
    done = subprocess.run(
        [
            sys.executable,
            str(TESTS / "fuzz" / "atheris_parse.py"),
            f"-runs={runs}",
            "-max_len=200000",
            "-rss_limit_mb=4096",
            "-timeout=60",
            str(seeds),
        ],
        capture_output=True,
        text=True,
        timeout=1800 if LONG else 300,
        cwd=tmp_path,
        check=False,
    )
    tail = (done.stdout + done.stderr)[-3000:]
    assert done.returncode == 0, tail
    assert "Done" in tail, tail


if not (sys.platform == "linux" and platform.machine() == "x86_64"):
    del test_atheris_harness_runs_clean  # atheris ships wheels for Linux x86_64 only


# ----------------------------------------------------------------- nothing remote


class _Counter(BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 - shared on purpose: the server's request log

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET
    do_POST = do_GET

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def trap_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server every remote reference in the test mail points to."""
    _Counter.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Counter.hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


REMOTE_HTML = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "{url}/dtd">
<?xml-stylesheet href="{url}/xsl"?>
<html><head><link rel="stylesheet" href="{url}/css"><link rel="preload" href="{url}/pre">
<style>@import url({url}/import); body {{ background: url({url}/bg) }}</style>
<meta http-equiv="refresh" content="0; url={url}/refresh">
<script src="{url}/js"></script></head>
<body background="{url}/body"><img src="{url}/img"><iframe src="{url}/iframe"></iframe>
<object data="{url}/object"></object><embed src="{url}/embed"><video poster="{url}/poster">
<source src="{url}/source"></video><picture><source srcset="{url}/srcset"></picture>
<svg><image href="{url}/svg"/></svg>
<p>KI bei Meta: Datenschutzrichtlinie, berechtigte Interessen.
<a href="{url}/link">Preview me</a> <a href="https://www.facebook.com/privacy">ok</a></p>
</body></html>"""


def test_nothing_remote_is_ever_fetched_from_a_mail(
    trap_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    """Images, styles, DTDs, frames and links in a mail are never requested, and processing
    opens no socket at all (checked with an audit hook in a fresh interpreter)."""
    url, hits = trap_server
    with urllib.request.urlopen(url + "/probe", timeout=5):  # the trap does count requests
        pass
    html = REMOTE_HTML.format(url=url)
    mail = (REGRESS / "huge-single-line-body.eml").read_bytes().replace(
        b'text/plain; charset="utf-8"', b'text/html; charset="utf-8"'
    ) + html.encode()
    (tmp_path / "remote.eml").write_bytes(mail)
    script = f"""
import sys
from pathlib import Path
opened = []
def hook(event, args):
    if event.startswith(("socket.", "urllib.", "http.", "ftplib.", "smtplib.")):
        opened.append(event)
from watcher.config import package_file
from watcher.pipeline.process import Settings, process
from watcher.sources.base import RawMessage, SourceKey
from watcher.pipeline.rules import load_rules
pack = load_rules(package_file("rules.yaml"))
sys.addaudithook(hook)
paths = [Path({str(tmp_path / "remote.eml")!r})]
paths += sorted(Path({str(CORPUS)!r}).glob("*.eml")) + sorted(Path({str(REGRESS)!r}).glob("*.eml"))
links = 0
for path in paths:
    out = process(RawMessage(SourceKey("t", "t", "", 0, 1), path.read_bytes()), pack,
                  Settings(trusted_authserv_ids=("mx.home.example",)))
    links += len(out.message.links)
print("opened", opened, "links", links)
sys.exit(1 if opened else 0)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TESTS.parent,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "links" in done.stdout
    assert hits == ["/probe"]
