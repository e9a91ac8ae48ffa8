"""Dates in Meta's mails: one date phrase -> date, and a whole mail -> its effective date.

Month names come from babel's CLDR data for the mail's language and its European regional
variants (wide and abbreviated, format and stand-alone forms), never from hand-written tables:
so genitive forms (Polish "czerwca", Czech "června", Greek "Ιουνίου", Finnish "kesäkuuta"),
Austrian "Jänner" and British "Sept" all work. A word that starts a month name ("Sept." for
September) counts when it names only one month. English names always count too, as Meta mixes
English into other languages' mails.

:func:`parse_date_phrase` reads the first date of a short phrase, in this order of preference:

* ISO ``2024-06-26``;
* year first, as Hungarian writes dates: ``2024.06.26``, ``2024. 06. 26.``, ``2024. június 26.``;
* numeric day first, as Meta's EU mails write them: ``26.06.2024``, ``26. 6. 2024``,
  ``26/06/2024`` (never month first: ``06/07/2024`` is 6 July);
* a month name with a day and a year in either order, ordinals included: ``26th June 2024``,
  ``June 26th, 2024``, ``1er juillet 2024``, ``26 de junio de 2024``, ``26-án``.

:func:`watcher.pipeline.effective_date.find_effective_date` finds the date a policy notice
takes effect anywhere in a mail's text, in any of the rule pack's languages.

Sources: Unicode CLDR month names through babel (https://cldr.unicode.org); the date forms of
Meta's 2024 notices ("treten am 26. Juni 2024 in Kraft", "will take effect on June 26, 2024")
and 2025 notices ("Ab dem 27. Mai 2025 verwenden wir ...", "Starting May 27, 2025, we'll use
...") as quoted in issue 10 and tests/corpus; the phrasing cues per language are data in
rules.yaml (``effective_date_cues``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from pathlib import Path

_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_YEAR_FIRST = re.compile(r"\b(\d{4})\.\s?(\d{1,2})\.\s?(\d{1,2})\b")
_NUMERIC = re.compile(r"\b(\d{1,2})([./-])\s?(\d{1,2})\2\s?(\d{4})\b")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_NUMBER = re.compile(r"\d+")

# Countries whose regional CLDR data can add month spellings (EU/EEA, Switzerland, the UK).
# fmt: off
_TERRITORIES = (
    "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR", "HU",
    "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK",
)
# fmt: on


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).rstrip(".")


# Month tables given by remember_month_names (a cached rule pack brings them): reading CLDR
# through babel for one language loads up to 33 locale files (its European regional variants).
_REMEMBERED: dict[str, dict[str, int]] = {}


def remember_month_names(tables: Mapping[str, Mapping[str, int]]) -> None:
    """Use *tables* ({language: {folded name: month}}, as :func:`month_names` returns them,
    built earlier with the same babel) instead of reading CLDR again. Raises ValueError for a
    table that is not {str: 1..12}."""
    checked: dict[str, dict[str, int]] = {}
    for language, table in tables.items():
        if not isinstance(language, str) or not all(
            isinstance(k, str) and isinstance(v, int) and 1 <= v <= 12 for k, v in table.items()
        ):
            raise ValueError(f"month table for {language!r} is not name -> 1..12")
        checked[language] = dict(table)
    # All or nothing: one bad table leaves every remembered one as it was.
    _REMEMBERED.update(checked)
    month_names.cache_clear()
    month_of.cache_clear()


def babel_stamp() -> str:
    """What identifies the installed babel (its package's path, size and modification time)
    without importing it; "" when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("babel")
    if spec is None or spec.origin is None:
        return ""
    st = Path(spec.origin).stat()
    return f"{spec.origin}:{st.st_size}:{st.st_mtime_ns}"


@functools.lru_cache(maxsize=64)
def month_names(language: str) -> dict[str, int]:
    """Return {folded month name: month number} for *language* (ISO 639-1) from CLDR.

    Folded means case-folded without accents and without a trailing dot ("Μαΐου" -> "μαιου").
    Regional variants in Europe are merged in ("de" includes de_AT's "Jänner"); English names
    are always added, as Meta mixes English into other languages' mails. Unknown languages get
    English only.
    """
    if language in _REMEMBERED:
        return _REMEMBERED[language]
    return cldr_month_names(language)


def cldr_month_names(language: str) -> dict[str, int]:
    """:func:`month_names` read from babel's CLDR data every time (nothing remembered)."""
    from babel import Locale, UnknownLocaleError, localedata

    locales: list[Locale] = []
    for lang in dict.fromkeys((language, "en")):
        try:
            locales.append(Locale.parse(lang))
        except (UnknownLocaleError, ValueError):
            continue
        for territory in _TERRITORIES:
            identifier = f"{lang}_{territory}"
            if localedata.exists(identifier):
                locales.append(Locale.parse(identifier))
    names: dict[str, int] = {}
    for locale in locales:
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for number, name in locale.months[context][width].items():
                    folded = _fold(name)
                    if len(folded) >= 3:
                        names.setdefault(folded, number)
    return names


@functools.lru_cache(maxsize=1024)
def month_of(word: str, language: str) -> int | None:
    """The month *word* names in *language*: an exact name, else the one month whose name it
    starts (at least 3 letters); None otherwise."""
    months = month_names(language)
    folded = _fold(word)
    if folded in months:
        return months[folded]
    if len(folded) < 3:
        return None
    found = {number for name, number in months.items() if name.startswith(folded)}
    return found.pop() if len(found) == 1 else None


def parse_date_phrase(phrase: str, language: str) -> date | None:
    """Return the first date written in *phrase*, or None when there is none or it is invalid.

    *language* is the ISO 639-1 code whose month names to use (English ones always work too).
    See the module docstring for the formats.
    """
    iso = _ISO.search(phrase)
    if iso:
        return safe_date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    year_first = _YEAR_FIRST.search(phrase)
    if year_first:
        return safe_date(*(int(year_first.group(i)) for i in (1, 2, 3)))
    numeric = _NUMERIC.search(phrase)
    if numeric:
        return safe_date(int(numeric.group(4)), int(numeric.group(3)), int(numeric.group(1)))
    month = next(
        (m for m in (month_of(w, language) for w in _WORD.findall(phrase)) if m is not None),
        None,
    )
    numbers = [int(n) for n in _NUMBER.findall(phrase)]
    years = [n for n in numbers if 1900 <= n <= 2100]
    days = [n for n in numbers if 1 <= n <= 31]
    if month is None or not years or not days:
        return None
    return safe_date(years[0], month, days[0])


def safe_date(year: int, month: int, day: int) -> date | None:
    """date(*year*, *month*, *day*), or None when no such day exists (31 June)."""
    try:
        return date(year, month, day)
    except ValueError:
        return None
