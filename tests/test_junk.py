"""Spam folders (issue 14.1) against the real Dovecot fixture, whose ``Junk`` folder carries
the RFC 6154 ``\\Junk`` special-use attribute: a code mail delivered only to Junk is
recorded, notified "in Spam" and found by wait-code while the config says ``folders:
[INBOX]``; ``junk: false`` opts out."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from daemonproc import REPO, DaemonProcess, _env, cli, code_mail, write_config
from httpreceiver import Receiver

from watcher.sources.base import looks_like_junk


@pytest.fixture
def receiver():
    with Receiver() as rx:
        yield rx


def test_provider_names_for_spam_folders_are_recognised():
    for name in ("Spam", "Junk", "Junk-E-Mail", "Spamverdacht", "[Gmail]/Spam", "INBOX.Junk"):
        assert looks_like_junk(name), name
    for name in ("INBOX", "Sent", "Meta/Spamfilter-Regeln", "Archive"):
        assert not looks_like_junk(name), name


def test_code_mail_only_in_junk_is_recorded_notified_and_found(
    tmp_path, dovecot, dovecot_user, receiver
):
    user, password = dovecot_user
    dovecot.create_folder(user, "Junk")
    config = write_config(tmp_path, dovecot, user, password, [receiver.url], poll_interval="2s")
    assert "Junk" not in config.read_text()  # the config names only INBOX
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        dovecot.append(user, "Junk", code_mail("640217"))
        got = receiver.wait_for(1, 20)
        assert len(got) == 1, daemon.log()
        assert got[0].title == "Facebook verification code 640217 (in Spam)"
        assert "Spam folder" in got[0].message
        assert "mark it as not spam" in got[0].message
        done = cli("wait-code", "--config", str(config), "--timeout", "10s", timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "640217"
        assert "Spam folder" in done.stderr
        assert "/Junk" in done.stderr
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    conn = sqlite3.connect(tmp_path / "log.sqlite3")
    try:
        rows = conn.execute("SELECT folder, kind FROM messages").fetchall()
    finally:
        conn.close()
    assert rows == [("Junk", "verification_code")]
    status = cli("status", "--config", str(config))
    assert status.returncode == 0, status.stderr
    assert "found in Spam (home/Junk)" in status.stdout
    assert "mark it as not spam" in status.stdout


def test_wait_code_watches_junk_and_says_so(tmp_path, dovecot, dovecot_user):
    user, password = dovecot_user
    dovecot.create_folder(user, "Junk")
    config = write_config(tmp_path, dovecot, user, password, [])
    proc = subprocess.Popen(
        [*(sys.executable, "-m", "watcher", "wait-code", "--config", str(config)), "--timeout=30s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )
    try:
        time.sleep(2.5)  # it is watching now
        dovecot.append(user, "Junk", code_mail("551903"))
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == "551903"
    assert "Spam folder" in err


def test_junk_false_opts_out_and_giving_up_names_the_folders(tmp_path, dovecot, dovecot_user):
    user, password = dovecot_user
    dovecot.create_folder(user, "Junk")
    dovecot.append(user, "Junk", code_mail("330456"))
    on = write_config(tmp_path, dovecot, user, password, [])
    done = cli("wait-code", "--config", str(on), "--timeout", "3s", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "330456"

    off = tmp_path / "off"
    off.mkdir()
    config = write_config(off, dovecot, user, password, [], account={"junk": False})
    done = cli("wait-code", "--config", str(config), "--timeout", "2s", timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "watched: home/INBOX)" in done.stderr
    assert "valid for about an hour" in done.stderr
    run = cli("run", "--once", "--config", str(config))
    assert run.returncode == 0, run.stderr
    conn = sqlite3.connect(off / "log.sqlite3")
    try:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    finally:
        conn.close()
