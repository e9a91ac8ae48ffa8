"""Codes in the shapes a fresh-user trial found unread and stored in clear (trial 2, items 1
and 2): "731946." at the end of a sentence, "552 288" and "552-288", the groups split by a
no-break, narrow no-break or thin space or a typographic dash, and "7 3 1 9 4 6". Every
language's code rule extracts them as digits only; a date, phone number, year or amount is no
code; the store, the output and the raw copies hold none of them in clear."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_corpus import CORPUS

from watcher.codes import looks_like_code, mask_code, mask_codes_in
from watcher.config import package_file
from watcher.pipeline.rules import load_rules
from watcher.pipeline.rules.extract import extract
from watcher.pipeline.rules.text import normalise

# (as written in the mail, the code it stands for)
SHAPES = [
    ("731946.", "731946"),
    ("552 288", "552288"),
    ("552-288", "552288"),
    ("552\u00a0288", "552288"),  # no-break space
    ("552\u202f288", "552288"),  # narrow no-break space
    ("552\u2009288", "552288"),  # thin space
    ("552\u2013288", "552288"),  # en dash
    ("7 3 1 9 4 6", "731946"),
    ("7\u00a03\u00a01\u00a09\u00a04\u00a06", "731946"),
    ("1234 5678", "12345678"),
    ("\u0667\u0663\u0661\u0669\u0664\u0666", "731946"),  # Arabic-Indic digits
    ("\uff17\uff13\uff11\uff19\uff14\uff16", "731946"),  # fullwidth digits
]

# Numbers a code mail may hold that are not its code.
NOT_CODES = [
    "am 03.06.2025 um 10:00",  # a date
    "valid from 2025-06-03",
    "3 June 2025",
    "Hotline +49 170 1234567",  # phone numbers
    "call +1 650-543-4800",
    "Ruf an: 0800 123 456 789",
    "0800 123 456",
    "im Jahr 2025",  # a year
    "Richtlinie 2024-2025",
    "Zeitraum 2024 2025",
    "Betrag 1.234.567 EUR",  # amounts
    "Betrag 552 288 €",
    "Betrag € 552 288",
    "amount $552288",
    "1 234 567,89 €",
    "123 456,78",
    "BINANCE 150 072 EURO",
    "Suite #110-298",  # an address
    "Car for Sale, 1994 626 LX",  # a year and a model
    "CVE-2024-847123",  # an identifier
    "https://u45527679.ct.example.net/ls/click",  # part of a link
    "@Butters3388214",  # part of a name
    "Stand 20240610",  # a date written YYYYMMDD (trial 2)
    "Version 20251231",
]

_PACK = load_rules(package_file("rules.yaml"))
CODE_RULES = [r for r in _PACK.rules if "code" in r.extract]


def test_every_language_has_a_code_rule() -> None:
    assert len({r.language for r in CODE_RULES}) >= 16


@pytest.mark.parametrize(("shape", "digits"), SHAPES)
@pytest.mark.parametrize("rule", CODE_RULES, ids=lambda r: r.id)
def test_every_code_rule_extracts_every_shape_as_digits(
    rule: object, shape: str, digits: str
) -> None:
    text = normalise(f"Bestätigungscode / confirmation code:\n\n{shape}\n\nMeta Privacy")
    assert extract(rule, text, rule.language) == {"code": digits}  # type: ignore[attr-defined]
    at_start = normalise(f"{shape} confirmation code")
    assert extract(rule, at_start, rule.language) == {"code": digits}  # type: ignore[attr-defined]


@pytest.mark.parametrize("other", NOT_CODES)
@pytest.mark.parametrize("rule", CODE_RULES, ids=lambda r: r.id)
def test_a_date_phone_year_or_amount_is_not_a_code(rule: object, other: str) -> None:
    text = normalise(f"confirmation code. {other}. Meta Privacy")
    assert extract(rule, text, rule.language) == {"code": None}  # type: ignore[attr-defined]


def test_the_code_after_a_compact_date_is_taken() -> None:
    (rule,) = [r for r in CODE_RULES if r.id == "de.verification_code"]
    text = normalise("Stand 20240610. Dein Bestätigungscode: 73194655.")
    assert extract(rule, text, "de") == {"code": "73194655"}


def test_the_code_wins_over_a_phone_number_before_it() -> None:
    (rule,) = [r for r in CODE_RULES if r.id == "de.verification_code"]
    text = normalise("Hotline +49 170 1234567. Dein Bestätigungscode: 552\u202f288.")
    assert extract(rule, text, "de") == {"code": "552288"}


@pytest.mark.parametrize(("shape", "digits"), SHAPES)
def test_every_shape_is_code_like_and_masked(shape: str, digits: str) -> None:
    text = f"{shape} ist dein Bestätigungscode"
    assert looks_like_code(text)
    masked = mask_codes_in(text)
    assert "*" in masked
    assert sum(ch.isdigit() for ch in masked) == 2
    assert mask_code(digits) == digits[:2] + "*" * (len(digits) - 2)


def _scan(tmp_path: Path, raw: bytes) -> tuple[subprocess.CompletedProcess[str], Path]:
    mails = tmp_path / "mails"
    mails.mkdir()
    (mails / "m.eml").write_bytes(raw)
    db = tmp_path / "log.sqlite3"
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"database": str(db), "trusted_authserv_ids": ["mx.home.example"]})
    )
    args = ["scan", "--config", str(config), "--db", str(db), str(mails)]
    done = subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, db


def _every_text(db: Path) -> str:
    """Every text and blob column of every table, decoded, one per line."""
    out: list[str] = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        out.append(value.decode("utf-8", "replace"))
                    elif isinstance(value, str):
                        out.append(value)
    return "\n".join(out)


def _qp(text: str) -> str:
    return "".join(
        ch if ch.isascii() and ch.isalnum() else "".join(f"={b:02X}" for b in ch.encode())
        for ch in text
    )


def _clear(shape: str, digits: str, text: str) -> bool:
    """True when *text* holds the code in clear: as written, or as its digits once every
    separator is gone."""
    squeezed = "".join(ch for ch in text if not (ch.isspace() or ch in "-\u2013,."))
    return shape in text or digits in squeezed


@pytest.mark.parametrize(("shape", "digits"), SHAPES)
def test_a_code_mail_in_every_shape_is_read_and_stored_masked(
    tmp_path: Path, shape: str, digits: str
) -> None:
    """Meta's code mail with the code in the subject and the text in *shape*: `scan --db`
    records the code as its digits, masked, and no text column holds it in clear (scan's
    own output shows it in full: the user is at the terminal)."""
    raw = (CORPUS / "de-2024-code-facebook.eml").read_bytes()
    raw = raw.replace(
        b"Subject: Dein =?utf-8?q?Best=C3=A4tigungscode_f=C3=BCr?= deine Anfrage",
        f"Subject: =?utf-8?q?{_qp(shape)}_ist_dein_Best=C3=A4tigungscode?=".encode(),
    )
    raw = raw.replace(b"482913", shape.encode("utf-8"))
    assert shape.encode("utf-8") in raw
    done, db = _scan(tmp_path, raw)
    assert done.returncode in (0, 1), done.stderr
    with sqlite3.connect(db) as conn:
        kind, subject, fields = conn.execute(
            "SELECT kind, subject, fields FROM messages"
        ).fetchone()
    assert kind == "verification_code"
    assert digits[:2] + "*" * (len(digits) - 2) in fields
    assert "*" in subject
    assert f"code={digits}" in done.stdout
    assert not _clear(shape, digits, _every_text(db))


@pytest.mark.parametrize(("shape", "digits"), SHAPES)
def test_an_unrecognized_mail_with_a_code_in_every_shape_keeps_it_masked(
    tmp_path: Path, shape: str, digits: str
) -> None:
    """A Meta mail no rule knows (kept as a raw copy unless it holds a code) with a code in
    *shape* in its subject and text: subject masked, no raw copy, nothing in clear."""
    raw = (CORPUS / "unrecognized-meta-privacy-mail.eml").read_bytes()
    raw = raw.replace(
        b"Subject: Wir bearbeiten deinen Widerspruch noch",
        f"Subject: =?utf-8?q?{_qp(shape)}?= deinen Widerspruch".encode(),
    )
    raw = raw.replace(b"Danke,", f"Danke, {shape}".encode())
    done, db = _scan(tmp_path, raw)
    assert done.returncode in (0, 1), done.stderr
    with sqlite3.connect(db) as conn:
        (subject,) = conn.execute("SELECT subject FROM messages").fetchone()
    assert "*" in subject
    for text in (_every_text(db), done.stdout + done.stderr):
        assert not _clear(shape, digits, text), text
