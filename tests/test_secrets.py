"""Secrets and data: TLS verification stays on, files are private, a known password and a known
notification token never leak into a log line, the database, an error message or a
notification; verification codes are masked everywhere except the notification the user asked
for and `scan`'s terminal output; the mailbox is never modified (the IMAP commands the watcher
sends are checked through the fault proxy).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import daemonproc
import pytest
import yaml
from daemonproc import REPO, DaemonProcess, _env, code_mail
from dovecot import DovecotServer
from faultproxy import FaultProxy, wait_until
from httpreceiver import Receiver

PASSWORD = "Kn0wn Pa55 w0rd+7Q"  # a space forces imapclient to quote it
TOKEN = "T0kenSecret9x"  # in the notification URL, as ntfy/gotify tokens are
CODE = "583016"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**_env(), **(env or {})},
        check=False,
        cwd=REPO,
    )
    return done


def secret_forms(secret: str) -> list[bytes]:
    """The secret as bytes, and as it would look base64-encoded in an AUTHENTICATE PLAIN line
    or a Basic auth header."""
    raw = secret.encode()
    forms = [raw, base64.b64encode(raw)]
    forms += [base64.b64encode(b"\0" + u + b"\0" + raw) for u in (b"anna", b"user")]
    forms += [base64.b64encode(b"notify:" + raw)]
    return forms


def assert_clean(where: str, data: bytes | str, *secrets: str) -> None:
    blob = data.encode() if isinstance(data, str) else data
    for secret in secrets:
        for form in secret_forms(secret):
            assert form not in blob, f"{secret!r} leaked into {where}"


def db_bytes(directory: Path) -> bytes:
    """The database and its WAL, as bytes."""
    out = b""
    for path in directory.glob("log.sqlite3*"):
        out += path.read_bytes()
    return out


@pytest.fixture
def known(dovecot: DovecotServer) -> Iterator[str]:
    """A Dovecot user whose password is PASSWORD."""
    name = f"known{os.getpid()}x{len(dovecot.passwords)}"
    dovecot.add_user(name, PASSWORD)
    yield name
    dovecot.kick(name)


def write_config(
    tmp_path: Path,
    server: DovecotServer,
    user: str,
    notify: list[str],
    password: str = PASSWORD,
    account: dict[str, Any] | None = None,
    **top: Any,
) -> Path:
    return daemonproc.write_config(
        tmp_path,
        server,
        user,
        password,
        notify,
        account={"timeout": "2s", **(account or {})},
        **{"reconnect_max": "1s", "login_retry": "1s", **top},
    )


# ----------------------------------------------------------------- the known password


def test_known_password_and_token_never_leak_across_the_scenarios(
    dovecot: DovecotServer, known: str, tmp_path: Path
) -> None:
    """Every scenario runs with debug logging; afterwards every log line, every error
    message, the database (and its WAL), the outbox and every notification is searched for
    the password and the notification token (also base64-encoded)."""
    dovecot.append(known, "INBOX", code_mail(CODE))
    outputs: list[tuple[str, str]] = []

    def keep(name: str, done: Any) -> Any:
        outputs.append((name, done.stdout + done.stderr))
        return done

    with Receiver() as rx:
        url = rx.url.replace("json://", f"json://notify:{TOKEN}@")
        # 1. check, run --once, status, log, report, health with -v (imapclient debug lines).
        config = write_config(tmp_path, dovecot, known, [url])
        for args in (
            ["-v", "check"],
            ["-v", "run", "--once"],
            ["status"],
            ["log"],
            ["-v", "report"],
            ["health"],
            ["-v", "notify-test"],
        ):
            done = keep(" ".join(args), cli(*args, "--config", str(config)))
            if args[-1] in ("check", "--once"):
                assert done.returncode == 0, done.stderr
        assert wait_until(lambda: any(CODE in r.title for r in rx.received), 10)
        # 2. The daemon through the fault proxy (plain IMAP: the password crosses the proxy):
        #    resets during LOGIN and FETCH, a stalled reply, a kicked session.
        with FaultProxy((dovecot.host, dovecot.starttls_port)) as proxy:
            daemon_dir = tmp_path / "daemon"
            daemon_dir.mkdir()
            account = {"host": "127.0.0.1", "port": proxy.port, "security": "none"}
            dconfig = write_config(daemon_dir, dovecot, known, [url], account=account)
            proxy.arm(r"^\S+ LOGIN ", "reset", times=1)
            proxy.arm(r"UID FETCH .*BODY\.PEEK\[\]", "reset", after_bytes=300)
            proxy.arm(r"UID FETCH .*BODY\.PEEK\[\]", "stall", seconds=3)
            with DaemonProcess(dconfig, daemon_dir / "daemon.log", "-v") as daemon:
                assert daemon.wait_log("idling", 30), daemon.log()
                dovecot.kick(known)
                assert daemon.wait_log("idling", 30, count=2), daemon.log()
                daemon.signal(signal.SIGTERM)
                assert daemon.wait(15) == 0
            outputs.append(("daemon", daemon.log()))
            commands = proxy.commands
        # 3. A wrong password on the server: the one in the config must not be echoed.
        wrong_dir = tmp_path / "wrong"
        wrong_dir.mkdir()
        other = f"other{os.getpid()}"
        dovecot.add_user(other, "a different password")
        wconfig = write_config(wrong_dir, dovecot, other, [url])
        done = keep("wrong password", cli("-v", "run", "--once", "--config", str(wconfig)))
        assert done.returncode == 75
        with DaemonProcess(wconfig, wrong_dir / "daemon.log") as daemon:
            assert daemon.wait_log("rejected the login", 30), daemon.log()
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(15) == 0
        outputs.append(("daemon, wrong password", daemon.log()))
        # 4. Secret sources that fail: the password must not appear in their error either.
        for source in (
            {"password_command": f"echo '{PASSWORD}'; exit 3"},
            # (The command's stderr is passed through on purpose: gpg and pass prompt there.)
            {"password_command": "echo 'gpg: decryption failed' >&2; exit 2"},
            {"password_env": "META_WATCHER_TEST_UNSET_VARIABLE"},
        ):
            sdir = tmp_path / f"source{len(outputs)}"
            sdir.mkdir()
            sconfig = write_config(sdir, dovecot, known, [url])
            data = yaml.safe_load(sconfig.read_text())
            del data["accounts"][0]["password_file"]
            data["accounts"][0].update(source)
            sconfig.write_text(yaml.safe_dump(data))
            done = keep(f"source {source}", cli("-v", "run", "--once", "--config", str(sconfig)))
            assert done.returncode != 0
        # 5. The password written where it does not belong in the config.
        bad = tmp_path / "bad.yaml"
        for text in (
            f"accounts:\n- name: a\n  host: h\n  username: u\n  password: '{PASSWORD}'\n",
            f"accounts:\n- name: a\n  host: h\n  username: u\n  port: '{PASSWORD}'\n"
            "  password_env: X\n",
            f"notify: [{{url: 'json://notify:{TOKEN}@127.0.0.1/', events: [nope]}}]\n",
        ):
            bad.write_text(text)
            done = keep("bad config", cli("check", "--config", str(bad)))
            assert done.returncode == 78
        # 6. The notification target down: its error must not name the token.
        rx.stop()
        dovecot.append(known, "INBOX", code_mail("690417"))
        done = keep("target down", cli("-v", "run", "--once", "--config", str(config)))
        notes = json.dumps([r.payload for r in rx.received])

    for name, text in outputs:
        assert_clean(f"the output of {name}", text, PASSWORD, TOKEN)
    assert_clean("the notifications", notes, PASSWORD, TOKEN)
    for directory in (tmp_path, tmp_path / "daemon", tmp_path / "wrong"):
        assert_clean(f"the database in {directory}", db_bytes(directory), PASSWORD, TOKEN)
    # The proxy saw LOGIN go by; it keeps commands without their arguments.
    assert "LOGIN" in commands


# ----------------------------------------------------------------- codes masked


def test_codes_are_masked_everywhere_but_the_notification_and_scan(
    dovecot: DovecotServer, known: str, tmp_path: Path
) -> None:
    subject_code = "270615"
    raw = code_mail(CODE).replace(
        b"Subject: Dein =?utf-8?q?Best=C3=A4tigungscode_f=C3=BCr?= deine Anfrage",
        f"Subject: {subject_code} ist dein Bestätigungscode".encode(),
    )
    raw = raw.replace(CODE.encode(), subject_code.encode())
    assert raw.count(subject_code.encode()) >= 2
    dovecot.append(known, "INBOX", raw)
    (tmp_path / "mail.eml").write_bytes(raw)
    with Receiver() as rx:
        config = write_config(tmp_path, dovecot, known, [rx.url])
        run = cli("-v", "run", "--once", "--config", str(config))
        assert run.returncode == 0, run.stderr
        assert wait_until(lambda: bool(rx.received), 10)
        masked = subject_code[:2] + "****"
        outputs = {
            "run": run.stdout + run.stderr,
            "status": cli("status", "--config", str(config)).stdout,
            "status --json": cli("status", "--json", "--config", str(config)).stdout,
            "log": cli("log", "--json", "--config", str(config)).stdout,
            "report": cli("report", "--config", str(config)).stdout,
        }
        scan = cli("scan", "--trusted-authserv-id", "mx.home.example", str(tmp_path / "mail.eml"))
        scan_json = cli("scan", "--json", "--trusted-authserv-id", "mx.home.example",
                        str(tmp_path / "mail.eml"))  # fmt: skip
        scan_db = cli(
            "scan",
            "--db",
            str(tmp_path / "scan.sqlite3"),
            "--trusted-authserv-id",
            "mx.home.example",
            str(tmp_path / "mail.eml"),
        )
    # Where the user asked for it: the notification and scan at the terminal.
    assert any(subject_code in r.title or subject_code in r.message for r in rx.received)
    assert subject_code in scan.stdout, scan.stdout
    assert subject_code in scan_json.stdout
    assert subject_code in scan_db.stdout
    # Everywhere else only masked.
    assert masked in outputs["run"]
    for name, text in outputs.items():
        assert subject_code not in text, f"the code is in the output of {name}:\n{text}"
    for db in (tmp_path / "log.sqlite3", tmp_path / "scan.sqlite3"):
        blob = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
        assert subject_code.encode() not in blob, f"the code is stored in {db}"
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    try:
        assert conn.execute("SELECT subject, fields FROM messages").fetchall() == [
            (f"{masked} ist dein Bestätigungscode", json.dumps({"code": masked}))
        ]
        assert conn.execute("SELECT secret FROM outbox").fetchall() == [(None,)]
    finally:
        conn.close()


# ----------------------------------------------------------------- TLS and files


def test_tls_verification_cannot_be_turned_off(
    dovecot: DovecotServer, known: str, tmp_path: Path
) -> None:
    """There is no setting that disables certificate checks: a server whose certificate is
    not trusted is refused (even on loopback), plain IMAP is refused for non-loopback hosts,
    and keys that would turn verification off are rejected as unknown."""
    config = write_config(tmp_path, dovecot, known, [], account={"ca_file": None})
    done = cli("run", "--once", "--config", str(config))
    assert done.returncode == 75
    assert "certificate is not trusted" in done.stderr
    for extra, message in (
        (
            {"security": "none", "host": "imap.example.net", "port": 143},
            "only allowed for a loopback",
        ),
        ({"tls_verify": False}, "unknown key"),
        ({"verify": False}, "unknown key"),
        ({"insecure": True}, "unknown key"),
        ({"ssl_verify": "none"}, "unknown key"),
    ):
        config = write_config(tmp_path, dovecot, known, [], account=extra)
        done = cli("check", "--config", str(config))
        assert done.returncode == 78, (extra, done.stdout, done.stderr)
        assert message in done.stderr, (extra, done.stderr)


def test_database_lock_and_config_files_are_created_0600(
    dovecot: DovecotServer, known: str, tmp_path: Path
) -> None:
    old = os.umask(0o022)  # a typical umask: without care, files would be world-readable
    try:
        dovecot.append(known, "INBOX", code_mail(CODE))
        (tmp_path / "w").mkdir()
        config = write_config(tmp_path / "w", dovecot, known, [])
        done = cli("run", "--once", "--config", str(config))
        assert done.returncode == 0, done.stderr
        init_config = tmp_path / "init" / "config.yaml"
        init = cli(
            "init",
            "--config",
            str(init_config),
            "--address",
            "anna@example.org",
            "--host",
            "imap.example.org",
            "--password-file",
            str(tmp_path / "w" / "password"),
        )
        assert init.returncode == 0, init.stdout + init.stderr
    finally:
        os.umask(old)
    files = sorted(p for p in (tmp_path / "w").glob("log.sqlite3*"))
    names = {p.name for p in files}
    assert {"log.sqlite3", "log.sqlite3.lock"} <= names, names
    for path in [*files, init_config]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}"
