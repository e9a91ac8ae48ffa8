"""Date phrases in Meta's mails ("26. Juni 2024", "June 26, 2024", "26 czerwca 2024") -> date.

Month names come from babel's CLDR data for the mail's language (wide and abbreviated, format
and stand-alone forms, so genitive forms such as Polish "czerwca" work), never from hand-written
tables. Numeric dates are read day-first ("26.06.2024", "26/06/2024"), as Meta's EU mails write
them; ISO dates ("2024-06-26") are read as such.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date

_NUMERIC = re.compile(r"\b(\d{1,2})[./-](\d{1,2})[./-](\d{4})\b")
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_NUMBER = re.compile(r"\d+")


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).rstrip(".")


@functools.lru_cache(maxsize=64)
def month_names(language: str) -> dict[str, int]:
    """Return {folded month name: month number} for *language* (ISO 639-1) from CLDR.

    Falls back to English when babel does not know the language.
    """
    from babel import Locale, UnknownLocaleError

    names: dict[str, int] = {}
    for lang in dict.fromkeys((language, "en")):
        try:
            locale = Locale.parse(lang)
        except (UnknownLocaleError, ValueError):
            continue
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for number, name in locale.months[context][width].items():
                    folded = _fold(name)
                    if len(folded) >= 3:
                        names.setdefault(folded, number)
    return names


def parse_date_phrase(phrase: str, language: str) -> date | None:
    """Return the first date written in *phrase*, or None when there is none or it is invalid.

    Understands day-month-year and month-day-year with month names of *language* (ordinals
    such as "26th" and "26." included), numeric day-first dates, and ISO dates.
    """
    iso = _ISO.search(phrase)
    if iso:
        return _safe_date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
    numeric = _NUMERIC.search(phrase)
    if numeric:
        return _safe_date(int(numeric.group(3)), int(numeric.group(2)), int(numeric.group(1)))
    months = month_names(language)
    month = next((months[_fold(w)] for w in _WORD.findall(phrase) if _fold(w) in months), None)
    numbers = [int(n) for n in _NUMBER.findall(phrase)]
    years = [n for n in numbers if 1900 <= n <= 2100]
    days = [n for n in numbers if 1 <= n <= 31]
    if month is None or not years or not days:
        return None
    return _safe_date(years[0], month, days[0])


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
