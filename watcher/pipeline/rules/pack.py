"""The compiled rule pack: :class:`Rule` and :class:`RulePack` (of :class:`Phrase`, from
:mod:`watcher.pipeline.rules.text`).

Plain frozen dataclasses, built by :func:`watcher.pipeline.rules.load.load_rules` and read by
classification, which therefore needs neither YAML nor pydantic once a pack exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from watcher.pipeline.rules.text import Phrase

EXTRACTORS = ("code", "effective_date")  # the values a rule's ``extract`` can read

# Which kind wins a tie of scores. A code mail and a rejection may quote the objection, a
# policy notice speaks of objections being honoured: the narrower kind comes first.
KIND_PRIORITY: Mapping[str, int] = {
    kind: number
    for number, kind in enumerate(
        (
            "verification_code",
            "objection_rejected",
            "info_requested",
            "objection_accepted",
            "policy_update",
        )
    )
}
SHARED = "any"  # the `evidence:` entry that applies to every language

__all__ = ["EXTRACTORS", "KIND_PRIORITY", "SHARED", "Phrase", "Rule", "RulePack"]


@dataclass(frozen=True)
class Rule:
    """A compiled rule; see RuleSpec for the meaning of each field. ``supporting`` and
    ``negatives`` hold the rule's own phrases first, then the shared ones of its language and
    of ``any``; ``none`` phrases are among the negatives. ``order`` is the position in the
    pack (ties of score and kind go to the lower)."""

    id: str
    kind: str
    language: str
    confidence: str
    subject: tuple[Phrase, ...]
    decisive: tuple[Phrase, ...]
    all: tuple[tuple[Phrase, ...], ...]
    supporting: tuple[Phrase, ...]
    negatives: tuple[Phrase, ...]
    extract: Mapping[str, re.Pattern[str]]
    origin: str = ""  # the rules file it comes from
    order: int = 0

    @property
    def priority(self) -> int:
        """The kind's place in KIND_PRIORITY (lower wins a tie of scores)."""
        return KIND_PRIORITY.get(self.kind, len(KIND_PRIORITY))


@dataclass(frozen=True)
class RulePack:
    """Everything classification needs, compiled once per process.

    ``shared_negatives``/``shared_supporting``: the ``evidence:`` phrases per language (and
    ``any``); ``date_cues``: per language, the phrases that precede an effective date
    (``effective_date_cues:``, read by :func:`watcher.pipeline.effective_date.find_effective_date`).
    """

    rules: tuple[Rule, ...]
    sender_domains: tuple[str, ...]
    link_domains: tuple[str, ...]
    claim_names: tuple[re.Pattern[str], ...]
    lookalike_tokens: tuple[str, ...]
    platforms: tuple[tuple[str, tuple[str, ...], tuple[re.Pattern[str], ...]], ...]
    default_platform: str
    account_phrases: tuple[re.Pattern[str], ...]
    topic: tuple[re.Pattern[str], ...]
    languages: Mapping[str, frozenset[str]]
    search_subject_words: tuple[str, ...]
    sources: tuple[Path, ...] = field(default=())
    shared_supporting: Mapping[str, tuple[Phrase, ...]] = field(default_factory=dict)
    shared_negatives: Mapping[str, tuple[Phrase, ...]] = field(default_factory=dict)
    date_cues: Mapping[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)
    # ``covers_accounts_center:`` phrases, all languages: an acceptance saying it also covers
    # the other accounts of the same Accounts Center (watcher.pipeline.process).
    covers_accounts_center: tuple[re.Pattern[str], ...] = ()
    # The rules the prefilter keeps, per set of gate languages (see gated_rules); filled as
    # mails come, a few dozen entries at most. Not an __init__ field: dataclasses.replace()
    # gives a new pack a new cache.
    _gated: dict[frozenset[str] | None, tuple[Rule, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
