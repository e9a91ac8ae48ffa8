"""Everything a person sees (terminal, log, report, notification) passes one function,
:func:`for_person`: a mail's Subject or sender is written by whoever sent it, and a raw ESC
can rewrite the terminal (ECMA-48 CSI/OSC, OSC 8 hyperlinks), BEL rings it, CR overwrites a
line, and the bidi overrides U+202A-202E and isolates U+2066-2069 (Unicode UAX #9) make text
read in another order than it is stored ("Trojan Source", CVE-2021-42574). Plus the two
format-specific guards: :func:`csv_cell` (spreadsheet formulas) and :func:`md_code`
(Markdown links, images and HTML)."""

from __future__ import annotations

import re

# C0 controls but tab and newline (which the callers' layouts use), DEL, the C1 controls
# (U+0080-U+009F; U+009B is a one-character CSI for many terminals), and the bidi embeddings,
# overrides and isolates.
_NOT_FOR_PERSONS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def for_person(text: str) -> str:
    """*text* without C0/C1 control characters (tab and newline stay), DEL, and bidi
    embeddings, overrides and isolates (U+202A-202E, U+2066-2069). Everything else, any
    script and emoji, stays as it is. Pure; never raises."""
    return _NOT_FOR_PERSONS.sub("", text)


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
