"""Raw RFC 5322 bytes -> :class:`Message`: decoded headers, body text, link targets.

:func:`parse` never raises on bad mail. Broken headers, unknown or lying charsets, base64 and
quoted-printable bodies, HTML-only mail and truncated multiparts all yield a Message; what went
wrong is listed in ``defects``, and a message that could not be understood at all carries
``error``.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.header
import email.utils
import functools
import hashlib
import inspect
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message as EmailMessage
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bs4.builder import TreeBuilder

log = logging.getLogger(__name__)

# Bounds that keep one hostile message from costing seconds or hundreds of MB.
MAX_HTML_CHARS = 2_000_000
MAX_TEXT_CHARS = 500_000
MAX_PARTS = 200
# Header bounds (issue 12): email.header.decode_header is quadratic in the number of
# encoded-words (100,000 in a 1.4 MB Subject took 11.7 s), and the email package reads a header
# block at about 16 us a line. A header value is read up to MAX_HEADER_CHARS characters, at most
# MAX_ENCODED_WORDS of its encoded-words are decoded, and the header block is read up to
# MAX_HEADER_BYTES; each cut is a defect. Real mail stays far below: the longest header block in
# the 4,802 mails of ../shared/realmail is 210 KB (a parser test of one long Subject).
MAX_HEADER_CHARS = 16_384
MAX_ENCODED_WORDS = 500
MAX_HEADER_BYTES = 512 * 1024
# Header fields RFC 5322 §3.6 allows once (and RFC 2045 §3 the MIME ones): a second instance
# above a DKIM-signed one is how a signed mail is replayed with a different value (RFC 6376
# §5.4.2 signs the bottom-most instance, Python reads the top-most). Canonical spelling.
SINGLETON_HEADERS = (
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
)
_UTF8_BOM = b"\xef\xbb\xbf"
# The end of the header block: the first empty line, with LF, CRLF or CR-only line ends.
_HEADER_END = re.compile(rb"\r\n\r\n|\n\r?\n|\r\r")
# A field name followed by white space before its colon (RFC 5322 §4.5.3 obs-optional,
# "Subject  : x"), at the start of a line: the email package reads such a line as the end of
# the header block, or as an mbox From_ line ("From  : John Doe").
_OBS_FIELD_NAME = re.compile(rb"(?:\A|(?<=[\r\n]))([!-9;-~]+)[ \t]+:")

_URL = re.compile(r"\bhttps?://[^\s<>\"'()\[\]]+", re.IGNORECASE)
_SPACE = re.compile(r"[ \t\u00a0\u202f]+")
# Invisible characters (zero-width space/joiners, word joiner, BOM, soft hyphen) are removed, not
# turned into spaces: inside a word they would split it ("Ein\u200bspruch" is "Einspruch").
_INVISIBLE = re.compile(r"[\u00ad\u200b\u200c\u200d\u2060\ufeff]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*(\n\s*)+")
_YEAR = re.compile(r"\b\d{4}\b")
_TIME_AND_ZONE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?|[+-]\d{4}")
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


@dataclass(frozen=True)
class Message:
    """A parsed mail, reduced to what classification and authentication need.

    Addresses are lower-case. ``recipients`` lists Delivered-To, then To, then Cc addresses,
    without duplicates. ``text`` is the readable body (text/plain, else text/html rendered to
    text), at most MAX_TEXT_CHARS. ``links`` are the http(s) targets of HTML anchors and of URLs
    written in the text. ``auth_results`` holds every Authentication-Results header value
    (RFC 8601), top-most first, as written (no RFC 2047 decoding, RFC 8601 §2.2); likewise
    ``dkim_signatures`` every DKIM-Signature value (RFC 6376 §3.5). ``date_at`` is the Date
    header as aware UTC, or None when missing or implausible (the caller then uses the IMAP
    INTERNALDATE). ``repeated_headers`` names each header of SINGLETON_HEADERS that occurs more
    than once at the top level (canonical spelling, in SINGLETON_HEADERS order): such a mail is
    never authentic. ``dkim_body_lengths`` is (simple, relaxed) length in bytes of the body
    canonicalised as RFC 6376 §3.4.3/§3.4.4 say, for checking a signature's ``l=`` tag; None
    when no signature has one or the body was not read.
    """

    message_id: str | None
    date_at: datetime | None
    from_name: str
    from_addr: str
    subject: str
    recipients: tuple[str, ...]
    text: str
    links: tuple[str, ...]
    auth_results: tuple[str, ...]
    sha256: str
    size: int
    defects: tuple[str, ...] = ()
    error: str | None = None
    repeated_headers: tuple[str, ...] = ()
    dkim_signatures: tuple[str, ...] = ()
    dkim_body_lengths: tuple[int, int] | None = None

    @property
    def from_domain(self) -> str:
        """The domain part of the From address, lower-case ('' when there is none)."""
        return self.from_addr.rpartition("@")[2] if "@" in self.from_addr else ""


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


def _unfold(value: str) -> str:
    """*value* on one line: each line break and the white space around it become one space.
    Line by line: one regex for "white space, line break, white space" backtracks
    quadratically on a long run of spaces (16,000 took 7 s)."""
    return " ".join(filter(None, (line.strip() for line in re.split(r"\r?\n", value))))


class _Headers:
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
            try:
                # Unfolded again after decoding: an encoded "=0A" is no line break either.
                values.append(_unfold(decode_encoded_words(raw_text, self._defects, name)))
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


def _parse_date(value: str) -> datetime | None:
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
# strict mode guards against is handled where it matters, for the sender, by _sender().
_getaddresses: Callable[..., list[tuple[str, str]]] = email.utils.getaddresses
_HAS_STRICT = "strict" in inspect.signature(email.utils.getaddresses).parameters


def _parse_addresses(value: str) -> list[tuple[str, str]]:
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
    commas, depth, quoted, angle, escaped = 0, 0, False, False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == "(":
            depth += 1
        elif depth:
            depth -= char == ")"
        elif char == '"':
            quoted = True
        elif char in "<>":
            angle = char == "<"
        elif char == "," and not angle:
            commas += 1
    return commas


def _sender(values: list[str]) -> tuple[str, str]:
    """(display name, lower-case address) of the first mailbox in the first From field value.

    The address is "" when that mailbox has none, and both are "" when the value reads as more
    mailboxes than its commas separate: "notification@facebookmail.com <x@attacker.example>"
    must not lend the mail a sender domain it does not have (CVE-2023-27043).
    """
    if not values:
        return "", ""
    found = _parse_addresses(values[0])
    if not found or len(found) > _top_level_commas(values[0]) + 1:
        return "", ""
    name, addr = found[0]
    if not name.strip() and "@" not in addr:
        # "Facebook ,_<x@example.com>": a bare phrase with no address is what the mail shows
        # as its sender's name (phishing relies on it), so it is kept as the display name.
        return addr.strip().strip("<>").strip(), ""
    return name.strip(), _clean_addr(addr)


def _clean_addr(addr: str) -> str:
    addr = addr.strip().strip("<>").lower()
    return addr if "@" in addr and " " not in addr else ""


_BLOCK_TAGS = frozenset(("br", "p", "div", "tr", "li", "td", "h1", "h2", "h3", "table"))
# Elements whose content no reader sees; their text and links are left out.
_HIDDEN_TAGS = frozenset(("script", "style", "head", "title"))
_LINK_TAGS = frozenset(("a", "area", "form"))
# Whitespace-only text is kept as written (BeautifulSoup would shorten it to one space or line
# break), so blank lines come out as lxml's own tree gave them.
_KEEP_WHITESPACE = frozenset(("html", "pre", "textarea"))
# BeautifulSoup makes a Python object of every element and comment (10-30 us each on the
# 2-core test machine), and libxml2 reports all of them to it: its own tree builder stops at
# depth 256, its event interface does not. 2 MB of "<div>" would be 400,000 objects, 12 s and
# 280 MB. Real mail has hundreds of elements (at most 1,372 in the 4,802 mails of
# ../shared/realmail); past this bound nothing more is built but text and links are still read
# (see _bounded_builder), and a 2 MB hostile part costs about 1 s.
_MAX_HTML_NODES = 20_000


def _html_to_text(html: str) -> tuple[str, list[str]]:
    """Render HTML to text with BeautifulSoup and the lxml parser (libxml2, lenient like a
    browser); return (text, link targets in document order).

    Text pieces are joined with spaces, and a line break follows each block element; text
    split only by a comment or a hidden element stays one piece ("Me<!-- -->ta" is "Meta").
    Scripts, styles, the head and comments are dropped; entities are decoded by libxml2. Links
    are the href of a and area elements and the action of forms, outside hidden elements. At
    most MAX_HTML_CHARS characters are read (the caller flags longer parts); the work is linear
    in the document: the tree is walked without recursion, and past _MAX_HTML_NODES nodes
    nothing more is built.
    """
    # Heavy imports kept to the one place that needs them.
    from bs4 import BeautifulSoup, ParserRejectedMarkup, Tag
    from bs4.element import NavigableString, PreformattedString

    # Given as UTF-8 bytes, with lone surrogates replaced (lxml refuses them in a str), and
    # that encoding named, so a document declaring another charset (<meta charset>,
    # <?xml encoding=...?>) is not decoded a second time.
    data = html[:MAX_HTML_CHARS].encode("utf-8", "replace")
    unbuilt = _Unbuilt([], [])
    try:
        soup = BeautifulSoup(data, builder=_bounded_builder()(unbuilt), from_encoding="utf-8")
    except ParserRejectedMarkup:  # lxml gave up on the document: nothing readable in it
        return "", []
    pieces: list[str] = []
    links: list[str] = []
    # One iterator per open element, and whether a line break follows it: an explicit stack,
    # so 400,000 nested elements cost no recursion.
    stack = [iter(soup.contents)]
    breaks = [False]
    glued = False  # the last piece is text whose next sibling may continue it
    while stack:
        for node in stack[-1]:
            if isinstance(node, Tag):
                name = node.name
                if name in _HIDDEN_TAGS:
                    continue
                glued = False
                if name in _LINK_TAGS:
                    target = node.get("href") or node.get("action")
                    if isinstance(target, str) and target.strip():
                        links.append(target.strip())
                if node.contents:
                    stack.append(iter(node.contents))
                    breaks.append(name in _BLOCK_TAGS)
                    break
                if name in _BLOCK_TAGS:
                    pieces.append("\n")
            # Comments, the doctype and processing instructions are PreformattedStrings.
            elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
                if glued:
                    pieces[-1] += node
                else:
                    pieces.append(str(node))
                    glued = True
        else:  # every child seen: the element ends here
            stack.pop()
            glued = False
            if breaks.pop():
                pieces.append("\n")
    text = " ".join(pieces)
    if unbuilt.text:  # what was read past the bound follows everything built, as in the mail
        text += " " + "".join(unbuilt.text)
    return text, links + unbuilt.links


def _html_links(html: str) -> list[str]:
    """The link targets of *html* in document order, exactly as :func:`_html_to_text` returns
    them, without rendering the text: for an HTML part whose text is not used (the mail has a
    text/plain body), its links are still checked.

    BeautifulSoup builds only the link elements and the hidden ones (a SoupStrainer), so links
    inside a hidden element are still left out; the same bounded builder reads what lies past
    _MAX_HTML_NODES. About two thirds of the cost of rendering (lxml still reports every
    element to BeautifulSoup).
    """
    from bs4 import BeautifulSoup, ParserRejectedMarkup, Tag
    from bs4.filter import SoupStrainer

    data = html[:MAX_HTML_CHARS].encode("utf-8", "replace")
    unbuilt = _Unbuilt([], [])
    try:
        soup = BeautifulSoup(
            data,
            builder=_bounded_builder()(unbuilt),
            from_encoding="utf-8",
            parse_only=SoupStrainer(list(_LINK_TAGS | _HIDDEN_TAGS)),
        )
    except ParserRejectedMarkup:
        return []
    links: list[str] = []
    stack = [iter(soup.contents)]
    while stack:
        for node in stack[-1]:
            if not isinstance(node, Tag) or node.name in _HIDDEN_TAGS:
                continue
            if node.name in _LINK_TAGS:
                target = node.get("href") or node.get("action")
                if isinstance(target, str) and target.strip():
                    links.append(target.strip())
            if node.contents:  # a link element inside a form, say
                stack.append(iter(node.contents))
                break
        else:
            stack.pop()
    return links + unbuilt.links


@dataclass
class _Unbuilt:
    """What the bounded builder read past _MAX_HTML_NODES: text pieces and separators to be
    joined as they are, and link targets, both in document order."""

    text: list[str]
    links: list[str]


@functools.cache
def _bounded_builder() -> Callable[[_Unbuilt], TreeBuilder]:
    """The class of BeautifulSoup's lxml HTML tree builder with a bound on what one document
    makes it build; it is called with the _Unbuilt that receives what is read past the bound.

    Defined on first use so that importing this module does not import bs4. Past
    _MAX_HTML_NODES elements and comments, nothing more is built: the text goes to
    ``_Unbuilt.text`` with a space at each element boundary and a line break after each block
    element (what the walk in _html_to_text gives), the link targets to ``_Unbuilt.links``;
    comments and text inside hidden elements are dropped. An event then costs a method call
    rather than an object.
    """
    import warnings

    from bs4 import MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
    from bs4.builder._lxml import LXMLTreeBuilder

    # A mail part holding only a URL, or an XHTML part, is still a mail part to read.
    warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)
    warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)

    class BoundedBuilder(LXMLTreeBuilder):
        def __init__(self, unbuilt: _Unbuilt) -> None:
            super().__init__(
                multi_valued_attributes=None, preserve_whitespace_tags=set(_KEEP_WHITESPACE)
            )
            self.unbuilt = unbuilt
            self.reset()

        def reset(self) -> None:
            # BeautifulSoup calls this before each attempt at the document.
            super().reset()
            self.unbuilt.text.clear()
            self.unbuilt.links.clear()
            self.nodes = 0
            self.built: list[bool] = []  # per open element: was it built
            self.hidden: list[bool] = []  # per open unbuilt element: is its text hidden

        def start(
            self,
            tag: str | bytes,
            attrib: dict[str | bytes, str | bytes],
            nsmap: dict[str, str] | None = None,
        ) -> None:
            self.nodes += 1
            if self.nodes <= _MAX_HTML_NODES:
                self.built.append(True)
                super().start(tag, attrib, nsmap or {})
                return
            hidden = tag in _HIDDEN_TAGS or (bool(self.hidden) and self.hidden[-1])
            self.built.append(False)
            self.hidden.append(hidden)
            if not hidden:
                self.unbuilt.text.append(" ")
                if tag in _LINK_TAGS:
                    target = attrib.get("href") or attrib.get("action")
                    if isinstance(target, str) and target.strip():
                        self.unbuilt.links.append(target.strip())

        def end(self, tag: str | bytes) -> None:
            if not self.built or self.built.pop():
                super().end(tag)
            elif not self.hidden.pop():
                self.unbuilt.text.append("\n" if tag in _BLOCK_TAGS else " ")

        def data(self, data: str | bytes) -> None:
            if self.nodes <= _MAX_HTML_NODES:
                super().data(data)
            elif isinstance(data, str) and not (self.hidden and self.hidden[-1]):
                self.unbuilt.text.append(data)

        def comment(self, text: str | bytes) -> None:
            self.nodes += 1
            if self.nodes <= _MAX_HTML_NODES:
                super().comment(text)

        def pi(self, target: str, data: str) -> None:
            self.nodes += 1
            if self.nodes <= _MAX_HTML_NODES:
                super().pi(target, data)

    return BoundedBuilder


def _normalise_text(text: str) -> str:
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _SPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()[:MAX_TEXT_CHARS]


def _bodies(msg: EmailMessage, defects: list[str]) -> tuple[str, list[str]]:
    plain: list[str] = []
    html: list[str] = []
    for count, part in enumerate(msg.walk()):
        if count >= MAX_PARTS:
            defects.append(f"more than {MAX_PARTS} MIME parts; the rest was not read")
            break
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        if part.get_content_disposition() == "attachment":
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception as exc:  # noqa: BLE001 - a broken transfer encoding is a defect
            defects.append(f"{ctype}: {type(exc).__name__}")
            continue
        if not isinstance(payload, bytes):
            continue
        try:
            charset = part.get_content_charset()
        except Exception:  # noqa: BLE001 - a malformed parameter list
            charset = None
        (plain if ctype == "text/plain" else html).append(decode_bytes(payload, charset))
    links: list[str] = []
    html_text: list[str] = []
    use_plain = any(p.strip() for p in plain)
    for doc in html:
        if use_plain:  # the HTML text would be thrown away: read only its links
            links.extend(_html_links(doc))
            continue
        text, found = _html_to_text(doc)
        html_text.append(text)
        links.extend(found)
    for doc in plain:
        links.extend(m.group(0).rstrip(".,;:!?") for m in _URL.finditer(doc))
    body = "\n\n".join(plain) if use_plain else "\n\n".join(html_text)
    if len(body) > MAX_TEXT_CHARS or any(len(doc) > MAX_HTML_CHARS for doc in html):
        # Links past the cut would go unchecked: the caller records this as an error.
        raise _TooLongError
    return _normalise_text(body), links


class _TooLongError(Exception):
    """The body text is longer than MAX_TEXT_CHARS (or an HTML part than MAX_HTML_CHARS)."""


def _split_head(data: bytes) -> tuple[bytes, bytes | None]:
    """(header block, body) of *data*, split at the first empty line (LF, CRLF or CR-only line
    ends); the body is b"" when there is no empty line, and None when no empty line comes
    within MAX_HEADER_BYTES (the header block is then cut there, even inside a line: the
    header fields before the cut, and the start of the one cut, are still read).
    Header fields written with white space before the colon are rewritten without it."""
    end = _HEADER_END.search(data, 0, MAX_HEADER_BYTES + 4)
    body: bytes | None
    if end is not None:
        head, body = data[: end.start()], data[end.end() :]
    elif len(data) <= MAX_HEADER_BYTES:
        head, body = data, b""
    else:
        head, body = data[:MAX_HEADER_BYTES], None
    return _OBS_FIELD_NAME.sub(rb"\1:", head), body


def _canonical_body_lengths(body: bytes) -> tuple[int, int]:
    """(simple, relaxed) length in bytes of *body* canonicalised for DKIM (RFC 6376 §3.4.3,
    §3.4.4): CRLF line ends, trailing empty lines dropped; relaxed also drops white space at
    line ends and shortens each run of it to one space. An empty body is CRLF (2) in simple,
    nothing (0) in relaxed."""
    lines = re.split(rb"\r?\n", body)
    simple = list(lines)
    while simple and not simple[-1]:
        simple.pop()
    relaxed = [re.sub(rb"[ \t]+", b" ", line).rstrip(b" ") for line in lines]
    while relaxed and not relaxed[-1]:
        relaxed.pop()
    simple_len = sum(len(line) + 2 for line in simple) or 2
    return simple_len, sum(len(line) + 2 for line in relaxed)


_LENGTH_TAG = re.compile(r"(?:^|;)\s*l\s*=")


def parse(raw: bytes, max_bytes: int | None = None, size: int | None = None) -> Message:
    """Parse *raw* RFC 5322 bytes into a Message; never raises.

    Messages larger than *max_bytes* (their *size*, when *raw* holds only the header, else
    ``len(raw)``) have their headers parsed but not their body (``error`` says so), so one
    20 MB attachment cannot stall the watcher; so do messages whose header block is over
    MAX_HEADER_BYTES. A leading UTF-8 byte-order mark is skipped, CR-only line ends are read
    as line ends, and "Name  : value" (white space before the colon, RFC 5322 §4.5.3) is a
    header field; ``sha256`` is always that of *raw* as given.
    """
    sha256 = hashlib.sha256(raw).hexdigest()
    defects: list[str] = []
    full_size = size if size is not None else len(raw)
    too_big = max_bytes is not None and full_size > max_bytes
    data = raw[len(_UTF8_BOM) :] if raw.startswith(_UTF8_BOM) else raw
    head, body = _split_head(data)
    try:
        if too_big or body is None:
            msg = email.message_from_bytes(head + b"\n\n", policy=policy.compat32)
        else:
            if data is raw and data.startswith(head):  # nothing rewritten: no copy of the mail
                msg = email.message_from_bytes(raw, policy=policy.compat32)
            else:
                msg = email.message_from_bytes(head + b"\n\n" + body, policy=policy.compat32)
    except Exception as exc:  # noqa: BLE001 - documented not to raise; be sure anyway
        return Message(
            message_id=None,
            date_at=None,
            from_name="",
            from_addr="",
            subject="",
            recipients=(),
            text="",
            links=(),
            auth_results=(),
            sha256=sha256,
            size=len(raw),
            error=f"cannot parse message: {type(exc).__name__}",
        )
    defects.extend(type(d).__name__ for d in msg.defects)
    headers = _Headers(msg, defects)
    from_name, from_addr = _sender(headers.all("From"))
    recipients: list[str] = []
    for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
        for value in headers.all(name):
            for _, addr in _parse_addresses(value):
                clean = _clean_addr(addr)
                if clean and clean not in recipients:
                    recipients.append(clean)
    message_id = headers.first("Message-ID").strip() or None
    counts: dict[str, int] = {}
    for key in msg:  # the top-level field names, in order
        counts[key.lower()] = counts.get(key.lower(), 0) + 1
    repeated = tuple(h for h in SINGLETON_HEADERS if counts.get(h.lower(), 0) > 1)
    defects.extend(
        f"{h}: {counts[h.lower()]} header fields (RFC 5322 §3.6 allows one)" for h in repeated
    )
    signatures = tuple(headers.all("DKIM-Signature", decode=False))
    body_lengths = None
    if body is not None and not too_big and any(_LENGTH_TAG.search(v) for v in signatures):
        body_lengths = _canonical_body_lengths(body)
    error: str | None = None
    text, links = "", list[str]()
    if too_big:
        error = f"message is {full_size} bytes, over the {max_bytes}-byte limit: body not parsed"
    elif body is None:
        error = f"header block over {MAX_HEADER_BYTES} bytes: body not read"
    else:
        try:
            text, links = _bodies(msg, defects)
        except _TooLongError:
            error = f"message text is over {MAX_TEXT_CHARS} characters: not read in full"
        except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on absurd nesting
            error = f"cannot read the message body: {type(exc).__name__}"
    if not msg.keys() and error is None:
        error = "not an e-mail message: no header fields"
    return Message(
        message_id=message_id[:998] if message_id else None,
        date_at=_parse_date(headers.first("Date")),
        from_name=from_name,
        from_addr=from_addr,
        subject=headers.first("Subject")[:2000],
        recipients=tuple(recipients),
        text=text,
        links=tuple(dict.fromkeys(links)),
        auth_results=tuple(headers.all("Authentication-Results", decode=False)),
        sha256=sha256,
        size=full_size,
        defects=tuple(dict.fromkeys(defects)),
        error=error,
        repeated_headers=repeated,
        dkim_signatures=signatures,
        dkim_body_lengths=body_lengths,
    )
