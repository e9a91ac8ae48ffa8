"""Raw RFC 5322 bytes -> :class:`Message`: decoded headers, body text, link targets.

:func:`parse` never raises on bad mail. Broken headers, unknown or lying charsets, base64 and
quoted-printable bodies, HTML-only mail and truncated multiparts all yield a Message; what went
wrong is listed in ``defects``, and a message that could not be understood at all carries
``error``.
"""

from __future__ import annotations

import email
import email.header
import email.utils
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import Message as EmailMessage

from watcher.pipeline.headers import (
    Headers,
    clean_addr,
    decode_bytes,
    parse_addresses,
    parse_date,
    sender_of,
)
from watcher.pipeline.html import MAX_HTML_CHARS, html_links, html_to_text

log = logging.getLogger(__name__)

# Bounds that keep one hostile message from costing seconds or hundreds of MB.
MAX_TEXT_CHARS = 500_000
MAX_PARTS = 200
# The header block is read up to MAX_HEADER_BYTES (a cut is a defect): the email package reads
# it at about 16 us a line. Real mail stays far below: the longest header block in the 4,802
# mails of ../shared/realmail is 210 KB (a parser test of one long Subject). Each header value
# has its own bounds (watcher.pipeline.headers).
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
    when no signature has one or the body was not read. ``notify_types`` lists the
    notification types of the ``X-Facebook-Notify`` headers, lower-case, in order, without
    duplicates (``privacy_objection_result`` from ``privacy_objection_result; mailid=...``);
    ``has_notify_header`` is True when the mail has such a header at all, typed or not.
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
    notify_types: tuple[str, ...] = ()
    has_notify_header: bool = False

    @property
    def from_domain(self) -> str:
        """The domain part of the From address, lower-case ('' when there is none)."""
        return self.from_addr.rpartition("@")[2] if "@" in self.from_addr else ""


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
            links.extend(html_links(doc))
            continue
        text, found = html_to_text(doc)
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
    headers = Headers(msg, defects)
    from_name, from_addr = sender_of(headers.all("From"))
    recipients: list[str] = []
    for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
        for value in headers.all(name):
            for _, addr in parse_addresses(value):
                clean = clean_addr(addr)
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
        date_at=parse_date(headers.first("Date")),
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
        notify_types=_notify_types(headers.all("X-Facebook-Notify", decode=False)),
        has_notify_header="X-Facebook-Notify" in msg,
    )


def _notify_types(values: list[str]) -> tuple[str, ...]:
    """The type before the first ``;`` of each X-Facebook-Notify value (at most 20, each cut
    to 64 characters: the header is the sender's to write)."""
    kinds = (v.split(";", 1)[0].strip().lower()[:64] for v in values[:20])
    return tuple(dict.fromkeys(k for k in kinds if k))
