"""The daemon's optional Prometheus endpoint (issue 14.4), scraped with urllib while a real
``meta-watcher run`` watches the Dovecot fixture: last successful poll per folder, login
failures, messages processed by kind, the outbox by state and IDLE reconnects. Off without
``metrics:``; a bare port listens on loopback."""

from __future__ import annotations

import copy
import re
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest
import yaml
from daemonproc import DaemonProcess, code_mail, write_config
from httpreceiver import Receiver

from watcher.daemon.metrics import parse_listen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """``name{labels}`` -> value of every sample at http://127.0.0.1:PORT/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def wait_sample(port: int, name: str, predicate, timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if name in samples and predicate(samples[name]):
            return samples
        if time.monotonic() > deadline:
            pytest.fail(f"{name} never satisfied the test; got {samples.get(name)}")
        time.sleep(0.2)


def test_metrics_endpoint_reports_polls_kinds_outbox_logins_and_reconnects(
    tmp_path, dovecot, dovecot_user
):
    user, password = dovecot_user
    port = free_port()
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n")
    with Receiver() as receiver:
        config = write_config(
            tmp_path,
            dovecot,
            user,
            password,
            [receiver.url],
            metrics=str(port),  # a bare port: loopback
        )
        # A second account whose login is rejected.
        data = yaml.safe_load(config.read_text())
        bad = dict(copy.deepcopy(data["accounts"][0]), name="bad", password_file=str(wrong))
        bad["idle"] = False
        data["accounts"].append(bad)
        data["poll_interval"] = "2s"
        config.write_text(yaml.safe_dump(data))
        with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
            assert daemon.wait_log("idling", 20), daemon.log()
            assert f"metrics: http://127.0.0.1:{port}/metrics" in daemon.log()
            before = time.time()
            dovecot.append(user, "INBOX", code_mail("612345"))
            receiver.wait_for(1, 15)
            samples = wait_sample(
                port,
                'meta_watcher_messages_processed_total{kind="verification_code"}',
                lambda v: v == 1.0,
                10,
            )
            polled = samples[
                'meta_watcher_last_successful_poll_timestamp_seconds{account="home",folder="INBOX"}'
            ]
            assert polled >= before - 1
            wait_sample(
                port, 'meta_watcher_login_failures_total{account="bad"}', lambda v: v >= 1, 15
            )
            # Sent: the code and the one "cannot log in" notice of the bad account.
            samples = wait_sample(
                port, 'meta_watcher_notifications{state="sent"}', lambda v: v == 2.0, 10
            )
            assert samples['meta_watcher_notifications{state="pending"}'] == 0.0
            assert samples['meta_watcher_notifications{state="dropped"}'] == 0.0

            dovecot.kick(user)  # the IDLE session ends: one reconnect
            wait_sample(
                port,
                'meta_watcher_idle_reconnects_total{account="home",folder="INBOX"}',
                lambda v: v >= 1,
                15,
            )
            assert daemon.wait_log("idling", 20, count=2), daemon.log()
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            assert b"612345" not in body
            assert password.encode() not in body
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(10) == 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_metrics_are_off_by_default(tmp_path, dovecot, dovecot_user):
    user, password = dovecot_user
    config = write_config(tmp_path, dovecot, user, password, [])
    with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
        assert daemon.wait_log("idling", 20), daemon.log()
        assert "idling" in daemon.log()
        assert not re.search(r"metrics: http://[^ ]+/metrics", daemon.log())
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(10) == 0


def test_listen_addresses():
    assert parse_listen("9464") == ("127.0.0.1", 9464)
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("localhost", "127.0.0.1:0", "127.0.0.1:70000", ":x"):
        with pytest.raises(ValueError, match="metrics"):
            parse_listen(bad)
