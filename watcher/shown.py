"""Everything a person sees (terminal, log, report, notification) passes one function,
:func:`for_person`: a mail's Subject or sender is written by whoever sent it, and a raw ESC
can rewrite the terminal (ECMA-48 CSI/OSC, OSC 8 hyperlinks), BEL rings it, CR overwrites a
line, and the bidi overrides U+202A-202E, isolates U+2066-2069 and marks (LRM, RLM, ALM;
Unicode UAX #9) make text read in another order than it is stored ("Trojan Source",
CVE-2021-42574). Plus the two format-specific guards: :func:`csv_cell` (spreadsheet
formulas) and :func:`md_code` (Markdown links, images and HTML)."""

from __future__ import annotations

import re

# C0 controls but tab and newline (which the callers' layouts use), DEL, the C1 controls
# (U+0080-U+009F; U+009B is a one-character CSI for many terminals), the bidi embeddings,
# overrides and isolates, and the implicit marks LRM, RLM and ALM (U+200E, U+200F, U+061C):
# invisible, they too reorder the neutral characters around them (UAX #9 §2.6). Also the
# invisible characters that hide inside a word ("Face<U+200B>book" reads "Facebook"): zero
# width space, word joiner and invisible operators, BOM, soft hyphen, combining grapheme
# joiner, Mongolian vowel separator, Hangul fillers, and the tag characters. ZWJ and ZWNJ
# stay: emoji sequences and Persian or Indic words need them.
_NOT_FOR_PERSONS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200e"
    "\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0\U000e0000-\U000e007f]"
)
# The line and paragraph separators break a line where the layout has none (a Subject over
# two lines of a table or log); a space keeps the words apart.
_LINE_BREAKS = re.compile("[\u2028\u2029]")


def for_person(text: str) -> str:
    """*text* without C0/C1 control characters (tab and newline stay), DEL, bidi
    embeddings, overrides and isolates (U+202A-202E, U+2066-2069) and the marks LRM, RLM and
    ALM (U+200E, U+200F, U+061C), and invisible characters that hide inside a word (U+200B,
    U+2060-2064, U+FEFF, U+00AD, U+034F, U+180E, Hangul fillers, tags U+E0000-E007F); the
    line and paragraph separators (U+2028, U+2029) become a space. Everything else, any
    script and emoji, stays as it is. Pure; never raises."""
    return _LINE_BREAKS.sub(" ", _NOT_FOR_PERSONS.sub("", text))


def one_line(text: str) -> str:
    """*text* as :func:`for_person` shows it, on one line: tabs and newlines become a space
    (for a ``Label: value`` line whose value a sender wrote, a Subject or a file name)."""
    return re.sub("[\t\n]", " ", for_person(text))


# A spreadsheet (Excel, LibreOffice, Google Sheets) reads a cell starting with one of these as
# a formula: "=HYPERLINK(...)" in a Subject becomes a live link or worse (OWASP "CSV
# Injection"). Tab and CR are on OWASP's list too.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """A CSV cell for *value*: for_person, and a leading ``'`` when it would start with
    ``= + - @``, tab or CR, so a spreadsheet shows it as text."""
    text = for_person(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def md_code(value: str) -> str:
    """*value* (one line; runs of whitespace become one space) as one Markdown code span for a
    GitHub table cell: no link, image, autolink or HTML can start inside a code span
    (CommonMark §6.1), the fence is one backtick longer than the longest run in *value*, and
    ``|`` is escaped (GFM tables split cells on it even in code spans). ``" "`` for an empty
    value."""
    text = " ".join(for_person(value).split())
    if not text:
        return " "
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    # A space on each side when the value starts or ends with a backtick (CommonMark strips
    # one space from each side of a code span's content).
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"
