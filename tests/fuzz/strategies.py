"""Hypothesis strategies for hostile mail, seeded from the corpus and the regression inputs.

:func:`hostile_mail` starts from a real message (tests/corpus, tests/regress) and applies up to
eight mutations: header values replaced by junk (lone quotes, groups, RFC 2047 words with bad
base64, unknown or Python-only charsets), headers added, dropped or duplicated, the MIME
structure rewrapped (nested multiparts, missing or reused boundaries), the transfer encoding
and charset changed without re-encoding the body, bytes flipped, inserted or cut, HTML with
deep nesting and odd links, and the body repeated to grow it. Every example stays under about
1 MB so a CI run of a few hundred examples takes seconds.
"""

from __future__ import annotations

import base64
from pathlib import Path

from hypothesis import strategies as st

TESTS = Path(__file__).resolve().parent.parent
SEED_FILES = sorted((TESTS / "corpus").glob("*.eml")) + sorted((TESTS / "regress").glob("*.eml"))
SEEDS = tuple(p.read_bytes() for p in SEED_FILES)

HEADER_NAMES = (
    "From",
    "To",
    "Cc",
    "Delivered-To",
    "Date",
    "Subject",
    "Message-ID",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "MIME-Version",
    "Authentication-Results",
    "Headers",
    "Received",
    "X-Junk",
)
# Real, odd and hostile charset labels: IANA names, labels that lie, Python-only codecs.
CHARSETS = (
    "utf-8",
    "UTF-8",
    "us-ascii",
    "iso-8859-1",
    "iso-8859-15",
    "windows-1252",
    "koi8-r",
    "shift_jis",
    "gb2312",
    "big5",
    "utf-16",
    "utf-32",
    "utf-7",
    "unicode-1-1-utf-7",
    "x-unknown",
    "unknown-8bit",
    "x-klingon",
    "",
    '"',
    "utf-8'de'",
    "punycode",
    "idna",
    "unicode_escape",
    "raw_unicode_escape",
    "rot13",
    "hex",
    "base64",
    "zlib",
    "undefined",
    "charmap",
)
ADDRESS_JUNK = (
    '"',
    '""',
    "(c):",
    "undisclosed-recipients:;",
    "<>",
    "<<>>",
    "@",
    "a@b@c",
    '"Meta" <notification@facebookmail.com',
    "Meta <x@gmail.com>",
    '=?utf-8?q?Meta?= <security@facebookmail.com>, "',
    "group: a@example.org, (comment) b@example.org;",
    "\\",
    "<" * 50 + "x@y",
    "a" * 3000 + "@example.org",
)
DATE_JUNK = (
    "Mon, 3 Jun 24 11:02:44 -0700",
    "Mon, 3 Jun 101 11:02:44 -0700",
    "Mon, 03 Jun 2024 11:02:44 -0700",
    "Mon, 03 Jun 2024 25:61:61 -9999",
    "Mon, 31 Feb 2024 11:02:44 +0000",
    "Mon, 03 Jun 99999 11:02:44 +0000",
    "0",
    "",
    "yesterday",
    "Mon, 03 Jun 1900 11:02:44 +0000",
    "Tue, 01 Jan 2101 00:00:00 +0000",
    "03 Jun 2024 11:02:44",
)
TRANSFER_ENCODINGS = (
    "7bit",
    "8bit",
    "binary",
    "base64",
    "quoted-printable",
    "x-uuencode",
    "BASE64 ",
    "garbage",
)
CONTENT_TYPES = (
    "text/plain",
    "text/html",
    "multipart/alternative",
    "multipart/mixed",
    "message/rfc822",
    "application/octet-stream",
    "text/",
    "",
)

_small_text = st.text(max_size=80)
_bytes = st.binary(max_size=200)


@st.composite
def encoded_word(draw: st.DrawFn) -> str:
    """An RFC 2047 encoded-word, often broken: bad base64 length, odd charset, bad q-escapes."""
    charset = draw(st.sampled_from(CHARSETS)) or "utf-8"
    payload = draw(_bytes)
    if draw(st.booleans()):
        text = base64.b64encode(payload).decode("ascii")
        cut = draw(st.integers(0, 3))
        text = text.rstrip("=")[: max(0, len(text) - cut)]  # bad length on purpose
        return f"=?{charset}?b?{text}?="
    text = "".join(f"={b:02X}" if b > 126 or b < 33 or b in b"=?_" else chr(b) for b in payload)
    if draw(st.booleans()):
        text += "=Z"  # a broken q-escape
    return f"=?{charset}?q?{text}?="


def _header_value(draw: st.DrawFn, name: str) -> str:
    lower = name.lower()
    if lower in ("from", "to", "cc", "delivered-to"):
        choice = st.one_of(st.sampled_from(ADDRESS_JUNK), encoded_word(), _small_text)
    elif lower == "date":
        choice = st.one_of(st.sampled_from(DATE_JUNK), _small_text)
    elif lower == "content-type":
        choice = st.builds(
            lambda t, c, b: f'{t}; charset="{c}"; boundary="{b}"',
            st.sampled_from(CONTENT_TYPES),
            st.sampled_from(CHARSETS),
            st.text(alphabet="abc=_-", max_size=10),
        )
    elif lower == "content-transfer-encoding":
        choice = st.sampled_from(TRANSFER_ENCODINGS)
    elif lower == "authentication-results":
        choice = st.sampled_from(
            (
                "mx.home.example; dkim=pass header.d=facebookmail.com",
                "mx.home.example; dkim=pass header.d=",
                "mx.home.example;",
                "mx.home.example",
                ";;;",
                "mx.home.example; dmarc=pass header.from=facebookmail.com.example.net",
                "mx.home.example (comment; dkim=pass header.d=facebookmail.com",
            )
        )
    else:
        choice = st.one_of(encoded_word(), _small_text, st.just("x" * 1200))
    value = draw(choice)
    # Header values cannot carry bare line breaks without ending the header: keep it one line.
    return value.replace("\r", " ").replace("\n", " ")


def _split(raw: bytes) -> tuple[list[bytes], bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        if sep in raw:
            head, body = raw.split(sep, 1)
            break
    else:
        head, body = raw, b""
    lines: list[bytes] = []
    for line in head.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b"\r\n" + line
        else:
            lines.append(line)
    return lines, body


def _join(lines: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _encode(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


@st.composite
def hostile_mail(draw: st.DrawFn) -> bytes:
    """Raw bytes of a mutated corpus or regression message (see the module docstring)."""
    raw = draw(st.sampled_from(SEEDS))
    lines, body = _split(raw)
    for _ in range(draw(st.integers(0, 8))):
        op = draw(
            st.sampled_from(
                (
                    "replace",
                    "add",
                    "drop",
                    "duplicate",
                    "mime",
                    "cte",
                    "flip",
                    "insert",
                    "cut",
                    "repeat",
                    "nest",
                    "html",
                    "raw_header",
                )
            )
        )
        if op in ("replace", "add"):
            name = draw(st.sampled_from(HEADER_NAMES))
            value = _header_value(draw, name)
            new = _encode(f"{name}: {value}")
            index = next(
                (
                    i
                    for i, line in enumerate(lines)
                    if line.lower().startswith(name.lower().encode())
                ),
                None,
            )
            if op == "replace" and index is not None:
                lines[index] = new
            else:
                lines.insert(draw(st.integers(0, len(lines))), new)
        elif op == "drop" and lines:
            del lines[draw(st.integers(0, len(lines) - 1))]
        elif op == "duplicate" and lines:
            line = lines[draw(st.integers(0, len(lines) - 1))]
            lines.insert(draw(st.integers(0, len(lines))), line)
        elif op == "mime":
            value = _header_value(draw, "Content-Type")
            lines = [x for x in lines if not x.lower().startswith(b"content-type:")]
            lines.append(_encode(f"Content-Type: {value}"))
        elif op == "cte":
            lines = [x for x in lines if not x.lower().startswith(b"content-transfer-encoding:")]
            lines.append(
                _encode(f"Content-Transfer-Encoding: {draw(st.sampled_from(TRANSFER_ENCODINGS))}")
            )
        elif op == "flip" and body:
            pos = draw(st.integers(0, len(body) - 1))
            body = body[:pos] + bytes([draw(st.integers(0, 255))]) + body[pos + 1 :]
        elif op == "insert":
            pos = draw(st.integers(0, len(body)))
            body = body[:pos] + draw(st.binary(max_size=64)) + body[pos:]
        elif op == "cut" and body:
            body = body[: draw(st.integers(0, len(body)))]
        elif op == "repeat" and body and len(body) < 100_000:
            body = body * draw(st.integers(2, 10))
        elif op == "nest":
            depth = draw(st.integers(1, 60))
            boundary = draw(st.sampled_from(("b", "", "same", "--", "b\u00e4")))
            inner_type = draw(st.sampled_from(CONTENT_TYPES))
            head = b""
            tail = b""
            for level in range(depth):
                mark = _encode(boundary if boundary in ("", "same", "--") else f"{boundary}{level}")
                head += b'--%s\r\nContent-Type: multipart/mixed; boundary="%s"\r\n\r\n' % (
                    mark,
                    mark,
                )
                tail = b"--%s--\r\n" % mark + tail
            body = head + _encode(f"--x\r\nContent-Type: {inner_type}\r\n\r\n") + body + tail
            lines = [x for x in lines if not x.lower().startswith(b"content-type:")]
            lines.append(b'Content-Type: multipart/mixed; boundary="b0"')
        elif op == "html":
            depth = draw(st.integers(0, 3000))
            tag = draw(st.sampled_from(("div", "a href='http://x.example/'", "table", "p", "b")))
            link = draw(
                st.sampled_from(
                    (
                        "https://www.facebook.com/privacy",
                        "javascript:alert(1)",
                        "http://facebookmail.com.example.net/x",
                        "http://f\u0430cebook.com/",
                        "https://[::1]:80/",
                        "http://%zz/",
                        "http://a\nb/",
                        "data:text/html,hi",
                        "//no-scheme.example/",
                        "https:\r\nINFO status forged -> accepted\r\n",
                    )
                )
            )
            html = (
                f"<html><head><title>t</title><script>x</script></head><body>"
                f"<!-- c --><a href='{link}'>l</a>" + f"<{tag}>" * depth + "text</body></html>"
            )
            body = _encode(html) + body[:2000]
            lines = [x for x in lines if not x.lower().startswith(b"content-type:")]
            lines.append(
                _encode(f'Content-Type: text/html; charset="{draw(st.sampled_from(CHARSETS))}"')
            )
        elif op == "raw_header":
            lines.insert(draw(st.integers(0, len(lines))), draw(st.binary(max_size=100)))
    return _join(lines, body)
