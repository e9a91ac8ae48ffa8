"""Evidence, scoring and the decision: :func:`classify` turns a Message into a :class:`Match`.

Scoring (:func:`check_rule`): a rule fires when nothing vetoes it, its subject phrases (if any)
and ``all`` groups hold, and a decisive phrase is found (if it has a list of them). A stated
decision scores DECISIVE_SCORE, a rule without a decisive list that fires on its groups
COMBINATION_SCORE, and each distinct supporting phrase found adds SUPPORTING_SCORE (at most
SUPPORTING_COUNTED of them): so a decision always outweighs a combination. The highest score
wins; a tie goes to the kind that comes first in KIND_PRIORITY, then to file order.

A mail that claims to come from Meta but fires no rule is ``unrecognized`` when it speaks about
the objection or AI use of data (``topic`` phrases, Meta's privacy-team signatures, links to
the Privacy Center's AI pages or the objection forms), unless a shared negative says it is
about something else; otherwise it is ``other`` (:func:`fallback`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from watcher.kinds import OTHER, UNRECOGNIZED
from watcher.pipeline.message import Message
from watcher.pipeline.rules.extract import extract
from watcher.pipeline.rules.language import (
    best_language,
    gate_languages,
    gated_rules,
    language_scores,
)
from watcher.pipeline.rules.pack import Phrase, Rule, RulePack
from watcher.pipeline.rules.search import TextSearch
from watcher.pipeline.rules.sender import (
    account_of,
    claims_meta,
    detect_platform,
    named_platform,
)
from watcher.pipeline.rules.text import haystack, links_text, normalise

DECISIVE_SCORE = 100  # a decisive phrase found: the mail states the decision
COMBINATION_SCORE = 60  # every `all` group holds (a rule without decisive phrases)
SUPPORTING_SCORE = 4  # each distinct supporting phrase found
SUPPORTING_COUNTED = 10  # at most this many count, so 10 x 4 < 100 - 60
# Meta names the template of every mail it sends in an X-Facebook-Notify header: the privacy
# mails' types start with this (privacy_policy_update, privacy_objection_confirm,
# privacy_objection_result, privacy_objection_update, privacy_dsr_reply in tests/corpus);
# social notifications have others (feed_comment, friend_shared_link, event_invite_off_fb,
# account_disabled). A notification quotes what other people wrote, so its text may hold any
# sentence, a decision included: any other type makes a Meta mail "other". Only ever a veto:
# an added header can make a mail count less, never more.
PRIVACY_NOTIFY_PREFIX = "privacy_"
# Meta states a decision in the body of its mail, in its own words. A Subject is often someone
# else's: a notification's subject carries a group's, a Page's or a person's name, which can
# be any sentence; and what a notification relays from others in its body stands in quotes.
# So a decisive phrase counts only in the body and outside a quotation, except that a code
# mail's wording also counts in the Subject ("123456 is your confirmation code").
SUBJECT_MAY_DECIDE = frozenset({"verification_code"})


@dataclass(frozen=True)
class Match:
    """What classification found: ``kind`` is one of KINDS, ``unrecognized`` or ``other``.

    ``claims_meta`` is True when the sender presents itself as Meta (real or look-alike
    domain, or display name). ``platform`` is the platform the mail is from or pretends to be
    from (None when it names none). ``fields`` holds extracted values: ``code`` (digits) and
    ``effective_date`` (ISO date string, or None when the mail states none).
    """

    kind: str
    rule_id: str | None
    platform: str | None
    account: str | None
    language: str | None
    claims_meta: bool
    fields: Mapping[str, str | None]


@dataclass(frozen=True)
class Condition:
    """One requirement of a rule, evaluated on one mail.

    ``name`` is ``subject``, ``decisive`` or ``all[N]`` (1-based group). ``ok`` tells whether
    it holds; ``phrase`` is the phrase (as written) that made it hold and ``found`` the text
    it matched, both None when none did.
    """

    name: str
    ok: bool
    phrase: str | None = None
    found: str | None = None


@dataclass(frozen=True)
class Hit:
    """A supporting or negative phrase found in a mail: the phrase and the text it matched."""

    phrase: Phrase
    found: str


@dataclass(frozen=True)
class RuleCheck:
    """A rule evaluated on one mail.

    ``conditions``: the requirements (subject, decisive, ``all`` groups) in that order;
    ``vetoes``: the negative phrases found (the first only, unless evaluated in full);
    ``supporting``: the distinct supporting phrases found (for a rule whose requirements
    hold, or in full); ``score``: see this module's docstring (0 when the requirements fail).
    ``matched``: the rule fires (requirements hold, nothing vetoes).
    """

    rule: Rule
    matched: bool
    conditions: tuple[Condition, ...]
    vetoes: tuple[Hit, ...] = ()
    supporting: tuple[Hit, ...] = ()
    score: int = 0

    @property
    def holds(self) -> bool:
        """True when every requirement holds (whether or not a negative vetoes)."""
        return all(c.ok for c in self.conditions)

    @property
    def decisive(self) -> Condition | None:
        """The decisive condition (None for a rule without decisive phrases)."""
        return next((c for c in self.conditions if c.name == "decisive"), None)


def _first_hit(
    phrases: tuple[Phrase, ...], search: Callable[[Phrase], str | None]
) -> Condition | None:
    for phrase in phrases:
        found = search(phrase)
        if found is not None:
            return Condition("", True, phrase.written, found)
    return None


def _condition(
    name: str, phrases: tuple[Phrase, ...], search: Callable[[Phrase], str | None]
) -> Condition:
    hit = _first_hit(phrases, search)
    return Condition(name, False) if hit is None else Condition(name, True, hit.phrase, hit.found)


def _hits(
    phrases: tuple[Phrase, ...], search: Callable[[Phrase], str | None], first: bool
) -> tuple[Hit, ...]:
    out: list[Hit] = []
    for phrase in phrases:
        found = search(phrase)
        if found is not None:
            out.append(Hit(phrase, found))
            if first:
                break
    return tuple(out)


def score_of(rule: Rule, conditions: tuple[Condition, ...], supporting: int) -> int:
    """The score of *rule* with these evaluated *conditions* and *supporting* distinct
    supporting phrases found (see this module's docstring); 0 when a requirement fails."""
    if not all(c.ok for c in conditions):
        return 0
    base = DECISIVE_SCORE if rule.decisive else COMBINATION_SCORE
    return base + SUPPORTING_SCORE * min(supporting, SUPPORTING_COUNTED)


def check_rule(
    rule: Rule,
    subject: str,
    text: str,
    full: bool = False,
    *,
    search: TextSearch | None = None,
) -> RuleCheck:
    """Evaluate *rule* on a mail's normalised *subject* and *text* (see :func:`haystack`).

    Requirements in order: a subject phrase (if any are given), a decisive phrase (if any are
    given; in the body unless the kind is in SUBJECT_MAY_DECIDE), every ``all`` group; then
    the negatives, then the supporting phrases. Stops at the first failing requirement or veto
    unless *full* (for explanations, which then also list every negative found). *search*
    shares phrase searches between rules (and adds the link targets for supporting phrases);
    by default a fresh one over *text*.
    """
    s = search if search is not None else TextSearch(text)
    conditions: list[Condition] = []
    holds = True
    if rule.subject:
        conditions.append(
            _condition("subject", rule.subject, lambda p: _search(p.pattern, subject))
        )
        holds = conditions[-1].ok
    if rule.decisive and (holds or full):
        start = 0
        if rule.kind not in SUBJECT_MAY_DECIDE and subject and text.startswith(subject + " "):
            start = len(subject) + 1  # the body only
        conditions.append(
            _condition("decisive", rule.decisive, functools.partial(s.find_stated, start=start))
        )
        holds = holds and conditions[-1].ok
    for number, group in enumerate(rule.all, start=1):
        if not holds and not full:
            break
        conditions.append(_condition(f"all[{number}]", group, s.find))
        holds = holds and conditions[-1].ok
    if not holds and not full:
        return RuleCheck(rule, False, tuple(conditions))
    vetoes = _hits(rule.negatives, s.find, first=not full)
    if vetoes and not full:
        return RuleCheck(rule, False, tuple(conditions), vetoes)
    supporting = _hits(rule.supporting, s.find_with_links, first=False)
    done = tuple(conditions)
    score = score_of(rule, done, len(supporting))
    return RuleCheck(rule, holds and not vetoes, done, vetoes, supporting, score)


def _search(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return found.group(0) if found else None


def requirements_hold(rule: Rule, subject: str, search: TextSearch) -> bool:
    """The fast path of :func:`check_rule`: True when *rule*'s subject phrases (if any), a
    decisive phrase (if it has any) and every ``all`` group are found; negatives and
    supporting phrases are not looked at. Most rules fail here, without building a check."""
    if rule.subject and not any(p.pattern.search(subject) for p in rule.subject):
        return False
    find = search.find
    if rule.decisive:
        for phrase in rule.decisive:
            if find(phrase) is not None:
                break
        else:
            return False
    for group in rule.all:
        for phrase in group:
            if find(phrase) is not None:
                break
        else:
            return False
    return True


def rule_matches(rule: Rule, subject: str, text: str) -> bool:
    """Return True when *rule* fires on this normalised subject and text (see
    :func:`check_rule`)."""
    return check_rule(rule, subject, text).matched


def rank(check: RuleCheck) -> tuple[int, int, int]:
    """Sort key of a fired rule: higher score, then the kind's priority, then file order."""
    return (check.score, -check.rule.priority, -check.rule.order)


def decide(checks: Iterable[RuleCheck]) -> RuleCheck | None:
    """The rule that decides among *checks*: the fired one with the best :func:`rank`."""
    best: RuleCheck | None = None
    for check in checks:
        if check.matched and (best is None or rank(check) > rank(best)):
            best = check
    return best


@dataclass(frozen=True)
class Fallback:
    """Why a Meta mail that fired no rule is ``unrecognized`` or ``other``: ``topic`` is the
    topic phrase found and the text it matched (None: none), ``veto`` the shared negative that
    says the mail is about something else (None: none)."""

    kind: str
    topic: tuple[str, str] | None
    veto: Hit | None


def fallback(search: TextSearch, pack: RulePack) -> Fallback:
    """Classify a Meta mail that fired no rule: ``unrecognized`` when a topic phrase occurs
    (in the text or a link target) and no shared negative of any language does, else
    ``other``. Every language's shared negatives count, so the verdict does not depend on the
    language prefilter."""
    topic = None
    for pattern in pack.topic:
        found = search.find_with_links(pattern)
        if found is not None:
            topic = (pattern.pattern, found)
            break
    if topic is None:
        return Fallback(OTHER, None, None)
    for phrases in pack.shared_negatives.values():
        for phrase in phrases:
            found = search.find(phrase)
            if found is not None:
                return Fallback(OTHER, topic, Hit(phrase, found))
    return Fallback(UNRECOGNIZED, topic, None)


_PRIVACY_NOTIFY_TYPE = re.compile(re.escape(PRIVACY_NOTIFY_PREFIX) + r"[a-z0-9_]+")


def social_notification(msg: Message) -> str | None:
    """The first X-Facebook-Notify type of *msg* that is not a privacy mail's (one word
    starting with PRIVACY_NOTIFY_PREFIX), or None: such a mail is Meta relaying other people's
    words. A header with no type, or any other shape, counts as a notification too: it can
    only make a mail count less."""
    if msg.has_notify_header and not msg.notify_types:
        return "(no type)"
    return next((t for t in msg.notify_types if not _PRIVACY_NOTIFY_TYPE.fullmatch(t)), None)


def classify(msg: Message, pack: RulePack) -> Match:
    """Classify *msg* with *pack*; pure and never raises for any Message.

    Only mail that claims to come from Meta can get a privacy kind: a newsletter or a friend
    quoting Meta's words is ``other`` (its platform is the one a quoted sender line names, see
    :func:`named_platform`); so is a Meta social notification (:func:`social_notification`).
    Every rule the language prefilter (:func:`gate_languages`) keeps
    is evaluated; the fired rule with the best :func:`rank` decides. A Meta mail that fires
    none goes to :func:`fallback`. Authenticity is checked separately.
    """
    claims = claims_meta(msg, pack)
    # Subject and body normalised once each: the phrases, the account and the subject phrases
    # all read them.
    subject, body = normalise(msg.subject), normalise(msg.text)
    text = haystack(msg, subject=subject, body=body)
    account = account_of(msg, text, pack, body=body)[0]
    scores = language_scores(text, pack)
    if not claims:
        named = named_platform(msg, pack)
        platform = named[0] if named else None
        return Match(OTHER, None, platform, account, best_language(scores), False, {})
    platform = detect_platform(msg, text, pack)
    if social_notification(msg) is not None:
        return Match(OTHER, None, platform, account, best_language(scores), True, {})
    gate = gate_languages(scores)
    search = TextSearch(text, links_text(msg))
    best = decide(
        check_rule(rule, subject, text, search=search)
        for rule in gated_rules(pack, gate)
        if requirements_hold(rule, subject, search)
    )
    if best is not None:
        rule = best.rule
        sent_on = msg.date_at.date() if msg.date_at else None
        fields = extract(rule, text, rule.language, sent_on=sent_on, cues=pack.date_cues)
        return Match(rule.kind, rule.id, platform, account, rule.language, True, fields)
    kind = fallback(search, pack).kind
    return Match(kind, None, platform, account, best_language(scores), True, {})
