"""A whole policy notice -> the date it takes effect (:func:`find_effective_date`).

Reads the mail's text for date mentions (:mod:`watcher.pipeline.dates` reads each one) and
weighs them against the rule pack's ``effective_date_cues`` (phrases that stand a few words
before or after the effective date, per language); the function's docstring gives the rules.
Bounded: at most MAX_SCAN_CHARS characters, MAX_MATCHES number-like matches and
MAX_CANDIDATES mentions are looked at, whatever the mail holds.

Sources: the date forms of Meta's 2024 notices ("treten am 26. Juni 2024 in Kraft", "will take
effect on June 26, 2024") and 2025 notices ("Ab dem 27. Mai 2025 verwenden wir ...",
"Starting May 27, 2025, we'll use ...") as quoted in issue 10 and tests/corpus.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from watcher.pipeline.dates import month_of, safe_date

# Only the first 200,000 characters are read: Meta's notices are a few kB, and the date is in
# the first paragraphs; a hostile multi-megabyte body must not cost more than this.
MAX_SCAN_CHARS = 200_000
# At most this many date mentions are weighed, and at most MAX_MATCHES number-like matches
# looked at (a hostile text can be nothing but dates or numbers).
MAX_CANDIDATES = 200
MAX_MATCHES = 5000
# "A few words": a cue may be this far before its date (words, characters).
MAX_GAP_WORDS = 3
MAX_GAP_CHARS = 40
# How far around a date cues are looked for (characters): the gap plus the longest cue.
_BEFORE_WINDOW = MAX_GAP_CHARS + 60
_AFTER_WINDOW = 60
# A date up to one day before the mail's Date still counts for a cue ("Starting today, May 27,
# 2025"): the Date header is converted to UTC and the body uses the sender's local day.
_CLOCK_SLACK = timedelta(days=1)
# Without a cue, the one date after the mail's Date within this many days is the effective date.
FALLBACK_DAYS = 120
# A cue pattern starting with this regex comment is read after the date (Hungarian
# "2025. május 27-től", Finnish "27.5.2025 alkaen"); every other cue stands before it.
AFTER_MARK = "(?#after)"

_MONTH = r"[^\W\d_]{3,15}"
_ORDINAL = r"(?:st|nd|rd|th|er|º|°|ª|\.º|\.)?"
# Every alternative starts with a digit (the regex engine then skips text without digits fast);
# a month name written before the day ("May 27, 2025") is looked up behind the number. Each
# piece is bounded: no nested unbounded repeats, so a scan is linear in the text.
_DATE = re.compile(
    r"\b(?=\d)(?:"
    r"(?P<iso_y>\d{4})-(?P<iso_m>\d{1,2})-(?P<iso_d>\d{1,2})(?!\d)"
    r"|(?P<ymd_y>\d{4})\. ?(?P<ymd_m>\d{1,2})\. ?(?P<ymd_d>\d{1,2})(?!\d)"
    rf"|(?P<ywd_y>\d{{4}})\. ?(?P<ywd_m>{_MONTH})\.? (?P<ywd_d>\d{{1,2}})(?!\d)"
    r"|(?P<num_a>\d{1,2})(?P<num_sep>[./-]) ?(?P<num_b>\d{1,2})(?P=num_sep) ?(?P<num_y>\d{4})(?!\d)"
    rf"|(?P<dm_d>\d{{1,2}}){_ORDINAL}(?: of| de)? (?P<dm_m>{_MONTH})\.?"
    r"(?:,? (?:de |del )?(?P<dm_y>\d{4})(?!\d))?"
    rf"|(?:(?<=[^\W\d_] )|(?<=[^\W\d_]\. ))"  # a day right after a word: "May 27", "Sept. 3"
    r"(?P<md_d>\d{1,2})(?:st|nd|rd|th)?(?!\d)(?:,? (?P<md_y>\d{4})(?!\d))?"
    r")"
)
# The month name before a day number ("May 27", "Sept. 3rd"), searched up to the number.
_MONTH_BEFORE = re.compile(rf"\b({_MONTH})\.? $")
# A clock time right after a date: a timestamp ("On May 27, 2025 at 10:00, Meta wrote:"), not
# the date something takes effect.
_TIME_AFTER = re.compile(r"[ ,]{0,3}(?:[^\W\d_]{1,5}\.? ?)?\d{1,2}(?::\d{2}|\.\d{2} ?(?:uhr|h)\b)")
# Meta's US postal address and company name: a mail carrying them writes numeric dates month
# first. (Spelling is no signal: the text may already have US/UK pairs folded to one form.)
_US_SIGNALS = re.compile(
    r"\bMenlo Park\b|\bCA 94025\b|\bMeta Platforms,? Inc\b|\b1 (?:Hacker|Meta) Way\b"
    r"|\b1601 Willow R(?:oa)?d\b",
    re.IGNORECASE,
)
_GAP_STOP = re.compile(r"[\d!?;]|\.\s")
# "Until" between a cue and its date, or right after the date (Hungarian "-ig", Finnish
# "asti"), makes it an end date: "Gültig bis: 18. Februar 2026", "obowiązuje do 27 maja".
_UNTIL = re.compile(
    r"\b(?:bis|until|till|through|by|before|jusqu|avant|fino|entro|hasta|antes|até|tot"
    r"|uiterlijk|do|przed|innan|senast|inden|senest|innen|ennen|před|μέχρι|έως|πριν|până"
    r"|înainte)\b",
    re.IGNORECASE,
)
_UNTIL_AFTER = re.compile(r"\.?(?:-?ig\b| (?:asti|saakka|mennessä)\b)", re.IGNORECASE)
_TO_ASCII = (("\u2019", "'"), ("\u2018", "'"), ("\u2010", "-"), ("\u2011", "-"))


@dataclass(frozen=True)
class _Mention:
    """A date written in the text at [start, end); year None when the text gave none."""

    start: int
    end: int
    year: int | None
    month: int
    day: int


def find_effective_date(
    text: str,
    language: str,
    sent_on: date | None,
    cues: Mapping[str, Sequence[re.Pattern[str]]],
) -> date | None:
    """Return the date from which the policy *text* announces takes effect, or None.

    *text* is the mail's subject and body (any length; only the first MAX_SCAN_CHARS are read,
    ideally already normalised: whitespace folded, typographic quotes made ASCII); *language*
    the ISO 639-1 code of its wording (its CLDR month names and English ones are read);
    *sent_on* the day of the mail's own Date header (UTC), None when unknown; *cues* maps a
    language to its compiled phrasing cues (rules.yaml ``effective_date_cues``, compiled with
    re.IGNORECASE). Never raises for any str.

    Dates read: CLDR month names with a day, the year optional ("27. Mai 2025", "27 de mayo de
    2025", "May 27, 2025", "2025. május 27-től", "27 maja 2025 r."); ISO 2025-05-27; year-first
    2025.05.27 and 2025. 05. 27.; day-first 27.05.2025, 27/05/2025, 27-05-2025, 27. 5. 2025.
    Month first (05/27/2025) only for English: when the text carries Meta's US address or
    company name (Menlo Park, CA 94025, Meta Platforms, Inc.) slash and dash dates are read
    month first; otherwise, and for every other language, day first -- except that English
    text may still be read month first when day first is impossible (06/26/2024, day > 12).
    Dotted dates are always day first. So 06/07/2024 is 6 July unless US English.

    Rules, in order:

    1. A *cue* is a phrase saying "takes effect / applies / from": a cue pattern must end at
       most 3 words (40 characters, no digits, no sentence end) before a date, or -- patterns
       starting with ``(?#after)`` -- match right after it. The cues of *language* are tried,
       then English ones; when *language* has no cues, every language's. The strongest cue
       wins: its language comes first, then its place in the list (rules.yaml lists each
       language's cues strongest first), then the earliest date in the text. "Until" in the
       gap ("gültig bis", "obowiązuje do", "valid until") or right after the date
       (Hungarian "-ig", Finnish "asti") marks an end date: no cue counts for it.
    2. A date before *sent_on* (less one day for the time-zone difference) is never the
       effective date, also after a cue; a date directly followed by a clock time is a
       timestamp ("On May 27, 2025 at 10:00"), never the effective date. A date without a year
       counts only after a cue and with *sent_on*: it is the next such day on or after it.
    3. Without any cue: when the text names exactly one distinct full date after *sent_on*
       and at most FALLBACK_DAYS (120) days after it, that date. Two different dates there, or
       none, give None. Without *sent_on* only cues count.

    Cost: one scan for dates over at most 200,000 characters, then each cue on a window of
    about 100 characters around each of at most MAX_CANDIDATES dates; no regex has nested
    unbounded repeats.
    """
    if isinstance(sent_on, datetime):  # a datetime would not compare with a date
        sent_on = sent_on.date()
    scan = _prepare(text)
    mentions = list(_mentions(scan, language))
    if not mentions:
        return None
    ordered = _ordered_cues(language, cues)
    floor = sent_on - _CLOCK_SLACK if sent_on is not None else None
    best: tuple[tuple[int, int], int, date] | None = None
    full: set[date] = set()
    for mention in mentions:
        if _TIME_AFTER.match(scan, mention.end, mention.end + 20):
            continue
        when = _resolve(mention, sent_on)
        if when is None or (floor is not None and when < floor):
            continue
        if mention.year is not None:
            full.add(when)
        rank = _cue_rank(scan, mention, ordered)
        if rank is not None and (best is None or (rank, mention.start) < best[:2]):
            best = (rank, mention.start, when)
    if best is not None:
        return best[2]
    if sent_on is None:
        return None
    last = sent_on + timedelta(days=FALLBACK_DAYS)
    later = {d for d in full if sent_on < d <= last}
    return later.pop() if len(later) == 1 else None


def _prepare(text: str) -> str:
    """The first MAX_SCAN_CHARS of *text*, NFC, whitespace folded to single spaces (NBSP too),
    typographic apostrophes and non-breaking hyphens made ASCII."""
    scan = " ".join(unicodedata.normalize("NFC", text[:MAX_SCAN_CHARS]).split())
    for typographic, ascii_ in _TO_ASCII:  # str.translate is slower for non-ASCII text
        if typographic in scan:
            scan = scan.replace(typographic, ascii_)
    return scan


def _mentions(scan: str, language: str) -> Iterator[_Mention]:
    """Every date written in *scan*, at most MAX_CANDIDATES, in text order."""
    us: bool | None = None  # looked up only when an ambiguous slash date needs it
    count = 0
    for index, found in enumerate(_DATE.finditer(scan)):
        if index >= MAX_MATCHES:
            return
        group = found.group
        start, end = found.start(), found.end()
        mention: _Mention | None = None
        if group("iso_y"):
            mention = _mention(start, end, group("iso_y"), group("iso_m"), group("iso_d"))
        elif group("ymd_y"):
            mention = _mention(start, end, group("ymd_y"), group("ymd_m"), group("ymd_d"))
        elif group("ywd_y"):
            month = month_of(group("ywd_m"), language)
            if month:
                mention = _mention(start, end, group("ywd_y"), str(month), group("ywd_d"))
        elif group("num_a"):
            if us is None:
                us = language == "en" and _US_SIGNALS.search(scan) is not None
            mention = _numeric_mention(found, language, us)
        elif group("dm_d"):
            month = month_of(group("dm_m"), language)
            if month:
                mention = _mention(start, end, group("dm_y"), str(month), group("dm_d"))
            elif start >= 2 and scan[start - 1] == " " and not scan[start - 2].isdigit():
                # "May 27 the ...": the word after the day is no month; try the one before
                mention = _month_first(scan, start, found.end("dm_d"), None, language)
        else:
            mention = _month_first(scan, start, end, group("md_y"), language)
        if mention is not None:
            yield mention
            count += 1
            if count >= MAX_CANDIDATES:
                return


def _mention(start: int, end: int, year: str | None, month: str, day: str) -> _Mention | None:
    y = int(year) if year else None
    m, d = int(month), int(day)
    if safe_date(y if y is not None else 2000, m, d) is None:  # 2000: 29 February exists
        return None
    return _Mention(start, end, y, m, d)


def _numeric_mention(found: re.Match[str], language: str, us: bool) -> _Mention | None:
    """26.06.2024 / 26/06/2024 / 26-06-2024, ordered by the rule in find_effective_date."""
    a, b, year = found.group("num_a"), found.group("num_b"), found.group("num_y")
    day_first = (a, b)
    month_first = (b, a)
    if language != "en" or found.group("num_sep") == ".":
        orders = [day_first]
    elif us:
        orders = [month_first, day_first]
    else:
        orders = [day_first, month_first]
    for day, month in orders:
        mention = _mention(found.start(), found.end(), year, month, day)
        if mention is not None:
            return mention
    return None


def _month_first(
    scan: str, start: int, end: int, year: str | None, language: str
) -> _Mention | None:
    """A day number at [start, end) with a month name right before it ("May 27")."""
    word = _MONTH_BEFORE.search(scan, max(0, start - 18), start)
    if word is None:
        return None
    month = month_of(word.group(1), language)
    if not month:
        return None
    day = re.match(r"\d+", scan[start:end])
    return _mention(word.start(), end, year, str(month), day.group(0)) if day else None


def _resolve(mention: _Mention, sent_on: date | None) -> date | None:
    """The date a mention names; a year-less one is the next such day from *sent_on* on."""
    if mention.year is not None:
        return safe_date(mention.year, mention.month, mention.day)
    if sent_on is None:
        return None
    for year in (sent_on.year, sent_on.year + 1):
        when = safe_date(year, mention.month, mention.day)
        if when is not None and when >= sent_on - _CLOCK_SLACK:
            return when
    return None


def _ordered_cues(
    language: str, cues: Mapping[str, Sequence[re.Pattern[str]]]
) -> list[tuple[tuple[int, int], re.Pattern[str], bool]]:
    """[(rank, pattern, reads after the date)] strongest first (see find_effective_date)."""
    languages = [language, "en"] if language in cues else list(cues)
    ordered: list[tuple[tuple[int, int], re.Pattern[str], bool]] = []
    for lang_rank, lang in enumerate(dict.fromkeys(languages)):
        for cue_rank, pattern in enumerate(cues.get(lang, ())):
            after = pattern.pattern.startswith(AFTER_MARK)
            ordered.append(((lang_rank, cue_rank), pattern, after))
    return ordered


def _cue_rank(
    scan: str,
    mention: _Mention,
    ordered: list[tuple[tuple[int, int], re.Pattern[str], bool]],
) -> tuple[int, int] | None:
    """The rank of the strongest cue that points at *mention*, None when none does."""
    if _UNTIL_AFTER.match(scan, mention.end, mention.end + 12):
        return None
    window_start = max(0, mention.start - _BEFORE_WINDOW)
    for rank, pattern, after in ordered:
        if after:
            if pattern.match(scan, mention.end, mention.end + _AFTER_WINDOW):
                return rank
            continue
        for cue in pattern.finditer(scan, window_start, mention.start):
            gap = scan[cue.end() : mention.start]
            if (
                len(gap) <= MAX_GAP_CHARS
                and len(gap.split()) <= MAX_GAP_WORDS
                and not _GAP_STOP.search(gap)
                and not _UNTIL.search(gap)
            ):
                return rank
    return None
