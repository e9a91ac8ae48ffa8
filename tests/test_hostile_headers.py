"""Header decoding is linear and bounded (issue 12, item 2).

``email.header.decode_header`` is quadratic in the number of RFC 2047 encoded-words: a Subject
of 100,000 of them (a 1.4 MB mail from a Meta sender, which the IMAP search fetches) took
11.7 s, and headers were decoded in full even for a mail over ``max_message_bytes``. Now each
header value is cut to MAX_HEADER_CHARS, at most MAX_ENCODED_WORDS words are decoded, word by
word, and the header block itself is read up to MAX_HEADER_BYTES; each cut is a defect.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from watcher.pipeline.headers import MAX_ENCODED_WORDS, MAX_HEADER_CHARS, decode_encoded_words
from watcher.pipeline.message import MAX_HEADER_BYTES, parse

# Runs in a fresh interpreter: the time and the peak RSS are those of one parse alone.
_MEASURE = """
import json, sys, time
from watcher.pipeline.message import parse

def peak_rss_kb():
    # VmHWM, not getrusage's ru_maxrss: Linux carries the forking parent's peak into
    # ru_maxrss across exec, so a large pytest process would show as this child's peak.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")
words, limit = int(sys.argv[1]), sys.argv[2]
subject = " ".join(["=?utf-8?q?ab?="] * words)
raw = (
    "From: Facebook <security@facebookmail.com>\\r\\nTo: anna@example.org\\r\\n"
    f"Subject: {subject}\\r\\nMessage-ID: <x@facebookmail.com>\\r\\n\\r\\nHallo\\r\\n"
).encode()
start = time.perf_counter()
message = parse(raw, int(limit) if limit != "-" else None)
seconds = time.perf_counter() - start
print(json.dumps({
    "bytes": len(raw), "seconds": seconds, "subject": message.subject,
    "defects": list(message.defects), "error": message.error,
    "rss_kb": peak_rss_kb(),
}))
"""


def measure(words: int, max_bytes: int | None = None) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(words), str(max_bytes or "-")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("max_bytes", [None, 1_000])
def test_100000_encoded_words_decode_in_bounded_time(max_bytes: int | None) -> None:
    """1.4 MB subject of 100,000 encoded-words: < 150 MB peak RSS in a subprocess, at most
    MAX_ENCODED_WORDS decoded (11.7 s before, and quadratic; bench/hostile_headers.py prints
    the times); the mail over the size limit (max_bytes=1000) too. The subprocess timeout is
    the hang guard: no timing is asserted."""
    result = measure(100_000, max_bytes)
    assert 1_400_000 < int(str(result["bytes"])) < 1_600_000
    assert int(str(result["rss_kb"])) < 150_000
    subject = str(result["subject"])
    # Decoded word by word: "ab" each, the white space between encoded-words dropped.
    assert subject.startswith("ab" * 100)
    assert "=?" not in subject[: 2 * MAX_ENCODED_WORDS]
    defects = " ".join(str(d) for d in list(result["defects"]))  # type: ignore[call-overload]
    assert f"Subject: over {MAX_HEADER_CHARS} characters" in defects, defects


def test_encoded_word_count_is_bounded() -> None:
    value = " ".join(["=?utf-8?q?ab?="] * (MAX_ENCODED_WORDS + 50))
    defects: list[str] = []
    decoded = decode_encoded_words(value, defects, "Subject")
    assert decoded.startswith("ab" * MAX_ENCODED_WORDS)
    assert decoded[2 * MAX_ENCODED_WORDS :].lstrip().startswith("=?utf-8?q?ab?=")
    assert defects == [f"Subject: over {MAX_ENCODED_WORDS} encoded-words; the rest not decoded"]


def test_header_block_over_the_bound_is_not_read_past_it() -> None:
    """A header block of MAX_HEADER_BYTES and more (tiny header lines, which the email
    package reads at about 16 us each) is cut: the body is not read and the mail says why."""
    lines = b"X-Filler: a\r\n" * (MAX_HEADER_BYTES // 13 + 1000)
    raw = b"From: a@example.net\r\nSubject: big\r\n" + lines + b"\r\nbody\r\n"
    message = parse(raw)
    assert message.from_addr == "a@example.net"
    assert message.subject == "big"
    assert message.error == f"header block over {MAX_HEADER_BYTES} bytes: body not read"
    assert message.text == ""


@pytest.mark.parametrize(
    ("value", "decoded"),
    [
        ("=?utf-8?b?w6Q=?= =?utf-8?b?w7Y=?=", "äö"),
        # One character split over two words (RFC 2047 §5 forbids it; mailers do it).
        ("=?utf-8?q?=C3?= =?utf-8?q?=A4?=", "ä"),
        ("Hallo =?utf-8?q?W=C3=B6rld?= !", "Hallo Wörld !"),
        ("=?iso-8859-1?q?a_b?=", "a b"),
        ("=?ISO-8859-1?Q?=E4?= =?utf-8?q?=C3=B6?=", "äö"),
        ("=?utf-8*de?q?Gr=C3=BC=C3=9Fe?=", "Grüße"),  # RFC 2231 language suffix
        ("a=?utf-8?q?b?=c", "abc"),  # as email.header reads it
        ("=?utf-8?q?a?=  \t =?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        ("no words here", "no words here"),
        ("=?utf-8?q?=ZZ?=", "=ZZ"),  # a broken escape stays as written
        # One bad base64 word does not hide the good ones around it.
        ("=?utf-8?b?QQ==?= =?utf-8?b?!!!?= =?utf-8?b?Qg==?=", "A =?utf-8?b?!!!?= B"),
        ("=?x-klingon?q?Wir?= =?x-unknown?b?S0k=?=", "WirKI"),
        ("=?unicode-1-1-utf-7?q?f+APw-r?=", "für"),
        ("=?punycode?q?abc-?=", "abc-"),  # no mail charset: read as UTF-8
        # White space inside the text: not allowed by RFC 2047, written by senders, read by
        # email.header.
        ("=?ASCII?Q?-Bezorging-van.NL .HFQDXIO?=", "-Bezorging-van.NL .HFQDXIO"),
    ],
)
def test_words_decode_like_rfc_2047(value: str, decoded: str) -> None:
    assert decode_encoded_words(value, [], "Subject") == decoded


def test_decoding_agrees_with_the_email_package_on_ordinary_headers() -> None:
    """Differential check on well-formed values: the result is what email.header gives."""
    import email.header

    values = [
        "=?utf-8?q?Wir_aktualisieren?= =?utf-8?q?_unsere_Datenschutzrichtlinie?=",
        "Re: =?iso-8859-1?q?Gr=FC=DFe?= aus =?utf-8?b?S8O2bG4=?=",
        "=?windows-1252?q?=93Hallo=94_=80?=",
        "plain ascii subject",
    ]
    for value in values:
        expected = str(email.header.make_header(email.header.decode_header(value)))
        assert decode_encoded_words(value, [], "Subject") == expected


_SHAPES = """
import json, sys, time
from watcher.pipeline.message import parse
shapes = {
    "spaces": "a" + " " * 1_000_000 + "b",
    "tabs and breaks": "a" + "\\t \\r\\n " * 200_000 + "b",
    "parentheses": "(" * 1_000_000,
    "quotes": '"' * 1_000_000,
    "angle brackets": "<" * 1_000_000,
    "at signs": "@" * 1_000_000,
    "commas": ", " * 500_000,
}
worst = {}
for name, value in shapes.items():
    for header in ("From", "To", "Subject", "Date", "Authentication-Results"):
        raw = f"{header}: {value}\\r\\nMessage-ID: <x@example.net>\\r\\n\\r\\nbody\\r\\n".encode()
        start = time.perf_counter()
        parse(raw)
        worst[f"{name} in {header}"] = time.perf_counter() - start
print(json.dumps(worst))
"""


def test_one_megabyte_header_of_any_shape_parses_in_bounded_time() -> None:
    """White space runs made the unfolding regex backtrack quadratically (16,000 spaces: 7 s;
    35 such parses would take minutes): with the value cut and unfolded line by line all 35
    finish within the subprocess timeout, the hang guard (bench/hostile_headers.py prints
    the time of each); no timing is asserted."""
    done = subprocess.run(
        [sys.executable, "-c", _SHAPES], capture_output=True, text=True, timeout=120, check=True
    )
    times: dict[str, float] = json.loads(done.stdout)
    assert len(times) == 35
