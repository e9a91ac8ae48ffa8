"""The evidence model of the rule pack (issue 10): decisive phrases decide alone, supporting
phrases rank, negatives veto, one normalisation for text and phrases, and what a Meta mail
that fires no rule becomes.

Mails here are built in the test from a few sentences each (Meta's headers, an invented
address): they test the model, not Meta's wording; tests/lang, tests/independent and
tests/metamorphic.py test the wording.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from watcher.config import package_file
from watcher.pipeline.explain import explain
from watcher.pipeline.explain_text import render
from watcher.pipeline.message import parse
from watcher.pipeline.process import Settings, process
from watcher.pipeline.rules import (
    DECISIVE_SCORE,
    Phrase,
    Rule,
    RulePack,
    TextSearch,
    check_rule,
    classify,
    haystack,
    load_rules,
    match_subject,
    normalise,
    required_words,
    rules_file_problems,
)
from watcher.sources.base import RawMessage, SourceKey

TESTS = Path(__file__).parent
TEST_MAILS = sorted((TESTS / "lang").glob("*/*.eml")) + sorted((TESTS / "corpus").glob("*.eml"))
SETTINGS = Settings(trusted_authserv_ids=("mx.home.example",))


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def mail(
    body: str,
    subject: str = "Your objection request",
    sender: str = "Facebook <notification@facebookmail.com>",
    html: str | None = None,
    date: str = "Mon, 14 Apr 2025 10:00:00 +0000",
) -> bytes:
    """A mail from *sender* to anna@example.org with a text body (or an HTML one)."""
    kind, text = ("html", html) if html is not None else ("plain", body)
    return (
        f"From: {sender}\r\nTo: anna@example.org\r\nSubject: {subject}\r\nDate: {date}\r\n"
        "Message-ID: <t1@facebookmail.com>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/{kind}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n"
    ).encode()


def kind_of(raw: bytes, pack: RulePack) -> str:
    return classify(parse(raw), pack).kind


def user_pack(tmp_path: Path, text: str) -> RulePack:
    path = tmp_path / "user.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules(package_file("rules.yaml"), (path,))


# ---------------------------------------------------------------------- normalisation


def test_normalise_folds_typography_invisible_characters_spaces_and_spelling() -> None:
    text = "We\u2019ll hon\u00adour your ob\u200bjection\u00a0\u2013 see the Privacy\u202fCenter"
    assert normalise(text) == "We'll honour your objection - see the Privacy Centre"
    assert (
        normalise("Gr\u00fc\u00dfe, das hei\u00dft \u00abja\u00bb")
        == 'Gr\u00fcsse, das heisst "ja"'
    )
    assert normalise("We recognize personalized ads at the organization") == (
        "We recognise personalised ads at the organisation"
    )
    assert normalise("  several\t\n  spaces \r\n") == "several spaces"
    # NFC: a decomposed accent is the same letter.
    assert (
        normalise("Einspruch anerkannt, gepr\u0075\u0308ft") == "Einspruch anerkannt, gepr\u00fcft"
    )


def test_normalise_leaves_addresses_and_urls_alone() -> None:
    """The account is read from the same text: an address must come through unchanged."""
    text = "sent to honor.organize@example.com, see www.center.example/privacy/center"
    assert normalise(text) == text


def test_one_phrase_covers_its_spelling_variants(tmp_path: Path) -> None:
    pack = user_pack(
        tmp_path,
        "rules:\n"
        "  - id: my.en.accepted\n    kind: objection_accepted\n    language: en\n"
        "    decisive: ['\\bwe honor your zork\\b']\n"
        "  - id: my.de.accepted\n    kind: objection_accepted\n    language: de\n"
        "    decisive: ['\\bzork wird beschlo\u00dfen\\b']\n",
    )
    for body in ("We honour your zork.", "We honor your zork.", "We hon\u00adour your zork."):
        assert classify(parse(mail(body)), pack).rule_id == "my.en.accepted", body
    for body in ("Der Zork wird beschlossen.", "Der Zork wird beschlo\u00dfen."):
        assert classify(parse(mail(body)), pack).rule_id == "my.de.accepted", body


def test_the_prefilter_never_changes_what_a_phrase_finds(pack: RulePack) -> None:
    """TextSearch skips a regex when a word it requires is missing from the case-folded text;
    on every test mail, for every phrase of the pack, it finds exactly what the regex finds."""
    patterns = {id(p.pattern): p.pattern for r in pack.rules for p in _phrases_of(r)}
    patterns.update({id(p): p for p in pack.topic})
    with_needs = [p for p in patterns.values() if required_words(p)]
    assert len(with_needs) > 0.8 * len(patterns)  # it does rule most phrases out cheaply
    for path in TEST_MAILS:
        text = haystack(parse(path.read_bytes()))
        search = TextSearch(text)
        for pattern in patterns.values():
            found = pattern.search(text)
            assert search.find(pattern) == (found.group(0) if found else None), (
                path.name,
                pattern.pattern,
            )


def _phrases_of(rule: Rule) -> list[Phrase]:
    groups = [p for g in rule.all for p in g]
    return [*rule.subject, *rule.decisive, *groups, *rule.supporting, *rule.negatives]


def test_required_words_are_what_every_match_contains() -> None:
    pattern = re.compile(
        r"\berkennen (?:wir )?(?:deinen|Ihren) (?:Einspruch|Widerspruch) an\b", re.I
    )
    assert required_words(pattern) == (
        ("erkennen",),
        ("deinen", "ihren"),
        ("einspruch", "widerspruch"),
    )
    # Nothing is required of an optional part or a short word.
    assert required_words(re.compile(r"(?:abc)?x\d+", re.I)) == ()


# ---------------------------------------------------------------------- decisions


@pytest.mark.parametrize(
    "body",
    [
        "Wir haben deinen Antrag geprüft und erkennen deinen Einspruch an. Das bedeutet, dein "
        "Antrag wird künftig berücksichtigt.",
        "Wir haben Ihren Antrag geprüft und erkennen Ihren Widerspruch an.",
        "Wir haben Ihren Antrag geprüft und werden Ihrem Widerspruch nachkommen. Das heisst, "
        "Ihre Informationen werden künftig nicht verwendet.",
        "We've reviewed your request and will honor your objection.",
        "We have reviewed your objection and we will uphold it.",
        "Nous avons examiné votre demande et nous donnerons suite à votre opposition.",
        "Abbiamo esaminato la tua richiesta. Accogliamo la tua opposizione.",
        "Hemos revisado tu solicitud y aceptamos tu oposición.",
        "Analisámos o teu pedido. Vamos aceitar a tua oposição.",
        "We hebben je verzoek beoordeeld en we willigen je bezwaar in.",
        "Vi har gennemgået din anmodning og giver din indsigelse medhold.",
        "Vi har gått gjennom forespørselen din og tar innsigelsen din til følge.",
    ],
)
def test_a_decisive_phrase_decides_without_any_ai_word(body: str, pack: RulePack) -> None:
    assert kind_of(mail(f"Hallo,\n\n{body}\n\nPrivacy Operations"), pack) == "objection_accepted"


def test_a_refusal_is_a_rejection_and_never_an_acceptance(pack: RulePack) -> None:
    for body in (
        "We've reviewed your request and we're unable to honour your objection.",
        "We looked into your objection, but we cannot uphold it.",
        "Wir haben deinen Widerspruch geprüft, müssen ihn aber leider ablehnen.",
        "Nous ne sommes pas en mesure d'accepter votre opposition.",
    ):
        assert kind_of(mail(body), pack) == "objection_rejected", body


def test_a_negative_vetoes_a_decisive_phrase(pack: RulePack) -> None:
    """An account appeal that was accepted uses the same words in German; the restored account
    says what it is about."""
    body = (
        "Wir haben deinen Einspruch geprüft und erkennen deinen Einspruch an. Dein Konto wurde "
        "wiederhergestellt."
    )
    msg = parse(mail(body, subject="Dein Konto ist wieder verfügbar"))
    assert classify(msg, pack).kind == "other"
    rule = next(r for r in pack.rules if r.id == "de.objection_accepted")
    check = check_rule(rule, match_subject(msg), haystack(msg), full=True)
    assert check.holds
    assert not check.matched
    assert any("wiederhergestellt" in hit.found for hit in check.vetoes)


def test_a_conditional_in_a_notice_is_no_acceptance(pack: RulePack) -> None:
    body = (
        "We're expanding AI at Meta. We rely on legitimate interests to use your information. "
        "You have the right to object. If your objection is honoured, it will be applied going "
        "forward."
    )
    msg = parse(mail(body, subject="We're updating our Privacy Policy"))
    assert classify(msg, pack).kind == "policy_update"
    accepted = next(r for r in pack.rules if r.id == "en.objection_accepted")
    assert not check_rule(accepted, match_subject(msg), haystack(msg)).matched


def test_a_decision_outweighs_a_combination(pack: RulePack) -> None:
    """An acceptance that also names AI at Meta and the right to object (the words of a
    policy notice) is an acceptance: a decisive phrase scores more than any combination."""
    body = (
        "We'll honour your objection. You used your right to object to the use of your "
        "information for AI at Meta on the basis of legitimate interests."
    )
    msg = parse(mail(body))
    assert classify(msg, pack).kind == "objection_accepted"
    e = explain(
        process(RawMessage(SourceKey("t", "t", "", 0, 1), mail(body)), pack, SETTINGS), pack
    )
    assert e.decided_by is not None
    assert e.decided_by.check.score >= DECISIVE_SCORE
    policy = next(r for r in e.candidates if r.check.rule.id == "en.policy_update")
    assert policy.matched
    assert policy.check.score < DECISIVE_SCORE
    assert "en.policy_update (policy_update): fired with score" in render(e, "x")


ZORK_RULES = """
rules:
  - id: my.accepted
    kind: objection_accepted
    language: en
    decisive: ['\\bzork\\b']
  - id: my.rejected
    kind: objection_rejected
    language: en
    decisive: ['\\bzork\\b']
  - id: my.accepted.second
    kind: objection_accepted
    language: en
    decisive: ['\\bzork\\b']
"""


def test_a_tie_goes_to_the_kind_order_then_to_the_file_order(tmp_path: Path) -> None:
    pack = user_pack(tmp_path, ZORK_RULES)
    assert classify(parse(mail("A zork for you.")), pack).rule_id == "my.rejected"
    without = user_pack(tmp_path, ZORK_RULES + "disable: [my.rejected]\n")
    assert classify(parse(mail("A zork for you.")), without).rule_id == "my.accepted"


def test_supporting_evidence_breaks_a_tie_whatever_the_file_order(tmp_path: Path) -> None:
    """Two rules of one kind state the same decision: the one whose language's supporting
    evidence the mail has wins, although it comes later in the file."""
    pack = user_pack(
        tmp_path,
        "rules:\n"
        "  - id: my.xx.accepted\n    kind: objection_accepted\n    language: xx\n"
        "    decisive: ['\\bzork\\b']\n"
        "  - id: my.en.accepted\n    kind: objection_accepted\n    language: en\n"
        "    decisive: ['\\bzork\\b']\n",
    )
    order = [r.id for r in pack.rules]
    assert order.index("my.xx.accepted") < order.index("my.en.accepted")
    plain = parse(mail("A zork for you.", subject="Hello"))
    assert classify(plain, pack).rule_id == "my.xx.accepted"  # an exact tie: file order
    evidence = parse(mail("A zork for you about AI at Meta and your objection.", subject="Hello"))
    assert classify(evidence, pack).rule_id == "my.en.accepted"


def test_the_file_order_only_matters_for_exact_ties(pack: RulePack) -> None:
    """Reversing the order of the whole pack changes no result on the test mails (they have no
    exact tie of score and kind)."""
    count = len(pack.rules)
    reversed_rules = tuple(
        dataclasses.replace(r, order=count - r.order) for r in reversed(pack.rules)
    )
    backwards = dataclasses.replace(pack, rules=reversed_rules)
    paths = TEST_MAILS + sorted((TESTS / "independent").glob("*.eml"))
    for path in paths:
        msg = parse(path.read_bytes())
        a, b = classify(msg, pack), classify(msg, backwards)
        assert (a.kind, a.rule_id, a.fields) == (b.kind, b.rule_id, b.fields), path.name


# ---------------------------------------------------------------------- policy notices


AI_CHATS = (
    "Starting 16 December 2025, we'll use your interactions with AI at Meta to personalise the "
    "content and ads you see on Facebook and Instagram."
)


def test_a_notice_about_ai_use_without_a_right_to_object_is_unrecognized(pack: RulePack) -> None:
    raw = mail(AI_CHATS, subject="An update about AI at Meta")
    assert kind_of(raw, pack) == "unrecognized"
    objectable = mail(
        AI_CHATS + " You have the right to object to this use of your information.",
        subject="An update about AI at Meta",
    )
    assert kind_of(objectable, pack) == "policy_update"
    refused = mail(AI_CHATS + " There is no option to opt out of this.", subject="AI at Meta")
    assert kind_of(refused, pack) == "unrecognized"


def test_a_policy_notice_gets_its_date_from_any_phrasing(pack: RulePack) -> None:
    body = (
        "Starting May 27, 2025, we'll use public information to develop and improve AI at Meta, "
        "on the basis of legitimate interests. You have the right to object."
    )
    match = classify(parse(mail(body)), pack)
    assert match.kind == "policy_update"
    assert match.fields == {"effective_date": "2025-05-27"}
    undated = classify(parse(mail(body.replace("Starting May 27, 2025, w", "W"))), pack)
    assert undated.fields == {"effective_date": None}


def test_a_user_rules_own_date_extractor_wins_when_it_finds_a_date(tmp_path: Path) -> None:
    pack = user_pack(
        tmp_path,
        "rules:\n"
        "  - id: en.policy_update\n    kind: policy_update\n    language: en\n"
        "    all: [['\\bAI at Meta\\b'], ['\\bright to object\\b']]\n"
        "    extract:\n"
        "      effective_date: '\\bdeadline (?P<date>\\w+ \\d{1,2}, \\d{4})'\n",
    )
    body = (
        "Starting May 27, 2025, we'll use public information for AI at Meta. You have the right "
        "to object; deadline June 2, 2025."
    )
    assert classify(parse(mail(body)), pack).fields == {"effective_date": "2025-06-02"}
    no_deadline = body.replace("deadline", "before")
    assert classify(parse(mail(no_deadline)), pack).fields == {"effective_date": "2025-05-27"}


# ---------------------------------------------------------------------- never silently other


def test_a_meta_privacy_mail_no_rule_knows_is_unrecognized(pack: RulePack) -> None:
    # Signed by Meta's privacy team, nothing else known.
    assert kind_of(mail("Thanks for your patience.\n\nThe Meta Privacy Team"), pack) == (
        "unrecognized"
    )
    # Only a link to the Privacy Center's generative-AI page (in the HTML, not the text).
    html = '<p>Read <a href="https://www.facebook.com/privacy/genai">more here</a>.</p>'
    assert kind_of(mail("", html=html), pack) == "unrecognized"
    # The objection named in Danish.
    assert kind_of(mail("Vi behandler stadig din indsigelse."), pack) == "unrecognized"


def test_a_shared_negative_keeps_a_meta_mail_on_another_topic_other(pack: RulePack) -> None:
    body = "Meet Meta AI, your new assistant. Learn about AI at Meta and what it can do."
    raw = mail(body, subject="Meet Meta AI")
    assert kind_of(raw, pack) == "other"
    e = explain(process(RawMessage(SourceKey("t", "t", "", 0, 1), raw), pack, SETTINGS), pack)
    assert e.fallback is not None
    assert e.fallback.veto is not None
    assert e.fallback.topic is not None  # it did name a topic phrase
    assert "says it is about something else" in render(e, "x")


def test_the_language_prefilter_does_not_decide_the_fallback(pack: RulePack) -> None:
    unfiltered = dataclasses.replace(pack, languages={})
    for path in TEST_MAILS:
        msg = parse(path.read_bytes())
        assert classify(msg, pack).kind == classify(msg, unfiltered).kind, path.name


# ---------------------------------------------------------------------- platform of other mail


def test_a_quoted_sender_names_the_platform_of_a_mail_that_does_not_claim_meta(
    pack: RulePack,
) -> None:
    forwarded = mail(
        "FYI\n\n-----Original Message-----\nFrom: Facebook <security@facebookmail.com>\n"
        "Subject: Someone tried to log in\n\nHi, someone tried to log in to your account.",
        subject="Fw: Someone tried to log in",
        sender="Anna <anna@example.org>",
    )
    match = classify(parse(forwarded), pack)
    assert (match.kind, match.claims_meta, match.platform) == ("other", False, "facebook")
    german = mail(
        "Von: Instagram <no-reply@mail.instagram.com>\nBetreff: Hallo\n\nText",
        sender="Anna <anna@example.org>",
    )
    assert classify(parse(german), pack).platform == "instagram"
    newsletter = mail(
        "Facebook and Instagram will use your posts for AI. From: our editors.",
        sender="News <news@example.org>",
    )
    assert classify(parse(newsletter), pack).platform is None


# ---------------------------------------------------------------------- rules files


def test_user_files_add_shared_evidence_and_date_cues(tmp_path: Path) -> None:
    pack = user_pack(
        tmp_path,
        "evidence:\n  en:\n    negatives: ['\\bzork\\b']\n    supporting: ['\\bquux\\b']\n"
        "effective_date_cues:\n  xx: ['\\bab dem zork\\b']\n",
    )
    assert [p.pattern for p in pack.date_cues["xx"]] == ["\\bab dem zork\\b"]
    assert "en" in pack.date_cues  # the shipped cues stay
    accepted = mail("We'll honour your objection.")
    assert classify(parse(accepted), pack).kind == "objection_accepted"
    assert classify(parse(mail("We'll honour your objection. zork")), pack).kind != (
        "objection_accepted"
    )
    rule = next(r for r in pack.rules if r.id == "en.objection_accepted")
    assert "\\bquux\\b" in [p.written for p in rule.supporting]


def test_old_style_user_rules_still_work(tmp_path: Path) -> None:
    """`all` groups, `none` (a negative) and `subject` keep their meaning."""
    pack = user_pack(
        tmp_path,
        "rules:\n  - id: my.de\n    kind: objection_accepted\n    language: de\n"
        "    subject: ['\\bWiderspruch\\b']\n"
        "    all: [['\\bwar erfolgreich\\b'], ['\\bKI bei Meta\\b']]\n"
        "    none: ['\\bnicht erfolgreich\\b']\n",
    )
    ok = mail("Dein Widerspruch war erfolgreich: KI bei Meta.", subject="Dein Widerspruch")
    assert classify(parse(ok), pack).rule_id == "my.de"
    vetoed = mail(
        "Dein Widerspruch war erfolgreich? Nein, nicht erfolgreich. KI bei Meta.",
        subject="Dein Widerspruch",
    )
    assert classify(parse(vetoed), pack).rule_id != "my.de"
    other_subject = mail("Dein Widerspruch war erfolgreich: KI bei Meta.", subject="Hallo")
    assert classify(parse(other_subject), pack).rule_id != "my.de"


def test_rules_check_names_a_bad_shared_phrase(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "evidence:\n  en:\n    negatives: ['(unclosed']\neffective_date_cues:\n  de: ['[x']\n",
        encoding="utf-8",
    )
    problems = "\n".join(rules_file_problems(path))
    assert "evidence.en.negatives: phrase: pattern '(unclosed' does not compile" in problems
    assert "effective_date_cues: cue of de: pattern '[x' does not compile" in problems
