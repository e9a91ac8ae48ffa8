"""The schema of rules.yaml (pydantic models), reading and validating one rules file.

Rules are data, not code; the evidence model is described in :mod:`watcher.pipeline.rules`.
Every phrase and extractor is compiled while validating (:func:`compile_phrase`), so a file
that validates compiles into a pack (:func:`watcher.pipeline.rules.load.load_rules`).
This is the only module of the rules that imports pydantic.
"""

from __future__ import annotations

import re
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

from watcher.config.files import refuse_aliases, refuse_duplicate_keys
from watcher.errors import RulesError
from watcher.kinds import KINDS, Kind
from watcher.pipeline.rules.pack import EXTRACTORS
from watcher.pipeline.rules.text import compile_phrase


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# libyaml's loader when PyYAML was built with it: the rule pack loads 10x faster (same safe
# subset of YAML as yaml.safe_load).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compile_all(values: list[str], what: str) -> list[str]:
    for value in values:
        try:
            compile_phrase(value)
        except re.error as exc:
            raise ValueError(f"{what}: pattern {value!r} does not compile: {exc}") from None
    return values


class RuleSpec(_Strict):
    """One rule as written in rules.yaml (the evidence model: :mod:`watcher.pipeline.rules`)."""

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
                compiled = compile_phrase(pattern)
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
    covers_accounts_center: dict[str, list[str]] = {}
    rules: list[RuleSpec] = []
    disable: list[str] = []

    @field_validator("account_phrases", "topic")
    @classmethod
    def _phrases(cls, values: list[str]) -> list[str]:
        return _compile_all(values, "phrase")

    @field_validator("effective_date_cues", "covers_accounts_center")
    @classmethod
    def _cues(cls, values: dict[str, list[str]]) -> dict[str, list[str]]:
        for lang, cues in values.items():
            _compile_all(cues, f"cue of {lang}")
        return values


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
        text = path.read_text(encoding="utf-8")
        # The config's own checks: no alias ("billion laughs"), no key given twice (a second
        # `decisive:` would replace the first without a word).
        refuse_aliases(text, path, what="rules file", error=RulesError, loader=_YAML_LOADER)
        refuse_duplicate_keys(text, path, what="rules file", error=RulesError, loader=_YAML_LOADER)
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506
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
