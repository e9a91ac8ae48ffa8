"""The daemon against a real Dovecot and a real HTTP receiver behind Apprise ``json://``:
IDLE push, faults (kick, outage, target down, SIGKILL), clean SIGTERM, health, wait-code."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from daemonproc import (
    CODE_TEMPLATE,
    REPO,
    TEMPLATE_CODE,
    DaemonProcess,
    _env,
    cli,
    code_mail,
    write_config,
)
from httpreceiver import Receiver

CODE_LOG_MARK = "verification_code rule="


def codes_in(received) -> list[str]:
    out = []
    for item in received:
        words = item.title.split()
        if "verification" in words:
            out.append(words[-1])
    return out


def db_rows(tmp_path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(tmp_path / "log.sqlite3", timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def deliver_to_maildir(server, user: str, raw: bytes, n: int) -> None:
    """Put a message straight into the user's Maildir (as an MTA would), e.g. while Dovecot
    is down; owned by the mail user so Dovecot can read it."""
    maildir = server.maildir(user)
    st = os.stat(maildir)
    name = f"{int(time.time())}.M{n}P{os.getpid()}.test"
    tmp = maildir / "tmp" / name
    tmp.write_bytes(raw)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, maildir / "new" / name)


@pytest.fixture
def receiver():
    with Receiver() as rx:
        yield rx


def test_code_mail_appended_while_idling_is_notified_at_once(
    tmp_path, dovecot, dovecot_user, receiver
):
    user, password = dovecot_user
    config = write_config(tmp_path, dovecot, user, password, [receiver.url])
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        started = time.monotonic()
        dovecot.append(user, "INBOX", code_mail("731904"))
        got = receiver.wait_for(1, 10)
        took = time.monotonic() - started
        assert len(got) == 1, daemon.log()
        # poll_interval is 1h: only IDLE can have told the daemon this fast.
        assert took < 10
        assert got[0].title == "Facebook verification code 731904"
        assert "731904" in got[0].message
        assert "anna.beispiel@example.org" in got[0].message
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    log = daemon.log()
    assert "73****" in log
    assert "731904" not in log
    assert password not in log
    rows = db_rows(tmp_path, "SELECT state, secret, title FROM outbox")
    assert rows == [("sent", None, "Facebook verification code 73****")]
    assert "731904" not in (tmp_path / "log.sqlite3").read_bytes().decode("latin-1")


def test_sigterm_stops_within_5_seconds_and_health_then_fails(
    tmp_path, dovecot, dovecot_user, receiver
):
    user, password = dovecot_user
    config = write_config(tmp_path, dovecot, user, password, [receiver.url])
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        healthy = cli("health", "--config", str(config))
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert "ok: home/INBOX" in healthy.stdout
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(10)
        took = time.monotonic() - started
    assert code == 0, daemon.log()
    assert took < 5, f"took {took:.1f}s"
    assert "stopped" in daemon.log()
    after = cli("health", "--config", str(config))
    assert after.returncode == 1
    assert "FAIL: home/INBOX: stopped" in after.stdout


def test_kicked_session_reconnects_and_mail_is_processed_once(
    tmp_path, dovecot, dovecot_user, receiver
):
    user, password = dovecot_user
    config = write_config(tmp_path, dovecot, user, password, [receiver.url])
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        dovecot.append(user, "INBOX", code_mail("100001"))
        assert len(receiver.wait_for(1, 10)) == 1
        dovecot.kick(user)
        assert daemon.wait_log("reconnecting", 10), daemon.log()
        assert daemon.wait_log("idling", 20, count=2), daemon.log()
        dovecot.append(user, "INBOX", code_mail("100002"))
        got = receiver.wait_for(2, 10)
        time.sleep(1)  # anything repeated would arrive now
        assert sorted(codes_in(receiver.received)) == ["100001", "100002"], daemon.log()
        assert len(got) == 2
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    assert db_rows(tmp_path, "SELECT count(*) FROM messages") == [(2,)]


def test_dovecot_outage_with_mail_arriving_meanwhile_is_caught_up_once(
    tmp_path, dovecot, dovecot_user, receiver
):
    user, password = dovecot_user
    config = write_config(tmp_path, dovecot, user, password, [receiver.url])
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        dovecot.append(user, "INBOX", code_mail("200001"))
        assert len(receiver.wait_for(1, 10)) == 1
        dovecot.stop()
        try:
            assert daemon.wait_log("reconnecting", 10), daemon.log()
            deliver_to_maildir(dovecot, user, code_mail("200002"), 1)
            deliver_to_maildir(dovecot, user, code_mail("200003"), 2)
            time.sleep(3)  # several failed reconnects
            down = cli("health", "--config", str(config))
            assert down.returncode == 1
            assert "reconnecting" in down.stdout
        finally:
            dovecot.start()
        got = receiver.wait_for(3, 20)
        time.sleep(1)
        assert sorted(codes_in(receiver.received)) == ["200001", "200002", "200003"], daemon.log()
        assert len(got) == 3
        assert daemon.proc is not None
        assert daemon.proc.poll() is None, "the daemon died"
        wait_until(
            lambda: cli("health", "--config", str(config)).returncode == 0, 15, "healthy again"
        )
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0


def test_notification_is_retried_while_receiver_is_down_and_delivered_once(
    tmp_path, dovecot, dovecot_user
):
    user, password = dovecot_user
    receiver = Receiver().start()
    port = receiver.port
    config = write_config(tmp_path, dovecot, user, password, [receiver.url])
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        receiver.stop()
        dovecot.append(user, "INBOX", code_mail("300001"))
        wait_until(
            lambda: db_rows(tmp_path, "SELECT attempts FROM outbox WHERE attempts >= 2"),
            30,
            "two failed delivery attempts",
        )
        assert "failed" in daemon.log()
        receiver = Receiver(port=port).start()
        try:
            got = receiver.wait_for(1, 30)
            time.sleep(2)
            assert len(receiver.received) == 1, daemon.log()
        finally:
            receiver.stop()
        assert codes_in(got) == ["300001"]
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    assert db_rows(tmp_path, "SELECT state, secret FROM outbox") == [("sent", None)]


def test_sigkill_mid_run_then_restart_loses_and_repeats_nothing(tmp_path, dovecot, dovecot_user):
    """Delivered notifications are marked sent in the database; pending ones survive the
    kill with their messages. (A delivery in flight at the very moment of the kill would be
    sent again: at-least-once; the kill here happens while the target is down.)"""
    user, password = dovecot_user
    receiver = Receiver().start()
    port = receiver.port
    config = write_config(tmp_path, dovecot, user, password, [receiver.url])
    first = [f"4000{n:02d}" for n in range(3)]
    later = [f"4001{n:02d}" for n in range(6)]
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    try:
        assert daemon.wait_log("idling", 20), daemon.log()
        for code in first:
            dovecot.append(user, "INBOX", code_mail(code))
        receiver.wait_for(3, 15)
        wait_until(
            lambda: db_rows(tmp_path, "SELECT count(*) FROM outbox WHERE state = 'sent'") == [(3,)],
            10,
            "three notifications marked sent",
        )
        receiver.stop()
        for code in later:
            dovecot.append(user, "INBOX", code_mail(code))
        wait_until(
            lambda: db_rows(tmp_path, "SELECT count(*) FROM messages")[0][0] >= 5,
            15,
            "new mail being recorded",
        )
        daemon.signal(signal.SIGKILL)
        assert daemon.wait(10) == -signal.SIGKILL
        before = list(receiver.received)
        receiver = Receiver(port=port).start()
        daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
        receiver.wait_for(len(later), 30)
        time.sleep(2)
        counts = Counter(codes_in(before + receiver.received))
        assert counts == Counter(first + later), daemon.log()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        daemon.kill()
        receiver.stop()
    assert db_rows(tmp_path, "SELECT count(*) FROM messages") == [(9,)]
    assert db_rows(tmp_path, "SELECT count(*) FROM outbox WHERE state != 'sent'") == [(0,)]


def test_polling_only_with_idle_off(tmp_path, dovecot, dovecot_user, receiver):
    user, password = dovecot_user
    config = write_config(
        tmp_path, dovecot, user, password, [receiver.url], idle=False, poll_interval="1s"
    )
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        wait_until(lambda: cli("health", "--config", str(config)).returncode == 0, 15, "first poll")
        dovecot.append(user, "INBOX", code_mail("500001"))
        got = receiver.wait_for(1, 10)
        assert codes_in(got) == ["500001"], daemon.log()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    assert "idling" not in daemon.log()


def test_idle_is_renewed_and_probed_and_still_hears_mail(tmp_path, dovecot, dovecot_user, receiver):
    user, password = dovecot_user
    config = write_config(
        tmp_path, dovecot, user, password, [receiver.url], idle_renew="1s", idle_silence="0.7s"
    )
    with DaemonProcess(config, tmp_path / "daemon.log", "-v") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        time.sleep(3.5)  # several renewals and NOOP probes
        dovecot.append(user, "INBOX", code_mail("600001"))
        got = receiver.wait_for(1, 10)
        assert codes_in(got) == ["600001"], daemon.log()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    log = daemon.log()
    assert "reconnecting" not in log
    assert log.count("silent for") >= 2, log


def test_bad_login_notifies_once_across_restarts_and_other_account_still_works(
    tmp_path, dovecot, dovecot_user, receiver
):
    user, password = dovecot_user
    bad = tmp_path / "bad-password"
    bad.write_text("Xq7-not-the-password-91\n")
    good_account = {
        "name": "home",
        "host": dovecot.host,
        "port": dovecot.port,
        "ca_file": str(dovecot.ca_file),
        "username": user,
        "password_file": str(tmp_path / f"password-{user}"),
        "timeout": "5s",
    }
    bad_account = {**good_account, "name": "broken", "password_file": str(bad)}
    config = write_config(tmp_path, dovecot, user, password, [receiver.url])
    import yaml

    data = yaml.safe_load(config.read_text())
    data["accounts"] = [bad_account, good_account]
    config.write_text(yaml.safe_dump(data))
    for run in range(2):
        with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
            assert daemon.wait_log("idling", 20, count=run + 1), daemon.log()
            assert daemon.wait_log("rejected the login", 10, count=run + 1), daemon.log()
            if run == 0:
                dovecot.append(user, "INBOX", code_mail("700001"))
                receiver.wait_for(2, 10)
            health = cli("health", "--config", str(config))
            assert health.returncode == 1
            assert "FAIL: broken/INBOX: login_failed" in health.stdout
            assert "ok: home/INBOX" in health.stdout
            time.sleep(1)
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(10) == 0
    titles = [r.title for r in receiver.received]
    assert titles.count("meta-watcher cannot log in to broken") == 1, titles
    assert codes_in(receiver.received) == ["700001"]
    assert "Xq7-not-the-password-91" not in daemon.log()


def test_wait_code_without_daemon_prints_the_code(tmp_path, dovecot, dovecot_user):
    user, password = dovecot_user
    config = write_config(tmp_path, dovecot, user, password, [])
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "watcher", "wait-code", "--config", str(config)),
            *("--timeout", "30s", "--account", "anna.beispiel@example.org"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )
    try:
        time.sleep(2)  # it is watching now
        dovecot.append(user, "INBOX", code_mail("810204"))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == "810204"
    assert "anna.beispiel@example.org" in err


def test_wait_code_with_daemon_running_and_recent_code(tmp_path, dovecot, dovecot_user, receiver):
    user, password = dovecot_user
    config = write_config(tmp_path, dovecot, user, password, [receiver.url])
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        dovecot.append(user, "INBOX", code_mail("820305"))
        receiver.wait_for(1, 10)
        done = cli("wait-code", "--config", str(config), "--timeout", "10s", timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "820305"
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0


def test_wait_code_times_out_with_exit_1(tmp_path, dovecot, dovecot_user):
    user, password = dovecot_user
    config = write_config(tmp_path, dovecot, user, password, [])
    started = time.monotonic()
    done = cli("wait-code", "--config", str(config), "--timeout", "2s", timeout=60)
    assert done.returncode == 1
    assert "no verification code" in done.stderr
    assert done.stdout == ""
    assert time.monotonic() - started < 30


def test_notify_test_command_reports_each_target(tmp_path, receiver):
    gone = Receiver().start()
    gone.stop()
    config = tmp_path / "config.yaml"
    config.write_text(
        "database: log.sqlite3\n"
        f"notify:\n  - {{url: '{receiver.url}', name: desk}}\n"
        f"  - {{url: '{gone.url}', name: phone}}\n"
    )
    done = cli("notify-test", "--config", str(config))
    assert done.returncode == 1
    assert "ok: desk (json): sent" in done.stdout
    assert "FAIL: phone (json):" in done.stdout
    assert len(receiver.wait_for(1, 5)) == 1
    assert receiver.received[0].title == "meta-watcher test notification"


def test_wait_code_says_when_an_arriving_code_mail_is_old(tmp_path, dovecot, dovecot_user):
    """Trial: a 2024 code mail put into the folder now was shown as "arrived 16:32 UTC" with
    nothing to tell it from a fresh code: its own Date is named."""
    user, password = dovecot_user
    config = write_config(tmp_path, dovecot, user, password, [])
    dovecot.append(user, "INBOX", CODE_TEMPLATE.replace(TEMPLATE_CODE, b"830406"))
    done = cli("wait-code", "--config", str(config), "--timeout", "10s", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "830406"
    assert "the mail itself is dated 2024-" in done.stderr
    assert "maybe an old code" in done.stderr
