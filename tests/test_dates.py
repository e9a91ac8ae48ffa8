"""Date phrases in every language of the rule pack, read with babel's CLDR month names."""

from __future__ import annotations

from datetime import date

import pytest

from watcher.pipeline.dates import month_names, parse_date_phrase

JUNE_26 = date(2024, 6, 26)

# (phrase, language, expected): the forms Meta's 2024 and 2025 mails use, per language.
PHRASES = [
    ("26. Juni 2024", "de", JUNE_26),
    ("26.06.2024", "de", JUNE_26),
    ("1. Jänner 2025", "de", date(2025, 1, 1)),  # Austrian month name (de_AT)
    ("June 26, 2024", "en", JUNE_26),
    ("June 26th, 2024", "en", JUNE_26),
    ("26th June 2024", "en", JUNE_26),
    ("26th of June 2024", "en", JUNE_26),
    ("Sept. 3rd, 2024", "en", date(2024, 9, 3)),  # British abbreviation
    ("26 juin 2024", "fr", JUNE_26),
    ("1er juillet 2024", "fr", date(2024, 7, 1)),  # Swiss and French ordinal
    ("26 giugno 2024", "it", JUNE_26),
    ("26 de junio de 2024", "es", JUNE_26),
    ("26 de junho de 2024", "pt", JUNE_26),
    ("1º de julho de 2024", "pt", date(2024, 7, 1)),
    ("26 juni 2024", "nl", JUNE_26),
    ("26 czerwca 2024", "pl", JUNE_26),  # genitive
    ("27 maja 2025", "pl", date(2025, 5, 27)),  # genitive
    ("26 juni 2024", "sv", JUNE_26),
    ("26. juni 2024", "da", JUNE_26),
    ("26. juni 2024", "no", JUNE_26),
    ("26. kesäkuuta 2024", "fi", JUNE_26),  # partitive
    ("26.6.2024", "fi", JUNE_26),
    ("26. června 2024", "cs", JUNE_26),  # genitive
    ("26. 6. 2024", "cs", JUNE_26),
    ("26 Ιουνίου 2024", "el", JUNE_26),  # genitive
    ("27 Μαΐου 2025", "el", date(2025, 5, 27)),  # genitive with diaeresis
    ("26 iunie 2024", "ro", JUNE_26),
    ("2024. június 26.", "hu", JUNE_26),  # year first
    ("2025. május 27-től", "hu", date(2025, 5, 27)),
    ("2024.06.26", "hu", JUNE_26),
    ("2024-06-26", "en", JUNE_26),
]


@pytest.mark.parametrize(("phrase", "language", "expected"), PHRASES)
def test_date_phrase_reads_the_languages_month_names(
    phrase: str, language: str, expected: date
) -> None:
    assert parse_date_phrase(phrase, language) == expected


@pytest.mark.parametrize(
    "language", ["de", "en", "fr", "it", "es", "pt", "nl", "pl", "sv", "da", "no", "fi", "cs"]
)
def test_every_language_has_all_twelve_months_from_cldr(language: str) -> None:
    assert set(month_names(language).values()) == set(range(1, 13))


def test_greek_months_include_genitive_and_nominative_forms() -> None:
    names = month_names("el")
    assert names["ιουνιου"] == 6  # genitive, as in dates; accents folded
    assert names["ιουνιοσ"] == 6  # stand-alone nominative (casefold makes final ς a σ)


def test_numeric_dates_are_read_day_first() -> None:
    assert parse_date_phrase("06/07/2024", "en") == date(2024, 7, 6)


@pytest.mark.parametrize(
    "phrase", ["31. Juni 2024", "June 2024", "no date here", "", "31.02.2024", "2024. 13. 01."]
)
def test_impossible_or_incomplete_dates_give_none(phrase: str) -> None:
    assert parse_date_phrase(phrase, "de") is None


def test_unknown_language_still_reads_english_month_names() -> None:
    assert parse_date_phrase("26 June 2024", "xx") == JUNE_26


def test_ambiguous_month_prefix_is_not_guessed() -> None:
    # "ju" would be June or July: too short, so no month and no date.
    assert parse_date_phrase("26 ju 2024", "en") is None
