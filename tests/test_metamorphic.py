"""Metamorphic tests: rewriting a mail without changing what it says must not change its labels.

The cases come from tests/metamorphic.py: every corpus and language mail under every
transform that applies to it (drop a non-decisive paragraph, formal/informal address, Swiss
and US/UK spelling, the effective date in another format and sentence, HTML-only, text-only,
base64/quoted-printable/8bit, LF line ends, reordered paragraphs, whitespace, zero-width
spaces and soft hyphens inside words, another signature), and the reverse: genuine Meta mail on
other topics in seven languages, which must never move a status. Each case id names the mail
and the transform; the generator is seeded, so a failing id reproduces with
``pytest 'tests/test_metamorphic.py::test_variant_keeps_the_labels[<id>]'``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from typing import Any

import pytest
from metamorphic import (
    TRANSFORMS,
    Case,
    corpus_trusted_ids,
    labelled_cases,
    labelled_mails,
    negative_cases,
    negative_mails,
    summary,
    variants,
)

from watcher.config import package_file
from watcher.pipeline.message import Message, parse
from watcher.pipeline.process import Settings, process
from watcher.pipeline.rules import KINDS, RulePack, load_rules
from watcher.sources.base import RawMessage, SourceKey

SETTINGS = Settings(trusted_authserv_ids=corpus_trusted_ids())
LABELLED = labelled_cases()
NEGATIVES = negative_cases()
# Transforms that change only the transport: the text the classifier reads stays the same.
TRANSPORT_ONLY = ("cte-base64", "cte-quoted-printable", "cte-8bit", "lf", "crlf")


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def _outcome(case: Case, pack: RulePack) -> Any:
    key = SourceKey("metamorphic", case.source, case.id, 0, 1)
    return process(RawMessage(key, case.raw), pack, SETTINGS)


ORIGINALS = {(m.source, m.name): m.raw for m in labelled_mails() + negative_mails()}


@functools.cache
def _original(source: str, name: str) -> Message:
    return parse(ORIGINALS[(source, name)])


def _check_generator(case: Case, new: Message) -> None:
    """What the generator promises, checked on the message the pipeline parsed: every header
    the verdict and the account depend on is unchanged (DKIM is not verified here, but
    Authentication-Results, From, To, Date, Subject and Message-ID must come through), a
    transport-only change keeps the text, and a wording change changes it. A failure here is
    the generator's fault, not the classifier's."""
    old = _original(case.source, case.name)
    assert new.error is None, f"generator: {case.id}: {new.error}"
    for attr in ("from_name", "from_addr", "subject", "recipients", "auth_results", "date_at"):
        assert getattr(new, attr) == getattr(old, attr), f"generator: {case.id}: {attr}"
    assert new.message_id == old.message_id, f"generator: {case.id}"
    if case.transform in TRANSPORT_ONLY:
        assert (new.text, new.links) == (old.text, old.links), f"generator: {case.id}"
    elif case.transform.startswith(("drop-", "date-", "address-", "signature-", "swiss")):
        assert new.text != old.text, f"generator: {case.id}"


@pytest.mark.parametrize("case", LABELLED, ids=lambda c: c.id)
def test_variant_keeps_the_labels(case: Case, pack: RulePack) -> None:
    expected = case.expected
    outcome = _outcome(case, pack)
    _check_generator(case, outcome.message)
    why = f"rule {outcome.match.rule_id}; {case.id}"
    assert outcome.match.kind == expected["kind"], why
    assert outcome.suspicious is expected["suspicious"], why
    assert outcome.verdict.result == expected["authenticity"], outcome.verdict.reasons
    assert outcome.match.account == expected["account"], why
    assert outcome.fields == (expected["fields"] or {}), why
    if expected["kind"] != "other":
        assert outcome.match.platform == expected["platform"], why
    assert outcome.counted is (expected["kind"] in KINDS and expected["authenticity"] == "pass")


@pytest.mark.parametrize("case", NEGATIVES, ids=lambda c: c.id)
def test_meta_mail_on_another_topic_moves_no_status(case: Case, pack: RulePack) -> None:
    outcome = _outcome(case, pack)
    if case.transform != "original":
        _check_generator(case, outcome.message)
    why = f"rule {outcome.match.rule_id}; {case.id}"
    assert outcome.counted is False, why
    assert outcome.match.kind not in KINDS, why
    # The AI-chats-for-ads notice is about the AI use of data: surfaced, not dropped.
    assert outcome.match.kind == case.expected["kind"], why
    assert outcome.suspicious is False, why
    assert outcome.verdict.result == "pass", outcome.verdict.reasons


# ---- the generator itself: what it produces is what the tests above assume ----------------


def test_there_are_several_hundred_cases_and_every_mail_has_variants() -> None:
    assert len(LABELLED) >= 1500
    assert len(NEGATIVES) >= 400
    per_mail = Counter((c.source, c.name) for c in LABELLED)
    mails = labelled_mails()
    assert len(mails) >= 185
    for mail in mails:
        assert per_mail[(mail.source, mail.name)] >= 5, f"{mail.source}/{mail.name}"
    transforms = {re.sub(r"-\d+$", "", c.transform) for c in LABELLED}
    for name in ("drop-paragraph", "html-only", "text-only", "cte-base64", "cte-quoted-printable"):
        assert name in transforms
    for name in ("lf", "reorder-paragraphs", "whitespace", "zero-width", "soft-hyphen", "swiss-ss"):
        assert name in transforms
    for name in ("us-spelling", "date-numeric", "signature"):
        assert name in transforms
    assert any(t.startswith("address-") for t in transforms)
    assert any(t.startswith("date-sentence") for t in transforms)
    assert len(TRANSFORMS) >= 14


def test_case_ids_are_unique_and_the_generator_is_deterministic() -> None:
    ids = [c.id for c in LABELLED + NEGATIVES]
    assert len(ids) == len(set(ids))
    # Generated again (the corpus mails and all negatives), the cases are the same bytes.
    sample = [c for c in LABELLED if c.source == "corpus"] + NEGATIVES
    again = [v for m in labelled_mails() if m.source == "corpus" for v in variants(m)]
    again += negative_cases()
    assert [c.id for c in again] == [c.id for c in sample]
    first = hashlib.sha256(b"".join(c.raw for c in sample)).hexdigest()
    second = hashlib.sha256(b"".join(c.raw for c in again)).hexdigest()
    assert first == second


def test_negatives_cover_every_topic_in_at_least_six_languages() -> None:
    mails = negative_mails()
    topics = Counter(m.name.split("-", 1)[1] for m in mails)
    assert len(topics) == 9
    assert all(n >= 6 for n in topics.values()), topics
    assert {"de", "en", "fr", "it", "es", "nl"} <= {m.language for m in mails}
    unrecognized = {m.name for m in mails if m.expected["kind"] == "unrecognized"}
    assert unrecognized == {m.name for m in mails if m.name.endswith("ai-chats-ads-notice")}


def test_summary_counts_every_case() -> None:
    table = summary(LABELLED + NEGATIVES)
    assert f"all cases: {len(LABELLED) + len(NEGATIVES)}" in table
    assert f"meaning-preserving variants: {len(LABELLED)}" in table
    assert f"(must move no status): {len(NEGATIVES)}" in table
