"""rules.yaml -> compiled :class:`RulePack`; :func:`classify` turns a Message into a Match.

Rules are data, not code: each rule has an ``id``, a ``kind``, a ``language``, phrase groups
that must all match (``all``: every group needs one of its alternatives), phrases that must not
(``none``), optional ``subject`` phrases, and named-group extractors (``code``,
``effective_date``). Rules are tried in file order; the first that matches decides. Phrases are
case-insensitive regular expressions matched against the subject and body with whitespace
folded to single spaces and typographic apostrophes/quotes made ASCII.

A mail that claims to come from Meta but matches no rule is ``unrecognized`` when it speaks
about the objection or AI use of data (``topic`` phrases), else ``other``.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from watcher.errors import RulesError
from watcher.kinds import KINDS, OTHER, UNRECOGNIZED, Kind
from watcher.pipeline.message import Message

log = logging.getLogger(__name__)

EXTRACTORS = ("code", "effective_date")

_FLAGS = re.IGNORECASE | re.UNICODE
_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_ASCII_PUNCT = str.maketrans(
    {"’": "'", "‘": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "\u00a0": " "}
)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# libyaml's loader when PyYAML was built with it: the rule pack loads 10x faster (same safe
# subset of YAML as yaml.safe_load).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """Compile a rule phrase once per process: validation and the compiled pack share it
    (the pack has more patterns than ``re``'s own cache of 512 keeps)."""
    return re.compile(pattern, _FLAGS)


def _compile_all(values: list[str], what: str) -> list[str]:
    for value in values:
        try:
            _compiled(value)
        except re.error as exc:
            raise ValueError(f"{what}: pattern {value!r} does not compile: {exc}") from None
    return values


class RuleSpec(_Strict):
    """One rule as written in rules.yaml."""

    id: str = Field(min_length=1)
    kind: Kind
    language: str = Field(min_length=2, max_length=3)
    confidence: Literal["high", "low"] = "high"
    source: str = ""
    enabled: bool = True
    subject: list[str] = []
    all: list[list[str]] = []
    none: list[str] = []
    extract: dict[str, str] = {}

    @field_validator("subject", "none")
    @classmethod
    def _patterns(cls, values: list[str]) -> list[str]:
        return _compile_all(values, "phrase")

    @field_validator("all")
    @classmethod
    def _groups(cls, groups: list[list[str]]) -> list[list[str]]:
        for number, group in enumerate(groups, start=1):
            if not group:
                raise ValueError(f"group {number} in 'all' needs at least one phrase")
            _compile_all(group, f"group {number}")
        return groups

    @model_validator(mode="after")
    def _has_condition(self) -> RuleSpec:
        # A rule with neither would match every mail that claims to be Meta.
        if not self.subject and not self.all:
            raise ValueError("a rule needs 'all' phrase groups or 'subject' phrases")
        return self

    @field_validator("extract")
    @classmethod
    def _extract(cls, values: dict[str, str]) -> dict[str, str]:
        for name, pattern in values.items():
            if name not in EXTRACTORS:
                raise ValueError(f"unknown extractor {name!r} (known: {', '.join(EXTRACTORS)})")
            try:
                compiled = _compiled(pattern)
            except re.error as exc:
                raise ValueError(f"extractor {name}: does not compile: {exc}") from None
            group = "code" if name == "code" else "date"
            if group not in compiled.groupindex:
                raise ValueError(f"extractor {name} needs a named group (?P<{group}>...)")
        return values


class PlatformSpec(_Strict):
    """How to tell one platform's mail: sender domains and display-name phrases."""

    sender_domains: list[str] = []
    names: list[str] = []

    @field_validator("names")
    @classmethod
    def _names(cls, values: list[str]) -> list[str]:
        return _compile_all(values, "phrase")


class MetaSpec(_Strict):
    """Meta's sending and link domains, and what counts as claiming to be Meta."""

    sender_domains: list[str] = Field(min_length=1)
    link_domains: list[str] = Field(min_length=1)
    claim_names: list[str] = []
    lookalike_tokens: list[str] = []

    @field_validator("claim_names")
    @classmethod
    def _claim_names(cls, values: list[str]) -> list[str]:
        return _compile_all(values, "phrase")


class RulesFile(_Strict):
    """The whole rules.yaml document."""

    version: Literal[1] = 1
    meta: MetaSpec | None = None
    platforms: dict[str, PlatformSpec] = {}
    default_platform: str | None = None
    account_phrases: list[str] = []
    topic: list[str] = []
    languages: dict[str, list[str]] = {}
    search_subject_words: list[str] = []
    rules: list[RuleSpec] = []
    disable: list[str] = []

    @field_validator("account_phrases", "topic")
    @classmethod
    def _phrases(cls, values: list[str]) -> list[str]:
        return _compile_all(values, "phrase")


@dataclass(frozen=True)
class Rule:
    """A compiled rule; see RuleSpec for the meaning of each field."""

    id: str
    kind: str
    language: str
    confidence: str
    subject: tuple[re.Pattern[str], ...]
    all: tuple[tuple[re.Pattern[str], ...], ...]
    none: tuple[re.Pattern[str], ...]
    extract: Mapping[str, re.Pattern[str]]
    origin: str = ""  # the rules file it comes from


@dataclass(frozen=True)
class RulePack:
    """Everything classification needs, compiled once per process."""

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


@dataclass(frozen=True)
class Match:
    """What classification found: ``kind`` is one of KINDS, ``unrecognized`` or ``other``.

    ``claims_meta`` is True when the sender presents itself as Meta (real or look-alike
    domain, or display name). ``fields`` holds extracted values: ``code`` (digits) and
    ``effective_date`` (ISO date string, or None when the mail states none).
    """

    kind: str
    rule_id: str | None
    platform: str | None
    account: str | None
    language: str | None
    claims_meta: bool
    fields: Mapping[str, str | None]


def _error_sentences(path: Path, exc: ValidationError, data: Any) -> list[str]:
    """One sentence per validation error, naming the rule id and key where there is one."""
    out: list[str] = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            try:
                rule_id = data["rules"][loc[1]].get("id", f"#{loc[1] + 1}")
            except (KeyError, IndexError, AttributeError, TypeError):
                rule_id = f"#{loc[1] + 1}"
            key = ".".join(str(p) for p in loc[2:]) or "(rule)"
            where = f"rule {rule_id}, key {key}"
        msg = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            msg = "unknown key"
        elif error["type"] == "literal_error" and loc[-1:] == ["kind"]:
            msg = f"unknown kind {error.get('input')!r} (known: {', '.join(KINDS)})"
        elif isinstance(error.get("input"), bool):
            msg += " (YAML reads unquoted yes/no/on/off as true/false: put it in quotes)"
        out.append(f"rules file {path}: {where}: {msg}")
    return out


def _rule_error(path: Path, exc: ValidationError, data: Any) -> RulesError:
    return RulesError(_error_sentences(path, exc, data)[0])


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506
    except FileNotFoundError:
        raise RulesError(f"rules file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"rules file {path} cannot be read ({type(exc).__name__})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise RulesError(f"rules file {path} is not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise RulesError(f"rules file {path} must be a mapping with a 'rules' list")
    return data


def _duplicate_ids(parsed: RulesFile) -> list[str]:
    ids = [r.id for r in parsed.rules]
    return sorted({i for i in ids if ids.count(i) > 1})


def read_rules_file(path: Path) -> RulesFile:
    """Read and validate one rules file; raises RulesError naming the rule id and key."""
    data = _read_yaml(path)
    try:
        parsed = RulesFile.model_validate(data)
    except ValidationError as exc:
        raise _rule_error(path, exc, data) from None
    dupes = _duplicate_ids(parsed)
    if dupes:
        raise RulesError(f"rules file {path}: duplicate rule id {dupes[0]}")
    return parsed


def rules_file_problems(path: Path) -> list[str]:
    """Return every problem of the rules file at *path*, one sentence each (empty: valid).

    Checks YAML syntax, the schema (unknown keys and kinds, missing conditions), that every
    phrase and extractor compiles, and duplicate ids; each sentence names the rule id and key.
    """
    try:
        data = _read_yaml(path)
    except RulesError as exc:
        return [str(exc)]
    problems: list[str] = []
    try:
        parsed = RulesFile.model_validate(data)
    except ValidationError as exc:
        problems += _error_sentences(path, exc, data)
        # Still look for duplicate ids among the rules that have one.
        raw_rules = data.get("rules")
        ids = (
            [r.get("id") for r in raw_rules if isinstance(r, dict)]
            if isinstance(raw_rules, list)
            else []
        )
        dupes = sorted({str(i) for i in ids if i is not None and ids.count(i) > 1})
    else:
        dupes = _duplicate_ids(parsed)
    problems += [f"rules file {path}: duplicate rule id {d}" for d in dupes]
    return problems


def _c(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(_compiled(p) for p in patterns)


def load_rules(path: Path, user_paths: tuple[Path, ...] = ()) -> RulePack:
    """Load the rule pack at *path*, then each user file in *user_paths*.

    A user rule with the id of an earlier rule replaces it in place. A rule with a new id is
    tried just before the shipped rules of its kind (after earlier user rules of that kind), so
    the pack's kind order (codes, rejections, information requests, acceptances, policy
    notices) still holds; with no rule of its kind it goes last. Ids listed under ``disable:``
    (or rules with ``enabled: false``) are dropped. Raises RulesError.
    """
    base = read_rules_file(path)
    if base.meta is None:
        raise RulesError(f"rules file {path}: meta: the rule pack must define Meta's domains")
    specs: dict[str, RuleSpec] = {r.id: r for r in base.rules}
    order: list[str] = [r.id for r in base.rules]
    origin: dict[str, Path] = dict.fromkeys(order, path)
    disabled = set(base.disable)
    topic, account_phrases = list(base.topic), list(base.account_phrases)
    languages = {k: set(v) for k, v in base.languages.items()}
    search_words = list(base.search_subject_words)
    for user_path in user_paths:
        extra = read_rules_file(user_path)
        for spec in extra.rules:
            if spec.id not in specs:
                order.insert(_insert_at(order, specs, origin, path, spec.kind), spec.id)
            specs[spec.id] = spec
            origin[spec.id] = user_path
        disabled |= set(extra.disable)
        topic += extra.topic
        account_phrases += extra.account_phrases
        search_words += extra.search_subject_words
        for lang, words in extra.languages.items():
            languages.setdefault(lang, set()).update(words)
    unknown = sorted(disabled - set(specs))
    if unknown:
        log.warning("rules: disable names unknown rule id %s", ", ".join(unknown))
    rules = tuple(
        Rule(
            id=s.id,
            kind=s.kind,
            language=s.language,
            confidence=s.confidence,
            subject=_c(s.subject),
            all=tuple(_c(g) for g in s.all),
            none=_c(s.none),
            extract={k: _compiled(v) for k, v in s.extract.items()},
            origin=str(origin[s.id]),
        )
        for s in (specs[i] for i in order)
        if s.enabled and s.id not in disabled
    )
    meta = base.meta
    return RulePack(
        rules=rules,
        sender_domains=tuple(d.lower() for d in meta.sender_domains),
        link_domains=tuple(d.lower() for d in meta.link_domains),
        claim_names=_c(meta.claim_names),
        lookalike_tokens=tuple(t.lower() for t in meta.lookalike_tokens),
        platforms=tuple(
            (name, tuple(d.lower() for d in p.sender_domains), _c(p.names))
            for name, p in base.platforms.items()
        ),
        default_platform=base.default_platform or next(iter(base.platforms), "facebook"),
        account_phrases=_c(account_phrases),
        topic=_c(topic),
        languages={k: frozenset(w.lower() for w in v) for k, v in languages.items()},
        search_subject_words=tuple(dict.fromkeys(search_words)),
        sources=(path, *user_paths),
    )


def _insert_at(
    order: list[str], specs: dict[str, RuleSpec], origin: dict[str, Path], base: Path, kind: str
) -> int:
    """Where a new user rule of *kind* goes in *order* (see load_rules)."""
    same = [n for n, i in enumerate(order) if specs[i].kind == kind]
    added = [n for n in same if origin[order[n]] != base]
    if added:
        return added[-1] + 1
    return same[0] if same else len(order)


def domain_matches(domain: str, domains: tuple[str, ...]) -> bool:
    """Return True when *domain* equals one of *domains* or is a subdomain of one."""
    domain = domain.lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in domains)


def _skeleton(text: str) -> str:
    # Fold look-alike characters (Cyrillic a, digit 0 for o, ...) so "faceb00kmail" and
    # "fаcebookmail" (Cyrillic) both reveal the brand they imitate.
    folded = unicodedata.normalize("NFKD", text.lower())
    table = str.maketrans(
        {
            "0": "o",
            "1": "l",
            "3": "e",
            "4": "a",
            "5": "s",
            "@": "a",
            "а": "a",
            "е": "e",
            "о": "o",
            "р": "p",
            "с": "c",
            "х": "x",
            "і": "i",
            "ı": "i",
            "ѕ": "s",
            "ԁ": "d",
            "ј": "j",
            "к": "k",
            "м": "m",
            "т": "t",
            "ց": "g",
            "ѵ": "v",
            "ⅿ": "m",
        }
    )
    return "".join(ch for ch in folded.translate(table) if not unicodedata.combining(ch))


def meta_claim(msg: Message, pack: RulePack) -> str | None:
    """Say why the sender presents itself as Meta, or return None when it does not.

    A Meta sender domain, a display name such as "Facebook" or "Meta Privacy", or a domain
    that imitates one (homoglyphs, digits for letters, ``facebookmail.com.example.net``).
    """
    domain = msg.from_domain
    if domain and domain_matches(domain, pack.sender_domains):
        return f"sender domain {domain} is one of Meta's"
    for pattern in pack.claim_names:
        if pattern.search(msg.from_name):
            return f"display name {msg.from_name!r} names Meta"
    # A label equal to a short token ("meta-support.com"), or containing a long one
    # ("facebookmail-security.net"); "metallica.com" does not count.
    labels = re.split(r"[.\-_]", _skeleton(_from_ace(domain)))
    for token in pack.lookalike_tokens:
        for label in labels:
            if token == label or (len(token) >= 6 and token in label):
                return f"sender domain {domain} imitates {token!r}"
    # A display name showing a Meta address: "notification@facebookmail.com" <x@gmail.com>.
    for word in re.split(r"\W+", _skeleton(msg.from_name)):
        if any(len(token) >= 6 and token in word for token in pack.lookalike_tokens):
            return f"display name {msg.from_name!r} imitates a Meta address"
    return None


def _from_ace(domain: str) -> str:
    """Decode IDNA A-labels ("xn--fcebookmail-yij") so their homoglyphs can be folded; a label
    that does not decode, or is longer than DNS allows (63), stays as it is."""
    labels = []
    for label in domain.split("."):
        decoded = label
        if label.startswith("xn--") and len(label) <= 63:
            try:
                decoded = label[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                decoded = label
        labels.append(decoded)
    return ".".join(labels)


def claims_meta(msg: Message, pack: RulePack) -> bool:
    """Return True when the sender presents itself as Meta (see :func:`meta_claim`)."""
    return meta_claim(msg, pack) is not None


def haystack(msg: Message) -> str:
    """Return the subject and body as one string for phrase matching (whitespace folded)."""
    return _WS.sub(" ", f"{msg.subject} \n {msg.text}".translate(_ASCII_PUNCT))


def match_subject(msg: Message) -> str:
    """Return the subject as ``subject`` phrases see it (typographic quotes made ASCII)."""
    return msg.subject.translate(_ASCII_PUNCT)


def platform_of(msg: Message, text: str, pack: RulePack) -> tuple[str, str]:
    """Return (platform, why): by sender domain, display name, then the brand named most often
    in the text; ``default_platform`` when nothing decides. A mail about all accounts in one
    Accounts Center names both brands and is decided by its sender."""
    for name, domains, _ in pack.platforms:
        if msg.from_domain and domain_matches(msg.from_domain, domains):
            return name, f"sender domain {msg.from_domain}"
    for name, _, names in pack.platforms:
        if any(p.search(msg.from_name) for p in names):
            return name, f"display name {msg.from_name!r}"
    counts = {name: sum(len(p.findall(text)) for p in names) for name, _, names in pack.platforms}
    best = max(counts.values(), default=0)
    leaders = [n for n, c in counts.items() if c == best]
    if best and len(leaders) == 1:
        return leaders[0], f"named most often in the text ({best} times)"
    return pack.default_platform, "nothing decides: the default platform"


def detect_platform(msg: Message, text: str, pack: RulePack) -> str:
    """Return the platform the mail is about (see :func:`platform_of`)."""
    return platform_of(msg, text, pack)[0]


def account_of(msg: Message, text: str, pack: RulePack) -> tuple[str | None, str]:
    """Return (account, why): the address in Meta's footer ("This message was sent to ..."),
    else the first Delivered-To/To/Cc address; None when there is none."""
    for pattern in pack.account_phrases:
        found = pattern.search(text)
        if found:
            return found.group("account").lower().rstrip(".,;"), "Meta's footer names it"
    if msg.recipients:
        return msg.recipients[0], "first recipient header (no footer phrase found)"
    return None, "no footer phrase and no recipient header"


def detect_account(msg: Message, text: str, pack: RulePack) -> str | None:
    """Return the address the mail was sent to (see :func:`account_of`)."""
    return account_of(msg, text, pack)[0]


@dataclass(frozen=True)
class LanguageScore:
    """Stop words of one language found in a text: ``total`` occurrences, ``distinct`` words."""

    total: int
    distinct: int


# A language takes part in classification when this many of its distinct stop words occur.
GATE_MIN_STOP_WORDS = 2


def language_scores(text: str, pack: RulePack) -> dict[str, LanguageScore]:
    """Count each known language's stop words in *text* (case-insensitive, whole words)."""
    counts: dict[str, int] = {}
    for word in _WORD.findall(text.lower()):
        counts[word] = counts.get(word, 0) + 1
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


def detect_language(text: str, pack: RulePack) -> str | None:
    """Return the language whose stop words occur most often in *text*, or None."""
    return best_language(language_scores(text, pack))


def gate_languages(scores: Mapping[str, LanguageScore]) -> frozenset[str] | None:
    """The languages whose rules are worth trying for a text with these *scores*.

    A cheap prefilter that keeps a pack of many languages fast: a language counts when at least
    GATE_MIN_STOP_WORDS of its distinct stop words occur, and the best language always counts
    (mixed mails, e.g. a Spanish mail with Meta's English footer, keep both). None means no
    stop word occurred at all, so every rule is tried.
    """
    best = best_language(scores)
    if best is None:
        return None
    chosen = {lang for lang, s in scores.items() if s.distinct >= GATE_MIN_STOP_WORDS}
    return frozenset(chosen | {best})


def rule_gated_out(rule: Rule, pack: RulePack, gate: frozenset[str] | None) -> bool:
    """True when the language prefilter skips *rule*: its language has stop words in the pack
    and is not among *gate*. Rules of languages without stop words are always tried."""
    return gate is not None and rule.language in pack.languages and rule.language not in gate


@dataclass(frozen=True)
class Condition:
    """One condition of a rule, evaluated on one mail.

    ``name`` is ``subject``, ``all[N]`` (1-based group) or ``none``. ``ok`` tells whether the
    condition holds. ``phrase`` is the pattern that decided it (the subject or group phrase that
    matched, or the ``none`` phrase that blocked), ``found`` the text it matched; both are None
    when no phrase matched (a failed subject/group, a clean ``none``).
    """

    name: str
    ok: bool
    phrase: str | None = None
    found: str | None = None


@dataclass(frozen=True)
class RuleCheck:
    """A rule evaluated on one mail: ``matched`` and the conditions evaluated, in order."""

    rule: Rule
    matched: bool
    conditions: tuple[Condition, ...]


def _first_hit(
    patterns: tuple[re.Pattern[str], ...], text: str
) -> tuple[re.Pattern[str], re.Match[str]] | None:
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return pattern, found
    return None


def _condition(name: str, hit: tuple[re.Pattern[str], re.Match[str]] | None, ok: bool) -> Condition:
    if hit is None:
        return Condition(name, ok)
    return Condition(name, ok, hit[0].pattern, hit[1].group(0))


def check_rule(rule: Rule, subject: str, text: str, full: bool = False) -> RuleCheck:
    """Evaluate *rule*: a subject phrase (if any are given), every ``all`` group, no ``none``
    phrase. Stops at the first failing condition unless *full* (for explanations)."""
    conditions: list[Condition] = []
    matched = True
    if rule.subject:
        hit = _first_hit(rule.subject, subject)
        conditions.append(_condition("subject", hit, hit is not None))
        matched = hit is not None
    for number, group in enumerate(rule.all, start=1):
        if not matched and not full:
            break
        hit = _first_hit(group, text)
        conditions.append(_condition(f"all[{number}]", hit, hit is not None))
        matched = matched and hit is not None
    if matched or full:
        hit = _first_hit(rule.none, text)
        conditions.append(_condition("none", hit, hit is None))
        matched = matched and hit is None
    return RuleCheck(rule, matched, tuple(conditions))


def rule_matches(rule: Rule, subject: str, text: str) -> bool:
    """Return True when *rule* matches (see :func:`check_rule`)."""
    return check_rule(rule, subject, text).matched


def extract(rule: Rule, text: str, language: str) -> dict[str, str | None]:
    """Run *rule*'s extractors over *text*; ``effective_date`` becomes an ISO date or None."""
    from watcher.pipeline.dates import parse_date_phrase  # babel is heavy; only extraction needs it

    out: dict[str, str | None] = {}
    for name, pattern in rule.extract.items():
        found = pattern.search(text)
        if name == "code":
            out["code"] = found.group("code") if found else None
        else:
            parsed: date | None = (
                parse_date_phrase(found.group("date"), language) if found else None
            )
            out["effective_date"] = parsed.isoformat() if parsed else None
    return out


def classify(msg: Message, pack: RulePack) -> Match:
    """Classify *msg* with *pack*; pure and never raises for any Message.

    Only mail that claims to come from Meta can get a privacy kind: a newsletter or a friend
    quoting Meta's words is ``other``. Rules are tried in order, skipping those the language
    prefilter (:func:`gate_languages`) rules out; the first match decides. Authenticity is
    checked separately.
    """
    claims = claims_meta(msg, pack)
    text = haystack(msg)
    account = detect_account(msg, text, pack)
    scores = language_scores(text, pack)
    if not claims:
        return Match(OTHER, None, None, account, best_language(scores), False, {})
    platform = detect_platform(msg, text, pack)
    subject = match_subject(msg)
    gate = gate_languages(scores)
    for rule in pack.rules:
        if rule_gated_out(rule, pack, gate):
            continue
        if rule_matches(rule, subject, text):
            fields = extract(rule, text, rule.language)
            return Match(rule.kind, rule.id, platform, account, rule.language, True, fields)
    kind = UNRECOGNIZED if any(p.search(text) for p in pack.topic) else OTHER
    return Match(kind, None, platform, account, best_language(scores), True, {})
