"""rules.yaml (and the user's rules files) -> one compiled :class:`RulePack`.

Reads each file through :mod:`watcher.pipeline.rules.schema`, merges user rules into the
shipped ones (replace by id, insert by kind, ``disable:``), adds each language's shared
``evidence:`` to its rules and compiles every phrase.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from watcher.errors import RulesError
from watcher.pipeline.rules.pack import SHARED, Phrase, Rule, RulePack
from watcher.pipeline.rules.schema import RuleSpec, read_rules_file
from watcher.pipeline.rules.text import compile_phrase

log = logging.getLogger(__name__)


def _c(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(compile_phrase(p) for p in patterns)


def _phrases(patterns: Iterable[str], where: str = "rule") -> tuple[Phrase, ...]:
    return tuple(Phrase.of(p, where) for p in patterns)


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
    covers: list[str] = []
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
        for phrases in parsed.covers_accounts_center.values():
            covers.extend(phrases)
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
        covers_accounts_center=_c(dict.fromkeys(covers)),
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
        extract={k: compile_phrase(v) for k, v in spec.extract.items()},
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
