"""What a person sees, found wrong by a fresh-user trial (trial 2, items 3 and 4):
``rules test`` printed a mail's controls and bidi characters raw on its Subject:, From: and
Mail: lines; the sanitiser kept the marks LRM, RLM and ALM and the line and paragraph
separators; ``report -o`` said the file name twice; ``outbox retry/drop`` of an unknown id
exited as a config error without naming the ids there are."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_corpus import CORPUS

from watcher.shown import csv_cell, for_person, md_code
from watcher.store.rows import OutboxItem
from watcher.store.store import Store

# C0 but tab and newline, DEL, C1, bidi embeddings/overrides/isolates, the implicit marks
# LRM, RLM and ALM, and the line and paragraph separators.
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
MARKS = "\u200e\u200f\u061c"
HOSTILE_SUBJECT = (
    "Dein Einspruch \u202e\u202dgnat\x1b[31mROT\x1b[0m\x07\r\x08 \u2066x\u2069 "
    f"{MARKS}links\u2028zeile\u2029absatz"
)
HOSTILE_NAME = "Insta\u202egram\u200f\u2066\u061c"


def _mw(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_WATCHER")}
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def _b64(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode('utf-8')).decode()}?="


def _hostile_mail() -> bytes:
    raw = (CORPUS / "de-2024-accepted-instagram.eml").read_bytes()
    raw = re.sub(
        rb"(?m)^Subject:.*(?:\r?\n[ \t].*)*$",
        f"Subject: {_b64(HOSTILE_SUBJECT)}".encode(),
        raw,
        count=1,
    )
    raw = re.sub(rb"(?m)^From: [^<\r\n]*<", f"From: {_b64(HOSTILE_NAME)} <".encode(), raw, count=1)
    assert HOSTILE_SUBJECT.encode() not in raw  # encoded, as a sender would
    return raw


@pytest.mark.parametrize("ch", list(MARKS))
def test_for_person_removes_the_implicit_bidi_marks(ch: str) -> None:
    assert for_person(f"a{ch}b") == "ab"
    assert md_code(f"a{ch}b") == "`ab`"
    assert csv_cell(f"{ch}=1+1") == "'=1+1"


@pytest.mark.parametrize("ch", ["\u2028", "\u2029"])
def test_for_person_turns_line_and_paragraph_separators_into_a_space(ch: str) -> None:
    assert for_person(f"line{ch}next") == "line next"


def test_for_person_keeps_scripts_and_emoji() -> None:
    text = (
        "Widerspruch \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9 🙂\tx\ny"
    )
    assert for_person(text) == text


def test_rules_test_shows_subject_sender_and_file_name_without_controls(tmp_path: Path) -> None:
    name = "mail\x1b[2J\u202e\u200f\x07lmx.eml"
    try:
        (tmp_path / name).write_bytes(_hostile_mail())
    except OSError:  # pragma: no cover - a file system refusing the name
        pytest.fail("the test needs a file system that allows control characters in names")
    done = _mw("rules", "test", str(tmp_path / name))
    assert done.returncode in (0, 1), done.stderr
    lines = {
        label: next(line for line in done.stdout.splitlines() if line.lstrip().startswith(label))
        for label in ("Mail:", "From:", "Subject:")
    }
    for label, line in lines.items():
        assert not FORBIDDEN.search(line), (label, line)
    assert "gnat" in lines["Subject:"]
    assert "zeile absatz" in lines["Subject:"]
    assert "Insta" in lines["From:"]
    assert "gram" in lines["From:"]
    assert "lmx.eml" in lines["Mail:"]
    assert not FORBIDDEN.search(done.stdout + done.stderr)


def test_report_formats_show_no_bidi_mark_or_line_separator(tmp_path: Path) -> None:
    mails = tmp_path / "mails"
    mails.mkdir()
    (mails / "m.eml").write_bytes(_hostile_mail())
    db = tmp_path / "log.sqlite3"
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"database": str(db), "trusted_authserv_ids": ["mx.home.example"]})
    )
    _mw("scan", "--config", str(config), "--db", str(db), str(mails))
    for fmt in ("md", "html", "csv", "json"):
        done = _mw("report", "--config", str(config), "--format", fmt)
        assert done.returncode == 0, done.stderr
        assert "gnat" in done.stdout, fmt
        assert not FORBIDDEN.search(done.stdout), (fmt, FORBIDDEN.findall(done.stdout))
    # JSON writes a control character as an escape (\u001b): the values hold none either.
    data = json.loads(_mw("report", "--config", str(config), "--format", "json").stdout)
    values = list(_strings(data))
    assert any("gnat" in v for v in values)
    for value in values:
        assert not FORBIDDEN.search(value), value


def _strings(data: object) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def _db_config(tmp_path: Path, items: list[OutboxItem]) -> Path:
    db = tmp_path / "log.sqlite3"
    with Store.open(db) as store:
        store.add_notifications(items)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"database": str(db)}))
    return config


def test_report_to_a_file_that_cannot_be_written_is_one_plain_sentence(tmp_path: Path) -> None:
    config = _db_config(tmp_path, [])
    done = _mw("report", "--config", str(config), "-o", "/proc/nope.md")
    assert done.returncode == 78
    (line,) = done.stderr.strip().splitlines()
    assert line.count("/proc/nope.md") == 1, line
    assert line.count("cannot be written") == 1, line
    assert line.count("(") <= 1, line


@pytest.mark.parametrize("command", ["retry", "drop"])
def test_outbox_unknown_id_is_bad_usage_and_names_the_ids(tmp_path: Path, command: str) -> None:
    config = _db_config(
        tmp_path,
        [
            OutboxItem("code:1", "phone", "verification_code", "Facebook code 48****", "b"),
            OutboxItem("policy:1", "phone", "policy_update", "Facebook: AI from 26 June", "b"),
        ],
    )
    done = _mw("outbox", command, "999", "--config", str(config))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "999" in line
    assert re.search(r"\b1, 2\b", line), line


@pytest.mark.parametrize("command", ["retry", "drop"])
def test_outbox_unknown_id_of_an_empty_outbox_says_so(tmp_path: Path, command: str) -> None:
    config = _db_config(tmp_path, [])
    done = _mw("outbox", command, "999", "--config", str(config))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "999" in line
    assert "empty" in line


@pytest.mark.parametrize(
    "hidden",
    ["\u200b", "\u2060", "\ufeff", "\u00ad", "\u034f", "\u180e", "\u3164", "\U000e0041", "\u2062"],
)
def test_invisible_characters_inside_a_word_are_removed(hidden: str) -> None:
    """ "Face<ZWSP>book" must not read as "Facebook" while being another string (trial 2)."""
    assert for_person(f"Face{hidden}book") == "Facebook"


def test_joiners_that_scripts_and_emoji_need_stay() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert for_person(family) == family
    assert for_person(persian) == persian


@pytest.mark.parametrize(
    ("name", "starts"),
    [("r.html", "<!DOCTYPE html"), ("r.HTM", "<!DOCTYPE html"), ("r.json", "{"), ("r.md", "#")],
)
def test_report_format_follows_the_output_extension(tmp_path: Path, name: str, starts: str) -> None:
    """Trial 2: `report -o rep.html` wrote Markdown."""
    config = _db_config(tmp_path, [])
    target = tmp_path / name
    done = _mw("report", "--config", str(config), "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert target.read_text(encoding="utf-8").lstrip().startswith(starts)
    forced = _mw("report", "--config", str(config), "-o", str(target), "--format", "csv")
    assert forced.returncode == 0, forced.stderr
    assert not target.read_text(encoding="utf-8").lstrip().startswith(("<", "{", "#"))
