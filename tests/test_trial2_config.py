"""Config and rules files a fresh-user trial found too lenient (trial 2, items 5 and 6): a
``poll_interval`` of 0.001 s was accepted (the daemon then logged hundreds of warnings a
second), and rules files took YAML aliases and repeated keys (a second ``decisive:`` silently
replaced the first) that the config refuses. Each is one sentence, exit 78."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.config.values import MIN_POLL_SECONDS, parse_duration
from watcher.errors import RulesError
from watcher.pipeline.rules import load_rules, rules_file_problems
from watcher.pipeline.rules.schema import read_rules_file


def _mw(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_WATCHER")}
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _config(tmp_path: Path, poll: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {tmp_path / 'db.sqlite3'}\npoll_interval: {poll}\n")
    return config


@pytest.mark.parametrize("value", ["0.001", "0.5", "0.999s", "500ms", "0s", "1e-9"])
def test_a_poll_interval_under_one_second_is_one_sentence_and_exit_78(
    tmp_path: Path, value: str
) -> None:
    done = _mw("check", "--config", str(_config(tmp_path, value)))
    assert done.returncode == 78, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "poll_interval" in line
    assert "1s" in line or "duration" in line, line


@pytest.mark.parametrize("value", ["1", "1s", "2s", "6s", "5m", "1.5"])
def test_a_poll_interval_of_one_second_or_more_is_accepted(tmp_path: Path, value: str) -> None:
    done = _mw("check", "--config", str(_config(tmp_path, value)))
    assert "poll_interval" not in done.stderr, done.stderr
    assert parse_duration(value) >= MIN_POLL_SECONDS


def test_the_minimum_is_one_second() -> None:
    assert MIN_POLL_SECONDS == 1.0


ALIAS_RULES = """
rules:
  - id: my.de.accepted
    kind: objection_accepted
    language: de
    decisive: &words ['\\bWiderspruch war erfolgreich\\b']
  - id: my.de.accepted2
    kind: objection_accepted
    language: de
    decisive: *words
"""

DUPLICATE_RULES = """
rules:
  - id: my.de.accepted
    kind: objection_accepted
    language: de
    decisive: ['\\bWiderspruch war erfolgreich\\b']
    decisive: ['\\bganz anders\\b']
"""


@pytest.mark.parametrize(
    ("text", "words"),
    [(ALIAS_RULES, ("alias", "*words", "line 10")), (DUPLICATE_RULES, ("decisive", "line 7"))],
)
def test_rules_files_refuse_aliases_and_repeated_keys(
    tmp_path: Path, text: str, words: tuple[str, ...]
) -> None:
    path = tmp_path / "my-rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as caught:
        read_rules_file(path)
    sentence = str(caught.value)
    assert sentence.startswith(f"rules file {path} ")
    for word in words:
        assert word in sentence, sentence
    (problem,) = rules_file_problems(path)
    assert problem == sentence
    checked = _mw("rules", "check", str(path))
    assert checked.returncode == 1, checked.stdout + checked.stderr  # a check failed
    assert f"FAIL: {sentence}" in checked.stdout
    mail = Path(__file__).parent / "corpus" / "de-2024-accepted-instagram.eml"
    used = _mw("rules", "test", str(mail), "--rules", str(path))
    assert used.returncode == 78, used.stdout + used.stderr
    (line,) = used.stderr.strip().splitlines()
    assert sentence in line


def test_the_same_rules_without_alias_or_repeat_load(tmp_path: Path) -> None:
    path = tmp_path / "my-rules.yaml"
    path.write_text(DUPLICATE_RULES.replace("    decisive: ['\\bganz anders\\b']\n", ""))
    assert rules_file_problems(path) == []
    from watcher.config import package_file

    pack = load_rules(package_file("rules.yaml"), (path,))
    assert any(r.id == "my.de.accepted" for r in pack.rules)


def test_the_shipped_rules_have_no_alias_or_repeated_key() -> None:
    from watcher.config import package_file

    assert rules_file_problems(package_file("rules.yaml")) == []


def test_rules_and_config_share_one_check() -> None:
    """The rules files use the config's own checks (watcher/config/files.py), not a copy."""
    from watcher.config import files
    from watcher.pipeline.rules import schema

    assert schema.refuse_aliases is files.refuse_aliases
    assert schema.refuse_duplicate_keys is files.refuse_duplicate_keys


def _account_config(tmp_path: Path, extra: str, host: str = "imap.example.org") -> Path:
    secret = tmp_path / "pw"
    secret.write_text("x\n", encoding="utf-8")
    secret.chmod(0o600)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"database: {tmp_path / 'w.db'}\n{extra}"
        f"accounts:\n  - name: home\n    host: '{host}'\n    username: anna\n"
        f"    password_file: {secret}\n",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("imap example org", "is not a host name"),
        ("imaps://imap.example.org", "is a URL"),
        ("a/b", "is not a host name"),
        ("-imap.example.org", "is not a host name"),
        ("imap.-example.org", "is not a host name"),
        ("999.1.1.1", "is not an IP address"),
        ("[::1::2]", "is not an IP address"),
    ],
)
def test_a_host_that_is_no_host_name_is_one_sentence(tmp_path: Path, host: str, why: str) -> None:
    done = _mw("check", "--config", str(_account_config(tmp_path, "", host)))
    assert done.returncode == 78, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "host" in line
    assert why in line


@pytest.mark.parametrize("host", ["imap.example.org", "127.0.0.1", "[::1]", "::1", "mäil.example"])
def test_host_names_and_addresses_are_accepted(host: str) -> None:
    from watcher.config.accounts import Account

    assert Account(name="a", host=host, username="u", password_env="PW").host == host


@pytest.mark.parametrize(
    "metrics", ["0.0.0.0:99999", "65536", "127.0.0.1:0", "localhost:abc", "999.1.1.1:9464"]
)
def test_a_metrics_port_out_of_range_is_one_sentence(tmp_path: Path, metrics: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {tmp_path / 'w.db'}\nmetrics: '{metrics}'\nlocal:\n"
        f"  - name: mail\n    path: {tmp_path}\n",
        encoding="utf-8",
    )
    done = _mw("check", "--config", str(config))
    assert done.returncode == 78, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "metrics" in line
    assert "1 to 65535" in line or "is not an IP address" in line, line


@pytest.mark.parametrize(
    ("database", "why"),
    [("/proc/x.db", "cannot be created"), ("{tmp}", "is not a file")],
)
def test_check_fails_for_a_database_run_could_not_open(
    tmp_path: Path, database: str, why: str
) -> None:
    config = tmp_path / "config.yaml"
    db = database.format(tmp=tmp_path)
    config.write_text(f"database: {db}\nlocal:\n  - name: mail\n    path: {tmp_path}\n")
    done = _mw("check", "--config", str(config))
    assert done.returncode == 1, done.stdout + done.stderr
    fail = [x for x in done.stdout.splitlines() if x.startswith("FAIL: database")]
    assert len(fail) == 1
    assert why in fail[0]


def test_check_says_ok_for_a_database_it_can_create(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    db = tmp_path / "new" / "deeper" / "w.db"
    config.write_text(
        f"database: {db}\nlocal:\n  - name: mail\n    path: {tmp_path}\n", encoding="utf-8"
    )
    done = _mw("check", "--config", str(config))
    assert f"ok: database {db}" in done.stdout, done.stdout + done.stderr
    assert not db.parent.exists()  # check only looks
