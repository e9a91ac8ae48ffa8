"""What looks like a verification code, and masking it: one pattern for every place.

Meta's confirmation code is 6 to 8 digits, sometimes written in groups ("552 288",
"664,411", "731-946"; any Unicode space or dash between them) or digit by digit
("7 3 1 9 4 6"). A code-like number must never reach the log unmasked: the store masks
it in every subject and in a code mail's fields (unless ``store_codes``), keeps no raw copy of
mail that holds one, and logs and notification texts show it masked. Masking keeps the first
two digits, so a person can tell two codes apart: ``482913`` -> ``48****``,
``552 288`` -> ``55* ***``.
"""

from __future__ import annotations

import re

# Any Unicode space between digit groups (U+00A0 no-break, U+202F narrow no-break, U+2009
# thin: typesetting puts them there), and any dash (hyphen, U+2010-2015, minus U+2212,
# small and fullwidth hyphen-minus). Not a line break: a code is never split over lines.
SPACE = "[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]"
DASH = "[-\u2010-\u2015\u2212\ufe58\ufe63\uff0d]"

# 6-8 digits; or two groups of 3 or 4 digits split by a space or comma; or two equal groups
# split by a dash ("731-946"; not a year range like "2024-2025"); or 6-8 single digits split
# by spaces ("7 3 1 9 4 6"). Not part of a longer number ("1.234.567", "3,14159265",
# "123456789"), but a full stop or comma may follow it at the end of a sentence ("Your code
# is 552288."). \d is any decimal digit (Arabic-Indic, fullwidth): a code in them is a code.
CODE_LIKE = re.compile(
    rf"(?<!\d)(?<!\d[.,])(?<!\d{DASH})"
    rf"(?:\d{{6,8}}|\d{{3,4}}(?:{SPACE}|,)\d{{3,4}}|\d{{3}}{DASH}\d{{3}}"
    rf"|(?!(?:19|20)\d\d{DASH}(?:19|20)\d\d)\d{{4}}{DASH}\d{{4}}|\d(?:{SPACE}\d){{5,7}})"
    rf"(?!\d)(?![.,]\d)(?!{DASH}\d)"
)


def looks_like_code(text: str) -> bool:
    """True when *text* holds a number that could be a verification code (CODE_LIKE)."""
    return CODE_LIKE.search(text) is not None


def _mask(code: str) -> str:
    # The first two digits stay; every later digit becomes "*", separators stay.
    seen = 0
    out = []
    for ch in code:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen <= 2 else "*")
        else:
            out.append(ch)
    return "".join(out)


def mask_code(code: str | None) -> str | None:
    """Mask a verification code for storage and logs: ``482913`` -> ``48****``."""
    if not code:
        return code
    return _mask(code)


def mask_codes_in(text: str) -> str:
    """Mask every code-like number in *text* like :func:`mask_code` (for the subject of a
    verification-code mail, which often carries the code: "270615 is your code")."""
    return CODE_LIKE.sub(lambda m: _mask(m.group(0)), text)
