"""Real mail forms the parser used to refuse (issue 12, item 9).

- A file that starts with a UTF-8 byte-order mark (Windows editors write one; MimeKit's test
  data has two) was refused whole: the BOM hid the first header and the "From " of an mbox.
- A CR-only file (classic Mac OS line ends) that starts with "From " went down the mbox path,
  which splits on LF: the whole file became one From_ line and the message was lost.
- The obsolete header form with white space before the colon (RFC 5322 §4.5.3 obs-optional,
  "From  : John Doe") gave "no header fields": a first line "From  :" even sent the file down
  the mbox path.

The inputs are small synthetic equivalents in tests/regress; the last test reads the real files
of ../shared/realmail in place (never copied into the repository).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.config import package_file
from watcher.pipeline.message import parse
from watcher.pipeline.process import Outcome, Settings, process
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources.mailfiles import kind_of, read_source

TESTS = Path(__file__).resolve().parent
REGRESS = TESTS / "regress"
REALMAIL = TESTS.parents[1] / "shared" / "realmail"
SETTINGS = Settings(trusted_authserv_ids=("mx.home.example",))


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def outcomes(path: Path, pack: RulePack) -> list[Outcome]:
    return [process(raw, pack, SETTINGS) for raw in read_source(path, "forms")]


def assert_counted_policy_notice(outcome: Outcome, account: str) -> None:
    """The synthetic German policy notice of tests/regress, read in full and counted."""
    assert outcome.message.error is None, outcome.message.error
    assert outcome.message.from_addr == "notification@facebookmail.com"
    assert outcome.message.subject == "Wir aktualisieren unsere Datenschutzrichtlinie"
    assert outcome.message.date_at == datetime(2024, 6, 3, 18, 2, 44, tzinfo=UTC)
    assert (outcome.match.kind, outcome.match.account) == ("policy_update", account)
    assert outcome.counted, outcome.verdict.reasons


def test_eml_with_a_utf8_bom_is_read_and_counts(pack: RulePack) -> None:
    path = REGRESS / "bom-utf8.eml"
    assert path.read_bytes().startswith(b"\xef\xbb\xbfReturn-Path:")
    assert kind_of(path) == "eml"
    [outcome] = outcomes(path, pack)
    assert_counted_policy_notice(outcome, "anna.beispiel@example.org")
    # The digest stays that of the bytes as received.
    assert parse(path.read_bytes()).sha256 == outcome.message.sha256


def test_mbox_with_a_utf8_bom_keeps_its_first_message(pack: RulePack) -> None:
    path = REGRESS / "bom-utf8.mbox"
    assert path.read_bytes().startswith(b"\xef\xbb\xbfFrom MAILER-DAEMON ")
    assert kind_of(path) == "mbox"
    found = outcomes(path, pack)
    assert len(found) == 2
    assert_counted_policy_notice(found[0], "anna.beispiel@example.org")
    assert_counted_policy_notice(found[1], "bert.beispiel@example.org")
    assert [o.key.uid for o in found] == [1, 2]
    assert found[0].key.folder.endswith("bom-utf8.mbox#1")


def test_cr_only_mbox_is_split_into_its_messages(pack: RulePack) -> None:
    path = REGRESS / "cr-only.mbox"
    data = path.read_bytes()
    assert b"\n" not in data
    assert data.count(b"\r") > 20
    assert data.startswith(b"From ")
    assert kind_of(path) == "mbox"
    found = outcomes(path, pack)
    assert len(found) == 2
    assert_counted_policy_notice(found[0], "anna.beispiel@example.org")
    assert_counted_policy_notice(found[1], "bert.beispiel@example.org")
    # The From_ separator line is not part of the message.
    assert b"MAILER-DAEMON" not in next(iter(read_source(path))).raw


def test_obsolete_space_before_colon_headers_are_read() -> None:
    path = REGRESS / "obs-space-before-colon.eml"
    assert path.read_bytes().startswith(b"From  : Jane Roe")
    assert kind_of(path) == "eml"  # "From  :" is a header field, not an mbox From_ line
    [raw] = list(read_source(path))
    message = parse(raw.raw)
    assert message.error is None
    assert (message.from_name, message.from_addr) == ("Jane Roe", "jane.roe@example.net")
    assert message.recipients == ("max.muster@example.org",)
    assert message.subject == "Lunch on Friday"
    assert message.message_id == "<obs-colon@example.net>"
    assert message.date_at == datetime(2024, 6, 7, 7, 55, 6, tzinfo=UTC)
    assert message.text == "Shall we meet at noon?"


def test_space_before_colon_inside_the_body_is_left_alone() -> None:
    raw = b"From: a@example.net\r\nSubject: x\r\n\r\nNote : this line is body text\r\n"
    message = parse(raw)
    assert message.text == "Note : this line is body text"


@pytest.mark.parametrize(
    ("name", "messages", "sender", "subject"),
    [
        # BOM-prefixed single message (MimeKit test data).
        (
            "mimekit__UnitTests__TestData__messages__feedback-report.txt",
            1,
            "abusedesk@example.com",
            "FW: Earn money",
        ),
        # BOM-prefixed mbox whose bodies hold unescaped "From " lines: split where the mailbox
        # package splits (4 pieces); the first message was the one lost behind the BOM.
        (
            "mimekit__UnitTests__TestData__mbox__unmunged.mbox.txt",
            4,
            "jeff@xamarin.com",
            "This is a test message with an unmunged From line",
        ),
        # CR-only copies of real bounces that start with an mbox From_ line (sisimai); cox's
        # second piece is the postmaster copy after an unescaped From_ line.
        (
            "sisimai__maildir__mac__rhost-cox-01.eml",
            2,
            "mailer-daemon@tr2.example.com",
            "Undelivered Mail Returned to Sender",
        ),
        ("sisimai__maildir__mac__lhost-x6-01.eml", 1, "", "There was an error sending your mail"),
        (
            "sisimai__maildir__mac__lhost-ezweb-01.eml",
            1,
            "postmaster@ezweb.ne.jp",
            "Mail System Error - Returned Mail",
        ),
        (
            "sisimai__maildir__mac__rhost-spectrum-01.eml",
            1,
            "mailer-daemon@amazonses.com",
            "Delivery Status Notification (Failure)",
        ),
        # RFC 2822 appendix A.6.3 (obsolete white space before colons), Ruby Mail's copy, whose
        # "__" line (a blank continuation line in the RFC) ends the header block before Subject.
        ("rubymail__spec__fixtures__emails__rfc2822__example13.eml", 1, "jdoe@machine.example", ""),
    ],
)
def test_real_files_once_refused_are_read_in_place(
    name: str, messages: int, sender: str, subject: str
) -> None:
    """Each of these gave "not an e-mail message: no header fields" before."""
    path = REALMAIL / "general" / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: ../shared/realmail is read in place, next to the repo")
    found = [parse(raw.raw) for raw in read_source(path, "realmail")]
    assert len(found) == messages
    first = found[0]
    assert first.error is None, first.error
    assert (first.from_addr, first.subject) == (sender, subject)
