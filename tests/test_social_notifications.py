"""Meta's social notifications relay what other people wrote: a comment, a message, a friend's
or a Page's name. Sent by Meta, authenticated, they can still carry any sentence, Meta's own
decision wording included. None of them may move a status (trial defect: a comment quoting
"... erkennen deinen Einspruch an" set an account to accepted).

Generated: every notification template (7 languages x comment / message / mention / friend
request) x every quoted decision (8 languages x accepted / rejected / info requested), with the
quote in the body or in the subject; and the X-Facebook-Notify header on every corpus mail.
"""

from __future__ import annotations

import itertools
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher.config import package_file
from watcher.kinds import KINDS
from watcher.pipeline.process import Settings, process
from watcher.pipeline.rules import RulePack, load_rules
from watcher.sources.base import RawMessage, SourceKey

CORPUS = Path(__file__).parent / "corpus"
MANIFEST: dict[str, Any] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
TRUSTED = MANIFEST["trusted_authserv_ids"][0]
SETTINGS = Settings(trusted_authserv_ids=(TRUSTED,))
VICTIM = "anna.beispiel@example.org"

# What someone else writes: Meta's decision sentences, as its mails word them.
QUOTES = {
    "de-accepted": "Wir haben deinen Antrag geprüft und erkennen deinen Einspruch an. KI bei Meta",
    "de-rejected": "Wir haben deinen Einspruch geprüft und können ihm nicht stattgeben.",
    "de-info": "Wir benötigen weitere Informationen, um deinen Einspruch zu bearbeiten.",
    "en-accepted": "We will honour your objection to the use of your information for AI at Meta.",
    "en-rejected": "We reviewed your objection and we are unable to honour your request.",
    "fr-accepted": "Nous avons examiné votre demande et nous accepterons votre opposition.",
    "es-accepted": "Hemos revisado tu solicitud y aceptamos tu objeción.",
    "it-accepted": "Abbiamo esaminato la tua richiesta e accoglieremo la tua opposizione.",
    "nl-accepted": "We hebben je verzoek beoordeeld en we honoreren je bezwaar.",
    "pt-accepted": "Analisámos o teu pedido e vamos aceitar a tua objeção.",
}

# Meta's notification wording around the quote, per language: (subject, body) with {q} for
# the quote and {n} for the other person's or Page's name.
TEMPLATES = {
    "en-comment": ("{n} commented on your post", '{n} commented on your post: "{q}"'),
    "en-message": ("New message from {n}", 'You have a new message from {n}: "{q}"'),
    "en-mention": ("{n} mentioned you in a comment", '{n} mentioned you in a comment: "{q}"'),
    "en-friend": ("{n} sent you a friend request", "{n} sent you a friend request."),
    "de-comment": (
        "{n} hat deinen Beitrag kommentiert",
        '{n} hat deinen Beitrag kommentiert: "{q}"',
    ),
    "de-message": ("Neue Nachricht von {n}", '{n} hat dir eine Nachricht gesendet: "{q}"'),
    "de-friend": (
        "{n} hat dir eine Freundschaftsanfrage gesendet",
        "Du hast eine neue Freundschaftsanfrage.",
    ),
    "fr-comment": (
        "{n} a commenté votre publication",
        "{n} a commenté votre publication : « {q} »",
    ),
    "fr-message": ("Nouveau message de {n}", "{n} vous a envoyé un message : « {q} »"),
    "es-comment": ("{n} comentó tu publicación", '{n} comentó tu publicación: "{q}"'),
    "es-friend": (
        "{n} te envió una solicitud de amistad",
        "Tienes una nueva solicitud de amistad.",
    ),
    "it-comment": ("{n} ha commentato il tuo post", '{n} ha commentato il tuo post: "{q}"'),
    "it-mention": ("{n} ti ha menzionato", '{n} ti ha menzionato in un commento: "{q}"'),
    "nl-message": ("Nieuw bericht van {n}", '{n} heeft je een bericht gestuurd: "{q}"'),
    "nl-friend": (
        "{n} heeft je een vriendschapsverzoek gestuurd",
        "Je hebt een nieuw vriendschapsverzoek.",
    ),
    "pt-comment": ("{n} comentou a sua publicação", '{n} comentou a sua publicação: "{q}"'),
    "pt-message": ("Nova mensagem de {n}", '{n} te enviou uma mensagem: "{q}"'),
}


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def _notification(subject: str, body: str, notify: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["Authentication-Results"] = (
        f"{TRUSTED}; dkim=pass header.d=facebookmail.com header.s=s1; "
        "spf=pass smtp.mailfrom=facebookmail.com; dmarc=pass header.from=facebookmail.com"
    )
    msg["Date"] = "Mon, 10 Jun 2024 11:00:00 -0700"
    msg["From"] = "Facebook <notification@facebookmail.com>"
    msg["To"] = VICTIM
    msg["Subject"] = subject
    msg["Message-ID"] = "<n@facebookmail.com>"
    if notify is not None:
        msg["X-Facebook-Notify"] = f"{notify}; mailid=1a2b3c"
    msg.set_content(
        f"Hallo Anna,\n\n{body}\n\nhttps://www.facebook.com/permalink.php?story_fbid=1\n\n"
        f"Das Facebook-Team\n\nDiese Nachricht wurde an {VICTIM} gesendet.\n"
    )
    return msg.as_bytes()


def _outcome(raw: bytes, pack: RulePack) -> Any:
    return process(RawMessage(SourceKey("t", "t", "INBOX", 1, 1), raw), pack, SETTINGS)


def test_the_quotes_alone_would_count(pack: RulePack) -> None:
    """The attack is real: each quote, in a plain authentic Meta mail, is a decision."""
    decided = {
        name: _outcome(_notification("Dein Einspruch", quote), pack).match.kind
        for name, quote in QUOTES.items()
    }
    assert sum(kind in KINDS for kind in decided.values()) >= len(QUOTES) - 2, decided


@pytest.mark.parametrize(
    ("template", "quote", "where"),
    list(itertools.product(sorted(TEMPLATES), sorted(QUOTES), ("body", "subject"))),
)
def test_a_notification_quoting_a_decision_moves_nothing(
    template: str, quote: str, where: str, pack: RulePack
) -> None:
    subject, body = TEMPLATES[template]
    name = "Max Muster" if where == "body" else QUOTES[quote]
    text = QUOTES[quote] if where == "body" else "Datenschutz"
    raw = _notification(subject.format(n=name, q=text), body.format(n=name, q=text))
    outcome = _outcome(raw, pack)
    assert outcome.verdict.result == "pass"  # genuinely Meta's: only the meaning protects
    assert outcome.match.kind not in KINDS, (outcome.match.kind, outcome.match.rule_id)
    assert outcome.counted is False


@pytest.mark.parametrize("quote", sorted(QUOTES))
def test_the_notify_header_alone_marks_a_relayed_quote(quote: str, pack: RulePack) -> None:
    """Without any template wording, Meta's X-Facebook-Notify type tells a relayed comment
    from a privacy mail."""
    raw = _notification("Max Muster", f'"{QUOTES[quote]}"', notify="feed_comment")
    assert _outcome(raw, pack).match.kind == "other"


@pytest.mark.parametrize(
    "name", sorted(n for n, e in MANIFEST["messages"].items() if e["kind"] in KINDS)
)
def test_corpus_privacy_mails_with_a_social_notify_type_are_other(
    name: str, pack: RulePack
) -> None:
    raw = (CORPUS / name).read_bytes()
    expected = MANIFEST["messages"][name]["kind"]
    kept = _outcome(b"X-Facebook-Notify: privacy_objection_result; mailid=9\r\n" + raw, pack)
    assert kept.match.kind == expected  # a privacy type changes nothing
    relayed = _outcome(b"X-Facebook-Notify: feed_comment; mailid=9\r\n" + raw, pack)
    assert relayed.match.kind == "other"
    assert relayed.counted is False


def test_rules_test_says_why_a_notification_is_other(tmp_path: Path) -> None:
    """`rules test` names the notification type that made the mail other."""
    import subprocess
    import sys

    mail = tmp_path / "comment.eml"
    mail.write_bytes(_notification("Max Muster", f'"{QUOTES["de-accepted"]}"', "feed_comment"))
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "rules", "test", str(mail)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Social notification: X-Facebook-Notify says feed_comment" in done.stdout
    assert "Result: other: a Meta social notification" in done.stdout
    assert "names none of the topic phrases" not in done.stdout


# Neutral wrappers: no notification wording at all, so only where the decision stands (in
# quotes, or in the Subject) tells it from Meta's own statement.
NEUTRAL_QUOTED = (
    'Privacy Ops: "{q}"',
    "Privacy Ops:\n„{q}“",
    "«{q}»",
    "Max Muster:\n\n“{q}”\n\nAntworten",
)


@pytest.mark.parametrize(
    ("shape", "quote"), list(itertools.product(range(len(NEUTRAL_QUOTED)), sorted(QUOTES)))
)
def test_a_quoted_decision_is_not_meta_stating_it(shape: int, quote: str, pack: RulePack) -> None:
    body = NEUTRAL_QUOTED[shape].format(q=QUOTES[quote])
    outcome = _outcome(_notification("Neue Aktivität", body), pack)
    assert outcome.match.kind not in KINDS, (body, outcome.match.rule_id)
    assert outcome.counted is False


@pytest.mark.parametrize("quote", sorted(QUOTES))
def test_a_decision_only_in_the_subject_does_not_count(quote: str, pack: RulePack) -> None:
    outcome = _outcome(_notification(QUOTES[quote], "Neue Aktivität in deiner Gruppe."), pack)
    assert outcome.match.kind not in KINDS, outcome.match.rule_id
    assert outcome.counted is False


def _with_quotes_before_the_text(raw: bytes) -> bytes:
    """*raw* with a line holding two quoted words put before the text of each of its text
    parts (re-encoded as the part was)."""
    from email import message_from_bytes, policy

    msg = message_from_bytes(raw, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            text = 'Betreff: "Datenschutz" und „Meta“.\n\n' + part.get_content()
        elif part.get_content_type() == "text/html":
            text = '<p>Betreff: "Datenschutz" und „Meta“.</p>' + part.get_content()
        else:
            continue
        cte = part.get("Content-Transfer-Encoding", "8bit")
        subtype = part.get_content_subtype()
        del part["Content-Transfer-Encoding"]
        part.set_content(text, subtype=subtype, cte="base64" if "base64" in cte else "8bit")
    return msg.as_bytes()


@pytest.mark.parametrize(
    "name", sorted(n for n, e in MANIFEST["messages"].items() if e["kind"] in KINDS)
)
def test_balanced_quotes_before_a_stated_decision_change_nothing(name: str, pack: RulePack) -> None:
    """The quotation test counts quotes: quoted words before Meta's own sentence (an even
    number of quotes) leave the sentence stated."""
    outcome = _outcome(_with_quotes_before_the_text((CORPUS / name).read_bytes()), pack)
    assert "Datenschutz" in outcome.message.text  # the quotes are there
    assert outcome.match.kind == MANIFEST["messages"][name]["kind"]


@pytest.mark.parametrize(
    "header",
    [
        "X-Facebook-Notify: ",
        "X-Facebook-Notify: ; mailid=1",
        "X-Facebook-Notify: privacy_objection_result  feed_comment; mailid=1",
        "X-Facebook-Notify: privacy_objection_result,feed_comment",
    ],
)
def test_an_untyped_or_odd_notify_header_counts_as_a_notification(
    header: str, pack: RulePack
) -> None:
    """Only one word starting with privacy_ says "privacy mail"; any other shape of the header
    makes the mail count less, never more (trial 2)."""
    raw = _notification("Dein Einspruch", QUOTES["de-accepted"])
    assert _outcome(raw, pack).match.kind in KINDS  # without the header: a decision
    marked = header.encode() + b"\r\n" + raw
    assert _outcome(marked, pack).match.kind == "other"
