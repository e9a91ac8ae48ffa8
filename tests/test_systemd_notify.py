"""sd_notify: a real `meta-watcher run` tells a (stand-in) systemd it is ready, alive, stopping."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_corpus import CORPUS


def test_daemon_reports_ready_watchdog_and_stopping_over_notify_socket(tmp_path: Path) -> None:
    mail = tmp_path / "mail.eml"
    mail.write_bytes((CORPUS / "de-2024-code-facebook.eml").read_bytes())
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": str(tmp_path / "log.sqlite3"),
                "local": [{"name": "files", "path": str(mail)}],
                "poll_interval": "1h",
            }
        ),
        encoding="utf-8",
    )
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(1)
        env = {k: v for k, v in os.environ.items() if k != "META_WATCHER_CONFIG"}
        env.update(NOTIFY_SOCKET=address, WATCHDOG_USEC="1000000")
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        received: list[str] = []
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                any(m.startswith("READY=1") for m in received) and "WATCHDOG=1" in received
            ):
                try:
                    received.append(sock.recv(4096).decode())
                except TimeoutError:
                    continue
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "STOPPING=1" not in received:
                try:
                    received.append(sock.recv(4096).decode())
                except TimeoutError:
                    continue
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert any(m.startswith("READY=1") for m in received), stderr
    assert "WATCHDOG=1" in received
    assert "STOPPING=1" in received


def test_notify_outside_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from watcher.daemon import systemd

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "5000000")
    monkeypatch.setenv("WATCHDOG_PID", "1")  # another process's watchdog
    assert systemd.notify("READY=1") is False
    assert systemd.watchdog_seconds() is None


def test_units_wait_for_readiness_and_use_the_watchdog() -> None:
    units = Path(__file__).resolve().parent.parent / "contrib" / "systemd"
    for unit in ("meta-watcher.service", "meta-watcher-user.service"):
        lines = (units / unit).read_text(encoding="utf-8").splitlines()
        assert "Type=notify" in lines, unit
        assert any(line.startswith("WatchdogSec=") for line in lines), unit
