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

The package, in the order a mail meets it:

* :mod:`.schema` — the pydantic models of rules.yaml, reading and validating one file (the only
  module here that needs pydantic and YAML);
* :mod:`.load` — compiling the shipped and user files into one pack (user-rule merging);
* :mod:`.pack` — the compiled pack (:class:`Rule`, :class:`Phrase`, :class:`RulePack`);
* :mod:`.text` — text and phrase normalisation, and the word prefilter of phrase searches;
* :mod:`.sender` — the Meta claim, the platform and the account;
* :mod:`.language` — the stop-word language prefilter;
* :mod:`.classifier` — evidence, scoring, the decision and the fallback (scoring rules in its
  docstring).

Every public name is importable from this package. The schema and loading names are imported on
first use (PEP 562 ``__getattr__``), so classifying with a pack already built imports neither
pydantic nor YAML.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from watcher.kinds import KINDS, OTHER, UNRECOGNIZED, Kind
from watcher.pipeline.rules.classifier import (
    COMBINATION_SCORE,
    DECISIVE_SCORE,
    SUPPORTING_COUNTED,
    SUPPORTING_SCORE,
    Condition,
    Fallback,
    Hit,
    Match,
    RuleCheck,
    check_rule,
    classify,
    decide,
    fallback,
    rank,
    requirements_hold,
    rule_matches,
    score_of,
    social_notification,
)
from watcher.pipeline.rules.extract import extract
from watcher.pipeline.rules.language import (
    GATE_MIN_STOP_WORDS,
    LanguageScore,
    best_language,
    gate_languages,
    gated_rules,
    language_scores,
    rule_gated_out,
)
from watcher.pipeline.rules.pack import (
    EXTRACTORS,
    KIND_PRIORITY,
    SHARED,
    Phrase,
    Rule,
    RulePack,
)
from watcher.pipeline.rules.search import TextSearch
from watcher.pipeline.rules.sender import (
    account_of,
    claims_meta,
    detect_account,
    detect_platform,
    domain_matches,
    meta_claim,
    named_platform,
    platform_of,
)
from watcher.pipeline.rules.text import (
    compile_phrase,
    haystack,
    links_text,
    match_subject,
    normalise,
    normalise_pattern,
    required_words,
)

if TYPE_CHECKING:
    from watcher.pipeline.rules.load import load_rules
    from watcher.pipeline.rules.schema import (
        EvidenceSpec,
        MetaSpec,
        PlatformSpec,
        RulesFile,
        RuleSpec,
        read_rules_file,
        rules_file_problems,
    )

# Name -> module of the names that need pydantic (and YAML), imported on first use.
_LAZY = {
    "load_rules": "watcher.pipeline.rules.load",
    "EvidenceSpec": "watcher.pipeline.rules.schema",
    "MetaSpec": "watcher.pipeline.rules.schema",
    "PlatformSpec": "watcher.pipeline.rules.schema",
    "RuleSpec": "watcher.pipeline.rules.schema",
    "RulesFile": "watcher.pipeline.rules.schema",
    "read_rules_file": "watcher.pipeline.rules.schema",
    "rules_file_problems": "watcher.pipeline.rules.schema",
}


def __getattr__(name: str) -> Any:
    """The schema and loading names, imported on first use (PEP 562); AttributeError for any
    other unknown name."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "COMBINATION_SCORE",
    "DECISIVE_SCORE",
    "EXTRACTORS",
    "GATE_MIN_STOP_WORDS",
    "KINDS",
    "KIND_PRIORITY",
    "OTHER",
    "SHARED",
    "SUPPORTING_COUNTED",
    "SUPPORTING_SCORE",
    "UNRECOGNIZED",
    "Condition",
    "EvidenceSpec",
    "Fallback",
    "Hit",
    "Kind",
    "LanguageScore",
    "Match",
    "MetaSpec",
    "Phrase",
    "PlatformSpec",
    "Rule",
    "RuleCheck",
    "RulePack",
    "RuleSpec",
    "RulesFile",
    "TextSearch",
    "account_of",
    "best_language",
    "check_rule",
    "claims_meta",
    "classify",
    "compile_phrase",
    "decide",
    "detect_account",
    "detect_platform",
    "domain_matches",
    "extract",
    "fallback",
    "gate_languages",
    "gated_rules",
    "haystack",
    "language_scores",
    "links_text",
    "load_rules",
    "match_subject",
    "meta_claim",
    "named_platform",
    "normalise",
    "normalise_pattern",
    "platform_of",
    "rank",
    "read_rules_file",
    "required_words",
    "requirements_hold",
    "rule_gated_out",
    "rule_matches",
    "rules_file_problems",
    "score_of",
    "social_notification",
]
