"""Raw RFC 5322 bytes -> :class:`Message`: decoded headers, body text, link targets.

:func:`parse` never raises on bad mail. Broken headers, unknown or lying charsets, base64 and
quoted-printable bodies, HTML-only mail and truncated multiparts all yield a Message; what went
wrong is listed in ``defects``, and a message that could not be understood at all carries
``error``.
"""

from __future__ import annotations

import codecs
import email
import email.header
import email.utils
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import Message as EmailMessage

log = logging.getLogger(__name__)

# Bounds that keep one hostile message from costing seconds or hundreds of MB.
MAX_HTML_CHARS = 2_000_000
MAX_TEXT_CHARS = 500_000
MAX_PARTS = 200

_URL = re.compile(r"\bhttps?://[^\s<>\"'()\[\]]+", re.IGNORECASE)
_SPACE = re.compile(r"[ \t\u00a0\u200b\u200c\u200d\ufeff]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*(\n\s*)+")
_YEAR = re.compile(r"\b\d{4}\b")
_TIME_AND_ZONE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?|[+-]\d{4}")
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
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
    (RFC 8601), top-most first. ``date_at`` is the Date header as aware UTC, or None when missing
    or implausible (the caller then uses the IMAP INTERNALDATE).
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

    @property
    def from_domain(self) -> str:
        """The domain part of the From address, lower-case ('' when there is none)."""
        return self.from_addr.rpartition("@")[2] if "@" in self.from_addr else ""


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words leniently (bad base64, unknown charsets)."""
    if "=?" not in value:
        return value
    out: list[str] = []
    try:
        parts = email.header.decode_header(value)
    except Exception:  # noqa: BLE001 - HeaderParseError on one bad base64 word, and others
        if _ENCODED_WORD.fullmatch(value.strip()):
            return value
        # Decode word by word, so one broken word does not hide the others.
        return _ENCODED_WORD.sub(lambda m: _decode_words(m.group(0)), value)
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode_bytes(chunk, charset))
    return "".join(out)


def _unfold(value: str) -> str:
    return re.sub(r"\s*\r?\n\s*", " ", value).strip()


class _Headers:
    """Header access that survives headers the ``email`` package cannot parse."""

    def __init__(self, msg: EmailMessage, defects: list[str]) -> None:
        self._msg = msg
        self._defects = defects

    def all(self, name: str) -> list[str]:
        values: list[str] = []
        # raw_items() gives the undecoded source strings; decoding them ourselves avoids the
        # exceptions policy.default's structured headers raise on hostile input.
        for key, raw in self._msg.raw_items():
            if key.lower() != name.lower():
                continue
            raw_text = raw if isinstance(raw, str) else str(raw)
            if not raw_text.isascii():
                # 8-bit header bytes arrive surrogate-escaped; decode them like a body.
                raw_text = decode_bytes(raw_text.encode("utf-8", "surrogateescape"), None)
            try:
                values.append(_unfold(_decode_words(raw_text)))
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


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    try:
        return email.utils.getaddresses(values)
    except Exception:  # noqa: BLE001 - getaddresses has raised on hostile input in the past
        return []


def _clean_addr(addr: str) -> str:
    addr = addr.strip().strip("<>").lower()
    return addr if "@" in addr and " " not in addr else ""


_BLOCK_TAGS = ("br", "p", "div", "tr", "li", "td", "h1", "h2", "h3", "table")


def _html_to_text(html: str) -> tuple[str, list[str]]:
    """Render HTML to text with lxml's HTML parser (libxml2, lenient like a browser); return
    (text, link targets). Text pieces are joined with spaces and a line break follows each
    block element; scripts, styles, the head and comments are dropped.

    lxml is used directly rather than through BeautifulSoup: same parser, but BeautifulSoup
    builds its tree in Python (about 10x slower), and its insert-after-each-block step is
    quadratic in the number of siblings, which a newsletter of 1,000 paragraphs made seconds.
    """
    from lxml import etree  # heavy import kept to the one place that needs it
    from lxml import html as lxml_html

    # Encoded explicitly so a document declaring another charset (``<?xml encoding=...?>``,
    # ``<meta charset>``) is not decoded a second time.
    parser = lxml_html.HTMLParser(encoding="utf-8")
    data = html[:MAX_HTML_CHARS].encode("utf-8", "replace")
    try:
        root = lxml_html.document_fromstring(data, parser=parser)
    except (etree.ParserError, ValueError):  # an empty or whitespace-only document
        return "", []
    etree.strip_elements(
        root,
        "script",
        "style",
        "head",
        "title",
        etree.Comment,
        etree.ProcessingInstruction,
        with_tail=False,
    )
    links: list[str] = []
    for tag in root.iter("a", "area", "form"):
        target = tag.get("href") or tag.get("action")
        if target and target.strip():
            links.append(target.strip())
    for tag in root.iter(*_BLOCK_TAGS):
        tag.tail = "\n" + (tag.tail or "")
    return " ".join(str(piece) for piece in root.itertext()), links


def _normalise_text(text: str) -> str:
    text = _SPACE.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
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
    for doc in html:
        text, found = _html_to_text(doc)
        html_text.append(text)
        links.extend(found)
    for doc in plain:
        links.extend(m.group(0).rstrip(".,;:!?") for m in _URL.finditer(doc))
    body = "\n\n".join(plain) if any(p.strip() for p in plain) else "\n\n".join(html_text)
    if len(body) > MAX_TEXT_CHARS or any(len(doc) > MAX_HTML_CHARS for doc in html):
        # Links past the cut would go unchecked: the caller records this as an error.
        raise _TooLongError
    return _normalise_text(body), links


class _TooLongError(Exception):
    """The body text is longer than MAX_TEXT_CHARS (or an HTML part than MAX_HTML_CHARS)."""


def parse(raw: bytes, max_bytes: int | None = None, size: int | None = None) -> Message:
    """Parse *raw* RFC 5322 bytes into a Message; never raises.

    Messages larger than *max_bytes* (their *size*, when *raw* holds only the header, else
    ``len(raw)``) have their headers parsed but not their body (``error`` says so), so one
    20 MB attachment cannot stall the watcher.
    """
    sha256 = hashlib.sha256(raw).hexdigest()
    defects: list[str] = []
    full_size = size if size is not None else len(raw)
    too_big = max_bytes is not None and full_size > max_bytes
    try:
        if too_big:
            head, _, _ = (
                raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
            )
            msg = email.message_from_bytes(head + b"\n\n", policy=policy.compat32)
        else:
            msg = email.message_from_bytes(raw, policy=policy.compat32)
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
    from_name, from_addr = "", ""
    senders = _addresses(headers.all("From")[:1])
    if senders:
        from_name, from_addr = senders[0][0].strip(), _clean_addr(senders[0][1])
    recipients: list[str] = []
    for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
        for _, addr in _addresses(headers.all(name)):
            clean = _clean_addr(addr)
            if clean and clean not in recipients:
                recipients.append(clean)
    message_id = headers.first("Message-ID").strip() or None
    error: str | None = None
    text, links = "", list[str]()
    if too_big:
        error = f"message is {full_size} bytes, over the {max_bytes}-byte limit: body not parsed"
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
        auth_results=tuple(headers.all("Authentication-Results")),
        sha256=sha256,
        size=full_size,
        defects=tuple(dict.fromkeys(defects)),
        error=error,
    )
