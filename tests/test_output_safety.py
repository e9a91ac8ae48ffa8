"""What a hostile mail can make a person see (issue 12, item 6): a look-alike's Subject carrying
a spreadsheet formula, Markdown links and images, terminal escapes (ESC, BEL, C1 CSI) and bidi
overrides. CSV cells never start a formula, Markdown shows mail values as code, and no control
or bidi override reaches the report, status, scan output, log or a notification."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_corpus import CORPUS

from watcher.shown import csv_cell, for_person, md_code

HOSTILE = (
    '=HYPERLINK("https://evil.example/x","Klick") [Widerspruch](https://evil.example/a) '
    "![i](https://evil.example/p.png) <img src=https://evil.example/q> https://evil.example/b "
    "www.evil.example `tick` | pipe \x1b]8;;https://evil.example\x07link\x1b]8;;\x07 "
    "\x1b[2J\x9b31m\u202eevil\u202c \u2066iso\u2069 \x7f\x85 "
    "Wir aktualisieren unsere Datenschutzrichtlinie, da wir KI bei Meta ausweiten."
)
# C0 but tab and newline, DEL, C1, and the bidi embeddings, overrides and isolates.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _mw(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return done


@pytest.fixture
def hostile_db(tmp_path: Path) -> Path:
    raw = (CORPUS / "spoof-display-name-lookalike-domain.eml").read_bytes()
    encoded = base64.b64encode(HOSTILE.encode("utf-8")).decode()
    raw = re.sub(
        rb"(?m)^Subject:\r?\n .*$",
        f"Subject: =?utf-8?b?{encoded}?=".encode(),
        raw,
        count=1,
    )
    mails = tmp_path / "mails"
    mails.mkdir()
    (mails / "lookalike.eml").write_bytes(raw)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {"database": str(tmp_path / "log.sqlite3"), "trusted_authserv_ids": ["mx.home.example"]}
        )
    )
    _mw("scan", "--config", str(config), "--db", str(tmp_path / "log.sqlite3"), str(mails))
    return config


def _outside_code_spans(md: str) -> str:
    return re.sub(r"(`+)(.+?)\1", "", md)


def test_report_formats_show_no_formula_link_image_or_control(hostile_db: Path) -> None:
    out = {
        fmt: _mw("report", "--config", str(hostile_db), "--format", fmt).stdout
        for fmt in ("md", "html", "csv", "json")
    }
    for fmt, text in out.items():
        assert "evil.example" in text, fmt  # the subject is there...
        assert not FORBIDDEN.search(text), (fmt, FORBIDDEN.findall(text))  # ...defused
    # CSV: no cell starts a formula (OWASP CSV injection); the subject is kept, quoted.
    rows = list(csv.reader(io.StringIO(out["csv"])))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert any(cell.startswith("'=HYPERLINK(") for row in rows for cell in row)
    # Markdown: mail values are code spans; outside them no link, image, HTML or URL.
    assert "evil.example" not in _outside_code_spans(out["md"])
    assert "](" not in _outside_code_spans(out["md"])
    # JSON keeps the value (minus controls) for machines.
    data = json.loads(out["json"])
    subjects = [m["subject"] for a in data["accounts"] for m in a["mails"]]
    assert any(s.startswith('=HYPERLINK("https://evil.example/x"') for s in subjects)


def test_status_scan_log_and_notification_show_no_control(hostile_db: Path, tmp_path: Path) -> None:
    mails = str(tmp_path / "mails")
    for args in (
        ("status", "--config", str(hostile_db)),
        ("log", "--config", str(hostile_db)),
        ("--log-format", "json", "-v", "scan", "--config", str(hostile_db), mails),
        ("-v", "scan", "--config", str(hostile_db), mails),
        ("-v", "scan", "--json", "--config", str(hostile_db), mails),
    ):
        done = _mw(*args)
        shown = done.stdout + done.stderr
        assert not FORBIDDEN.search(shown), (args, FORBIDDEN.findall(shown))

    from watcher.config import package_file
    from watcher.notify.texts import describe_outcome
    from watcher.pipeline.process import Settings, process
    from watcher.pipeline.rules import load_rules
    from watcher.sources.base import RawMessage, SourceKey

    raw = (tmp_path / "mails" / "lookalike.eml").read_bytes()
    outcome = process(
        RawMessage(SourceKey("t", "t", "", 0, 1), raw),
        load_rules(package_file("rules.yaml")),
        Settings(trusted_authserv_ids=("mx.home.example",)),
    )
    assert outcome.suspicious
    assert FORBIDDEN.search(outcome.message.subject)  # the parser keeps them: defused on output
    notice = describe_outcome(outcome, [])
    assert notice is not None
    assert "evil.example" in notice.body
    assert not FORBIDDEN.search(notice.title + notice.body)


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\r=1", "\x1b=1"])
def test_csv_cells_that_could_start_a_formula_get_a_quote(cell: str) -> None:
    # CR and ESC are removed first (for_person), so what follows them is checked.
    assert csv_cell(cell).startswith("'")
    assert csv_cell("Dein Code") == "Dein Code"
    assert csv_cell("\rx") == "x"


def test_for_person_removes_controls_and_bidi_and_keeps_text() -> None:
    hostile = "a\x1b[31mb\x07c\x9bd\u202ee\u2067f\r\n\tg"
    assert for_person(hostile) == "a[31mbcdef\n\tg"
    assert for_person("Bestätigung – 日本 ✓") == "Bestätigung – 日本 ✓"


@pytest.mark.parametrize("value", ["plain", "a`b", "``x``", "`start", "end`", "a|b", ""])
def test_md_code_is_one_code_span_whatever_the_backticks(value: str) -> None:
    span = md_code(value)
    if not value:
        assert span == " "
        return
    fence = re.match(r"`+", span)
    assert fence is not None
    assert span.endswith(fence.group(0))
    inner = span[len(fence.group(0)) : -len(fence.group(0))]
    assert fence.group(0) not in inner.strip()
    assert inner.strip(" ").replace("\\|", "|") == value
