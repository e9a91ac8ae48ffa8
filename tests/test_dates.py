"""Dates in every language of the rule pack: single phrases (CLDR month names via babel) and
the effective date of a whole policy notice
(:func:`watcher.pipeline.effective_date.find_effective_date` with the ``effective_date_cues``
of rules.yaml).

The effective-date cases are generated: every language's cue sentences x date formats that
babel's CLDR data writes for that language (full with weekday, long, medium, short with a
four-digit year) plus numeric day-first and ISO forms, for a day above 12 and one at most 12
(so a month-first misreading would show). They run with ``sent_on=None``, where only a cue can
find a date, so each case proves its cue works; the sent-date rules have their own tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from babel.dates import format_date

from watcher.config import package_file
from watcher.pipeline.dates import month_names, parse_date_phrase
from watcher.pipeline.effective_date import (
    AFTER_MARK,
    FALLBACK_DAYS,
    MAX_SCAN_CHARS,
    find_effective_date,
)
from watcher.pipeline.message import parse
from watcher.pipeline.rules import load_rules

JUNE_26 = date(2024, 6, 26)
TESTS = Path(__file__).parent
LANGUAGES: tuple[str, ...] = (
    *("de", "en", "fr", "it", "es", "pt", "nl", "pl"),
    *("sv", "da", "no", "fi", "cs", "el", "ro", "hu"),
)


def _cues_from_rules_yaml() -> dict[str, tuple[re.Pattern[str], ...]]:
    """The cues as plain ``re`` compiles them (independent of watcher.rules' loader)."""
    data = yaml.safe_load(package_file("rules.yaml").read_text(encoding="utf-8"))
    return {
        lang: tuple(re.compile(p, re.IGNORECASE) for p in patterns)
        for lang, patterns in data["effective_date_cues"].items()
    }


CUES = _cues_from_rules_yaml()
PACK = load_rules(package_file("rules.yaml"))

# --------------------------------------------------------------------------- date phrases

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


# --------------------------------------------------------------------------- the cue data


def test_every_pack_language_has_cues_that_compile() -> None:
    assert set(CUES) == set(LANGUAGES)
    for lang, patterns in CUES.items():
        assert patterns, lang
        # At least one cue that stands before the date in every language but Hungarian,
        # whose dates carry their suffix ("27-től") and are read with after-cues.
        before = [p for p in patterns if not p.pattern.startswith(AFTER_MARK)]
        assert before, lang


def test_the_loaded_pack_carries_the_same_cues() -> None:
    # watcher.rules compiles the same section (normalised like the text) for classify().
    pack = load_rules(package_file("rules.yaml"))
    assert {lang: len(p) for lang, p in pack.date_cues.items()} == {
        lang: len(p) for lang, p in CUES.items()
    }


# --------------------------------------------------------------------------- generated variants

# Sentences saying "this applies from {date}", per language: each cue family at least once.
# Hungarian writes its suffix on the date, so its {date} is followed by the suffix directly.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "de": (
        "Ab dem {date} verwenden wir deine Informationen für KI bei Meta.",
        "Ab {date} gilt unsere aktualisierte Datenschutzrichtlinie.",
        "Die Aktualisierungen gelten ab {date}.",
        "Die Änderungen treten am {date} in Kraft.",
        "Mit {date} treten die Änderungen in Kraft.",
        "Die Änderungen werden am {date} in Kraft treten.",
        "Inkrafttreten: {date}.",
        "Die neue Richtlinie ist wirksam ab {date}.",
    ),
    "en": (
        "Starting {date}, we'll use your information to develop AI at Meta.",
        "The updates will take effect on {date}.",
        "These changes come into effect from {date}.",
        "Effective {date}, we will rely on legitimate interests.",
        "As of {date}, our updated Privacy Policy applies.",
        "Beginning {date}, we will use public content.",
        "From {date}, the updated Privacy Policy applies.",
        "We will start using this information on {date}.",
        "The changes enter into force on {date}.",
    ),
    "fr": (
        "À partir du {date}, nous utiliserons vos informations.",
        "Les mises à jour prendront effet le {date}.",
        "Ces modifications entreront en vigueur le {date}.",
        "À compter du {date}, la politique mise à jour s'appliquera.",
        "Dès le {date}, nous nous appuierons sur nos intérêts légitimes.",
        "Date d'effet : {date}.",
    ),
    "it": (
        "A partire dal {date} useremo le tue informazioni.",
        "Le modifiche entreranno in vigore il {date}.",
        "Gli aggiornamenti saranno validi dal {date}.",
        "Dal {date} si applica la nostra Informativa sulla privacy aggiornata.",
        "A decorrere dal {date} useremo i contenuti pubblici.",
        "Con decorrenza {date}, l'informativa cambia.",
    ),
    "es": (
        "A partir del {date} usaremos tu información.",
        "Los cambios entrarán en vigor el {date}.",
        "Las actualizaciones se aplicarán desde el {date}.",
        "Desde el {date}, nos basaremos en intereses legítimos.",
        "Las actualizaciones tendrán efecto el {date}.",
    ),
    "pt": (
        "A partir de {date}, usaremos as tuas informações.",
        "As alterações entram em vigor a {date}.",
        "As alterações entrarão em vigor no dia {date}.",
        "A partir do dia {date}, aplica-se a nossa Política de Privacidade atualizada.",
        "Com efeitos a partir de {date}, a política muda.",
    ),
    "nl": (
        "Vanaf {date} gebruiken we je gegevens.",
        "De wijzigingen gaan in op {date}.",
        "De updates gelden met ingang van {date}.",
        "De wijzigingen treden op {date} in werking.",
        "Per {date} geldt ons bijgewerkte Privacybeleid.",
    ),
    "pl": (
        "Od {date} obowiązują zaktualizowane Zasady ochrony prywatności.",
        "Zmiany wejdą w życie {date}.",
        "Zmiany wejdą w życie z dniem {date}.",
        "Począwszy od {date} będziemy korzystać z Twoich informacji.",
    ),
    "sv": (
        "Från och med den {date} gäller vår uppdaterade integritetspolicy.",
        "Ändringarna träder i kraft den {date}.",
        "Ändringarna börjar gälla {date}.",
        "Från {date} använder vi din information.",
    ),
    "da": (
        "Fra og med den {date} gælder vores opdaterede privatlivspolitik.",
        "Ændringerne træder i kraft den {date}.",
        "Politikken gælder fra {date}.",
        "Fra {date} bruger vi dine oplysninger.",
    ),
    "no": (
        "Fra og med {date} gjelder de oppdaterte personvernreglene våre.",
        "Endringene trer i kraft {date}.",
        "Reglene gjelder fra {date}.",
        "Fra {date} bruker vi informasjonen din.",
    ),
    "fi": (
        "Päivitettyä tietosuojakäytäntöä sovelletaan {date} alkaen.",
        "Muutokset tulevat voimaan {date}.",
        "Käytäntö on voimassa {date} lähtien.",
        "Alkaen {date} käytämme tietojasi.",
    ),
    "cs": (
        "Od {date} platí aktualizované Zásady ochrany osobních údajů.",
        "Změny vstoupí v platnost {date}.",
        "Změny nabývají účinnosti dne {date}.",
        "S účinností od {date} budeme používat vaše informace.",
        "Počínaje {date} budeme používat vaše informace.",
    ),
    "el": (
        "Από τις {date} ισχύει η ενημερωμένη Πολιτική απορρήτου μας.",
        "Οι αλλαγές τίθενται σε ισχύ στις {date}.",
        "Οι αλλαγές θα τεθούν σε ισχύ την {date}.",
        "Ξεκινώντας από {date}, θα χρησιμοποιούμε τις πληροφορίες σας.",
    ),
    "ro": (
        "Începând cu {date}, vom folosi informațiile tale.",
        "Incepand cu {date}, vom folosi informatiile tale.",
        "Modificările intră în vigoare pe {date}.",
        "Modificările vor intra în vigoare la {date}.",
        "Cu data de {date}, se aplică Politica actualizată.",
    ),
    "hu": (
        "A frissített Adatvédelmi irányelvek {date}-tól érvényesek.",
        "Az irányelvek {date}-től hatályosak.",
        "A módosítások {date}-án lépnek hatályba.",
        "A módosítások {date}. napjától érvényesek.",
        "Hatályba lépés: {date}.",
    ),
}
# Babel locales whose CLDR date formats stand for each language (English: US and British).
LOCALES = {lang: (lang,) for lang in LANGUAGES} | {"en": ("en_US", "en_GB")}
# Numeric forms Meta's mails or local custom use, beyond babel's: (format, languages).
NUMERIC_FORMS = (
    ("{d:02d}.{m:02d}.{y}", ("de", "da", "no", "fi", "cs", "pl", "ro", "fr", "it", "nl", "el")),
    ("{d}.{m}.{y}", ("fi", "de", "cs", "no")),
    ("{d}. {m}. {y}", ("cs", "de")),
    ("{d:02d}/{m:02d}/{y}", ("fr", "it", "es", "pt", "el", "ro", "en")),
    ("{d:02d}-{m:02d}-{y}", ("nl", "da")),
    ("{y}-{m:02d}-{d:02d}", LANGUAGES),
    ("{d} {month} {y} r.", ("pl",)),
)
# 27 May (day > 12) and 7 June (day <= 12: reading the month first would give 6 July).
DAYS = (date(2025, 5, 27), date(2025, 6, 7))


def _written(lang: str, day: date) -> Iterator[str]:
    """Every way to write *day* in *lang* for the generated cases (no duplicates)."""
    forms: list[str] = []
    if lang == "hu":
        # The suffix follows the day number: "2025. május 27-től", "2025.05.27-től".
        for width in ("MMMM", "MMM"):
            forms.append(format_date(day, f"y. {width} d", locale="hu"))
        forms += [
            f"{day.year}.{day.month:02d}.{day.day:02d}",
            f"{day.year}. {day.month:02d}. {day.day:02d}",
        ]
        yield from dict.fromkeys(forms)
        return
    for locale in LOCALES[lang]:
        for width in ("full", "long", "medium", "short"):
            written = format_date(day, width, locale=locale)
            if str(day.year) in written:  # two-digit years are not read
                forms.append(written)
    month = format_date(day, "MMMM", locale=lang)
    for pattern, languages in NUMERIC_FORMS:
        if lang in languages:
            forms.append(pattern.format(d=day.day, m=day.month, y=day.year, month=month))
    yield from dict.fromkeys(forms)


def _generated() -> list[Any]:
    cases = []
    for lang in LANGUAGES:
        for day in DAYS:
            for written in _written(lang, day):
                for number, template in enumerate(TEMPLATES[lang], start=1):
                    sentence = template.format(date=written)
                    case_id = f"{lang}-{number}-{day.isoformat()}-{written}"
                    cases.append(pytest.param(lang, sentence, day, id=case_id))
    return cases


GENERATED = _generated()


def _mail(sentence: str) -> str:
    """*sentence* inside a notice's other paragraphs (no date, no cue-and-date pair)."""
    return (
        "Meta Privacy Center. Hi Anna, we're updating our Privacy Policy. "
        f"{sentence} You have the right to object. Privacy Operations, Meta Platforms Ireland"
    )


def test_the_generator_covers_every_language_with_hundreds_of_cases() -> None:
    assert len(GENERATED) >= 600
    languages = {case.values[0] for case in GENERATED}
    assert languages == set(LANGUAGES)


@pytest.mark.parametrize(("language", "sentence", "expected"), GENERATED)
def test_a_cue_followed_by_a_date_gives_the_effective_date(
    language: str, sentence: str, expected: date
) -> None:
    # sent_on=None: only a cue can find the date, so this proves the cue works.
    assert find_effective_date(_mail(sentence), language, None, CUES) == expected


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_date_without_cue_is_not_the_effective_date_when_the_sent_date_is_unknown(
    language: str,
) -> None:
    for day in DAYS:
        for written in _written(language, day):
            text = _mail(f"Meta Platforms Ireland Ltd., {written}.")
            assert find_effective_date(text, language, None, CUES) is None, written


# The forms the per-rule extractors of rules.yaml (``extract: effective_date``) were written
# for, one or more per language: the cues must still find every one.
EXTRACTOR_FORMS = [
    ("de", "Die Änderungen treten am 26. Juni 2024 in Kraft.", JUNE_26),
    ("de", "Die neue Richtlinie tritt ab dem 26.06.2024 in Kraft.", JUNE_26),
    ("de", "Die Änderungen treten mit 26. Juni 2024 in Kraft.", JUNE_26),
    ("de", "Die Änderungen gelten ab 26.6.2024.", JUNE_26),
    ("en", "The updates will take effect on June 26, 2024.", JUNE_26),
    ("en", "The updates will take effect on June 26th, 2024.", JUNE_26),
    ("en", "These changes take effect from 26th of June 2024.", JUNE_26),
    ("en", "The policy comes into effect on Sept. 3 2024.", date(2024, 9, 3)),
    ("en", "The updates come into effect on 26/06/2024.", JUNE_26),
    ("fr", "Ces modifications entreront en vigueur le 26 juin 2024.", JUNE_26),
    ("fr", "La politique entre en vigueur à partir du 1er juillet 2024.", date(2024, 7, 1)),
    ("fr", "Les changements entrent en vigueur dès le 26/06/2024.", JUNE_26),
    ("it", "Le modifiche entreranno in vigore il 26 giugno 2024.", JUNE_26),
    ("it", "L'informativa entrerà in vigore dal 1° luglio 2024.", date(2024, 7, 1)),
    ("it", "Le modifiche entreranno in vigore il 26/06/2024.", JUNE_26),
    ("es", "Los cambios entrarán en vigor el 26 de junio de 2024.", JUNE_26),
    ("es", "La política entrará en vigor el 1º de julio de 2024.", date(2024, 7, 1)),
    ("es", "Los cambios entrarán en vigor el 26/06/2024.", JUNE_26),
    ("pt", "As alterações entram em vigor a 26 de junho de 2024.", JUNE_26),
    ("pt", "As alterações entrarão em vigor no dia 26 de junho de 2024.", JUNE_26),
    ("pt", "A política entra em vigor em 26/06/2024.", JUNE_26),
    ("nl", "De wijzigingen gaan in op 26 juni 2024.", JUNE_26),
    ("nl", "De wijzigingen treden vanaf 26-06-2024 in werking.", JUNE_26),
    ("nl", "Het beleid gaat op 26.06.2024 in.", JUNE_26),
    ("pl", "Zmiany wejdą w życie 26 czerwca 2024 r.", JUNE_26),
    ("pl", "Zmiany wejdą w życie z dniem 26.06.2024.", JUNE_26),
    ("pl", "Zasady wejdzie w życie w dniu 26 czerwca 2024.", JUNE_26),
    ("sv", "Ändringarna träder i kraft den 26 juni 2024.", JUNE_26),
    ("sv", "Policyn börjar gälla från och med den 2024-06-26.", JUNE_26),
    ("da", "Ændringerne træder i kraft den 26. juni 2024.", JUNE_26),
    ("da", "Politikken gælder fra 26.06.2024.", JUNE_26),
    ("no", "Endringene trer i kraft 26. juni 2024.", JUNE_26),
    ("no", "Reglene gjelder fra den 26.06.2024.", JUNE_26),
    ("fi", "Muutokset tulevat voimaan 26. kesäkuuta 2024.", JUNE_26),
    ("fi", "Käytäntö tulee voimaan 26.06.2024.", JUNE_26),
    ("cs", "Změny vstoupí v platnost 26. června 2024.", JUNE_26),
    ("cs", "Zásady nabývají účinnosti dne 26. 6. 2024.", JUNE_26),
    ("cs", "Změny vstupují v platnost od 26.06.2024.", JUNE_26),
    ("el", "Οι αλλαγές τίθενται σε ισχύ στις 26 Ιουνίου 2024.", JUNE_26),
    ("el", "Η πολιτική θα τεθεί σε ισχύ από τις 26/06/2024.", JUNE_26),
    ("ro", "Modificările intră în vigoare pe 26 iunie 2024.", JUNE_26),
    ("ro", "Politica intra în vigoare începând cu 26.06.2024.", JUNE_26),
    ("hu", "A módosítások 2024. június 26-án lépnek hatályba.", JUNE_26),
    ("hu", "Az irányelv 2024. 06. 26. lép hatályba.", JUNE_26),
    ("hu", "Az irányelv 2024.06.26-án lépnek hatályba.", JUNE_26),
]


@pytest.mark.parametrize(("language", "sentence", "expected"), EXTRACTOR_FORMS)
def test_the_old_per_rule_extractor_forms_are_still_found(
    language: str, sentence: str, expected: date
) -> None:
    assert find_effective_date(_mail(sentence), language, None, CUES) == expected


def _policy_mails() -> Iterator[Any]:
    manifests = [TESTS / "corpus" / "expected.yaml", *sorted(TESTS.glob("lang/*/expected.yaml"))]
    for manifest in manifests:
        labels = yaml.safe_load(manifest.read_text(encoding="utf-8"))["messages"]
        for name, label in labels.items():
            fields = label.get("fields") or {}
            if label["kind"] == "policy_update" and "effective_date" in fields:
                path = manifest.parent / name
                yield pytest.param(path, label["language"], fields["effective_date"], id=name)


@pytest.mark.parametrize(("path", "language", "expected"), list(_policy_mails()))
def test_every_labelled_notice_gets_its_labelled_effective_date(
    path: Path, language: str, expected: str | None
) -> None:
    msg = parse(path.read_bytes())
    sent_on = msg.date_at.date() if msg.date_at else None
    text = f"{msg.subject} \n {msg.text}"
    found = find_effective_date(text, language, sent_on, CUES)
    assert (found.isoformat() if found else None) == expected
    # The same with the cues as watcher.rules compiles them for classify().
    pack_cues: Mapping[str, tuple[re.Pattern[str], ...]] = PACK.date_cues
    found = find_effective_date(text, language, sent_on, pack_cues)
    assert (found.isoformat() if found else None) == expected


# --------------------------------------------------------------------------- the sent-date rules

SENT = date(2025, 4, 15)


def test_a_cue_date_before_the_mails_own_date_is_never_the_effective_date() -> None:
    text = "Starting May 27, 2024, we'll use your information."
    assert find_effective_date(text, "en", SENT, CUES) is None
    assert find_effective_date(text, "en", None, CUES) == date(2024, 5, 27)


def test_the_day_before_the_sent_date_still_counts_for_a_cue() -> None:
    # The Date header is UTC; "today" in the sender's zone can be the day before.
    text = "Starting today, April 14, 2025, we'll use your information."
    assert find_effective_date(text, "en", SENT, CUES) == date(2025, 4, 14)
    assert find_effective_date(text, "en", date(2025, 4, 16), CUES) is None


def test_a_past_cue_date_gives_way_to_a_later_one() -> None:
    text = (
        "Ab dem 26. Juni 2024 haben wir KI bei Meta ausgeweitet. "
        "Ab dem 27. Mai 2025 verwenden wir auch deine öffentlichen Inhalte."
    )
    assert find_effective_date(text, "de", SENT, CUES) == date(2025, 5, 27)


def test_one_date_after_the_sent_date_within_120_days_needs_no_cue() -> None:
    text = "Wir verwenden deine Informationen. Widersprich bis 27. Mai 2025 im Privacy Center."
    assert find_effective_date(text, "de", SENT, CUES) == date(2025, 5, 27)
    # ... and is ignored without the sent date, where only cues count.
    assert find_effective_date(text, "de", None, CUES) is None


def test_the_single_date_rule_ends_at_120_days() -> None:
    last = date(2025, 8, 13)
    assert (last - SENT).days == FALLBACK_DAYS
    assert find_effective_date("Datum: 13.08.2025.", "de", SENT, CUES) == last
    assert find_effective_date("Datum: 14.08.2025.", "de", SENT, CUES) is None


def test_the_sent_date_itself_and_earlier_dates_do_not_count_without_cue() -> None:
    text = "Gesendet am 15. April 2025; unser Schreiben vom 2. März 2025; Frist 27. Mai 2025."
    assert find_effective_date(text, "de", SENT, CUES) == date(2025, 5, 27)
    assert find_effective_date("Gesendet am 15. April 2025.", "de", SENT, CUES) is None


def test_two_different_dates_without_cue_give_none() -> None:
    text = "Wichtige Termine: 27. Mai 2025 und 26. Juni 2025."
    assert find_effective_date(text, "de", SENT, CUES) is None
    same_twice = "Termin: 27. Mai 2025. Noch einmal: 27.05.2025."
    assert find_effective_date(same_twice, "de", SENT, CUES) == date(2025, 5, 27)


def test_a_cue_beats_the_single_date_rule() -> None:
    text = "Frist: 20. Mai 2025. Ab dem 27. Mai 2025 verwenden wir deine Informationen."
    assert find_effective_date(text, "de", SENT, CUES) == date(2025, 5, 27)


def test_the_strongest_cue_wins_over_a_weaker_one() -> None:
    text = (
        "Starting May 20, 2025, you can review your settings. "
        "The updates take effect on June 26, 2025."
    )
    assert find_effective_date(text, "en", SENT, CUES) == date(2025, 6, 26)


def test_a_cue_too_far_from_its_date_does_not_count() -> None:
    text = "Ab sofort informieren wir dich in diesem Schreiben über den 27. Mai 2025."
    assert find_effective_date(text, "de", None, CUES) is None
    stop = "Die Regeln gelten. 27. Mai 2025 ist ein Dienstag."
    assert find_effective_date(stop, "de", None, CUES) is None


def test_a_date_range_takes_its_start_not_its_end() -> None:
    text = "Ab dem 27. Mai 2025 bis zum 30. Juni 2025 testen wir."
    assert find_effective_date(text, "de", None, CUES) == date(2025, 5, 27)
    text = "The trial runs from May 27, 2025 to June 30, 2025."
    assert find_effective_date(text, "en", None, CUES) == date(2025, 5, 27)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Gutschein gültig bis: 18. Februar 2026.", "de"),
        ("Die Regeln gelten nur bis zum 27. Mai 2025.", "de"),
        ("The offer is effective until May 27, 2025.", "en"),
        ("You can object on or before May 27, 2025.", "en"),
        ("Zasady obowiązują do 27 maja 2025.", "pl"),
        ("Les règles s'appliquent jusqu'au 27 mai 2025.", "fr"),
        ("Käytäntö on voimassa 27.5.2025 asti.", "fi"),
        ("Az ajánlat hatályos 2025. május 27-ig.", "hu"),
    ],
)
def test_an_end_date_is_not_an_effective_date(text: str, language: str) -> None:
    assert find_effective_date(text, language, None, CUES) is None


def test_a_timestamp_is_not_an_effective_date() -> None:
    text = "On May 20, 2025 at 10:15, Meta wrote: we're updating our Privacy Policy."
    assert find_effective_date(text, "en", SENT, CUES) is None
    text = "Am 20. Mai 2025 um 10.15 Uhr schrieb Meta: Ab dem 27. Mai 2025 gilt Neues."
    assert find_effective_date(text, "de", SENT, CUES) == date(2025, 5, 27)


def test_a_date_without_year_counts_after_a_cue_with_the_sent_date() -> None:
    assert find_effective_date("Ab dem 27. Mai verwenden wir", "de", SENT, CUES) == date(
        2025, 5, 27
    )
    assert find_effective_date("Starting May 27, we'll use", "en", SENT, CUES) == date(2025, 5, 27)
    # The next such day: a notice sent in November about 1 January means next year's.
    assert find_effective_date("From 1 January, we'll use", "en", date(2025, 11, 20), CUES) == (
        date(2026, 1, 1)
    )
    assert find_effective_date("Ab dem 27. Mai verwenden wir", "de", None, CUES) is None
    # Without a cue a year-less date never counts.
    assert find_effective_date("Frist: 27. Mai.", "de", SENT, CUES) is None


def test_an_unknown_language_uses_every_languages_cues() -> None:
    assert find_effective_date("Vanaf 27 May 2025 gebruiken", "xx", None, CUES) == date(2025, 5, 27)
    # A known language uses its own cues and English ones only.
    assert find_effective_date("Vanaf 27 May 2025 gebruiken", "de", None, CUES) is None


def test_a_datetime_as_sent_date_is_read_as_its_day() -> None:
    from datetime import UTC, datetime

    sent = datetime(2025, 4, 15, 13, 30, tzinfo=UTC)
    assert find_effective_date("Frist: 27. Mai 2025.", "de", sent, CUES) == date(2025, 5, 27)


def test_typographic_apostrophes_and_non_breaking_spaces_are_read() -> None:
    text = "Dall\u20191\u00a0luglio\u00a02025 useremo le tue informazioni."
    assert find_effective_date(text, "it", None, CUES) == date(2025, 7, 1)


# --------------------------------------------------------------------------- US vs EU order

US_FOOTER = " Meta Platforms, Inc., 1 Meta Way, Menlo Park, CA 94025"
IE_FOOTER = " Meta Platforms Ireland Ltd., Merrion Road, Dublin 4"


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        # Ambiguous slash dates: month first only in US English.
        ("Starting 06/07/2025, we'll use it." + US_FOOTER, "en", date(2025, 6, 7)),
        ("Starting 06/07/2025, we'll use it." + IE_FOOTER, "en", date(2025, 7, 6)),
        ("Starting 06/07/2025, we'll use it.", "en", date(2025, 7, 6)),
        ("À partir du 06/07/2025, nous." + US_FOOTER, "fr", date(2025, 7, 6)),
        ("Ab dem 06/07/2025 verwenden wir." + US_FOOTER, "de", date(2025, 7, 6)),
        # Unambiguous: English reads either order; other languages only day first.
        ("Starting 06/26/2025, we'll use it." + IE_FOOTER, "en", date(2025, 6, 26)),
        ("Starting 26/06/2025, we'll use it." + US_FOOTER, "en", date(2025, 6, 26)),
        ("Ab dem 06/26/2025 verwenden wir.", "de", None),
        ("A partir del 06/26/2025 usaremos.", "es", None),
        # Dotted dates are never month first, not even in US English.
        ("Starting 06.07.2025, we'll use it." + US_FOOTER, "en", date(2025, 7, 6)),
        # Month names are never ambiguous.
        ("Starting June 7, 2025, we'll use it." + IE_FOOTER, "en", date(2025, 6, 7)),
        ("Starting 7 June 2025, we'll use it." + US_FOOTER, "en", date(2025, 6, 7)),
    ],
)
def test_numeric_order_us_versus_eu(text: str, language: str, expected: date | None) -> None:
    assert find_effective_date(text, language, None, CUES) == expected


# --------------------------------------------------------------------------- hostile text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 2 3 4 5 6 7 8 9 " * 300_000, None),
        ("1.2.3.4.5.6.7.8.9." * 300_000, None),
        ("ab " * 1_000_000 + "27", None),
        ("a" * 3_000_000, None),
        ("Mai 1, " * 500_000, None),
        ("ab dem 27. Mai 2025 und 26.06.2024 " * 100_000, date(2025, 5, 27)),
        ("9" * 3_000_000, None),
        # The date lies beyond the scanned head of the text: not read.
        ("x " * MAX_SCAN_CHARS + "Ab dem 27. Mai 2025 verwenden wir", None),
    ],
    ids=[
        "digits",
        "dotted-digits",
        "cue-words",
        "letters",
        "month-days",
        "dates",
        "one-number",
        "late-date",
    ],
)
def test_hostile_long_text_gives_a_plain_answer(text: str, expected: date | None) -> None:
    assert find_effective_date(text, "de", None, CUES) == expected
    assert find_effective_date(text, "en", SENT, CUES) in (None, expected)
