"""Mails written independently of tests/corpus and tests/lang: same meaning, other sentences.

tests/independent/ holds mails written for issue 10 by someone who had read the existing mails
to learn Meta's style and headers, then wrote different sentences with the same meaning: decision
mails without any AI word, acceptances with unusual but valid headers, US spelling, policy
notices with the effective date phrased another way (one HTML-only), the October 2025
AI-chats notice (nothing to object to: unrecognized), rejections, information requests and a
verification code in new words, and a few look-alikes. The manifest has the format of
tests/lang/<lang>/expected.yaml. They are checked like tests/test_rules_languages.py checks the
language mails, except that which rule decided is not asserted: a mail with new wording may be
decided by any rule of its language.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher.config import package_file
from watcher.pipeline.process import Settings, process
from watcher.pipeline.rules import KINDS, RulePack, load_rules
from watcher.sources.base import RawMessage, SourceKey

INDEPENDENT = Path(__file__).parent / "independent"
MANIFEST: dict[str, Any] = yaml.safe_load(
    (INDEPENDENT / "expected.yaml").read_text(encoding="utf-8")
)
SETTINGS = Settings(trusted_authserv_ids=tuple(MANIFEST["trusted_authserv_ids"]))


@pytest.fixture(scope="module")
def pack() -> RulePack:
    return load_rules(package_file("rules.yaml"))


def test_manifest_covers_every_independent_mail() -> None:
    files = {p.name for p in INDEPENDENT.glob("*.eml")}
    assert files == set(MANIFEST["messages"])
    assert 25 <= len(files) <= 40
    for name, entry in MANIFEST["messages"].items():
        assert "synthetic: true" in entry["notes"], name


def test_the_issue_categories_are_all_there() -> None:
    entries = MANIFEST["messages"]
    kinds = {e["kind"] for e in entries.values()}
    assert set(KINDS) | {"unrecognized", "other"} <= kinds
    policy_dates = [n for n, e in entries.items() if (e["fields"] or {}).get("effective_date")]
    assert len(policy_dates) >= 8
    assert len([n for n in entries if n.startswith("hdr-")]) == 6
    assert sum(1 for n in entries if "ai-chats" in n) >= 1


@pytest.mark.parametrize("name", sorted(MANIFEST["messages"]))
def test_independent_mail_matches_its_labels(name: str, pack: RulePack) -> None:
    expected = MANIFEST["messages"][name]
    raw = RawMessage(
        SourceKey("independent", "independent", name, 0, 1), (INDEPENDENT / name).read_bytes()
    )
    outcome = process(raw, pack, SETTINGS)
    assert outcome.message.error is None
    assert outcome.match.kind == expected["kind"], outcome.match.rule_id
    assert outcome.suspicious is expected["suspicious"]
    assert outcome.verdict.result == expected["authenticity"], outcome.verdict.reasons
    assert outcome.match.account == expected["account"]
    assert outcome.fields == (expected["fields"] or {})
    if expected["kind"] != "other":
        assert outcome.match.platform == expected["platform"]
        assert outcome.match.language == expected["language"]
    assert outcome.counted is (expected["kind"] in KINDS and expected["authenticity"] == "pass")


def test_the_unusual_header_mails_have_what_they_are_named_for() -> None:
    """Each hdr-* mail carries the valid-but-unusual feature its name says (else it would
    test nothing)."""

    def head(name: str) -> str:
        raw = (INDEPENDENT / name).read_bytes()
        return raw.decode("utf-8", "replace")

    assert re.search(r'^From: "[^"]*,[^"]*" <', head("hdr-display-name-comma.eml"), re.M)
    assert re.search(r"^To: [^:\r\n<]+: [^;\r\n]+;\r?$", head("hdr-group-syntax-to.eml"), re.M)
    assert re.search(r"^Date: \w{3}, \d\d \w{3} 101 ", head("hdr-date-year-101.eml"), re.M)
    assert re.search(r"^Headers: ", head("hdr-headers-field.eml"), re.M)
    cyrillic = head("hdr-cyrillic-attachment.eml")
    assert "filename*0*=utf-8''%D0%9F" in cyrillic  # RFC 2231
    assert 'name="=?utf-8?B?' in cyrillic  # RFC 2047 in a parameter, as Outlook writes it
    conflict = head("hdr-html-charset-conflict.eml")
    assert 'Content-Type: text/html; charset="utf-8"' in conflict
    assert "charset=3Dwindows-1252" in conflict
