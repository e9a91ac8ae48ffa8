"""Text and phrases as rules see them, and the word prefilter of phrase searches.

Text and phrases are normalised the same way before matching (:func:`normalise`): Unicode NFC,
typographic quotes and dashes made ASCII, soft hyphens and zero-width characters dropped,
non-breaking spaces and runs of whitespace folded to one space, ß written ss, and US spellings
turned British (honor/honour, center/centre, -ize/-ise), so one phrase covers its variants.
Phrases are case-insensitive regular expressions (``(?-i:AI)`` makes a part case-sensitive),
compiled once per process (:func:`compile_phrase`), on first use (:class:`Phrase`).
:class:`watcher.pipeline.rules.search.TextSearch` searches one mail's text, skipping a phrase
whose required words (:func:`required_words`) the text lacks.
"""

from __future__ import annotations

import functools
import importlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from watcher.pipeline.message import Message

_FLAGS = re.IGNORECASE | re.UNICODE

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


@functools.cache
def compile_phrase(pattern: str) -> re.Pattern[str]:
    """Compile a rule phrase (normalised, see :func:`normalise_pattern`) once per process:
    validation and the compiled pack share it (the pack has more patterns than ``re``'s own
    cache of 512 keeps). Raises re.error."""
    return re.compile(normalise_pattern(pattern), _FLAGS)


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


@dataclass(frozen=True)
class Phrase:
    """One rule phrase: ``written`` as in the rules file, ``where`` it comes from (``rule``, or
    ``shared <language>`` for ``evidence:``), and ``needs``, the words any match must contain
    (:func:`required_words`, worked out when the pack is built).

    The regular expression itself (``pattern``) is compiled on first use: a mail's words rule
    out most phrases before their pattern is needed, and a cached pack
    (:mod:`watcher.pipeline.rules.cache`) then compiles only the phrases some mail could match
    (compiling all 865 is about a third of a second).
    """

    written: str
    where: str = "rule"
    needs: tuple[tuple[str, ...], ...] = ()

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled phrase (:func:`compile_phrase`; raises re.error, which validation of
        the rules file has ruled out)."""
        return compile_phrase(self.written)

    @classmethod
    def of(cls, written: str, where: str = "rule") -> Phrase:
        """Compile *written* now (raises re.error) and work out what it needs."""
        return cls(written, where, required_words(compile_phrase(written)))


def haystack(msg: Message, *, subject: str | None = None, body: str | None = None) -> str:
    """Return the subject and body as one normalised string for phrase matching: each
    normalised (:func:`normalise`), joined by one space (an empty one left out). *subject* and
    *body*, when given, are the already normalised ones (the classifier normalises each once).

    The same text as normalising "subject \\n body" in one go (whitespace folds to one space,
    and nothing else in :func:`normalise` reaches across a space), except that a US spelling is
    made British only where its piece holds a hint of one.
    """
    subject = normalise(msg.subject) if subject is None else subject
    body = normalise(msg.text) if body is None else body
    return f"{subject} {body}" if subject and body else subject or body


def match_subject(msg: Message) -> str:
    """Return the subject as ``subject`` phrases see it (normalised like the body)."""
    return normalise(msg.subject)


def links_text(msg: Message) -> str:
    """The mail's link targets as one string: supporting and topic phrases also look here
    (a link to the Privacy Center's generative-AI page or an objection form is evidence even
    when the text does not show the address). Negatives never do: a URL saying "login" is not
    a login mail."""
    return " ".join(msg.links[:200])
