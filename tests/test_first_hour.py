"""Issue 13, the first hour of a new user: init keeps a hand-edited config, status says what to
do next, folder names, TLS to a plain port, the outbox, and the small things a trial hit.

CLI tests run in process (click's CliRunner); IMAP tests against the Dovecot fixture."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from dovecot import DovecotServer
from httpreceiver import Receiver

from watcher.cli import main
from watcher.errors import SecretError
from watcher.progress import configure as configure_progress
from watcher.sources import secrets
from watcher.store.rows import OutboxItem
from watcher.store.schema import MIGRATIONS
from watcher.store.store import Store


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    """``meta-watcher ARGS`` in this process; the exit code and output as a user sees them."""
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


# -- 2. init edits the YAML round-trip, wherever the keys are ------------------------------

HAND_EDITED = """\
# my meta-watcher config
trusted_authserv_ids: ["mail.example.net"]  # my server

accounts:
  # the first one
  - name: "fb@posteo.de"
    host: "posteo.de"
    port: 993
    security: tls
    username: "fb@posteo.de"
    password_command: "pass show fb"
    folders: ["INBOX"]

# added later, as the README's Notifications section shows
notify:
  - url: "json://127.0.0.1:9/hook"   # my receiver
    name: "phone"
"""


def test_init_adds_accounts_before_a_notify_block_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(HAND_EDITED, encoding="utf-8")
    for address in ("insta@posteo.de", "wa@posteo.de"):
        done = run_cli("init", "--config", str(path), "--address", address, "--password-env", "PW")
        assert done.exit_code == 0, done.output
        assert f"Added account {address}" in done.output
    text = path.read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert [a["name"] for a in config["accounts"]] == [
        "fb@posteo.de",
        "insta@posteo.de",
        "wa@posteo.de",
    ]
    assert config["notify"] == [{"url": "json://127.0.0.1:9/hook", "name": "phone"}]
    assert config["accounts"][2]["password_env"] == "PW"
    # Every comment the user wrote is still there, in order, and the keys keep their order.
    for line in HAND_EDITED.splitlines():
        if "#" in line:
            assert line.split("#", 1)[1] in text, line
    assert list(config) == ["trusted_authserv_ids", "accounts", "notify"]
    assert text.index("# added later") > text.index("wa@posteo.de")
    assert "Posteo" in text.split("insta@posteo.de")[0].rsplit("fb@posteo.de", 1)[1]


def test_init_turns_an_empty_flow_list_into_accounts_and_adds_the_preset_authserv_id(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("accounts: []\n# keep me\nnotify: []\n", encoding="utf-8")
    done = run_cli(
        "init", "--config", str(path), "--address", "anna@gmail.com", "--oauth2-client-id", "cid"
    )
    assert done.exit_code == 0, done.output
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert [a["name"] for a in config["accounts"]] == ["anna@gmail.com"]
    assert config["trusted_authserv_ids"] == ["mx.google.com"]
    assert "Added mx.google.com to trusted_authserv_ids" in done.output
    assert "# keep me" in path.read_text(encoding="utf-8")


def test_ruamel_is_imported_by_one_module_only() -> None:
    root = Path(__file__).resolve().parents[1] / "watcher"
    users = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "ruamel" in p.read_text(encoding="utf-8").split('"""', 2)[-1]
    )
    assert users == ["config/yamledit.py"]


# -- 9. status: a NEXT STEP column ---------------------------------------------------------

CORPUS = Path(__file__).parent / "corpus"


def _later_copy(name: str, tmp_path: Path, date: str, message_id: str) -> Path:
    """Corpus mail *name* re-sent: a new Date and Message-ID (the signature is not checked;
    the trusted Authentication-Results header vouches for it, as in the corpus)."""
    raw = (CORPUS / name).read_bytes()
    head, sep, body = raw.partition(b"\n\n")
    lines = []
    for line in head.split(b"\n"):
        if line.lower().startswith(b"date:"):
            line = b"Date: " + date.encode() + (b"\r" if line.endswith(b"\r") else b"")
        elif line.lower().startswith(b"message-id:"):
            line = b"Message-ID: " + message_id.encode() + (b"\r" if line.endswith(b"\r") else b"")
        lines.append(line)
    path = tmp_path / f"later-{name}"
    path.write_bytes(b"\n".join(lines) + sep + body)
    return path


def _status_db(tmp_path: Path, *mails: Path) -> Path:
    db = tmp_path / "log.sqlite3"
    done = run_cli(
        "scan", "--db", str(db), "--trusted-authserv-id", "mx.home.example", *map(str, mails)
    )
    assert done.exit_code == 0, done.output
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {db}\naccounts: []\n", encoding="utf-8")
    return config


def test_status_says_what_to_do_next_for_every_status(tmp_path: Path) -> None:
    config = _status_db(
        tmp_path,
        *(
            CORPUS / name
            for name in (
                "de-2024-policy-facebook.eml",  # anna: policy, then code
                "de-2024-code-facebook.eml",
                "en-2024-policy-facebook.eml",  # ben: policy, rejected
                "en-2024-rejected-facebook.eml",
                "fr-2025-policy-facebook.eml",  # claire: notified, form link
                "es-2025-accepted-facebook.eml",  # lucia: accepted
                "de-2024-accepted-instagram.eml",
            )
        ),
    )
    done = run_cli("status", "--json", "--config", str(config))
    assert done.exit_code == 0, done.output
    steps = {(r["account"], r["platform"]): r["next_step"] for r in json.loads(done.output)}
    anna = steps[("anna.beispiel@example.org", "facebook")]
    assert anna == "enter the code (arrived 2024-06-03 18:02 UTC) in the objection form"
    ben = steps[("ben.sample@example.net", "facebook")]
    assert "object again with reasons" in ben
    assert "data protection authority" in ben
    assert "meta-watcher report" in ben
    claire = steps[("claire.exemple@example.fr", "facebook")]
    assert claire.startswith("object ")
    assert "https://www.facebook.com/help/contact/" in claire
    assert steps[("lucia.ejemplo@example.es", "facebook")] == "nothing"
    assert steps[("anna.insta@example.org", "instagram")] == "nothing"
    table = run_cli("status", "--config", str(config)).output
    assert table.splitlines()[0].split()[-2:] == ["NEXT", "STEP"]
    assert "enter the code (arrived 2024-06-03 18:02 UTC)" in table


def test_status_notified_names_the_effective_date_and_info_requested_asks_for_answers(
    tmp_path: Path,
) -> None:
    config = _status_db(
        tmp_path,
        CORPUS / "en-2024-policy-facebook.eml",
        CORPUS / "en-2024-third-party-info-requested.eml",
        CORPUS / "de-2024-policy-facebook.eml",
    )
    done = run_cli("status", "--json", "--config", str(config))
    steps = {r["account"]: r for r in json.loads(done.output)}
    assert steps["ben.sample@example.net"]["status"] == "info_requested"
    assert steps["ben.sample@example.net"]["next_step"].startswith("answer Meta's questions")
    anna = steps["anna.beispiel@example.org"]
    assert anna["status"] == "notified"
    # 2024-06-26 is past: the step says so and still points to the form.
    assert anna["next_step"].startswith(
        "the effective date 2024-06-26 has passed: object anyway via "
    )


def test_status_shows_the_time_of_a_newer_code_mail(tmp_path: Path) -> None:
    newer = _later_copy(
        "de-2024-code-facebook.eml",
        tmp_path,
        "Mon, 03 Jun 2024 13:30:00 -0700",
        "<newer-code@facebookmail.com>",
    )
    config = _status_db(
        tmp_path,
        CORPUS / "de-2024-policy-facebook.eml",
        CORPUS / "de-2024-code-facebook.eml",
        newer,
    )
    done = run_cli("status", "--config", str(config))
    line = next(x for x in done.output.splitlines() if "anna.beispiel" in x)
    assert "code_received" in line
    assert "newest code (arrived 2024-06-03 20:30 UTC; first code 2024-06-03 18:02 UTC)" in line


# -- 5. folder names: INBOX in any case, a missing folder is a config error everywhere ------


def _dovecot_config(
    tmp_path: Path, dovecot: DovecotServer, user: str, password: str, **acct: Any
) -> Path:
    secret = tmp_path / "password"
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    account = {
        "name": "home",
        "host": dovecot.host,
        "port": dovecot.port,
        "ca_file": str(dovecot.ca_file),
        "username": user,
        "password_file": str(secret),
        "timeout": "10s",
        **acct,
    }
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "trusted_authserv_ids": ["mx.home.example"],
                "database": str(tmp_path / "log.sqlite3"),
                "accounts": [account],
            }
        ),
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def test_inbox_in_any_case_is_accepted_by_check_and_run_alike(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    for folder in ("Junk", "Sent", "Meta mails"):
        dovecot.create_folder(user, folder)
    config = _dovecot_config(tmp_path, dovecot, user, password, folders=["inbox"])
    done = run_cli("check", "--config", str(config))
    assert done.exit_code == 0, done.output
    # Every folder with its RFC 6154 special-use attribute (the fixture's Dovecot marks them).
    assert "Junk (\\Junk)" in done.output
    assert "Sent (\\Sent)" in done.output
    assert "Meta mails," in done.output or done.output.rstrip().endswith("Meta mails")
    assert "4 folders:" in done.output
    done = run_cli("run", "--once", "--config", str(config))
    assert done.exit_code == 0, done.output


def test_a_missing_folder_is_a_config_error_in_check_and_run_with_the_closest_names(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    for folder in ("Junk", "Sent"):
        dovecot.create_folder(user, folder)
    config = _dovecot_config(tmp_path, dovecot, user, password, folders=["INBOX", "junk"])
    done = run_cli("check", "--config", str(config))
    assert done.exit_code == 1
    assert "folder 'junk' does not exist" in done.output
    assert "did you mean 'Junk'?" in done.output
    done = run_cli("run", "--once", "--config", str(config))
    assert done.exit_code == 78, done.output
    assert "folder 'junk' does not exist" in done.output
    assert "did you mean 'Junk'?" in done.output
    config = _dovecot_config(tmp_path, dovecot, user, password, folders=["Sentt"])
    done = run_cli("run", "--once", "--config", str(config))
    assert done.exit_code == 78, done.output
    assert "did you mean 'Sent'?" in done.output


# -- 6. TLS to a plain IMAP port -----------------------------------------------------------


def test_tls_to_the_plain_imap_port_says_to_use_starttls_or_993(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    config = _dovecot_config(
        tmp_path, dovecot, user, password, port=dovecot.starttls_port, security="tls"
    )
    done = run_cli("check", "--config", str(config))
    assert done.exit_code == 1
    line = next(x for x in done.output.splitlines() if x.startswith("FAIL"))
    assert "the TLS handshake failed (WRONG_VERSION_NUMBER)" in line
    assert f"port {dovecot.starttls_port} speaks plain IMAP" in line
    assert "security: starttls" in line
    assert "port 993" in line
    # And the advice works: STARTTLS on the same port logs in.
    config = _dovecot_config(
        tmp_path, dovecot, user, password, port=dovecot.starttls_port, security="starttls"
    )
    assert run_cli("check", "--config", str(config)).exit_code == 0


# -- 8. the outbox and notify-test ---------------------------------------------------------


def _outbox_config(tmp_path: Path, port: int) -> Path:
    db = tmp_path / "log.sqlite3"
    with Store.open(db) as store:
        store.add_notifications(
            [
                OutboxItem("code:1", "phone", "verification_code", "Facebook code 48****", "b"),
                OutboxItem("policy:1", "phone", "policy_update", "Facebook: AI from 26 June", "b"),
            ]
        )
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {db}\nnotify:\n  - {{url: 'json://user:t0ken-s3cret@127.0.0.1:{port}/notify',"
        " name: phone}\n",
        encoding="utf-8",
    )
    return config


def test_outbox_lists_retries_and_drops_notifications(tmp_path: Path) -> None:
    down = Receiver().start()
    port = down.port
    down.stop()  # nothing listens there now
    config = _outbox_config(tmp_path, port)
    listed = run_cli("outbox", "--config", str(config))
    assert listed.exit_code == 0, listed.output
    rows = listed.output.splitlines()
    assert rows[0].split()[:5] == ["ID", "STATE", "TARGET", "EVENT", "ATTEMPTS"]
    assert "queued" in rows[1]
    assert "phone" in rows[1]
    assert "2 notifications waiting" in listed.output

    failed = run_cli("outbox", "retry", "--config", str(config))
    assert failed.exit_code == 1, failed.output
    assert "sent 0, failed 1" in failed.output
    assert "FAIL: 1 to phone:" in failed.output
    listed = run_cli("outbox", "--config", str(config)).output
    first = next(x for x in listed.splitlines() if x.startswith("1 "))
    assert "failing" in first
    assert " 1 " in first  # one attempt
    assert "t0ken-s3cret" not in listed + failed.output

    dropped = run_cli("outbox", "drop", "2", "--config", str(config))
    assert dropped.exit_code == 0, dropped.output
    assert run_cli("outbox", "drop", "2", "--config", str(config)).exit_code == 2
    assert run_cli("outbox", "drop", "9", "--config", str(config)).exit_code == 2

    with Receiver(port=port) as up:
        sent = run_cli("outbox", "retry", "1", "--config", str(config))
        assert sent.exit_code == 0, sent.output
        assert "sent 1, failed 0" in sent.output
        assert [r.title for r in up.wait_for(1, 5)] == ["Facebook code 48****"]
    listed = run_cli("outbox", "--config", str(config)).output
    assert "dropped with meta-watcher outbox drop" in listed
    assert not any(x.startswith("1 ") for x in listed.splitlines())  # delivered: gone
    assert any(
        x.startswith("1 ") and "sent" in x
        for x in run_cli("outbox", "--all", "--config", str(config)).output.splitlines()
    )


def test_notify_test_names_the_target_and_the_reason_without_secrets(tmp_path: Path) -> None:
    down = Receiver().start()
    down.stop()
    config = _outbox_config(tmp_path, down.port)
    done = run_cli("notify-test", "--config", str(config))
    assert done.exit_code == 1
    assert "FAIL: phone (json):" in done.output
    reason = done.output.split("FAIL: phone (json):", 1)[1].strip()
    assert reason
    assert "t0ken-s3cret" not in done.output


# -- 10. small ones ------------------------------------------------------------------------


def test_scan_reads_a_folder_of_plain_eml_files_sorted_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    names = {
        "c-accepted.eml": "es-2025-accepted-facebook.eml",
        "a-policy.eml": "de-2024-policy-facebook.eml",
        "b-code.EML": "de-2024-code-facebook.eml",
    }
    for name, corpus_name in names.items():
        (folder / name).write_bytes((CORPUS / corpus_name).read_bytes())
    (folder / "notes.txt").write_text("not mail")
    done = run_cli("scan", "--trusted-authserv-id", "mx.home.example", str(folder))
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert [line.split(":", 1)[0].rsplit("/", 1)[1] for line in lines] == sorted(names)
    assert ": policy_update " in lines[0]
    assert ": verification_code " in lines[1]
    assert ": objection_accepted " in lines[2]
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_cli("scan", str(empty))
    assert done.exit_code == 78
    assert "neither a Maildir" in done.output


def test_wait_code_durations_name_the_option_and_since_0s_means_from_now(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    config = _dovecot_config(tmp_path, dovecot, user, password)
    for option, value in (("--since", "-5m"), ("--timeout", "0s"), ("--timeout", "soon")):
        done = run_cli("wait-code", "--config", str(config), option, value)
        assert done.exit_code == 2, done.output
        assert f"Invalid value for '{option}'" in done.output
    # An old code mail is in the INBOX: --since 0s ignores it, so the wait times out.
    dovecot.append(user, "INBOX", (CORPUS / "de-2024-code-facebook.eml").read_bytes())
    done = run_cli(
        "wait-code",
        "--config",
        str(config),
        "--since",
        "0s",
        "--timeout",
        "2s",
        "--account",
        "anna.beispiel@example.org",
    )
    assert done.exit_code == 1, done.output
    assert "no verification code for anna.beispiel@example.org arrived within 2s" in done.output
    # The default --since (10m) takes the same mail: it is only "from now" that left it out.
    done = run_cli("wait-code", "--config", str(config), "--timeout", "5s")
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "482913"


def test_wait_code_and_report_name_the_known_accounts_for_an_unknown_address(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    config = _dovecot_config(tmp_path, dovecot, user, password)
    db = tmp_path / "log.sqlite3"
    scanned = run_cli(
        "scan",
        "--db",
        str(db),
        "--trusted-authserv-id",
        "mx.home.example",
        str(CORPUS / "de-2024-policy-facebook.eml"),
    )
    assert scanned.exit_code == 0, scanned.output
    done = run_cli(
        "wait-code", "--config", str(config), "--timeout", "1s", "--account", "anna@typo.example"
    )
    assert done.exit_code == 1
    assert "anna@typo.example is not a config account and no recorded mail names it" in done.stderr
    assert "known: anna.beispiel@example.org, home" in done.stderr
    done = run_cli("report", "--config", str(config), "--account", "anna@typo.example")
    assert "no Meta privacy mail recorded for anna@typo.example" in done.stderr
    assert "known accounts: anna.beispiel@example.org" in done.stderr


def test_a_hanging_password_command_is_announced_and_its_timeout_names_the_option(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(secrets, "WAIT_NOTICE_SECONDS", 0.3)
    monkeypatch.setattr(secrets, "COMMAND_TIMEOUT_SECONDS", 1.5)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(SecretError) as failed:
        secrets.from_command("sleep 30", "account home")
    assert time.monotonic() - started < 10
    assert "account home: password_command did not finish within 1 s" in str(failed.value)
    waiting = [r.getMessage() for r in caplog.records if "waiting for" in r.getMessage()]
    assert waiting == [
        "account home: waiting for password_command to print the password (is it asking for "
        "a passphrase or an unlock?); giving up after 1 s"
    ]
    caplog.clear()
    assert secrets.from_command("echo pw", "account home") == "pw"  # quick: no notice
    assert not caplog.records


def test_check_warns_about_a_config_or_password_file_others_can_read(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    config = _dovecot_config(tmp_path, dovecot, user, password)
    done = run_cli("check", "--config", str(config))
    assert done.exit_code == 0, done.output
    assert "readable by" not in done.output
    config.chmod(0o644)
    (tmp_path / "password").chmod(0o640)
    done = run_cli("check", "--config", str(config))
    assert done.exit_code == 0, done.output  # a warning, not a failure
    assert (
        f"warning: config file {config} is readable by everyone (mode 0644): chmod 600 {config}"
    ) in done.output
    assert (
        f"warning: account home: password_file {tmp_path / 'password'} is readable by its group"
    ) in done.output


def test_a_new_database_logs_one_line_not_one_per_migration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "new.sqlite3"
    with caplog.at_level(logging.INFO, logger="watcher.store"):
        Store.open(path).close()
        Store.open(path).close()  # and nothing when it is already current
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [f"database {path} created (schema {len(MIGRATIONS)})"]


def test_global_options_go_before_the_command_as_the_readme_says(tmp_path: Path) -> None:
    config = _status_db(tmp_path, CORPUS / "es-2025-accepted-facebook.eml")
    before = run_cli("--config", str(config), "status")
    after = run_cli("status", "--config", str(config))
    assert before.exit_code == after.exit_code == 0, before.output
    assert "lucia.ejemplo@example.es" in before.output
    assert before.output == after.output
    # The command's own option wins over the global one.
    other = tmp_path / "other.yaml"
    other.write_text(f"database: {tmp_path / 'none.sqlite3'}\naccounts: []\n", encoding="utf-8")
    done = run_cli("--config", str(other), "status", "--config", str(config))
    assert "lucia.ejemplo@example.es" in done.output
    assert "No objection status yet" in run_cli("--config", str(other), "status").output


# -- 4. spoof protection without homework: propose the server's authserv-id ----------------

# The server's own header on top (it stamps every mail it delivers, RFC 8601 §5), a sender's
# forged ones below it.
FORGED_BELOW = (
    b"Authentication-Results: mx.home.example; spf=pass smtp.mailfrom=example.org\r\n"
    b"Authentication-Results: other.example; spf=pass smtp.mailfrom=example.org\r\n"
    b"Authentication-Results: mx.google.com; dkim=pass header.d=facebookmail.com\r\n"
    b"From: someone@example.org\r\nTo: anna@example.org\r\nSubject: hi\r\n"
    b"Message-ID: <forged-below@example.org>\r\nDate: Mon, 03 Jun 2024 10:00:00 +0000\r\n\r\n"
    b"hello\r\n"
)


def _mailbox_with_authres(dovecot: DovecotServer, user: str) -> None:
    for name in (
        "de-2024-policy-facebook.eml",
        "de-2024-code-facebook.eml",
        "fb-friend-notification.eml",
        "en-2024-policy-facebook.eml",
        "es-2025-accepted-facebook.eml",
    ):
        dovecot.append(user, "INBOX", (CORPUS / name).read_bytes())
    dovecot.append(user, "INBOX", FORGED_BELOW)


def test_check_proposes_the_authserv_id_of_the_top_most_header(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    _mailbox_with_authres(dovecot, user)
    config = _dovecot_config(tmp_path, dovecot, user, password)
    config.write_text(
        config.read_text(encoding="utf-8").replace("- mx.home.example", "- mx.elsewhere.example"),
        encoding="utf-8",
    )
    done = run_cli("check", "--config", str(config))
    assert done.exit_code == 0, done.output
    assert (
        "info: account home: INBOX: 6 of the 6 newest mails carry mx.home.example on their "
        "top-most Authentication-Results header (NOT in trusted_authserv_ids)"
    ) in done.output
    assert "proposal: trusted_authserv_ids: [mx.home.example]" in done.output
    assert "mx.google.com" not in done.output  # below the top: never proposed
    assert "other.example" not in done.output
    # Read-only: nothing was marked \Seen.
    with dovecot.client(user) as client:
        client.select_folder("INBOX", readonly=True)
        assert client.search(["SEEN"]) == []
    trusted = _dovecot_config(tmp_path, dovecot, user, password)
    done = run_cli("check", "--config", str(trusted))
    assert "info: account home: INBOX: 6 of the 6 newest mails carry mx.home.example" in done.output
    assert (
        "ok: account home: the trusted mx.home.example is on the top-most "
        "Authentication-Results header of 6 of the 6 newest mails"
    ) in done.output
    assert "proposal:" not in done.output


def test_init_logs_in_once_and_writes_the_authserv_id_when_the_user_agrees(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    _mailbox_with_authres(dovecot, user)
    secret = tmp_path / "password"
    secret.write_text(password + "\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    args = [
        "init", "--config", str(config), "--address", f"{user}@home.example",
        "--host", dovecot.host, "--port", str(dovecot.port), "--ca-file", str(dovecot.ca_file),
        "--username", user, "--password-file", str(secret), "--login",
    ]  # fmt: skip
    done = run_cli(*args, stdin="n\n")
    assert done.exit_code == 0, done.output
    assert f"Test login to {dovecot.host} as {user}: ok." in done.output
    # Six mails, all stamped: proposed, but few, so not by default (see CONFIDENT_MAILS).
    assert "mx.home.example is on the top-most Authentication-Results header" in done.output
    assert "[y/N]" in done.output
    assert yaml.safe_load(config.read_text())["trusted_authserv_ids"] in (None, [])
    config.unlink()
    done = run_cli(*args, stdin="y\n")
    assert done.exit_code == 0, done.output
    assert "Added mx.home.example to trusted_authserv_ids." in done.output
    assert yaml.safe_load(config.read_text())["trusted_authserv_ids"] == ["mx.home.example"]
    assert "# Mail servers whose Authentication-Results" in config.read_text()  # comments kept


# -- 3. interactive init for a self-hosted server ------------------------------------------


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_interactive_init_sets_up_a_self_hosted_server_and_pins_its_certificate(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path, security: str
) -> None:
    user, password = dovecot_user
    secret = tmp_path / "password"
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    config = tmp_path / "conf" / "config.yaml"
    port = dovecot.port if security == "tls" else dovecot.starttls_port
    answers = [
        dovecot.host,  # IMAP server
        security,  # Security
        str(port),  # IMAP port
        user,  # IMAP user name (default: the address)
        "y",  # pin the certificate shown
        "file",  # where the password comes from
        str(secret),
    ]
    done = run_cli(
        "init", "--config", str(config), "--address", "anna@home.example", "--no-login",
        stdin="\n".join(answers) + "\n",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "no preset for home.example" in done.output
    assert f"The TLS certificate of {dovecot.host}:{port} is not trusted" in done.output
    pinned = config.parent / f"{dovecot.host}.pem"
    der = ssl.PEM_cert_to_DER_cert(pinned.read_text(encoding="ascii"))
    digest = hashlib.sha256(der).hexdigest().upper()
    shown = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    assert f"SHA-256 fingerprint: {shown}" in done.output
    (account,) = yaml.safe_load(config.read_text(encoding="utf-8"))["accounts"]
    assert account["security"] == security
    assert account["port"] == port
    assert account["username"] == user
    assert account["ca_file"] == str(pinned.resolve())
    # The pinned certificate is what a real connection now trusts: check logs in.
    checked = run_cli("check", "--config", str(config))
    assert checked.exit_code == 0, checked.output
    assert f"ok: account anna@home.example: logged in to {dovecot.host}" in checked.output


def test_interactive_init_does_not_pin_without_consent(
    dovecot: DovecotServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    answers = [dovecot.host, "tls", str(dovecot.port), "", "n", "", "env", "PW"]
    done = run_cli(
        "init", "--config", str(config), "--address", "anna@home.example", "--no-login",
        stdin="\n".join(answers) + "\n",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "SHA-256 fingerprint:" in done.output
    (account,) = yaml.safe_load(config.read_text(encoding="utf-8"))["accounts"]
    assert "ca_file" not in account
    assert account["username"] == "anna@home.example"
    assert not list(tmp_path.glob("*.pem"))


# -- 7. progress on long work --------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _folder_with_mail(dovecot: DovecotServer, user: str, ordinary: int) -> None:
    friend = (CORPUS / "fb-friend-notification.eml").read_bytes()
    for n in range(ordinary):
        dovecot.append(
            user, "INBOX", friend.replace(b"Message-ID: <", f"Message-ID: <{n}.".encode(), 1)
        )
    dovecot.append(user, "INBOX", (CORPUS / "de-2024-policy-facebook.eml").read_bytes())


def test_run_logs_one_summary_line_per_folder_and_no_line_per_ordinary_mail(
    dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = dovecot_user
    _folder_with_mail(dovecot, user, 12)
    config = _dovecot_config(tmp_path, dovecot, user, password)
    done = run_cli("run", "--once", "--config", str(config))
    assert done.exit_code == 0, done.output
    lines = done.stderr.splitlines()
    summary = [x for x in lines if x.startswith("INFO home/INBOX: ")]
    assert len(summary) == 1, done.stderr
    assert "searched 13 new, fetched and classified 13, recorded 13 in " in summary[0]
    assert re.search(r"\(\d+/s\)$", summary[0])
    assert not [x for x in lines if " other " in x]  # ordinary mail: no line at INFO
    assert [x for x in lines if " policy_update " in x]  # Meta's mail: still one line
    # -q: neither the summary nor the closing count.
    user2 = f"{user}-q"
    dovecot.add_user(user2, password)
    _folder_with_mail(dovecot, user2, 2)
    quiet = _dovecot_config(tmp_path, dovecot, user2, password)
    quiet.write_text(
        quiet.read_text(encoding="utf-8").replace("log.sqlite3", "quiet.sqlite3"), encoding="utf-8"
    )
    done = run_cli("run", "--once", "-q", "--config", str(quiet))
    assert done.exit_code == 0, done.output
    assert done.stderr == ""


def test_progress_draws_a_bar_with_counts_rate_and_time_left_on_a_terminal() -> None:
    screen = _Terminal()
    progress = configure_progress(stream=screen)
    try:
        assert progress.bar
        folder = progress.folder("home/INBOX", 6000)
        assert folder is not None
        for _ in range(1500):
            folder.fetched()
        folder.recorded()
        folder.close()
    finally:
        configure_progress(quiet=False, stream=io.StringIO())
    drawn = screen.getvalue()
    assert "home/INBOX" in drawn
    assert "searched 6000, fetched and classified 1500, recorded 1" in drawn
    assert "mail/s" in drawn  # the rate
    assert "<" in drawn  # elapsed<left
    assert not configure_progress(quiet=True, stream=_Terminal()).folder("x", 1)
    configure_progress()


def test_scanning_the_same_mail_again_says_it_is_already_recorded(tmp_path: Path) -> None:
    """Trial: a second `scan --db` of the same files printed nothing at all."""
    db = tmp_path / "log.sqlite3"
    mails = [CORPUS / "de-2024-accepted-instagram.eml", CORPUS / "de-2024-code-facebook.eml"]
    args = ["scan", "--db", str(db), "--trusted-authserv-id", "mx.home.example"]
    first = run_cli(*args, *map(str, mails))
    assert first.exit_code == 0, first.output
    assert "objection_accepted" in first.output
    again = run_cli(*args, *map(str, mails))
    assert again.exit_code == 0, again.output
    for mail in mails:
        assert f"{mail.name}: 1 message already in {db}" in again.output
    as_json = run_cli(*args, "--json", str(mails[0]))
    assert as_json.exit_code == 0
    assert as_json.stdout.strip() == ""  # stdout stays JSON lines only; the note is on stderr
    assert "already in" in as_json.stderr


def test_wait_code_without_an_imap_account_fails_before_waiting(tmp_path: Path) -> None:
    """Trial: with only local sources it said "waiting up to 5s..." and then failed."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"database: {tmp_path / 'w.db'}\nlocal:\n  - name: mail\n    path: {tmp_path}\n",
        encoding="utf-8",
    )
    done = run_cli("wait-code", "--config", str(config), "--timeout", "5s")
    assert done.exit_code == 78
    assert "waiting up to" not in done.output
    assert "wait-code needs an IMAP account" in done.output
