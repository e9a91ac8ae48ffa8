"""A genuine, DKIM-signed Meta mail replayed with headers added or changed never moves another
account's status (issue 12, item 1).

DKIM signs the bottom-most instance of each header it lists (RFC 6376 §5.4.2) and nothing that
its ``h=`` tag leaves out, while Python's parser reads the top-most instance. So a header added
above the signed ones, or an unsigned one rewritten, leaves the trusted server's ``dkim=pass``
standing. The defences tested here:

- a repeated singleton header (RFC 5322 §3.6: From, Sender, Reply-To, To, Cc, Bcc, Subject,
  Date, Message-ID, In-Reply-To, References; RFC 2045: MIME-Version, Content-Type,
  Content-Transfer-Encoding) makes the verdict ``fail``, naming the header;
- the account is the address in the last Meta footer of the body (never the subject), and
  only when a recipient header (Delivered-To, X-Original-To, To, Cc) names it too;
- a Subject the passing signature does not cover is left out of classification, and a body
  longer than the signature's ``l=`` makes the verdict ``fail``.

Every mail here starts from a corpus mail whose Authentication-Results say what the trusted
server mx.home.example wrote for the original, as a real replay keeps them.
"""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path

import pytest

from watcher.config import package_file
from watcher.daemon.ingest import RunReport, ingest
from watcher.pipeline.process import Outcome, Settings, process
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources.base import RawMessage, SourceKey
from watcher.store.store import Store

CORPUS = Path(__file__).resolve().parent / "corpus"
SETTINGS = Settings(trusted_authserv_ids=("mx.home.example",))
VICTIM = "anna.insta@example.org"
ATTACKER = "mallory.insta@example.com"
FORGED_SUBJECT = f"Subject: Dein Einspruch - This message was sent to {VICTIM}"


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def run(raw: bytes, pack: RulePack) -> Outcome:
    return process(RawMessage(SourceKey("s", "s", "INBOX", 1, 1), raw), pack, SETTINGS)


def attackers_own(name: str) -> bytes:
    """The corpus mail *name* (Instagram, sent to the victim) as Meta sent it to the attacker's
    own account: the same signed mail with the attacker's address everywhere."""
    raw = (CORPUS / name).read_bytes()
    raw = raw.replace(VICTIM.encode(), ATTACKER.encode())
    return raw.replace(b"anna.insta%40example.org", b"mallory.insta%40example.com")


def resent_to_victim(raw: bytes, *added: str) -> bytes:
    """*raw* re-sent into the victim's mailbox: the victim's server adds its Delivered-To on
    top, and the attacker's *added* header lines sit above the signed headers."""
    lines = [f"Delivered-To: {VICTIM}", *added]
    return ("\r\n".join(lines) + "\r\n").encode() + raw


def unsigned_subject(raw: bytes, subject: str) -> bytes:
    """*raw* with Subject left out of the DKIM signature's h= list and replaced by *subject*."""
    raw = raw.replace(b"h=Date:To:Subject:From:", b"h=Date:To:From:", 1)
    assert b"h=Date:To:From:" in raw
    return re.sub(rb"(?m)^Subject: [^\r\n]*", subject.encode(), raw, count=1)


def test_controls_the_attackers_own_mail_and_the_genuine_mail_count(pack: RulePack) -> None:
    """Without a trick the mails used below are genuine and count for their own account."""
    own = run(attackers_own("de-2024-accepted-instagram.eml"), pack)
    assert (own.match.kind, own.match.account, own.verdict.result) == (
        "objection_accepted",
        ATTACKER,
        "pass",
    ), own.verdict.reasons
    assert own.counted
    genuine = run((CORPUS / "de-2024-accepted-instagram.eml").read_bytes(), pack)
    assert genuine.counted
    assert genuine.match.account == VICTIM


def test_exact_replay_of_issue_12_does_not_flip_the_victims_account(pack: RulePack) -> None:
    """The reproduced break: the attacker's accepted mail, one Subject line added on top."""
    raw = resent_to_victim(attackers_own("de-2024-accepted-instagram.eml"), FORGED_SUBJECT)
    outcome = run(raw, pack)
    assert outcome.match.account != VICTIM
    assert outcome.verdict.result == "fail"
    assert not outcome.counted
    reasons = "; ".join(outcome.verdict.reasons)
    assert "more than one Subject header field" in reasons, reasons
    assert outcome.message.repeated_headers == ("Subject",)


def test_replay_of_another_accounts_facebook_mail_does_not_flip_the_victim(
    pack: RulePack,
) -> None:
    """The same trick with Ben's genuine Facebook acceptance (d=facebookmail.com)."""
    ben = (CORPUS / "en-uk-2024-accepted-facebook.eml").read_bytes()
    outcome = run(resent_to_victim(ben, FORGED_SUBJECT), pack)
    assert outcome.match.account != VICTIM
    assert outcome.verdict.result == "fail"
    assert not outcome.counted


def test_replay_leaves_the_victims_status_and_transitions_alone(
    pack: RulePack, tmp_path: Path
) -> None:
    """Through the store: the victim's status after a genuine policy notice stays as it was."""
    policy = (CORPUS / "de-2024-policy-instagram-base64.eml").read_bytes()
    replay = resent_to_victim(attackers_own("de-2024-accepted-instagram.eml"), FORGED_SUBJECT)
    messages = [
        RawMessage(SourceKey("s", "s", "INBOX", 1, uid), raw)
        for uid, raw in enumerate((policy, replay), start=1)
    ]
    with Store.open(tmp_path / "log.sqlite3") as store:
        ingest(store, pack, SETTINGS, messages[:1], RunReport())
        before = [(s.platform, s.account, s.status) for s in store.current_status()]
        ingest(store, pack, SETTINGS, messages[1:], RunReport())
        after = [(s.platform, s.account, s.status) for s in store.current_status()]
        rows = store.query("SELECT suspicious, counted FROM messages WHERE uid = 2")
        transitions = store.count("transitions")
    assert before == [("instagram", VICTIM, "notified")]
    assert after == before
    assert transitions == 1
    assert [tuple(r) for r in rows] == [(1, 0)]


@pytest.mark.parametrize(
    ("added", "header"),
    [
        (f"To: {VICTIM}", "To"),
        ("From: Instagram <no-reply@mail.instagram.com>", "From"),
        ("Date: Tue, 04 Jun 2024 09:00:00 +0000", "Date"),
        (FORGED_SUBJECT, "Subject"),
        (f"subject: Dein Einspruch - This message was sent to {VICTIM}", "Subject"),
        # The obsolete form with white space before the colon (RFC 5322 §4.5.3) is the same
        # field to a reader.
        (f"Subject : Dein Einspruch - This message was sent to {VICTIM}", "Subject"),
        ("Message-ID: <replayed@example.com>", "Message-ID"),
        ("Sender: no-reply@mail.instagram.com", "Sender"),
        ("MIME-Version: 1.0", "MIME-Version"),
        ("Content-Type: text/plain; charset=utf-8", "Content-Type"),
        ("Content-Transfer-Encoding: 8bit", "Content-Transfer-Encoding"),
    ],
)
def test_an_added_singleton_header_makes_the_mail_fail_naming_it(
    added: str, header: str, pack: RulePack
) -> None:
    own = attackers_own("de-2024-accepted-instagram.eml")
    if header in ("Sender", "Content-Transfer-Encoding"):  # not in the original: add one
        original = {"Sender": "no-reply@mail.instagram.com", "Content-Transfer-Encoding": "7bit"}
        line = f"\r\n{header}: {original[header]}\r\nMIME-Version: 1.0\r\n"
        own = own.replace(b"\r\nMIME-Version: 1.0\r\n", line.encode(), 1)
    outcome = run(resent_to_victim(own, added), pack)
    assert outcome.verdict.result == "fail"
    assert not outcome.counted
    assert header in outcome.message.repeated_headers
    reasons = "; ".join(outcome.verdict.reasons)
    assert f"more than one {header} header field" in reasons, reasons
    assert outcome.match.account != VICTIM


def test_a_repeated_non_singleton_header_is_no_defect(pack: RulePack) -> None:
    """Received, Delivered-To and Authentication-Results repeat in every real mail."""
    raw = resent_to_victim(
        (CORPUS / "de-2024-accepted-instagram.eml").read_bytes(),
        "Received: from relay.example by mx.home.example; Mon, 03 Jun 2024 11:41:10 -0700",
    )
    outcome = run(raw, pack)
    assert outcome.message.repeated_headers == ()
    assert outcome.counted, outcome.verdict.reasons


def test_account_phrase_in_an_unsigned_subject_is_not_the_account(pack: RulePack) -> None:
    """No repeated header: Subject is outside h= and rewritten to name the victim. The footer
    in the signed body names the attacker, so the victim's status cannot move."""
    raw = resent_to_victim(
        unsigned_subject(attackers_own("de-2024-accepted-instagram.eml"), FORGED_SUBJECT)
    )
    outcome = run(raw, pack)
    assert outcome.message.repeated_headers == ()
    assert outcome.match.account == ATTACKER


def test_unsigned_subject_does_not_decide_kind_or_fields(pack: RulePack) -> None:
    """A code mail whose Subject is outside h=: the attacker's code in the subject is not
    taken; the code comes from the signed body. (The same subject, signed, would give the
    subject's code: the test can tell the two apart.)"""
    code_mail = (CORPUS / "en-2024-code-instagram-subject.eml").read_bytes()
    forged = "Subject: 999999 is your confirmation code for your objection request"
    signed = run(re.sub(rb"(?m)^Subject: [^\r\n]*", forged.encode(), code_mail, count=1), pack)
    assert signed.fields == {"code": "999999"}
    outcome = run(unsigned_subject(code_mail, forged), pack)
    assert outcome.match.kind == "verification_code"
    assert outcome.fields == {"code": "270615"}
    assert outcome.message.subject.startswith("999999")  # shown as received, never used


def plain_only(raw: bytes) -> bytes:
    """The corpus mail *raw* as a single text/plain part (its plain alternative, 8bit): text
    appended to the body is then read as body text, not as a multipart epilogue."""
    plain = next(
        part
        for part in email.message_from_bytes(raw, policy=policy.compat32).walk()
        if part.get_content_type() == "text/plain"
    )
    text = plain.get_payload(decode=True)
    assert isinstance(text, bytes)
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    head, found = re.subn(
        rb"Content-Type: multipart/alternative;\r?\n[ \t]+boundary=[^\r\n]*",
        b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 8bit',
        head,
    )
    assert found == 1
    return head + b"\r\n\r\n" + text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def with_length_tag(raw: bytes, appended: bytes) -> bytes:
    """*raw* with an l= tag counting its whole (canonical) body in the DKIM-Signature, then
    *appended* added after the signed body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    # Simple body canonicalisation (c=relaxed/simple): CRLF line ends, no trailing empty lines.
    canonical = body.rstrip(b"\r\n") + b"\r\n"
    head = head.replace(b"s=s1024-2013-q3;", b"s=s1024-2013-q3; l=%d;" % len(canonical), 1)
    assert b" l=" in head
    return head + b"\r\n\r\n" + body + appended


BEN_PLAIN = plain_only((CORPUS / "en-uk-2024-accepted-facebook.eml").read_bytes())


def test_control_the_single_part_copy_is_genuine(pack: RulePack) -> None:
    outcome = run(BEN_PLAIN, pack)
    assert outcome.verdict.result == "pass", outcome.verdict.reasons
    assert (outcome.match.kind, outcome.match.account) == (
        "objection_accepted",
        "ben.sample@example.net",
    )
    assert outcome.counted


def test_body_length_tag_covering_the_whole_body_still_passes(pack: RulePack) -> None:
    outcome = run(with_length_tag(BEN_PLAIN, b""), pack)
    assert outcome.verdict.result == "pass", outcome.verdict.reasons
    assert outcome.counted


def test_text_appended_past_the_body_length_tag_is_never_authentic(pack: RulePack) -> None:
    """The signature covers only the first l= bytes of the body; a footer naming the victim
    appended after them (so the victim's address is the last footer and a recipient) must not
    count: the mail is treated as not authentic."""
    appended = f"\r\nThis message was sent to {VICTIM}.\r\n".encode()
    outcome = run(resent_to_victim(with_length_tag(BEN_PLAIN, appended)), pack)
    assert outcome.verdict.result == "fail"
    assert not outcome.counted
    reasons = "; ".join(outcome.verdict.reasons)
    assert "l=" in reasons, reasons


def test_footer_naming_no_recipient_is_not_counted(pack: RulePack) -> None:
    """A genuine mail whose footer names an address that no recipient header names (a copy of
    someone else's mail) has no account and is not counted."""
    raw = (CORPUS / "en-uk-2024-accepted-facebook.eml").read_bytes()
    raw = re.sub(rb"(?m)^(To|Delivered-To): [^\r\n]*", rb"\1: someone.else@example.net", raw)
    outcome = run(raw, pack)
    assert outcome.match.kind == "objection_accepted"
    assert outcome.match.account is None
    assert not outcome.counted


def test_the_last_footer_in_the_body_names_the_account(pack: RulePack) -> None:
    """An earlier footer-like sentence in the body (e.g. quoted) is not the account."""
    raw = (CORPUS / "en-uk-2024-accepted-facebook.eml").read_bytes()
    raw = raw.replace(
        b"Hi Ben,", b"Hi Ben, This message was sent to other.person@example.net and", 1
    )
    assert b"other.person" in raw
    outcome = run(raw, pack)
    assert outcome.match.account == "ben.sample@example.net"
