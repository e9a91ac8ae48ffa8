"""Renders an :class:`~watcher.pipeline.explain.Explanation` as the plain text that
``meta-watcher rules test`` prints: the result and why, each requirement true or false, the
candidates and near misses, what was extracted, authenticity and whether the mail counts.
Pure: text in, text out; the evidence itself is collected by watcher.pipeline.explain."""

from __future__ import annotations

from watcher.kinds import KINDS, OTHER, UNRECOGNIZED
from watcher.pipeline.explain import Explanation, RuleReport
from watcher.pipeline.process import Outcome
from watcher.pipeline.rules import (
    COMBINATION_SCORE,
    DECISIVE_SCORE,
    SUPPORTING_COUNTED,
    SUPPORTING_SCORE,
    Hit,
)
from watcher.shown import for_person, one_line

_PHRASES_SHOWN = 4  # phrases listed for a failed requirement before "and N more"


def render(explanation: Explanation, label: str) -> str:
    """The explanation as plain text for the terminal; *label* names the mail (a path, or
    ``database message 42``). Verification codes are shown in full: the user is at the
    terminal, as with ``scan``."""
    e = explanation
    o, msg, match = e.outcome, e.outcome.message, e.outcome.match
    # The file name, sender and Subject are anybody's text: no control, bidi character or
    # line break of theirs reaches the terminal (watcher.shown).
    lines = [f"Mail: {one_line(label)}"]
    sender = f"{msg.from_name} <{msg.from_addr}>" if msg.from_name else msg.from_addr or "(none)"
    lines += [f"  From:    {one_line(sender)}", f"  Subject: {one_line(msg.subject) or '(none)'}"]
    if msg.error:
        lines.append(f"  Problem: {msg.error}")
    lines.append(f"  Claims to be Meta: {'yes, ' + e.claim if e.claim else 'no'}")
    lines.append(f"  Languages: {_languages(e)}")
    if e.notification is not None:
        lines.append(
            f"  Social notification: X-Facebook-Notify says {one_line(e.notification)}: Meta "
            "relaying what someone wrote, never a privacy decision (other, whatever it says)"
        )
    lines.append("")
    lines += _result(e)
    if e.candidates:
        lines.append("")
        lines.append("Other candidate rules (why they did not decide):")
        for report in e.candidates:
            lines.append("  " + _candidate(report, e.decided_by))
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
    if match.claims_meta or match.platform:
        lines.append(f"Platform:  {match.platform} ({e.platform_why})")
    lines.append(f"Account:   {match.account or '(unknown)'} ({e.account_why})")
    lines.append("")
    lines.append(f"Authenticity: {o.verdict.result}")
    lines += [f"  - {reason}" for reason in o.verdict.reasons]
    lines.append(f"Counted: {_counted(o)}")
    # The rest quotes mail text too (phrases found, the account, a problem): no control.
    return for_person("\n".join(lines))


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
        report = e.decided_by
        rule = report.check.rule
        flag = " SUSPICIOUS" if o.suspicious else ""
        lines = [
            f"Result: {match.kind}{flag}, by rule {rule.id} "
            f"(language {rule.language}, confidence {rule.confidence}, from {rule.origin or '?'})",
            f"  Why: {_why(report)}",
        ]
        lines += _conditions(report, indent="  ")
        fired = [r for r in e.candidates if r.matched]
        vetoed = [r for r in e.candidates if r.blocked and r.held == r.total]
        skipped = sum(1 for r in e.reports if r.skipped)
        lines.append(
            f"  {len(fired)} other rule(s) fired with a lower rank, {len(vetoed)} were vetoed; "
            f"{skipped} skipped by the language prefilter"
        )
        return lines
    if match.kind in KINDS:
        # Classified through a path explain does not replay (e.g. a forwarded copy).
        return [f"Result: {match.kind} (rule {match.rule_id})"]
    if e.notification is not None:
        return [
            f"Result: other: a Meta social notification (X-Facebook-Notify "
            f"{one_line(e.notification)}): it relays what other people wrote, so no rule "
            "decides it, whatever its text says."
        ]
    why = e.fallback
    if match.kind == UNRECOGNIZED:
        topic = why.topic if why is not None else None
        found = f": topic phrase {_q(topic[0])} found {_found(topic[1])}" if topic else ""
        return [
            "Result: unrecognized: a Meta mail about the objection or AI use of data, but no "
            f"rule fired{found}. It is kept and shown; it changes no status."
        ]
    assert match.kind == OTHER
    if why is not None and why.veto is not None and why.topic is not None:
        return [
            f"Result: other: a Meta mail that no rule fired on; it names a topic phrase "
            f"({_q(why.topic[0])} found {_found(why.topic[1])}) but {_hit(why.veto)} says it "
            "is about something else (a ban, a login, ads, a product, a social notification)."
        ]
    return [
        "Result: other: a Meta mail that no rule fired on and that names none of the topic "
        "phrases (objection, right to object, AI at Meta in any language)."
    ]


def _why(report: RuleReport) -> str:
    """One sentence: what decided and the score it came to."""
    check = report.check
    rule = check.rule
    decisive = check.decisive
    counted = min(len(check.supporting), SUPPORTING_COUNTED)
    extra = f" + {counted} supporting x {SUPPORTING_SCORE}" if counted else ""
    if decisive is not None and decisive.ok:
        what = f"decisive {_q(decisive.phrase)} found {_found(decisive.found)}"
        base = DECISIVE_SCORE
    else:
        groups = [c for c in check.conditions if c.name != "subject"]
        what = f"every requirement holds ({', '.join(c.name for c in groups) or 'subject'})"
        base = COMBINATION_SCORE
    return (
        f"{rule.kind} by {rule.id}: {what} (score {check.score} = {base}{extra}); "
        "the highest score wins, ties go to the kind order, then file order"
    )


def _candidate(report: RuleReport, decided: RuleReport | None) -> str:
    check = report.check
    rule = check.rule
    head = f"{rule.id} ({rule.kind}): "
    if report.matched:
        if decided is not None and check.score == decided.check.score:
            return head + (
                f"fired with the same score {check.score}; it loses the tie "
                f"({'kind order' if rule.kind != decided.check.rule.kind else 'file order'})"
            )
        return head + f"fired with score {check.score}"
    if report.blocked and report.held == report.total:
        return head + f"vetoed by {_hit(check.vetoes[0])}"
    missing = ", ".join(c.name for c in check.conditions if not c.ok)
    return head + f"{report.held} of {report.total} requirements hold; missing {missing}"


def _rule_block(report: RuleReport, indent: str) -> list[str]:
    rule = report.check.rule
    if report.matched:
        state = f"fires (score {report.check.score})"
    elif report.held == report.total:
        state = "every requirement holds, but a negative vetoes it"
    else:
        state = f"{report.held} of {report.total} requirements hold"
    skipped = "; skipped by the language prefilter" if report.skipped else ""
    head = f"{indent}{rule.id} ({rule.kind}, language {rule.language}): {state}{skipped}"
    return [head, *_conditions(report, indent + "  ")]


def _conditions(report: RuleReport, indent: str) -> list[str]:
    """Every requirement true/false, every supporting phrase found, every negative found."""
    check = report.check
    rule = check.rule
    lines: list[str] = []
    for cond in check.conditions:
        word = "true " if cond.ok else "FALSE"
        if cond.ok:
            lines.append(
                f"{indent}{cond.name:<9} {word} {_q(cond.phrase)} found {_found(cond.found)}"
            )
            continue
        if cond.name == "subject":
            phrases, where = rule.subject, "in the subject"
        elif cond.name == "decisive":
            phrases, where = rule.decisive, "in subject + body"
        else:
            phrases, where = rule.all[int(cond.name[4:-1]) - 1], "in subject + body"
        lines.append(f"{indent}{cond.name:<9} {word} none of these phrases found {where}:")
        for phrase in phrases[:_PHRASES_SHOWN]:
            lines.append(f"{indent}            {_q(phrase.written)}")
        if len(phrases) > _PHRASES_SHOWN:
            lines.append(f"{indent}            ... and {len(phrases) - _PHRASES_SHOWN} more")
    for number, hit in enumerate(check.supporting):
        points = f"+{SUPPORTING_SCORE}" if number < SUPPORTING_COUNTED else "+0"
        lines.append(f"{indent}supporting {points:<4} {_hit(hit)}")
    if check.vetoes:
        for hit in check.vetoes:
            lines.append(f"{indent}negative  VETO  {_hit(hit)}")
    else:
        lines.append(f"{indent}negatives none found")
    if check.holds:
        lines.append(f"{indent}score     {check.score}")
    return lines


def _hit(hit: Hit) -> str:
    where = "" if hit.phrase.where == "rule" else f" ({hit.phrase.where})"
    return f"{_q(hit.phrase.written)}{where} found {_found(hit.found)}"


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
