"""What a user sees when something is wrong: one sentence, the right exit code, no secrets."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from daemonproc import cli
from test_corpus import CORPUS

from watcher.errors import RulesError
from watcher.pipeline.message import MAX_TEXT_CHARS, parse
from watcher.pipeline.rules import read_rules_file


def account_config(tmp_path: Path, **source: str) -> Path:
    config = {
        "database": str(tmp_path / "log.sqlite3"),
        "accounts": [{"name": "home", "host": "127.0.0.1", "port": 9, "username": "u", **source}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ({"password_file": "missing-secret"}, "missing-secret does not exist"),
        ({"password_env": "META_WATCHER_TEST_UNSET_VAR"}, "META_WATCHER_TEST_UNSET_VAR is not set"),
        ({"password_command": "exit 3"}, "password_command"),
    ],
)
def test_password_source_failure_is_a_config_error(
    tmp_path: Path, source: dict[str, str], says: str
) -> None:
    done = cli("run", "--once", "--config", str(account_config(tmp_path, **source)))
    assert done.returncode == 78, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_ca_file_is_named_in_the_error(tmp_path: Path) -> None:
    path = account_config(tmp_path, password_env="X", ca_file="nope.pem")
    done = cli("check", "--config", str(path))
    assert done.returncode == 78
    assert "ca_file" in done.stderr
    assert "does not exist" in done.stderr


def test_bad_pattern_outside_a_rule_is_a_rules_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\nmeta: {sender_domains: [a.example], link_domains: [a.example]}\n"
        "topic: ['(unclosed']\n",
        encoding="utf-8",
    )
    with pytest.raises(RulesError, match=r"topic.*does not compile"):
        read_rules_file(path)


def test_code_in_the_subject_is_masked_in_the_database(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite3"
    mail = CORPUS / "en-2024-code-instagram-subject.eml"
    done = cli("scan", "--db", str(db), "--trusted-authserv-id", "mx.home.example", str(mail))
    assert done.returncode == 0, done.stderr
    assert "270615" in done.stdout  # in full at the terminal, where the user asked
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert "27****" in dump
    assert "270615" not in dump


def test_non_utf8_file_names_are_scanned_and_printed_as_valid_json(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path)
    name = folder + b"/caf\xe9.eml"
    with open(name, "wb") as handle:
        handle.write((CORPUS / "de-2024-code-facebook.eml").read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "scan", "--json", "--db", str(tmp_path / "x.db"), name],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    record = done.stdout.decode("utf-8")  # must be valid UTF-8
    assert "caf\ufffd.eml" in record


def test_scan_reports_a_bad_path_and_goes_on_with_the_others(tmp_path: Path) -> None:
    good = CORPUS / "de-2024-code-facebook.eml"
    done = cli("scan", str(tmp_path / "missing.eml"), str(good))
    assert done.returncode == 78
    assert "missing.eml does not exist" in done.stderr
    assert "verification_code" in done.stdout


def test_text_past_the_limit_is_an_error_not_a_silent_cut() -> None:
    raw = (CORPUS / "de-2024-code-facebook.eml").read_bytes() + b"x" * (MAX_TEXT_CHARS + 10)
    message = parse(raw)
    assert message.error is not None
    assert "not read in full" in message.error


def test_bytes_that_are_not_mail_are_an_error() -> None:
    assert parse(b"").error == "not an e-mail message: no header fields"
    assert parse(os.urandom(64).replace(b":", b"")).error is not None


def test_unverified_mail_is_pointed_out_by_run_and_status(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir" / "cur"
    maildir.mkdir(parents=True)
    for n, name in enumerate(["de-2024-code-facebook.eml", "de-2024-policy-facebook.eml"]):
        (maildir / f"{n}.x").write_bytes((CORPUS / name).read_bytes())
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": str(tmp_path / "log.sqlite3"),
                "local": [{"name": "files", "path": str(tmp_path / "Maildir")}],
            }
        ),
        encoding="utf-8",
    )
    run = cli("run", "--once", "--config", str(config))
    assert run.returncode == 0, run.stderr
    assert "trusted_authserv_ids is empty" in run.stderr
    status = cli("status", "--config", str(config)).stdout
    assert "No objection status yet" in status
    assert "note: 2 Meta privacy mail(s) not counted" in status
