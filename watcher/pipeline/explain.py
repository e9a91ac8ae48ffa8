"""Why a mail got its kind: every rule condition with true/false, and the closest misses.

For the person whose mail was not recognised (``meta-watcher rules test``). Pure: it takes the
:class:`~watcher.pipeline.Outcome` that :func:`~watcher.pipeline.process` produced and the
:class:`~watcher.rules.RulePack`, and evaluates every rule with the same matcher
(:func:`~watcher.rules.check_rule`) and the same language prefilter that classification uses,
so the explanation and the classification cannot disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from watcher.kinds import KINDS, OTHER, UNRECOGNIZED
from watcher.pipeline.process import Outcome
from watcher.pipeline.rules import (
    LanguageScore,
    RuleCheck,
    RulePack,
    account_of,
    check_rule,
    gate_languages,
    haystack,
    language_scores,
    match_subject,
    meta_claim,
    platform_of,
    rule_gated_out,
)

log = logging.getLogger(__name__)

CLOSEST = 5  # how many near misses to show: a language's five kinds often tie
_PHRASES_SHOWN = 4  # phrases listed for a failed group before "and N more"


@dataclass(frozen=True)
class RuleReport:
    """One rule evaluated in full on the mail.

    ``skipped``: the language prefilter left it out (its language's stop words do not occur),
    so classification never tried it. ``held``/``total``: phrase conditions (``subject`` and
    ``all`` groups) that hold, of all; ``blocked``: a ``none`` phrase occurs.
    """

    check: RuleCheck
    skipped: bool
    held: int
    total: int
    blocked: bool

    @property
    def matched(self) -> bool:
        """True when every condition holds (whether or not classification tried it)."""
        return self.check.matched


@dataclass(frozen=True)
class Explanation:
    """Everything ``rules test`` prints about one mail.

    ``claim`` says why the sender presents itself as Meta (None: it does not, so no rule is
    tried). ``decided_by`` is the report of the rule that classified the mail (None for
    ``unrecognized``/``other``); ``closest`` the best near misses when none did, or the
    rules asked for by id. ``topic_phrase`` is the topic phrase that made a miss
    ``unrecognized``. ``asked``: ``closest`` holds the rules asked for by id.
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
    topic_phrase: tuple[str, str] | None
    asked: bool = False


def explain(outcome: Outcome, pack: RulePack, rule_ids: tuple[str, ...] = ()) -> Explanation:
    """Explain *outcome* with *pack* (the pack that produced it). *rule_ids*: rules to show in
    full whatever happened (``closest`` then lists those, in the given order)."""
    msg = outcome.message
    text = haystack(msg)
    subject = match_subject(msg)
    scores = language_scores(text, pack)
    gate = gate_languages(scores)
    reports = tuple(
        _report(check_rule(rule, subject, text, full=True), rule_gated_out(rule, pack, gate))
        for rule in pack.rules
    )
    by_id = {r.check.rule.id: r for r in reports}
    decided = by_id.get(outcome.match.rule_id or "")
    if rule_ids:
        closest = tuple(by_id[i] for i in rule_ids if i in by_id)
    elif decided is None and outcome.match.claims_meta:
        closest = _closest(reports, gate)
    else:
        closest = ()
    topic = None
    if outcome.match.kind == UNRECOGNIZED:
        for pattern in pack.topic:
            found = pattern.search(text)
            if found:
                topic = (pattern.pattern, found.group(0))
                break
    return Explanation(
        outcome=outcome,
        claim=meta_claim(msg, pack),
        platform_why=platform_of(msg, text, pack)[1],
        account_why=account_of(msg, text, pack)[1],
        languages=scores,
        gate=gate,
        reports=reports,
        decided_by=decided,
        closest=closest,
        topic_phrase=topic,
        asked=bool(rule_ids),
    )


def _report(check: RuleCheck, skipped: bool) -> RuleReport:
    phrases = [c for c in check.conditions if c.name != "none"]
    held = sum(1 for c in phrases if c.ok)
    blocked = any(c.name == "none" and not c.ok for c in check.conditions)
    return RuleReport(check, skipped, held, len(phrases), blocked)


def _closest(
    reports: tuple[RuleReport, ...], gate: frozenset[str] | None
) -> tuple[RuleReport, ...]:
    """The near misses: the largest share of their phrase conditions hold, rules of the mail's
    languages first. A rule whose phrases all hold but a ``none`` phrase blocks is as close as
    it gets."""

    def key(item: tuple[int, RuleReport]) -> tuple[float, int, int, int]:
        n, r = item
        in_gate = 1 if gate is None or r.check.rule.language in gate else 0
        return (-r.held / max(r.total, 1), -in_gate, -r.held, n)

    ranked = sorted(enumerate(reports), key=key)
    return tuple(r for _, r in ranked[:CLOSEST] if r.held > 0)


# ---------------------------------------------------------------------- text


def render(explanation: Explanation, label: str) -> str:
    """The explanation as plain text for the terminal; *label* names the mail (a path, or
    ``database message 42``). Verification codes are shown in full: the user is at the
    terminal, as with ``scan``."""
    e = explanation
    o, msg, match = e.outcome, e.outcome.message, e.outcome.match
    lines = [f"Mail: {label}"]
    sender = f"{msg.from_name} <{msg.from_addr}>" if msg.from_name else msg.from_addr or "(none)"
    lines += [f"  From:    {sender}", f"  Subject: {msg.subject or '(none)'}"]
    if msg.error:
        lines.append(f"  Problem: {msg.error}")
    lines.append(f"  Claims to be Meta: {'yes, ' + e.claim if e.claim else 'no'}")
    lines.append(f"  Languages: {_languages(e)}")
    lines.append("")
    lines += _result(e)
    if e.closest:
        lines.append("")
        lines.append("Rules asked for:" if e.asked else "Closest rules (what they missed):")
        for report in e.closest:
            lines += _rule_block(report, indent="  ")
    if e.decided_by is None and match.claims_meta and not e.asked:
        lines += [
            "",
            "To teach meta-watcher this wording: put a rule with its phrases in a user rules "
            "file (README: User rules), try it with `meta-watcher rules test FILE --rules "
            "my-rules.yaml`, list the file under user_rules in the config, then run "
            "`meta-watcher reclassify`.",
        ]
    lines.append("")
    if o.fields:
        shown = ", ".join(
            f"{k}={v if v is not None else '(none found)'}" for k, v in o.fields.items()
        )
        lines.append(f"Extracted: {shown}")
    elif match.kind in KINDS and o.suspicious:
        lines.append("Extracted: nothing kept (values of a suspicious mail are not trusted)")
    else:
        lines.append("Extracted: nothing")
    if match.claims_meta:
        lines.append(f"Platform:  {match.platform} ({e.platform_why})")
    lines.append(f"Account:   {match.account or '(unknown)'} ({e.account_why})")
    lines.append("")
    lines.append(f"Authenticity: {o.verdict.result}")
    lines += [f"  - {reason}" for reason in o.verdict.reasons]
    lines.append(f"Counted: {_counted(o)}")
    return "\n".join(lines)


def _languages(e: Explanation) -> str:
    found = sorted(
        ((lang, s) for lang, s in e.languages.items() if s.total),
        key=lambda item: -item[1].total,
    )
    if not found:
        return "no stop words found; every rule is tried"
    shown = ", ".join(f"{lang} {s.total} ({s.distinct} distinct)" for lang, s in found[:5])
    tried = ", ".join(sorted(e.gate)) if e.gate is not None else "all"
    return f"{shown}; rules tried for: {tried}"


def _result(e: Explanation) -> list[str]:
    o, match = e.outcome, e.outcome.match
    if not match.claims_meta:
        return [
            "Result: other: the sender does not present itself as Meta (sender domain, display "
            "name or a look-alike), so no rule is tried; a newsletter or a friend quoting "
            "Meta's words never counts."
        ]
    if e.decided_by is not None:
        rule = e.decided_by.check.rule
        flag = " SUSPICIOUS" if o.suspicious else ""
        lines = [
            f"Result: {match.kind}{flag}, by rule {rule.id} "
            f"(language {rule.language}, confidence {rule.confidence}, from {rule.origin or '?'})"
        ]
        lines += _conditions(e.decided_by, indent="  ")
        position = next(n for n, r in enumerate(e.reports) if r is e.decided_by)
        before = e.reports[:position]
        tried = sum(1 for r in before if not r.skipped)
        lines.append(
            f"  {tried} earlier rule(s) tried, none matched; "
            f"{len(before) - tried} skipped by the language prefilter"
        )
        return lines
    if match.kind in KINDS:
        # Classified through a path explain does not replay (e.g. a forwarded copy).
        return [f"Result: {match.kind} (rule {match.rule_id})"]
    if match.kind == UNRECOGNIZED:
        phrase = e.topic_phrase
        why = f": topic phrase {_q(phrase[0])} found {_found(phrase[1])}" if phrase else ""
        return [
            "Result: unrecognized: a Meta mail about the objection or AI use of data, but no "
            f"rule matched{why}. It is kept and shown; it changes no status."
        ]
    assert match.kind == OTHER
    return [
        "Result: other: a Meta mail that no rule matched and that names none of the topic "
        "phrases (objection, right to object, AI at Meta in any language)."
    ]


def _rule_block(report: RuleReport, indent: str) -> list[str]:
    rule = report.check.rule
    if report.matched:
        state = "matches"
    elif report.held == report.total:
        state = "every phrase condition holds, but an excluding phrase blocks it"
    else:
        state = f"{report.held} of {report.total} phrase conditions hold"
    skipped = "; skipped by the language prefilter" if report.skipped else ""
    head = f"{indent}{rule.id} ({rule.kind}, language {rule.language}): {state}{skipped}"
    return [head, *_conditions(report, indent + "  ")]


def _conditions(report: RuleReport, indent: str) -> list[str]:
    rule = report.check.rule
    lines: list[str] = []
    for cond in report.check.conditions:
        word = "true " if cond.ok else "FALSE"
        if cond.name == "none":
            if cond.ok:
                lines.append(f"{indent}none    {word} no excluding phrase found")
            else:
                blocker = f"blocked by {_q(cond.phrase)}, found {_found(cond.found)}"
                lines.append(f"{indent}none    {word} {blocker}")
            continue
        if cond.ok:
            lines.append(
                f"{indent}{cond.name:<7} {word} {_q(cond.phrase)} found {_found(cond.found)}"
            )
            continue
        patterns = rule.subject if cond.name == "subject" else rule.all[int(cond.name[4:-1]) - 1]
        where = "in the subject" if cond.name == "subject" else "in subject + body"
        lines.append(f"{indent}{cond.name:<7} {word} none of these phrases found {where}:")
        for pattern in patterns[:_PHRASES_SHOWN]:
            lines.append(f"{indent}          {_q(pattern.pattern)}")
        if len(patterns) > _PHRASES_SHOWN:
            lines.append(f"{indent}          ... and {len(patterns) - _PHRASES_SHOWN} more")
    return lines


def _q(pattern: str | None) -> str:
    """A phrase as written in rules.yaml (single-quoted YAML: backslashes as they are)."""
    return "'" + (pattern or "").replace("'", "''") + "'"


def _found(text: str | None) -> str:
    text = text or ""
    return '"' + (text if len(text) <= 80 else text[:77] + "...") + '"'


def _counted(o: Outcome) -> str:
    match = o.match
    if o.counted:
        return f"yes: it moves the status of {match.platform}:{match.account}"
    if match.kind not in KINDS:
        return "no: not one of the privacy kinds"
    if o.suspicious:
        return "no: it failed authenticity (suspicious), so it never changes a status"
    if o.verdict.result == "none":
        return (
            "no: no trusted Authentication-Results verdict (name your mail server in "
            "trusted_authserv_ids, or use --trusted-authserv-id)"
        )
    return "no: the account it is about is unknown"
