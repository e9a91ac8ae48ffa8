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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from watcher.errors import RulesError
from watcher.message import Message

log = logging.getLogger(__name__)

Kind = Literal[
    "policy_update",
    "verification_code",
    "objection_accepted",
    "objection_rejected",
    "info_requested",
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
UNRECOGNIZED = "unrecognized"
OTHER = "other"
EXTRACTORS = ("code", "effective_date")

_FLAGS = re.IGNORECASE | re.UNICODE
_WS = re.compile(r"\s+")
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
        for group in groups:
            if not group:
                raise ValueError("every group in 'all' needs at least one phrase")
            _compile_all(group, "phrase")
        return groups

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


class MetaSpec(_Strict):
    """Meta's sending and link domains, and what counts as claiming to be Meta."""

    sender_domains: list[str] = Field(min_length=1)
    link_domains: list[str] = Field(min_length=1)
    claim_names: list[str] = []
    lookalike_tokens: list[str] = []


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


def _rule_error(path: Path, exc: ValidationError, data: Any) -> RulesError:
    first = exc.errors()[0]
    loc = list(first["loc"])
    where = ".".join(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        try:
            rule_id = data["rules"][loc[1]].get("id", f"#{loc[1] + 1}")
        except (KeyError, IndexError, AttributeError, TypeError):
            rule_id = f"#{loc[1] + 1}"
        key = ".".join(str(p) for p in loc[2:]) or "(rule)"
        where = f"rule {rule_id}, key {key}"
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    return RulesError(f"rules file {path}: {where}: {msg}")


def read_rules_file(path: Path) -> RulesFile:
    """Read and validate one rules file; raises RulesError naming the rule id and key."""
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
    try:
        parsed = RulesFile.model_validate(data)
    except ValidationError as exc:
        raise _rule_error(path, exc, data) from None
    ids = [r.id for r in parsed.rules]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RulesError(f"rules file {path}: duplicate rule id {dupes[0]}")
    return parsed


def _c(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(_compiled(p) for p in patterns)


def load_rules(path: Path, user_paths: tuple[Path, ...] = ()) -> RulePack:
    """Load the rule pack at *path*, then each user file in *user_paths*.

    A user rule with the id of an earlier rule replaces it in place; new ids are appended; ids
    listed under ``disable:`` (or rules with ``enabled: false``) are dropped. Raises RulesError.
    """
    base = read_rules_file(path)
    if base.meta is None:
        raise RulesError(f"rules file {path}: meta: the rule pack must define Meta's domains")
    specs: dict[str, RuleSpec] = {r.id: r for r in base.rules}
    disabled = set(base.disable)
    topic, account_phrases = list(base.topic), list(base.account_phrases)
    languages = {k: set(v) for k, v in base.languages.items()}
    search_words = list(base.search_subject_words)
    for user_path in user_paths:
        extra = read_rules_file(user_path)
        for spec in extra.rules:
            specs[spec.id] = spec  # dicts keep insertion order: a replacement stays in place
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
        )
        for s in specs.values()
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


def claims_meta(msg: Message, pack: RulePack) -> bool:
    """Return True when the sender presents itself as Meta: a Meta sender domain, a display
    name such as "Facebook" or "Meta Privacy", or a domain that imitates one (homoglyphs,
    digits for letters, ``facebookmail.com.example.net``)."""
    domain = msg.from_domain
    if domain and domain_matches(domain, pack.sender_domains):
        return True
    if any(p.search(msg.from_name) for p in pack.claim_names):
        return True
    # A label equal to a short token ("meta-support.com"), or containing a long one
    # ("facebookmail-security.net"); "metallica.com" does not count.
    labels = re.split(r"[.\-_]", _skeleton(_from_ace(domain)))
    if any(
        token == label or (len(token) >= 6 and token in label)
        for token in pack.lookalike_tokens
        for label in labels
    ):
        return True
    # A display name showing a Meta address: "notification@facebookmail.com" <x@gmail.com>.
    return any(
        len(token) >= 6 and token in word
        for word in re.split(r"\W+", _skeleton(msg.from_name))
        for token in pack.lookalike_tokens
    )


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


def haystack(msg: Message) -> str:
    """Return the subject and body as one string for phrase matching (whitespace folded)."""
    return _WS.sub(" ", f"{msg.subject} \n {msg.text}".translate(_ASCII_PUNCT))


def detect_platform(msg: Message, text: str, pack: RulePack) -> str:
    """Return the platform the mail is about: by sender domain, display name, then the brand
    named most often in the text; ``default_platform`` when nothing decides."""
    for name, domains, _ in pack.platforms:
        if msg.from_domain and domain_matches(msg.from_domain, domains):
            return name
    for name, _, names in pack.platforms:
        if any(p.search(msg.from_name) for p in names):
            return name
    counts = {name: sum(len(p.findall(text)) for p in names) for name, _, names in pack.platforms}
    best = max(counts.values(), default=0)
    leaders = [n for n, c in counts.items() if c == best]
    if best and len(leaders) == 1:
        return leaders[0]
    return pack.default_platform


def detect_account(msg: Message, text: str, pack: RulePack) -> str | None:
    """Return the address the mail was sent to: Meta's footer ("This message was sent to ..."),
    else the first Delivered-To/To/Cc address."""
    for pattern in pack.account_phrases:
        found = pattern.search(text)
        if found:
            return found.group("account").lower().rstrip(".,;")
    return msg.recipients[0] if msg.recipients else None


def detect_language(text: str, pack: RulePack) -> str | None:
    """Return the language whose stop words occur most often in *text*, or None."""
    words = re.findall(r"\w+", text.lower())
    best, best_count = None, 0
    for lang, stop in pack.languages.items():
        count = sum(1 for w in words if w in stop)
        if count > best_count:
            best, best_count = lang, count
    return best


def rule_matches(rule: Rule, subject: str, text: str) -> bool:
    """Return True when *rule* matches: a subject phrase (if any are given), every ``all``
    group, and no ``none`` phrase."""
    if rule.subject and not any(p.search(subject) for p in rule.subject):
        return False
    if not all(any(p.search(text) for p in group) for group in rule.all):
        return False
    return not any(p.search(text) for p in rule.none)


def extract(rule: Rule, text: str, language: str) -> dict[str, str | None]:
    """Run *rule*'s extractors over *text*; ``effective_date`` becomes an ISO date or None."""
    from watcher.dates import parse_date_phrase  # babel is heavy; only extraction needs it

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
    quoting Meta's words is ``other``. Authenticity is checked separately.
    """
    claims = claims_meta(msg, pack)
    text = haystack(msg)
    account = detect_account(msg, text, pack)
    if not claims:
        return Match(OTHER, None, None, account, detect_language(text, pack), False, {})
    platform = detect_platform(msg, text, pack)
    subject = msg.subject.translate(_ASCII_PUNCT)
    for rule in pack.rules:
        if rule_matches(rule, subject, text):
            fields = extract(rule, text, rule.language)
            return Match(rule.kind, rule.id, platform, account, rule.language, True, fields)
    kind = UNRECOGNIZED if any(p.search(text) for p in pack.topic) else OTHER
    return Match(kind, None, platform, account, detect_language(text, pack), True, {})
