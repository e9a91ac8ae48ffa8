"""The language prefilter: stop words found per language, and the rules worth trying."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from watcher.pipeline.rules.pack import Rule, RulePack

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class LanguageScore:
    """Stop words of one language found in a text: ``total`` occurrences, ``distinct`` words."""

    total: int
    distinct: int


# A language takes part in classification when this many of its distinct stop words occur.
GATE_MIN_STOP_WORDS = 2


def language_scores(text: str, pack: RulePack) -> dict[str, LanguageScore]:
    """Count each known language's stop words in *text* (case-insensitive, whole words)."""
    counts = Counter(_WORD.findall(text.lower()))
    scores: dict[str, LanguageScore] = {}
    for lang, stop in pack.languages.items():
        found = [counts[w] for w in stop if w in counts]
        scores[lang] = LanguageScore(sum(found), len(found))
    return scores


def best_language(scores: Mapping[str, LanguageScore]) -> str | None:
    """The language with the most stop-word occurrences (first listed wins a tie), or None."""
    best, best_count = None, 0
    for lang, score in scores.items():
        if score.total > best_count:
            best, best_count = lang, score.total
    return best


def gate_languages(scores: Mapping[str, LanguageScore]) -> frozenset[str] | None:
    """The languages whose rules are worth trying for a text with these *scores*.

    A cheap prefilter that keeps a pack of many languages fast: a language counts when at least
    GATE_MIN_STOP_WORDS of its distinct stop words occur, and the best language always counts
    (mixed mails, e.g. a Spanish mail with Meta's English footer, keep both). None means no
    stop word occurred at all, or too few to tell (fewer than GATE_MIN_STOP_WORDS distinct
    ones of the best language: a one-sentence mail), so every rule is tried.
    """
    best = best_language(scores)
    if best is None or scores[best].distinct < GATE_MIN_STOP_WORDS:
        return None
    chosen = {lang for lang, s in scores.items() if s.distinct >= GATE_MIN_STOP_WORDS}
    return frozenset(chosen | {best})


def rule_gated_out(rule: Rule, pack: RulePack, gate: frozenset[str] | None) -> bool:
    """True when the language prefilter skips *rule*: its language has stop words in the pack
    and is not among *gate*. Rules of languages without stop words are always tried."""
    return gate is not None and rule.language in pack.languages and rule.language not in gate


def gated_rules(pack: RulePack, gate: frozenset[str] | None) -> tuple[Rule, ...]:
    """The rules of *pack* the prefilter keeps for *gate* (see :func:`rule_gated_out`), in
    pack order; cached per gate."""
    try:
        return pack._gated[gate]
    except KeyError:
        kept = tuple(r for r in pack.rules if not rule_gated_out(r, pack, gate))
        if len(pack._gated) < 512:  # a bound against unusual stop-word mixes
            pack._gated[gate] = kept
        return kept
