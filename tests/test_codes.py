"""What looks like a verification code, and masking: one pattern for the store, logs and
notifications (watcher/codes.py)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_corpus import CORPUS

from watcher.codes import looks_like_code, mask_code, mask_codes_in


@pytest.mark.parametrize(
    "text",
    [
        "270615 ist dein Bestätigungscode",
        "Your code is 552288.",  # a code ending a sentence
        "Dein Code: 552 288",  # grouped with a space
        "code 664,411, valid for an hour",  # grouped with a comma
        "Código 1234\u00a05678",  # grouped with a no-break space
        "12345678",
    ],
)
def test_code_like_numbers_are_found_and_masked(text: str) -> None:
    assert looks_like_code(text)
    masked = mask_codes_in(text)
    assert not looks_like_code(masked.replace("*", ""))
    assert sum(ch.isdigit() for ch in masked) < sum(ch.isdigit() for ch in text)


@pytest.mark.parametrize(
    "text",
    [
        "amount 1.234.567",  # part of a longer number
        "pi is 3,14159265",
        "123456789 is too long",
        "Order 1234567.89",
        "on 2024-06-03 at 10:00",
        "12345 is too short",
        "Datenschutzrichtlinie 2024-2025",  # a year range, not a grouped code
        "valid 2024-06-03",
    ],
)
def test_other_numbers_are_not_code_like(text: str) -> None:
    assert not looks_like_code(text)
    assert mask_codes_in(text) == text


def test_masking_keeps_the_first_two_digits_and_the_separators() -> None:
    assert mask_code("482913") == "48****"
    assert mask_code(None) is None
    assert mask_codes_in("552 288 is your code") == "55* *** is your code"
    assert mask_codes_in("Your code is 552288.") == "Your code is 55****."


# Every shape a code takes in Meta's and look-alike mail (issue 12, item 4).
SHAPES = ["enter 731946.", "552 288", "664,411", "731-946", "1234\u00a05678", "48291377"]


def _digits(shape: str) -> str:
    return "".join(ch for ch in shape if ch.isdigit())


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_is_code_like_and_masked(shape: str) -> None:
    assert looks_like_code(shape)
    masked = mask_codes_in(shape)
    assert _digits(shape)[:2] in masked
    assert _digits(masked) == _digits(shape)[:2]


@pytest.mark.parametrize("where", ["subject", "text"])
@pytest.mark.parametrize("shape", SHAPES)
def test_no_shape_of_code_is_stored_or_logged_in_clear(
    tmp_path: Path, shape: str, where: str
) -> None:
    """An unrecognized Meta mail (kept as a raw copy when it holds no code) with a code in
    its subject or text: neither the database (subject, fields, raw copies) nor the output
    holds the code's digits in clear."""
    raw = (CORPUS / "unrecognized-meta-privacy-mail.eml").read_bytes()
    if where == "subject":
        raw = raw.replace(
            b"Subject: Wir bearbeiten deinen Widerspruch noch",
            f"Subject: =?utf-8?q?{_qp(shape)}?= deinen Widerspruch".encode(),
        )
    else:
        raw = raw.replace(b"Danke,", f"Danke, {shape}".encode())
    mails = tmp_path / "mails"
    mails.mkdir()
    (mails / "m.eml").write_bytes(raw)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"database": str(tmp_path / "log.sqlite3"), "trusted_authserv_ids": ["mx.home.example"]}
        )
    )
    db = str(tmp_path / "log.sqlite3")
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "scan", "--config", str(config), "--db", db, str(mails)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (1,)
        dump = "\n".join(db.iterdump())
        subject = db.execute("SELECT subject FROM messages").fetchone()[0]
    stored = dump.encode("utf-8") + _raw_copies(tmp_path / "log.sqlite3")
    for text in (stored, (done.stdout + done.stderr).encode("utf-8")):
        assert _digits(shape).encode() not in text.replace(b" ", b"").replace(b",", b"")
        assert shape.encode("utf-8") not in text
    if where == "subject":
        assert _digits(shape)[:2] in subject


def _qp(text: str) -> str:
    return "".join(ch if ch.isalnum() else f"={b:02X}" for ch in text for b in ch.encode())


def _raw_copies(db_path: Path) -> bytes:
    with sqlite3.connect(db_path) as db:
        return b"".join(bytes(r[0]) for r in db.execute("SELECT raw FROM raw_messages"))


@pytest.mark.parametrize("shape", SHAPES)
def test_the_notification_of_an_unrecognized_mail_masks_a_code_in_its_subject(shape: str) -> None:
    from watcher.config import package_file
    from watcher.notify.texts import describe_outcome
    from watcher.pipeline.process import Settings, process
    from watcher.pipeline.rules import load_rules
    from watcher.sources.base import RawMessage, SourceKey

    raw = (CORPUS / "unrecognized-meta-privacy-mail.eml").read_bytes()
    raw = raw.replace(
        b"Subject: Wir bearbeiten deinen Widerspruch noch",
        f"Subject: =?utf-8?q?{_qp(shape)}?= deinen Widerspruch".encode(),
    )
    settings = Settings(trusted_authserv_ids=("mx.home.example",))
    pack = load_rules(package_file("rules.yaml"))
    outcome = process(RawMessage(SourceKey("t", "t", "", 0, 1), raw), pack, settings)
    assert outcome.match.kind == "unrecognized"
    notice = describe_outcome(outcome, [])
    assert notice is not None
    shown = f"{notice.title}\n{notice.body}"
    assert _digits(shape)[:2] in shown
    assert _digits(shape) not in re.sub(r"[^0-9*]", "", shown)
