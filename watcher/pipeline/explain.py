"""Why a mail got its kind: collects the evidence every rule found, each candidate's score,
the veto that stopped a rule, and for a miss the closest rules and what they missed
(rendered as text by watcher.pipeline.explain_text).

For the person whose mail was not recognised (``meta-watcher rules test``). Pure: it takes
the :class:`~watcher.pipeline.process.Outcome` that :func:`~watcher.pipeline.process.process`
produced and the :class:`~watcher.pipeline.rules.RulePack`, and evaluates every rule in full
with the same matcher (:func:`~watcher.pipeline.rules.check_rule`), the same choice
(:func:`~watcher.pipeline.rules.decide`) and the same language prefilter that classification
uses, so the explanation and the classification cannot disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from watcher.kinds import KINDS
from watcher.pipeline.process import Outcome
from watcher.pipeline.rules import (
    Fallback,
    LanguageScore,
    RuleCheck,
    RulePack,
    TextSearch,
    account_of,
    check_rule,
    decide,
    fallback,
    gate_languages,
    haystack,
    language_scores,
    links_text,
    match_subject,
    meta_claim,
    named_platform,
    platform_of,
    rank,
    rule_gated_out,
    social_notification,
)

log = logging.getLogger(__name__)

CLOSEST = 5  # how many near misses to show: a language's five kinds often tie
CANDIDATES = 12  # how many other candidate rules to list under the result


@dataclass(frozen=True)
class RuleReport:
    """One rule evaluated in full on the mail.

    ``skipped``: the language prefilter left it out (its language's stop words do not occur),
    so classification never tried it. ``held``/``total``: requirements (``subject``,
    ``decisive``, ``all`` groups) that hold, of all; ``blocked``: a negative phrase vetoes it.
    """

    check: RuleCheck
    skipped: bool
    held: int
    total: int
    blocked: bool

    @property
    def matched(self) -> bool:
        """True when the rule fires (whether or not classification tried it)."""
        return self.check.matched

    @property
    def evidence(self) -> int:
        """Requirements held plus supporting phrases found: how much the rule saw."""
        return self.held + len(self.check.supporting)


@dataclass(frozen=True)
class Explanation:
    """Everything ``rules test`` prints about one mail.

    ``claim`` says why the sender presents itself as Meta (None: it does not, so no rule is
    tried). ``decided_by`` is the report of the rule that classified the mail (None for
    ``unrecognized``/``other``); ``candidates`` the other rules tried that found any
    requirement, best first; ``closest`` the best near misses when no rule fired, or the
    rules asked for by id (``asked``). ``fallback`` says why a miss is ``unrecognized`` or
    ``other`` (the topic phrase, the shared veto). ``notification`` is the X-Facebook-Notify
    type that makes a Meta mail a social notification (``other`` whatever its text says).
    """

    outcome: Outcome
    claim: str | None
    platform_why: str
    account_why: str
    languages: dict[str, LanguageScore]
    gate: frozenset[str] | None
    reports: tuple[RuleReport, ...]
    decided_by: RuleReport | None
    closest: tuple[RuleReport, ...]
    fallback: Fallback | None
    candidates: tuple[RuleReport, ...] = ()
    asked: bool = False
    notification: str | None = None

    @property
    def topic_phrase(self) -> tuple[str, str] | None:
        """The topic phrase (and the text it matched) that made a miss ``unrecognized``."""
        return self.fallback.topic if self.fallback is not None else None


def explain(outcome: Outcome, pack: RulePack, rule_ids: tuple[str, ...] = ()) -> Explanation:
    """Explain *outcome* with *pack* (the pack that produced it). *rule_ids*: rules to show in
    full whatever happened (``closest`` then lists those, in the given order)."""
    msg = outcome.message
    text = haystack(msg)
    subject = match_subject(msg)
    scores = language_scores(text, pack)
    gate = gate_languages(scores)
    search = TextSearch(text, links_text(msg))
    reports = tuple(
        _report(
            check_rule(rule, subject, text, full=True, search=search),
            rule_gated_out(rule, pack, gate),
        )
        for rule in pack.rules
    )
    by_id = {r.check.rule.id: r for r in reports}
    decided = by_id.get(outcome.match.rule_id or "")
    tried = [r for r in reports if not r.skipped]
    if decided is not None and decide(r.check for r in tried) is not decided.check:
        decided = None  # classified through another path (a forwarded copy)
    if rule_ids:
        closest = tuple(by_id[i] for i in rule_ids if i in by_id)
    elif decided is None and outcome.match.claims_meta:
        closest = _closest(reports, gate)
    else:
        closest = ()
    candidates: tuple[RuleReport, ...] = ()
    if decided is not None:
        others = [r for r in tried if r is not decided and r.held]
        candidates = tuple(sorted(others, key=_candidate_key)[:CANDIDATES])
    why_missed = None
    if outcome.match.claims_meta and outcome.match.kind not in KINDS:
        why_missed = fallback(search, pack)
    platform_why = platform_of(msg, text, pack)[1]
    if not outcome.match.claims_meta:
        named = named_platform(msg, pack)
        platform_why = named[1] if named else "the sender names no platform"
    return Explanation(
        outcome=outcome,
        claim=meta_claim(msg, pack),
        platform_why=platform_why,
        account_why=account_of(msg, text, pack)[1],
        languages=scores,
        gate=gate,
        reports=reports,
        decided_by=decided,
        closest=closest,
        fallback=why_missed,
        candidates=candidates,
        asked=bool(rule_ids),
        notification=social_notification(msg) if outcome.match.claims_meta else None,
    )


def _report(check: RuleCheck, skipped: bool) -> RuleReport:
    held = sum(1 for c in check.conditions if c.ok)
    return RuleReport(check, skipped, held, len(check.conditions), bool(check.vetoes))


def _candidate_key(report: RuleReport) -> tuple[int, int, int, int, int]:
    """Fired rules first by rank, then vetoed ones, then the share of requirements held."""
    score, priority, order = rank(report.check)
    return (
        0 if report.matched else 1 if report.held == report.total else 2,
        -score,
        -report.held * 100 // max(report.total, 1),
        -priority,
        -order,
    )


def _closest(
    reports: tuple[RuleReport, ...], gate: frozenset[str] | None
) -> tuple[RuleReport, ...]:
    """The near misses: rules of the mail's languages first, then the largest share of their
    requirements held, then the most supporting evidence. A rule whose requirements all hold
    but a negative vetoes is as close as it gets."""

    def key(item: tuple[int, RuleReport]) -> tuple[int, float, int, int]:
        n, r = item
        in_gate = 1 if gate is None or r.check.rule.language in gate else 0
        return (-in_gate, -r.held / max(r.total, 1), -r.evidence, n)

    ranked = sorted(enumerate(reports), key=key)
    return tuple(r for _, r in ranked[:CLOSEST] if r.evidence > 0)
