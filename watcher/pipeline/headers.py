"""Header fields of a parsed mail as text: RFC 2047 encoded-words, charsets, addresses, Date.

Bounded against hostile headers (issue 12): a value is read up to MAX_HEADER_CHARS characters
and at most MAX_ENCODED_WORDS of its encoded-words are decoded, word by word (the email
package's decode_header is quadratic in their number). Nothing here raises on bad mail; what
went wrong is appended to the caller's ``defects`` list.
"""

from __future__ import annotations

import binascii
import codecs
import email.header
import email.utils
import inspect
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import Message as EmailMessage
from typing import Any

# email.header.decode_header is quadratic in the number of encoded-words (100,000 in a 1.4 MB
# Subject took 11.7 s): a value is read up to MAX_HEADER_CHARS characters and at most
# MAX_ENCODED_WORDS of its encoded-words are decoded; each cut is a defect. Real mail stays far
# below both.
MAX_HEADER_CHARS = 16_384
MAX_ENCODED_WORDS = 500
# An encoded-word (RFC 2047 §2). White space inside the text is not allowed there but is
# written by real senders ("=?ASCII?Q?-Bezorging-van.NL .HFQDXIO?="); email.header reads it,
# so this does too, within one line.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\r\n]*)\?=")
_QP_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/]*={0,3}")
# Charset labels Python does not know under that name.
_CHARSET_ALIASES = {"unicode-1-1-utf-7": "utf-7", "x-unknown": "utf-8", "unknown-8bit": "utf-8"}
# Python codecs a hostile charset label can name that are no mail charset: punycode decodes in
# quadratic time (1 MB: 30 s), the escape codecs turn text into any code point.
_NOT_MAIL_CHARSETS = frozenset(
    {"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined", "charmap"}
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_YEAR = re.compile(r"\b\d{4}\b")
_TIME_AND_ZONE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?|[+-]\d{4}")


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    """The bytes of one encoded-word's *payload* in *encoding* (Q or B, RFC 2047 §4), or None
    when it is not valid base64 (the word is then kept as written)."""
    if encoding in "qQ":
        data = payload.encode("raw-unicode-escape").replace(b"_", b" ")
        # "=ZZ" is no escape: kept as written, like email.quoprimime.
        return _QP_ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), data)
    if not _BASE64_TEXT.fullmatch(payload):
        return None
    if len(payload) % 4:  # missing padding, as email.header tolerates
        payload += "==="[: 4 - len(payload) % 4]
    try:
        return binascii.a2b_base64(payload)
    except binascii.Error:
        return None


def decode_encoded_words(value: str, defects: list[str], name: str = "header") -> str:
    """Decode the RFC 2047 encoded-words in one unfolded header *value*; never raises.

    Linear in ``len(value)`` (``email.header.decode_header`` is quadratic in the number of
    words): one pass, word by word. White space between two encoded-words is dropped
    (RFC 2047 §6.2); adjacent words in one charset are joined before decoding, so a character
    split over two words survives; a charset's RFC 2231 language suffix ("utf-8*de") is
    ignored; the charset is applied leniently (:func:`decode_bytes`). A word that is not valid
    base64 is kept as written and does not hide the others. Past MAX_ENCODED_WORDS words the
    rest is kept as written and "<name>: over N encoded-words" is appended to *defects*.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    after_word = False  # the last thing seen was a decoded encoded-word

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_bytes(bytes(pending), pending_charset))
            pending.clear()
            pending_charset = None

    pos = 0
    for count, found in enumerate(_ENCODED_WORD.finditer(value)):
        if count >= MAX_ENCODED_WORDS:
            defects.append(f"{name}: over {MAX_ENCODED_WORDS} encoded-words; the rest not decoded")
            break
        gap = value[pos : found.start()]
        pos = found.end()
        data = _word_bytes(found.group(2), found.group(3))
        if gap and not (after_word and data is not None and gap.isspace()):
            flush()
            out.append(gap)
        if data is None:
            flush()
            out.append(found.group(0))
            after_word = False
            continue
        charset = found.group(1).split("*", 1)[0].lower()
        if pending_charset is not None and pending_charset != charset:
            flush()
        pending += data
        pending_charset = charset
        after_word = True
    flush()
    out.append(value[pos:])
    return "".join(out)


# Address fields (RFC 5322 §3.6.2, §3.6.3, §3.6.6; Delivered-To and X-Original-To as servers
# write them): their encoded-words are decoded by decode_address_words, which keeps a decoded
# special inside the display name.
ADDRESS_FIELDS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-to",
        "resent-cc",
        "resent-bcc",
        "delivered-to",
        "x-original-to",
    }
)
# A run of encoded-words with only white space between them: decoded together (RFC 2047 §6.2).
_WORD = r"=\?[^?\s]+\?[bBqQ]\?[^?\r\n]*\?="  # _ENCODED_WORD without its groups
_ENCODED_RUN = re.compile(rf"{_WORD}(?:[ \t\r\n]+{_WORD})*")
# RFC 5322 §3.2.3 specials that end or structure a phrase ("." is allowed in obs-phrase and
# reads the same quoted or not, so it is left bare).
_PHRASE_SPECIALS = frozenset('()<>[]:;@\\,"')


def _requote(text: str, quoted: bool, comment: bool, angle: bool) -> str:
    """Decoded *text* written back where its encoded-word stood, so that its specials stay
    text: in a quoted string with ``\\`` and ``"`` escaped, in a comment with ``\\`` and the
    parentheses escaped, in a phrase as a quoted string when it has a special (RFC 5322
    §3.2.4, §3.2.2); inside ``<...>`` as decoded (no encoded-word belongs there, RFC 2047 §5)."""
    if angle and not (quoted or comment):
        return text
    if quoted:
        return text.replace("\\", "\\\\").replace('"', '\\"')
    if comment:
        return re.sub(r"([\\()])", r"\\\1", text)
    if not any(c in _PHRASE_SPECIALS for c in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Structure:
    """Where the characters of an address field stand as the parser reads them (RFC 5322
    §3.2.1-§3.2.4, §3.4): inside a quoted string, a comment (nesting ``depth``) or ``<...>``,
    and whether the next character is escaped. Fed one character at a time by :meth:`step`."""

    __slots__ = ("angle", "depth", "escaped", "quoted")

    def __init__(self) -> None:
        self.depth, self.quoted, self.angle, self.escaped = 0, False, False, False

    def step(self, char: str) -> bool:
        """Move past *char*; True when it is plain text at the top level (not escaped, not
        in a quoted string or comment, and not one of their delimiters or ``<``/``>``)."""
        if self.escaped:
            self.escaped = False
        elif char == "\\" and (self.quoted or self.depth):
            self.escaped = True
        elif self.quoted:
            self.quoted = char != '"'
        elif char == "(":
            self.depth += 1
        elif self.depth:
            self.depth -= char == ")"
        elif char == '"':
            self.quoted = True
        elif char in "<>":
            self.angle = char == "<"
        else:
            return True
        return False


def decode_address_words(value: str, defects: list[str], name: str = "header") -> str:
    """Decode the encoded-words of one unfolded address field *value* (From, To, ...) so that
    the address list still parses as written; never raises.

    An encoded-word hides its specials from the address parser (RFC 2047 §5): decoded in
    place, ``=?utf-8?b?RmFjZTtib29r?= <x@example.com>`` ("Face;book") would read as a group
    ending at ";" and lose its address. So the raw value is walked as the parser reads it
    (quoted strings, comments, ``<...>``) and each run of encoded-words is written back
    decoded and quoted for where it stands (:func:`_requote`); the rest stays as written.
    Linear in ``len(value)``; at most MAX_ENCODED_WORDS words are decoded ("<name>: over N
    encoded-words" appended to *defects*, the rest kept as written).
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    budget = MAX_ENCODED_WORDS
    where = _Structure()
    start = pos = 0
    size = len(value)
    while pos < size:
        char = value[pos]
        if char == "=" and not where.escaped and budget > 0 and value.startswith("=?", pos):
            run = _ENCODED_RUN.match(value, pos)
            if run is not None:
                words = len(_ENCODED_WORD.findall(run.group(0)))
                if words > budget:
                    defects.append(
                        f"{name}: over {MAX_ENCODED_WORDS} encoded-words; the rest not decoded"
                    )
                    budget = 0
                    break
                budget -= words
                decoded = decode_encoded_words(run.group(0), defects, name)
                out.append(value[start:pos])
                out.append(_requote(decoded, where.quoted, where.depth > 0, where.angle))
                start = pos = run.end()
                continue
        where.step(char)
        pos += 1
    out.append(value[start:])
    return "".join(out)


def _unfold(value: str) -> str:
    """*value* on one line: each line break and the white space around it become one space.
    Line by line: one regex for "white space, line break, white space" backtracks
    quadratically on a long run of spaces (16,000 took 7 s)."""
    return " ".join(filter(None, (line.strip() for line in re.split(r"\r?\n", value))))


class Headers:
    """Header access that survives headers the ``email`` package cannot parse."""

    def __init__(self, msg: EmailMessage, defects: list[str]) -> None:
        self._msg = msg
        self._defects = defects
        # (lower-case name, raw value) of every field, read on first use: the message's
        # headers are looked up by a dozen names, each a walk over all of them.
        self._items: list[tuple[str, Any]] | None = None

    def all(self, name: str, *, decode: bool = True) -> list[str]:
        """Every value of the header field *name* (case-insensitive), top-most first, unfolded
        and cut to MAX_HEADER_CHARS characters (a defect says so); RFC 2047 encoded-words are
        decoded unless *decode* is False (RFC 8601 §2.2: none in Authentication-Results)."""
        values: list[str] = []
        # raw_items() gives the undecoded source strings; decoding them ourselves avoids the
        # exceptions policy.default's structured headers raise on hostile input.
        if self._items is None:
            self._items = [(key.lower(), raw) for key, raw in self._msg.raw_items()]
        wanted = name.lower()
        for key, raw in self._items:
            if key != wanted:
                continue
            raw_text = raw if isinstance(raw, str) else str(raw)
            if len(raw_text) > MAX_HEADER_CHARS:
                self._defects.append(
                    f"{name}: over {MAX_HEADER_CHARS} characters; the rest was not read"
                )
                raw_text = raw_text[:MAX_HEADER_CHARS]
            if not raw_text.isascii():
                # 8-bit header bytes arrive surrogate-escaped; decode them like a body.
                raw_text = decode_bytes(raw_text.encode("utf-8", "surrogateescape"), None)
            if not decode:
                values.append(_unfold(raw_text))
                continue
            # Address fields keep a decoded special inside the display name (RFC 2047 §5).
            decode_words = (
                decode_address_words if wanted in ADDRESS_FIELDS else decode_encoded_words
            )
            try:
                # Unfolded again after decoding: an encoded "=0A" is no line break either.
                values.append(_unfold(decode_words(raw_text, self._defects, name)))
            except Exception as exc:  # noqa: BLE001 - header decoding must never stop parsing
                self._defects.append(f"{name}: {type(exc).__name__}")
                values.append(_unfold(raw_text))
        return values

    def first(self, name: str) -> str:
        values = self.all(name)
        return values[0] if values else ""


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode *data* declared as *charset*: valid UTF-8 wins over a single-byte label that lies,
    then the declared charset, then cp1252, then latin-1 (which always succeeds)."""
    label = (charset or "").strip().strip('"').lower()
    label = _CHARSET_ALIASES.get(label, label)
    candidates: list[str] = []
    if not data.isascii():
        candidates.append("utf-8")
    if label:
        candidates.append(label)
    candidates += ["utf-8", "cp1252", "latin-1"]
    for cs in candidates:
        try:
            if codecs.lookup(cs).name in _NOT_MAIL_CHARSETS:
                continue
            # UTF-7 decodes "+2AA-" to a lone surrogate, which SQLite (UTF-8) cannot store.
            return _SURROGATE.sub("\ufffd", data.decode(cs))
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1")  # unreachable: latin-1 decodes every byte


def parse_date(value: str) -> datetime | None:
    # A two- or three-digit year (RFC 5322 4.3 obsolete syntax) is too easy to misread
    # (year 101); the caller falls back to INTERNALDATE instead.
    if not value or not _YEAR.search(_TIME_AND_ZONE.sub(" ", value)):  # -0700 is no year
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None or not 1990 <= parsed.year <= 2100:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# email.utils.getaddresses() answers differently from one Python release to the next. Releases
# with the fix for CVE-2023-27043 (3.13, the later 3.11 and 3.12 patch releases, and builds that
# backport it, such as Debian 12's 3.11.2) parse strictly by default and give [("", "")] for the
# whole header when anything in it looks odd, e.g. the RFC 5322 group
# "(c): anna@example.org, (x) ;"; older releases give the member. Their strict=False is the older
# parser unchanged (email._parseaddr.AddressList, the same code in 3.11 to 3.13), so calling it,
# one field value at a time, gives the same addresses on every Python >= 3.11. The ambiguity the
# strict mode guards against is handled where it matters, for the sender, by sender_of().
_getaddresses: Callable[..., list[tuple[str, str]]] = email.utils.getaddresses
_HAS_STRICT = "strict" in inspect.signature(email.utils.getaddresses).parameters


def parse_addresses(value: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of one address header field value (RFC 5322 §3.4), as
    written: group members included, entries without an address kept as (name, "").

    The same on every Python >= 3.11 (see above). Never raises: [] when the parser fails.
    """
    try:
        if _HAS_STRICT:
            return _getaddresses([value], strict=False)
        return _getaddresses([value])
    except Exception:  # noqa: BLE001 - getaddresses has raised on hostile input in the past
        return []


def _top_level_commas(value: str) -> int:
    """Commas in an address header value outside quoted strings, comments and <...>: the
    separators between its mailboxes (RFC 5322 §3.4)."""
    commas = 0
    where = _Structure()
    for char in value:
        if where.step(char) and char == "," and not where.angle:
            commas += 1
    return commas


def sender_of(values: list[str]) -> tuple[str, str]:
    """(display name, lower-case address) of the first mailbox in the first From field value.

    The address is "" when that mailbox has none, and both are "" when the value reads as more
    mailboxes than its commas separate: "notification@facebookmail.com <x@attacker.example>"
    must not lend the mail a sender domain it does not have (CVE-2023-27043).
    """
    if not values:
        return "", ""
    found = parse_addresses(values[0])
    if not found or len(found) > _top_level_commas(values[0]) + 1:
        return "", ""
    name, addr = found[0]
    if not name.strip() and "@" not in addr:
        # "Facebook ,_<x@example.com>": a bare phrase with no address is what the mail shows
        # as its sender's name (phishing relies on it), so it is kept as the display name.
        return addr.strip().strip("<>").strip(), ""
    return name.strip(), clean_addr(addr)


def clean_addr(addr: str) -> str:
    addr = addr.strip().strip("<>").lower()
    return addr if "@" in addr and " " not in addr else ""
