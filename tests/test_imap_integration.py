"""The main job against a real Dovecot: APPEND the corpus, run --once, read the statuses."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import daemonproc
import pytest
import yaml
from dovecot import DovecotServer
from test_corpus import CORPUS, MANIFEST

ARRIVED_AT = datetime(2024, 6, 5, 9, 0, tzinfo=UTC)
# The statuses the corpus implies (also the SQLite-only test's expectation).
EXPECTED_STATUS = {
    ("facebook", "anna.beispiel@example.org"): "accepted",
    ("instagram", "anna.insta@example.org"): "accepted",
    ("facebook", "ben.sample@example.net"): "accepted",
    ("facebook", "lucia.ejemplo@example.es"): "accepted",
    ("facebook", "claire.exemple@example.fr"): "notified",
    ("instagram", "giulia.rossi@example.it"): "notified",
    ("facebook", "firma@example.com"): "code_received",
}


def write_config(
    tmp_path: Path, server: DovecotServer, user: str, password: str, **account: Any
) -> Path:
    return daemonproc.write_config(
        tmp_path, server, user, password, notify=[], account={"timeout": "10s", **account}
    )


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = daemonproc.cli(*args)
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}: {done.stderr}")
    return done


def mailbox_state(server: DovecotServer, user: str) -> dict[str, Any]:
    """Everything the watcher must never change: folders, UIDs, flags."""
    state: dict[str, Any] = {}
    with server.client(user) as client:
        state["folders"] = sorted(str(f[2]) for f in client.list_folders())
        for folder in state["folders"]:
            client.select_folder(folder, readonly=True)
            flags = client.get_flags(client.search(["ALL"]))
            state[folder] = sorted((uid, tuple(sorted(f))) for uid, f in flags.items())
    return state


def append_corpus(server: DovecotServer, user: str, folder: str = "INBOX") -> None:
    for name in sorted(MANIFEST["messages"]):
        server.append(user, folder, (CORPUS / name).read_bytes(), msg_time=ARRIVED_AT)


def statuses(config: Path) -> dict[tuple[str, str], str]:
    rows = json.loads(cli("status", "--json", "--config", str(config)).stdout)
    return {(r["platform"], r["account"]): r["status"] for r in rows}


def db_counts(config: Path) -> tuple[int, int]:
    import sqlite3

    db = yaml.safe_load(config.read_text())["database"]
    conn = sqlite3.connect(db)
    counts = tuple(
        conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("messages", "transitions")
    )
    conn.close()
    return counts  # type: ignore[return-value]


def test_run_once_gives_corpus_statuses_and_leaves_mailbox_unchanged(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    append_corpus(dovecot, user)
    with dovecot.client(user) as client:  # some mail already read, some not
        client.select_folder("INBOX")
        client.add_flags([1, 2, 3], [b"\\Seen"])
    before = mailbox_state(dovecot, user)
    config = write_config(tmp_path, dovecot, user, password)

    cli("run", "--once", "--config", str(config))
    assert statuses(config) == EXPECTED_STATUS
    assert mailbox_state(dovecot, user) == before
    counts = db_counts(config)

    second = cli("run", "--once", "--config", str(config))
    assert db_counts(config) == counts
    assert "0 status change" in second.stderr

    # One more mail: only it is fetched and processed.
    rejected = (CORPUS / "en-2024-rejected-facebook.eml").read_bytes()
    newer = rejected.replace(b"Mon, 03 Jun 2024 11:41:09", b"Tue, 01 Oct 2024 09:00:00").replace(
        b"<9a2", b"<new9a2"
    )
    newer = newer.replace(b"Message-ID: <", b"Message-ID: <later-")
    dovecot.append(user, "INBOX", newer, msg_time=ARRIVED_AT)
    third = cli("run", "--once", "--config", str(config))
    assert "processed 1 candidate message(s): 1 recorded" in third.stderr
    assert statuses(config)[("facebook", "ben.sample@example.net")] == "rejected"
    assert db_counts(config) == (counts[0] + 1, counts[1] + 1)


def test_recreated_folder_is_rescanned_without_duplicate_transitions(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    dovecot.create_folder(user, "Meta")
    append_corpus(dovecot, user, "Meta")
    config = write_config(tmp_path, dovecot, user, password, folders=["INBOX", "Meta"])
    cli("run", "--once", "--config", str(config))
    counts = db_counts(config)
    before = statuses(config)

    dovecot.delete_folder(user, "Meta")
    dovecot.create_folder(user, "Meta")  # new UIDVALIDITY, UIDs from 1 again
    append_corpus(dovecot, user, "Meta")
    rerun = cli("run", "--once", "--config", str(config))
    assert "UIDVALIDITY changed" in rerun.stderr
    assert db_counts(config) == counts
    assert statuses(config) == before == EXPECTED_STATUS


def test_starttls_account_works_and_verifies_the_certificate(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    dovecot.append(user, "INBOX", (CORPUS / "de-2024-code-facebook.eml").read_bytes())
    config = write_config(
        tmp_path, dovecot, user, password, security="starttls", port=dovecot.starttls_port
    )
    cli("run", "--once", "--config", str(config))
    assert statuses(config) == {("facebook", "anna.beispiel@example.org"): "code_received"}

    untrusted = write_config(
        tmp_path,
        dovecot,
        user,
        password,
        security="starttls",
        port=dovecot.starttls_port,
        ca_file=None,
    )
    done = cli("run", "--once", "--config", str(untrusted), check=False)
    assert done.returncode == 75
    assert "certificate is not trusted" in done.stderr


def test_wrong_password_is_one_sentence_and_never_echoes_the_secret(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, _password = dovecot_user
    config = write_config(tmp_path, dovecot, user, "Wr0ng-Secret-42")
    done = cli("run", "--once", "--config", str(config), check=False)
    assert done.returncode == 75
    assert f"rejected the login for {user}" in done.stderr
    assert "Wr0ng-Secret-42" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_unreachable_server_exits_75_and_check_names_the_problem(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_config(tmp_path, dovecot, user, password, port=port)
    done = cli("run", "--once", "--config", str(config), check=False)
    assert done.returncode == 75
    assert "connection was refused" in done.stderr

    good = write_config(tmp_path, dovecot, user, password, folders=["INBOX", "Nope"])
    checked = cli("check", "--config", str(good), check=False)
    assert checked.returncode == 1
    assert "folder 'Nope' does not exist" in checked.stdout
    assert f"logged in to {dovecot.host}" in checked.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accounts: [{name: a, host: imap.example.org, username: u}]", "accounts[0]: Value"),
        ("poll_interval: soon", "poll_interval"),
        (
            "accounts: [{name: a, host: imap.example.org, username: u, password_env: X, "
            "security: none}]",
            "only allowed for a loopback host",
        ),
        ("bogus_key: 1", "bogus_key: unknown key"),
        ("database: [1", "is not valid YAML"),
    ],
)
def test_bad_config_exits_78_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    done = cli("run", "--once", "--config", str(path), check=False)
    assert done.returncode == 78
    assert str(path) in done.stderr
    assert message.split(":")[0] in done.stderr
    assert "Traceback" not in done.stderr
