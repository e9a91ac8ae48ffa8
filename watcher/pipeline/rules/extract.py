"""A fired rule's extractors: the verification code and the policy's effective date.

``extract:`` patterns in rules.yaml name a group ``code`` or ``date``; a policy notice whose
own pattern finds no date gets one from :func:`watcher.pipeline.effective_date.find_effective_date`.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Mapping
from datetime import date

from watcher.pipeline.rules.pack import Rule


def code_digits(code: str) -> str | None:
    """The digits of a *code* as written ("552 288", "552-288", "7 3 1 9 4 6", Arabic-Indic
    or fullwidth digits) as ASCII digits ("552288"), what Meta's form takes; None when it
    holds no digit (a user rule's group that caught only separators)."""
    digits = "".join(str(unicodedata.decimal(ch)) for ch in code if ch.isdecimal())
    return digits or None


def _is_compact_date(digits: str) -> bool:
    """True for eight digits that are a date written YYYYMMDD (1990-2099): "Stand 20240610."
    is a date, not Meta's code (a real eight-digit code is one with these odds: 0.04%)."""
    if len(digits) != 8 or not "1990" <= digits[:4] <= "2099":
        return False
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return False
    return True


def extract(
    rule: Rule,
    text: str,
    language: str,
    *,
    sent_on: date | None = None,
    cues: Mapping[str, tuple[re.Pattern[str], ...]] | None = None,
) -> dict[str, str | None]:
    """Run *rule*'s extractors over *text*: ``code`` (ASCII digits without the separators
    between groups, see :func:`code_digits`, or None) and ``effective_date``
    (ISO date or None). A policy notice always gets ``effective_date``: the rule's own
    extractor when it finds a date, else
    :func:`watcher.pipeline.effective_date.find_effective_date` with the pack's *cues* and the
    mail's Date (*sent_on*)."""
    # babel is heavy; only extraction needs it.
    from watcher.pipeline.dates import parse_date_phrase
    from watcher.pipeline.effective_date import find_effective_date

    out: dict[str, str | None] = {}
    for name, pattern in rule.extract.items():
        if name == "code":
            # The first code-shaped number that is not a date ("Stand 20240610. Code: 482913").
            matches = itertools.islice(pattern.finditer(text), 20)
            codes = (code_digits(found.group("code")) for found in matches)
            out["code"] = next((c for c in codes if c and not _is_compact_date(c)), None)
            continue
        found = pattern.search(text)
        parsed: date | None = parse_date_phrase(found.group("date"), language) if found else None
        out["effective_date"] = parsed.isoformat() if parsed else None
    if rule.kind == "policy_update" and out.get("effective_date") is None:
        found_date = find_effective_date(text, language, sent_on, cues or {})
        out["effective_date"] = found_date.isoformat() if found_date else None
    return out
