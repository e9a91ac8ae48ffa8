"""Not fooled: mail that imitates Meta never changes a status, is recorded ``suspicious`` with the
reason, and the notification about it says why.

Each spoof is built from one genuine mail (an English "objection accepted", authenticated by the
trusted server mx.home.example) with one thing changed, so a test fails only for its own trick.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from watcher.config import package_file
from watcher.daemon.ingest import RunReport, ingest
from watcher.kinds import KINDS, OTHER
from watcher.pipeline.process import Outcome, Settings, process
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources.base import RawMessage, SourceKey
from watcher.store.store import Store

CORPUS = Path(__file__).resolve().parent / "corpus"
TRUSTED = "mx.home.example"
SETTINGS = Settings(trusted_authserv_ids=(TRUSTED,))
META_FROM = "Facebook <notification@facebookmail.com>"
REAL_PASS = (
    f"{TRUSTED}; dkim=pass header.d=facebookmail.com header.s=s1; spf=pass "
    "smtp.mailfrom=facebookmail.com; dmarc=pass (p=REJECT) header.from=facebookmail.com"
)
ACCEPTED_TEXT = (
    "Hi Ben,\r\n\r\nWe will honour your objection for your public information, such as public "
    "posts and comments. This means that we won't use your public information from Facebook and "
    "Instagram for future development and improvement of generative AI models for our AI at "
    "Meta features and experiences.\r\n\r\nYou can find more information in the Privacy Centre: "
    "{link}\r\n\r\nThanks,\r\n\r\nPrivacy Operations\r\n\r\nThis message was sent to "
    "ben.sample@example.net.\r\n"
)


def mail(
    *,
    from_: str = META_FROM,
    auth: tuple[str, ...] = (REAL_PASS,),
    subject: str = "Your objection request",
    body: str | None = None,
    link: str = "https://www.facebook.com/privacy/genai",
    html: str | None = None,
    message_id: str = "<spoof@example.net>",
) -> bytes:
    """An "objection accepted" mail with the given From, Authentication-Results (top first),
    subject, body and link; text/plain, or text/html when *html* is given."""
    lines = ["Return-Path: <bounce@example.net>", "Delivered-To: ben.sample@example.net"]
    lines += [f"Authentication-Results: {value}" for value in auth]
    lines += [
        "Received: from out.example.net by mx.home.example; Fri, 20 Sep 2024 10:05:00 -0700",
        "Date: Fri, 20 Sep 2024 10:05:00 -0700",
        "To: ben.sample@example.net",
        f"From: {from_}",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        f'Content-Type: text/{"html" if html is not None else "plain"}; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
    ]
    text = html if html is not None else (body or ACCEPTED_TEXT.format(link=link))
    return ("\r\n".join(lines) + "\r\n\r\n" + text).encode("utf-8")


def aligned_pass(domain: str) -> str:
    """What the trusted server writes for mail really signed by *domain* (the attacker's)."""
    return (
        f"{TRUSTED}; dkim=pass header.d={domain}; spf=pass smtp.mailfrom={domain}; "
        f"dmarc=pass header.from={domain}"
    )


REAL_FAIL = (
    f"{TRUSTED}; dkim=none; spf=softfail smtp.mailfrom=facebookmail.com; "
    "dmarc=fail (p=REJECT) header.from=facebookmail.com"
)
FORGED_PASS = (
    f"{TRUSTED}; dkim=pass header.d=facebookmail.com; dmarc=pass header.from=facebookmail.com"
)


@dataclass(frozen=True)
class Spoof:
    raw: bytes
    reason: str  # a phrase the recorded reason (and the notification) must contain


HOMOGLYPH = "f\u0430cebookmail.com"  # Cyrillic a
HOMOGLYPH_ACE = HOMOGLYPH.encode("idna").decode("ascii")  # xn--fcebookmail-yij.com

SPOOFS: dict[str, Spoof] = {
    # ------------------------------------------------------------ display name
    "display-name-meta-gmail": Spoof(
        mail(from_="Meta <x@gmail.com>", auth=(aligned_pass("gmail.com"),)),
        "sender domain gmail.com is not a Meta domain",
    ),
    "display-name-facebook-quoted-address": Spoof(
        mail(
            from_='"notification@facebookmail.com" <x@gmail.com>',
            auth=(aligned_pass("gmail.com"),),
        ),
        "sender domain gmail.com is not a Meta domain",
    ),
    # ------------------------------------------------------------ look-alike domains
    "digits-for-letters": Spoof(
        mail(
            from_="Datenschutz <security@faceb00kmail.com>",
            auth=(aligned_pass("faceb00kmail.com"),),
        ),
        "faceb00kmail.com is not a Meta domain",
    ),
    "digit-one-for-l": Spoof(
        mail(from_="security@facebookmai1.com", auth=(aligned_pass("facebookmai1.com"),)),
        "facebookmai1.com is not a Meta domain",
    ),
    "meta-domain-as-subdomain": Spoof(
        mail(
            from_="security@facebookmail.com.example.net",
            auth=(aligned_pass("facebookmail.com.example.net"),),
        ),
        "facebookmail.com.example.net is not a Meta domain",
    ),
    "idn-homoglyph-unicode": Spoof(
        mail(from_=f"security@{HOMOGLYPH}", auth=(aligned_pass(HOMOGLYPH_ACE),)),
        "is not a Meta domain",
    ),
    "idn-homoglyph-punycode": Spoof(
        mail(from_=f"security@{HOMOGLYPH_ACE}", auth=(aligned_pass(HOMOGLYPH_ACE),)),
        f"{HOMOGLYPH_ACE} is not a Meta domain",
    ),
    "cyrillic-meta": Spoof(
        mail(from_="privacy@m\u0435ta.com", auth=(aligned_pass("xn--mta-jed.com"),)),
        "is not a Meta domain",
    ),
    # ------------------------------------------------------------ forged Authentication-Results
    "forged-results-above-the-trusted-one": Spoof(
        mail(auth=(FORGED_PASS, REAL_FAIL)), "reports no DKIM/DMARC pass"
    ),
    "forged-results-below-the-trusted-one": Spoof(
        mail(auth=(REAL_FAIL, FORGED_PASS)), "reports no DKIM/DMARC pass"
    ),
    "forged-results-lookalike-authserv-id": Spoof(
        mail(
            auth=(
                REAL_FAIL,
                FORGED_PASS.replace(TRUSTED, TRUSTED + ".evil.example"),
                FORGED_PASS.replace(TRUSTED, "mx.home-example"),
                FORGED_PASS.replace(TRUSTED, "mx.h\u043eme.example"),
            )
        ),
        "reports no DKIM/DMARC pass",
    ),
    "forged-results-only-untrusted-on-top": Spoof(
        mail(auth=(FORGED_PASS.replace(TRUSTED, "mx.google.com"), REAL_FAIL)),
        "reports no DKIM/DMARC pass",
    ),
    # ------------------------------------------------------------ alignment
    "dkim-pass-not-aligned": Spoof(
        mail(
            auth=(
                f"{TRUSTED}; dkim=pass header.d=evil.example; spf=pass "
                "smtp.mailfrom=facebookmail.com; dmarc=fail header.from=facebookmail.com",
            )
        ),
        "reports no DKIM/DMARC pass aligned with facebookmail.com",
    ),
    "dkim-pass-meta-name-inside-other-domain": Spoof(
        mail(
            auth=(
                f"{TRUSTED}; dkim=pass header.d=facebookmail.com.evil.example; "
                "dmarc=none header.from=facebookmail.com",
            )
        ),
        "reports no DKIM/DMARC pass aligned with facebookmail.com",
    ),
    "spf-pass-only": Spoof(
        mail(auth=(f"{TRUSTED}; spf=pass smtp.mailfrom=facebookmail.com",)),
        "reports no DKIM/DMARC pass",
    ),
    # ------------------------------------------------------------ links off Meta's domains
    "signed-but-link-off-meta": Spoof(
        mail(link="https://meta-privacy-check.example/confirm"),
        "links point outside Meta's domains: meta-privacy-check.example",
    ),
    "link-meta-domain-as-subdomain": Spoof(
        mail(link="https://www.facebook.com.evil.example/privacy"),
        "www.facebook.com.evil.example",
    ),
    "link-userinfo-trick": Spoof(
        mail(link="https://www.facebook.com@evil.example/privacy"), "evil.example"
    ),
    "html-link-text-says-facebook": Spoof(
        mail(
            html=(
                "<p>We will honour your objection for your public information. This means "
                "we won't use it for generative AI models for our AI at Meta features.</p>"
                '<a href="https://evil.example/x">https://www.facebook.com/privacy</a>'
                "<p>This message was sent to ben.sample@example.net.</p>"
            )
        ),
        "evil.example",
    ),
    "javascript-link": Spoof(
        mail(
            html=(
                "<p>We will honour your objection. This means we won't use it for generative "
                'AI at Meta.</p><a href="javascript:alert(1)">Privacy Centre</a>'
            )
        ),
        "javascript:",
    ),
}

FORWARD_BODY = (
    "Hi Ben, look what I got from Facebook!\r\n\r\n"
    "---------- Forwarded message ---------\r\n"
    "From: Facebook <notification@facebookmail.com>\r\n"
    "Date: Fri, 20 Sep 2024 at 19:05\r\nSubject: Your objection request\r\n"
    "To: <ben.sample@example.net>\r\n\r\n" + ACCEPTED_TEXT.format(link="facebook.com/privacy")
)
FORWARDS: dict[str, bytes] = {
    prefix: mail(
        from_="Karl Freund <karl.freund@example.com>",
        auth=(aligned_pass("example.com"),),
        subject=f"{prefix} Your objection request",
        body=FORWARD_BODY,
        message_id=f"<fwd-{prefix[:-1].lower()}@example.com>",
    )
    for prefix in ("Fwd:", "WG:", "TR:", "Fw:", "RV:")
}


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def run(raw: bytes, pack: RulePack) -> Outcome:
    return process(RawMessage(SourceKey("s", "s", "INBOX", 1, 1), raw), pack, SETTINGS)


def test_the_unspoofed_template_is_genuine_and_counts(pack: RulePack) -> None:
    """The control: without a trick the same mail is an authentic acceptance."""
    outcome = run(mail(), pack)
    assert outcome.match.kind == "objection_accepted"
    assert outcome.verdict.result == "pass", outcome.verdict.reasons
    assert outcome.counted
    assert not outcome.suspicious


@pytest.mark.parametrize("name", sorted(SPOOFS))
def test_spoof_is_suspicious_with_its_reason_and_never_counted(name: str, pack: RulePack) -> None:
    spoof = SPOOFS[name]
    outcome = run(spoof.raw, pack)
    assert outcome.match.kind in KINDS, (outcome.match, outcome.verdict)
    assert outcome.suspicious, outcome.verdict
    assert not outcome.counted
    assert outcome.verdict.result == "fail"
    assert outcome.fields == {}
    reasons = "; ".join(outcome.verdict.reasons)
    assert spoof.reason in reasons, reasons


@pytest.mark.parametrize("prefix", sorted(FORWARDS))
def test_meta_mail_forwarded_by_a_person_is_suspicious_forwarded_by(
    prefix: str, pack: RulePack
) -> None:
    outcome = run(FORWARDS[prefix], pack)
    assert outcome.match.kind == "objection_accepted"
    assert outcome.suspicious
    assert not outcome.counted
    assert outcome.worth_recording
    reasons = "; ".join(outcome.verdict.reasons)
    assert "forwarded by karl.freund@example.com" in reasons, reasons


def test_hoax_chain_letter_from_a_friend_stays_other(pack: RulePack) -> None:
    raw = (CORPUS / "hoax-goodbye-meta-ai-from-friend.eml").read_bytes()
    outcome = run(raw, pack)
    assert outcome.match.kind == OTHER
    assert not outcome.suspicious
    assert not outcome.counted


def test_a_person_quoting_meta_without_forwarding_stays_other(pack: RulePack) -> None:
    """Only a forward (subject prefix or forwarded-message block) is a forwarded Meta mail;
    a friend retelling Meta's wording is ordinary mail."""
    body = "Hey, Facebook wrote me this:\r\n\r\n" + ACCEPTED_TEXT.format(link="")
    raw = mail(from_="karl.freund@example.com", auth=(aligned_pass("example.com"),), body=body)
    outcome = run(raw, pack)
    assert outcome.match.kind == OTHER
    assert not outcome.suspicious


def test_no_spoof_changes_a_status_and_each_is_recorded_with_its_reason(
    pack: RulePack, tmp_path: Path
) -> None:
    """A genuine policy notice sets `notified`; then every spoof, each claiming the objection
    was accepted, arrives for the same account: the status stays `notified`."""
    policy = (CORPUS / "en-2024-policy-facebook.eml").read_bytes()
    spoofs = [s.raw for s in SPOOFS.values()] + list(FORWARDS.values())
    messages = [RawMessage(SourceKey("s", "s", "INBOX", 1, 1), policy)]
    messages += [
        RawMessage(
            SourceKey("s", "s", "INBOX", 1, uid),
            # A distinct Message-ID each, so none is skipped as a duplicate of another.
            raw.replace(b"Message-ID: <", b"Message-ID: <%d-" % uid, 1),
        )
        for uid, raw in enumerate(spoofs, start=2)
    ]
    with Store.open(tmp_path / "log.sqlite3") as store:
        before = None
        report = RunReport()
        ingest(store, pack, SETTINGS, messages[:1], report)
        before = [(s.platform, s.account, s.status) for s in store.current_status()]
        ingest(store, pack, SETTINGS, messages[1:], report)
        after = [(s.platform, s.account, s.status) for s in store.current_status()]
        rows = store.query(
            "SELECT uid, kind, suspicious, counted, auth_reasons, fields FROM messages "
            "WHERE uid > 1 ORDER BY uid"
        )
        transitions = store.count("transitions")
    assert before == [("facebook", "ben.sample@example.net", "notified")]
    assert after == before
    assert transitions == 1
    assert len(rows) == len(spoofs)
    for row in rows:
        assert row["suspicious"] == 1, dict(row)
        assert row["counted"] == 0
        assert json.loads(row["auth_reasons"]), dict(row)
        assert json.loads(row["fields"]) == {}


def test_the_notification_about_each_spoof_says_why(pack: RulePack) -> None:
    """The warning the user gets names the reason the mail was not believed."""
    from datetime import timedelta

    from watcher.config import NotifyTarget
    from watcher.notify.plan import NotifySettings, plan_notifications

    target = NotifyTarget(url="json://127.0.0.1:9/notify")  # type: ignore[arg-type]
    settings = NotifySettings(targets=((target.key, ()),))
    cases = [(s.raw, s.reason) for s in SPOOFS.values()]
    cases += [(raw, "forwarded by karl.freund@example.com") for raw in FORWARDS.values()]
    for raw, reason in cases:
        outcome = run(raw, pack)
        assert outcome.mail_at is not None
        items = plan_notifications(outcome, [], settings, outcome.mail_at + timedelta(hours=1))
        assert [i.event for i in items] == ["suspicious"], raw[:200]
        assert "Why: " in items[0].body
        assert reason in items[0].body, items[0].body
        assert "changed no status" in items[0].body
