"""rules.yaml -> compiled :class:`RulePack`; :func:`classify` turns a Message into a Match.

Rules are data, not code. Each rule has an ``id``, a ``kind``, a ``language`` and evidence:

* ``decisive`` phrases state the decision itself ("erkennen deinen Einspruch an", "will honour
  your objection"); one found decides alone for a mail that claims to be Meta;
* ``all`` phrase groups, every group needing one of its phrases, for kinds that are a
  combination (a code word *and* the objection; AI at Meta *and* a right to object); a rule
  with both needs both;
* ``supporting`` phrases (the rule's own, plus the shared ones of its language under
  ``evidence:``) raise the score and break ties between rules that fire;
* ``negatives`` (and the older name ``none``, plus the shared negatives of its language) veto
  the rule: an account ban or appeal, a login code, ads or subscription mail, conditionals
  such as "If your objection is honoured";
* ``subject`` phrases, when given, must match the Subject; ``extract`` reads ``code`` and
  ``effective_date`` with named groups.

Scoring (:func:`check_rule`): a rule fires when nothing vetoes it, its subject phrases (if any)
and ``all`` groups hold, and a decisive phrase is found (if it has a list of them). A stated
decision scores DECISIVE_SCORE, a rule without a decisive list that fires on its groups
COMBINATION_SCORE, and each distinct supporting phrase found adds SUPPORTING_SCORE (at most
SUPPORTING_COUNTED of them): so a decision always outweighs a combination. The highest score
wins; a tie goes to the kind that comes first in KIND_PRIORITY, then to file order.

Text and phrases are normalised the same way before matching (:func:`normalise`): Unicode NFC,
typographic quotes and dashes made ASCII, soft hyphens and zero-width characters dropped,
non-breaking spaces and runs of whitespace folded to one space, ß written ss, and US spellings
turned British (honor/honour, center/centre, -ize/-ise), so one phrase covers its variants.
Phrases are case-insensitive regular expressions (``(?-i:AI)`` makes a part case-sensitive).

A mail that claims to come from Meta but fires no rule is ``unrecognized`` when it speaks about
the objection or AI use of data (``topic`` phrases, Meta's privacy-team signatures, links to
the Privacy Center's AI pages or the objection forms), unless a shared negative says it is
about something else; otherwise it is ``other``.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
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
DECISIVE_SCORE = 100  # a decisive phrase found: the mail states the decision
COMBINATION_SCORE = 60  # every `all` group holds (a rule without decisive phrases)
SUPPORTING_SCORE = 4  # each distinct supporting phrase found
SUPPORTING_COUNTED = 10  # at most this many count, so 10 x 4 < 100 - 60
SHARED = "any"  # the `evidence:` entry that applies to every language

_FLAGS = re.IGNORECASE | re.UNICODE
_WORD = re.compile(r"\w+")

# Typographic quotes and apostrophes, dashes and odd spaces -> ASCII; soft hyphens and
# zero-width characters (inserted by editors and mailers inside words) -> nothing; ß -> ss
# (Swiss Standard German writes ss, and "Grüße"/"Grüsse" must be one phrase).
_QUOTES = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u2039": '"',
    "\u203a": '"',
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u00df": "ss",
    "\u1e9e": "SS",
}
_SPACES = dict.fromkeys(
    ("\u00a0", "\u202f", "\u2007", "\u2009", "\u200a", "\u2002", "\u2003", "\u2004", "\u2005"),
    " ",
)
_DASHES = dict.fromkeys(("\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212"), "-")
_INVISIBLE: dict[str, None] = dict.fromkeys(
    ("\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
)
# Phrases are regular expressions: dashes stay as written (a class like [‐-] must not break).
_PATTERN_TABLE = str.maketrans({**_QUOTES, **_SPACES, **_INVISIBLE})

# US spellings -> British, for whole words only: never inside an address, a domain or a URL
# path (the account is read from the same text). Phrases go through the same map, so
# 'honou?r', 'honour' and 'honor' all match both spellings.
_NOT_BEFORE = r"(?<![\w.@/\\-])"
_NOT_AFTER = r"(?![\w@/-]|\.\w)"
_US_UK = re.compile(
    _NOT_BEFORE
    + r"(?:(?P<our>(?:hono|favo|colo|behavio|neighbo|labo|humo|rumo|endeavo)r)"
    + r"(?=(?:s|ed|ing|able|ably|ite|ites)?"
    + _NOT_AFTER
    + r")"
    + r"|(?P<re>(?:cent|theat)er)(?=(?:s|ed)?"
    + _NOT_AFTER
    + r")"
    + r"|(?P<ise>[a-z]{4,}[iy]z)(?=(?:e|es|ed|ing|er|ers|ation|ations)"
    + _NOT_AFTER
    + r")"
    + r"|(?P<word>licen[sc]e[sd]?|programs?|inquir(?:y|ies)|catalogs?|dialogs?)"
    + _NOT_AFTER
    + r")",
    re.IGNORECASE,
)
_WORDS_UK = {
    "license": "licence",
    "licenses": "licences",
    "licensed": "licenced",
    "program": "programme",
    "programs": "programmes",
    "inquiry": "enquiry",
    "inquiries": "enquiries",
    "catalog": "catalogue",
    "catalogs": "catalogues",
    "dialog": "dialogue",
    "dialogs": "dialogues",
}


def _british(found: re.Match[str]) -> str:
    word = found.group(0)
    if found.lastgroup == "our":  # honor -> honour
        return word[:-1] + ("U" if word[-2].isupper() else "u") + word[-1]
    if found.lastgroup == "re":  # center -> centre
        return word[:-2] + word[-1] + word[-2]
    if found.lastgroup == "ise":  # recognize -> recognise
        return word[:-1] + ("S" if word[-1] == "Z" else "s")
    new = _WORDS_UK.get(word.lower(), word.lower())
    if word.isupper():
        return new.upper()
    return new[0].upper() + new[1:] if word[0].isupper() else new


_SPECIAL = re.compile("[" + "".join(sorted({**_QUOTES, **_SPACES, **_DASHES, **_INVISIBLE})) + "]")
_SPECIAL_MAP: dict[str, str] = {
    k: v or "" for k, v in {**_QUOTES, **_SPACES, **_DASHES, **_INVISIBLE}.items()
}
# Words the US/UK map can change: the map (a regex tried at every word) runs only when one
# of these occurs in the lower-cased text.
_US_UK_HINTS = (
    "iz",
    "yz",
    "hono",
    "favo",
    "colo",
    "havio",
    "ghbor",
    "labor",
    "humor",
    "rumor",
    "deavor",
    "center",
    "theater",
    "licens",
    "program",
    "inquir",
    "catalog",
    "dialog",
)


def _special(found: re.Match[str]) -> str:
    return _SPECIAL_MAP[found.group(0)]


def normalise(text: str) -> str:
    """Return *text* as phrases see it: NFC; typographic quotes, apostrophes and dashes as
    ASCII; soft hyphens and zero-width characters removed; non-breaking and other spaces,
    and every run of whitespace, as one space (none at either end); ß as ss; US spellings as
    British ones (whole words outside addresses and URLs). Case is kept: phrases match
    case-insensitively.
    """
    if not text.isascii():
        text = _SPECIAL.sub(_special, unicodedata.normalize("NFC", text))
    text = " ".join(text.split())
    lowered = text.lower()
    if any(hint in lowered for hint in _US_UK_HINTS):
        text = _US_UK.sub(_british, text)
    return text


def normalise_pattern(pattern: str) -> str:
    """Return the phrase *pattern* (a regular expression) normalised like the text it is
    matched against (see :func:`normalise`), so a phrase written with ß, typographic quotes
    or a US spelling still matches. Regex syntax is left alone."""
    pattern = unicodedata.normalize("NFC", pattern).translate(_PATTERN_TABLE)
    # "\b" ends in a letter: hide it so "\bhonor" is seen as the word "honor".
    hidden = pattern.replace("\\b", "\x00")
    return _US_UK.sub(_british, hidden).replace("\x00", "\\b")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# libyaml's loader when PyYAML was built with it: the rule pack loads 10x faster (same safe
# subset of YAML as yaml.safe_load).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """Compile a rule phrase (normalised, see :func:`normalise_pattern`) once per process:
    validation and the compiled pack share it (the pack has more patterns than ``re``'s own
    cache of 512 keeps). Raises re.error."""
    return re.compile(normalise_pattern(pattern), _FLAGS)


def _compile_all(values: list[str], what: str) -> list[str]:
    for value in values:
        try:
            _compiled(value)
        except re.error as exc:
            raise ValueError(f"{what}: pattern {value!r} does not compile: {exc}") from None
    return values


class RuleSpec(_Strict):
    """One rule as written in rules.yaml (see the module docstring for the evidence model)."""

    id: str = Field(min_length=1)
    kind: Kind
    language: str = Field(min_length=2, max_length=3)
    confidence: Literal["high", "low"] = "high"
    source: str = ""
    enabled: bool = True
    subject: list[str] = []
    decisive: list[str] = []
    all: list[list[str]] = []
    supporting: list[str] = []
    negatives: list[str] = []
    none: list[str] = []
    extract: dict[str, str] = {}

    @field_validator("subject", "decisive", "supporting", "negatives", "none")
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
        # A rule with none of these would match every mail that claims to be Meta.
        if not self.subject and not self.all and not self.decisive:
            raise ValueError(
                "a rule needs 'decisive' phrases, 'all' phrase groups or 'subject' phrases"
            )
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


class EvidenceSpec(_Strict):
    """Evidence shared by every rule of one language (or of all, under ``any``)."""

    supporting: list[str] = []
    negatives: list[str] = []

    @field_validator("supporting", "negatives")
    @classmethod
    def _patterns(cls, values: list[str]) -> list[str]:
        return _compile_all(values, "phrase")


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
    evidence: dict[str, EvidenceSpec] = {}
    effective_date_cues: dict[str, list[str]] = {}
    rules: list[RuleSpec] = []
    disable: list[str] = []

    @field_validator("account_phrases", "topic")
    @classmethod
    def _phrases(cls, values: list[str]) -> list[str]:
        return _compile_all(values, "phrase")

    @field_validator("effective_date_cues")
    @classmethod
    def _cues(cls, values: dict[str, list[str]]) -> dict[str, list[str]]:
        for lang, cues in values.items():
            _compile_all(cues, f"cue of {lang}")
        return values


@dataclass(frozen=True)
class Phrase:
    """One compiled phrase: ``written`` as in the rules file, ``pattern`` compiled from its
    normalised form, ``where`` it comes from (``rule``, or ``shared <language>`` for
    ``evidence:``)."""

    written: str
    pattern: re.Pattern[str]
    where: str = "rule"

    @property
    def needs(self) -> tuple[tuple[str, ...], ...]:
        """What a match must contain (see :func:`required_words`)."""
        return required_words(self.pattern)


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
    (``effective_date_cues:``, read by :func:`watcher.pipeline.dates.find_effective_date`).
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
    # The rules the prefilter keeps, per set of gate languages (see gated_rules); filled as
    # mails come, a few dozen entries at most. Not an __init__ field: dataclasses.replace()
    # gives a new pack a new cache.
    _gated: dict[frozenset[str] | None, tuple[Rule, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )


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


def _c(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(_compiled(p) for p in patterns)


def _phrases(patterns: Iterable[str], where: str = "rule") -> tuple[Phrase, ...]:
    return tuple(Phrase(p, _compiled(p), where) for p in patterns)


def _dedupe(phrases: Iterable[Phrase]) -> tuple[Phrase, ...]:
    """Drop a phrase written again (the first, the rule's own, is kept)."""
    seen: set[str] = set()
    out: list[Phrase] = []
    for phrase in phrases:
        if phrase.written not in seen:
            seen.add(phrase.written)
            out.append(phrase)
    return tuple(out)


def load_rules(path: Path, user_paths: tuple[Path, ...] = ()) -> RulePack:
    """Load the rule pack at *path*, then each user file in *user_paths*.

    A user rule with the id of an earlier rule replaces it in place. A rule with a new id goes
    just before the shipped rules of its kind (after earlier user rules of that kind); with no
    rule of its kind it goes last. The order only breaks exact ties of score and kind. Ids
    listed under ``disable:`` (or rules with ``enabled: false``) are dropped. A user file's
    ``topic``, ``evidence``, ``effective_date_cues``, ``languages`` and account phrases are
    added to the pack's. Raises RulesError.
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
    supporting: dict[str, list[str]] = {}
    negatives: dict[str, list[str]] = {}
    cues: dict[str, list[str]] = {}
    files = [base]
    for user_path in user_paths:
        extra = read_rules_file(user_path)
        files.append(extra)
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
    for parsed in files:
        for lang, evidence in parsed.evidence.items():
            supporting.setdefault(lang, []).extend(evidence.supporting)
            negatives.setdefault(lang, []).extend(evidence.negatives)
        for lang, phrases in parsed.effective_date_cues.items():
            cues.setdefault(lang, []).extend(phrases)
    unknown = sorted(disabled - set(specs))
    if unknown:
        log.warning("rules: disable names unknown rule id %s", ", ".join(unknown))
    shared_supporting = {
        lang: _dedupe(_phrases(p, f"shared {lang}")) for lang, p in supporting.items()
    }
    shared_negatives = {
        lang: _dedupe(_phrases(p, f"shared {lang}")) for lang, p in negatives.items()
    }
    kept = [specs[i] for i in order if specs[i].enabled and i not in disabled]
    rules = tuple(
        _rule(s, n, str(origin[s.id]), shared_supporting, shared_negatives)
        for n, s in enumerate(kept)
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
        topic=_c(dict.fromkeys(topic)),
        languages={k: frozenset(w.lower() for w in v) for k, v in languages.items()},
        search_subject_words=tuple(dict.fromkeys(search_words)),
        sources=(path, *user_paths),
        shared_supporting=shared_supporting,
        shared_negatives=shared_negatives,
        date_cues={lang: _c(dict.fromkeys(p)) for lang, p in cues.items()},
    )


def _rule(
    spec: RuleSpec,
    order: int,
    origin: str,
    supporting: Mapping[str, tuple[Phrase, ...]],
    negatives: Mapping[str, tuple[Phrase, ...]],
) -> Rule:
    """Compile *spec*, adding the shared evidence of its language and of ``any``."""
    shared = (spec.language, SHARED)
    return Rule(
        id=spec.id,
        kind=spec.kind,
        language=spec.language,
        confidence=spec.confidence,
        subject=_phrases(spec.subject),
        decisive=_phrases(spec.decisive),
        all=tuple(_phrases(g) for g in spec.all),
        supporting=_dedupe(
            (*_phrases(spec.supporting), *(p for s in shared for p in supporting.get(s, ())))
        ),
        negatives=_dedupe(
            (
                *_phrases(spec.none),
                *_phrases(spec.negatives),
                *(p for s in shared for p in negatives.get(s, ())),
            )
        ),
        extract={k: _compiled(v) for k, v in spec.extract.items()},
        origin=origin,
        order=order,
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
    """Return the subject and body as one normalised string for phrase matching (see
    :func:`normalise`)."""
    return normalise(f"{msg.subject} \n {msg.text}")


def match_subject(msg: Message) -> str:
    """Return the subject as ``subject`` phrases see it (normalised like the body)."""
    return normalise(msg.subject)


def links_text(msg: Message) -> str:
    """The mail's link targets as one string: supporting and topic phrases also look here
    (a link to the Privacy Center's generative-AI page or an objection form is evidence even
    when the text does not show the address). Negatives never do: a URL saying "login" is not
    a login mail."""
    return " ".join(msg.links[:200])


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


# The sender line of a forwarded or quoted mail, as mail clients write it in the languages of
# the pack ("From: Facebook", "De : Facebook <...>", "Von: Instagram", "> From: ..."), and of a
# header block that ended up in the body (a header line the parser could not read).
_QUOTED_FROM = re.compile(
    r"^[ \t>*]{0,8}(?:from|de|von|da|van|från|fra|od|lähettäjä|από|feladó|expeditor|"
    r"remetente|afzender|mittente|absender|remitente|nadawca|odesílatel|fra)"
    r"[ \t]{0,3}:[ \t]{0,3}(?P<who>[^\n]{1,200})$",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTED_SCAN_CHARS = 20_000
_QUOTED_LINES = 20


def named_platform(msg: Message, pack: RulePack) -> tuple[str, str] | None:
    """For a mail whose sender does not present itself as Meta: the platform that a quoted
    sender line in its text names (a forwarded copy, a header block pushed into the body),
    as (platform, why); None when no quoted sender names Meta. Informative only: such a mail
    is ``other`` and moves no status, but the user sees which brand it uses."""
    for number, found in enumerate(_QUOTED_FROM.finditer(msg.text, 0, _QUOTED_SCAN_CHARS)):
        if number >= _QUOTED_LINES:
            break
        who = found.group("who")
        addresses = re.findall(r"@([\w.-]+)", who)
        for name, domains, names in pack.platforms:
            if any(p.search(who) for p in names) or any(
                domain_matches(a, domains) for a in addresses
            ):
                return name, f"a quoted sender line names it: {found.group(0).strip()[:80]!r}"
        if any(p.search(who) for p in pack.claim_names) or any(
            domain_matches(a, pack.sender_domains) for a in addresses
        ):
            return pack.default_platform, f"a quoted sender line names Meta: {who.strip()[:80]!r}"
    return None


def account_of(msg: Message, text: str, pack: RulePack) -> tuple[str | None, str]:
    """Return (account, why): the address in the last Meta footer ("This message was sent
    to ...") of the body, else the first Delivered-To/X-Original-To/To/Cc address; None when
    there is none.

    Only the body counts (*text* is not used: it holds the subject, which a replayed mail can
    carry forged, issue 12), and the last footer, the one Meta appends. A footer address that
    no recipient header names (when there is any) gives None: the mail is a copy of someone
    else's, and is not counted for anyone.
    """
    body = normalise(msg.text)
    last: re.Match[str] | None = None
    for pattern in pack.account_phrases:
        for found in pattern.finditer(body):
            if last is None or found.start() > last.start():
                last = found
    if last is not None:
        account = last.group("account").lower().rstrip(".,;")
        if msg.recipients and account not in msg.recipients:
            return None, f"Meta's footer names {account}, which no recipient header names"
        return account, "Meta's footer names it"
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


def detect_language(text: str, pack: RulePack) -> str | None:
    """Return the language whose stop words occur most often in *text*, or None."""
    return best_language(language_scores(text, pack))


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


_MIN_NEED = 3  # shorter literals ("a ", "de") rule nothing out


@functools.cache
def required_words(pattern: re.Pattern[str]) -> tuple[tuple[str, ...], ...]:
    """What any match of *pattern* must contain, case-folded: each entry is a tuple of
    alternatives of which one must occur in the case-folded text. From the literal runs and
    the alternations of literals that the pattern's top level (and its groups) requires;
    ``()`` when it requires none (or cannot be read: then the regex alone decides).

    A cheap prefilter: ``word in text.casefold()`` is a C substring search, a regex search of
    a phrase starting with ``\b`` tries every position. Case folding is at least as lenient as
    the IGNORECASE matching of ``re``, so the prefilter never rules out a real match.
    """
    try:
        # The parser re itself uses (Python >= 3.11; not in the typing stubs).
        _parser = importlib.import_module("re._parser")
        _constants = importlib.import_module("re._constants")
        tree = _parser.parse(pattern.pattern, pattern.flags)
        literal, branch, group = _constants.LITERAL, _constants.BRANCH, _constants.SUBPATTERN
    except Exception:  # noqa: BLE001 - a private module: without it, no prefilter
        return ()

    def leading(items: Any) -> str:
        run = []
        for op, av in items:
            if op is not literal:
                break
            run.append(chr(av))
        return "".join(run).strip()

    def needs(items: Any) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        run: list[str] = []

        def flush() -> None:
            word = "".join(run).strip()
            if len(word) >= _MIN_NEED:
                out.append((word.casefold(),))
            run.clear()

        for op, av in items:
            if op is literal:
                run.append(chr(av))
                continue
            flush()
            if op is branch:
                alternatives = [leading(b) for b in av[1]]
                if all(len(a) >= _MIN_NEED for a in alternatives):
                    out.append(tuple(dict.fromkeys(a.casefold() for a in alternatives)))
            elif op is group:
                out.extend(needs(av[3]))
        flush()
        return out

    try:
        return tuple(needs(tree))
    except Exception:  # noqa: BLE001 - an unexpected tree shape: no prefilter
        return ()


_UNSEEN = object()  # a search not made yet (None is a search that found nothing)


class TextSearch:
    """The normalised *text* of one mail (and its *links*, see :func:`links_text`) with a
    cache of phrase searches: the rules of one language share their evidence, so each shared
    phrase is searched once per mail. A phrase whose required words (:func:`required_words`)
    are missing from the text is not searched at all."""

    __slots__ = ("_cache", "_folded", "_link_cache", "_links_folded", "_words", "links", "text")

    def __init__(self, text: str, links: str = "") -> None:
        self.text = text
        self.links = links
        self._folded = text.casefold()
        self._links_folded = links.casefold()
        # Keyed by id(): hashing a compiled pattern hashes its whole code. The patterns live
        # in the pack (and _compiled's cache) for as long as this object does.
        self._cache: dict[int, str | None] = {}
        self._link_cache: dict[int, str | None] = {}
        self._words: dict[str, bool] = {}  # required word -> occurs in the text

    def _possible(self, pattern: re.Pattern[str]) -> bool:
        """False when a word *pattern* requires is missing from the text."""
        words, folded = self._words, self._folded
        for alternatives in _needs(pattern):
            for word in alternatives:
                present = words.get(word)
                if present is None:
                    present = words[word] = word in folded
                if present:
                    break
            else:
                return False
        return True

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The first match of *pattern* in the text (not cached), or None."""
        return pattern.search(self.text) if self._possible(pattern) else None

    def find(self, pattern: re.Pattern[str]) -> str | None:
        """The text the first match of *pattern* covers, or None."""
        key = id(pattern)
        result = self._cache.get(key, _UNSEEN)
        if result is _UNSEEN:
            found = pattern.search(self.text) if self._possible(pattern) else None
            result = self._cache[key] = found.group(0) if found else None
        return result  # type: ignore[return-value]

    def find_with_links(self, pattern: re.Pattern[str]) -> str | None:
        """Like :meth:`find`, then in the link targets."""
        result = self.find(pattern)
        if result is not None or not self.links:
            return result
        key = id(pattern)
        try:
            return self._link_cache[key]
        except KeyError:
            link: str | None = None
            if all(any(a in self._links_folded for a in alts) for alts in _needs(pattern)):
                found = pattern.search(self.links)
                link = found.group(0) if found else None
            self._link_cache[key] = link
            return link


# required_words() by id() of the pattern; the entry holds the pattern too, so its id cannot
# be reused by another object while the entry exists.
_NEEDS: dict[int, tuple[re.Pattern[str], tuple[tuple[str, ...], ...]]] = {}


def _needs(pattern: re.Pattern[str]) -> tuple[tuple[str, ...], ...]:
    """required_words(*pattern*), looked up by identity (cheaper than hashing a pattern)."""
    try:
        return _NEEDS[id(pattern)][1]
    except KeyError:
        needs = required_words(pattern)
        _NEEDS[id(pattern)] = (pattern, needs)
        return needs


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
    hold, or in full); ``score``: see the module docstring (0 when the requirements fail).
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
    phrases: tuple[Phrase, ...], search: Callable[[re.Pattern[str]], str | None]
) -> Condition | None:
    for phrase in phrases:
        found = search(phrase.pattern)
        if found is not None:
            return Condition("", True, phrase.written, found)
    return None


def _condition(
    name: str, phrases: tuple[Phrase, ...], search: Callable[[re.Pattern[str]], str | None]
) -> Condition:
    hit = _first_hit(phrases, search)
    return Condition(name, False) if hit is None else Condition(name, True, hit.phrase, hit.found)


def _hits(
    phrases: tuple[Phrase, ...], search: Callable[[re.Pattern[str]], str | None], first: bool
) -> tuple[Hit, ...]:
    out: list[Hit] = []
    for phrase in phrases:
        found = search(phrase.pattern)
        if found is not None:
            out.append(Hit(phrase, found))
            if first:
                break
    return tuple(out)


def score_of(rule: Rule, conditions: tuple[Condition, ...], supporting: int) -> int:
    """The score of *rule* with these evaluated *conditions* and *supporting* distinct
    supporting phrases found (see the module docstring); 0 when a requirement fails."""
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
    given), every ``all`` group; then the negatives, then the supporting phrases. Stops at the
    first failing requirement or veto unless *full* (for explanations, which then also list
    every negative found). *search* shares phrase searches between rules (and adds the link
    targets for supporting phrases); by default a fresh one over *text*.
    """
    s = search if search is not None else TextSearch(text)
    conditions: list[Condition] = []
    holds = True
    if rule.subject:
        conditions.append(_condition("subject", rule.subject, lambda p: _search(p, subject)))
        holds = conditions[-1].ok
    if rule.decisive and (holds or full):
        conditions.append(_condition("decisive", rule.decisive, s.find))
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
            if find(phrase.pattern) is not None:
                break
        else:
            return False
    for group in rule.all:
        for phrase in group:
            if find(phrase.pattern) is not None:
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
            found = search.find(phrase.pattern)
            if found is not None:
                return Fallback(OTHER, topic, Hit(phrase, found))
    return Fallback(UNRECOGNIZED, topic, None)


def extract(
    rule: Rule,
    text: str,
    language: str,
    *,
    sent_on: date | None = None,
    cues: Mapping[str, tuple[re.Pattern[str], ...]] | None = None,
) -> dict[str, str | None]:
    """Run *rule*'s extractors over *text*: ``code`` (digits or None) and ``effective_date``
    (ISO date or None). A policy notice always gets ``effective_date``: the rule's own
    extractor when it finds a date, else :func:`watcher.pipeline.dates.find_effective_date` with the
    pack's *cues* and the mail's Date (*sent_on*)."""
    # babel is heavy; only extraction needs it.
    from watcher.pipeline.dates import find_effective_date, parse_date_phrase

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
    if rule.kind == "policy_update" and out.get("effective_date") is None:
        found_date = find_effective_date(text, language, sent_on, cues or {})
        out["effective_date"] = found_date.isoformat() if found_date else None
    return out


def classify(msg: Message, pack: RulePack) -> Match:
    """Classify *msg* with *pack*; pure and never raises for any Message.

    Only mail that claims to come from Meta can get a privacy kind: a newsletter or a friend
    quoting Meta's words is ``other`` (its platform is the one a quoted sender line names, see
    :func:`named_platform`). Every rule the language prefilter (:func:`gate_languages`) keeps
    is evaluated; the fired rule with the best :func:`rank` decides. A Meta mail that fires
    none goes to :func:`fallback`. Authenticity is checked separately.
    """
    claims = claims_meta(msg, pack)
    text = haystack(msg)
    account = detect_account(msg, text, pack)
    scores = language_scores(text, pack)
    if not claims:
        named = named_platform(msg, pack)
        platform = named[0] if named else None
        return Match(OTHER, None, platform, account, best_language(scores), False, {})
    platform = detect_platform(msg, text, pack)
    subject = match_subject(msg)
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
