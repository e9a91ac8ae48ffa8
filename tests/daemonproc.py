"""Helpers for the daemon tests and bench/latency: fresh Meta mails, configs, a daemon process.

The daemon always runs as a real `python -m watcher run` process, so signals (SIGTERM,
SIGKILL) hit it exactly as docker or systemd would.
Other commands run in process through :func:`run_in_process` (click's CliRunner) unless the test
is about the process itself.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result

CORPUS = Path(__file__).resolve().parent / "corpus"
REPO = Path(__file__).resolve().parent.parent
CODE_TEMPLATE = (CORPUS / "de-2024-code-facebook.eml").read_bytes()
ACCEPTED_TEMPLATE = (CORPUS / "de-2024-accepted-instagram.eml").read_bytes()
TEMPLATE_CODE = b"482913"
TRUSTED = ["mx.home.example"]


def _fresh(template: bytes, date: str | None = None) -> bytes:
    """*template* with a new Message-ID and a Date of now (so the mail is news)."""
    head, sep, body = template.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = template.partition(b"\n\n")
    lines = head.splitlines(keepends=True)
    out: list[bytes] = []
    skip = False
    for line in lines:
        if line[:1] in (b" ", b"\t") and skip:
            continue
        skip = False
        name = line.split(b":", 1)[0].lower()
        if name == b"date":
            stamp = date or email.utils.formatdate(localtime=False)
            out.append(b"Date: " + stamp.encode() + b"\r\n")
            skip = True
        elif name == b"message-id":
            out.append(f"Message-ID: <{uuid.uuid4().hex}@facebookmail.com>\r\n".encode())
            skip = True
        else:
            out.append(line)
    return b"".join(out) + sep + body


def code_mail(code: str) -> bytes:
    """A genuine-looking (authenticated by mx.home.example) Facebook verification-code mail
    for anna.beispiel@example.org carrying *code* (6 digits), dated now."""
    assert len(code) == 6
    assert code.isdigit()
    return _fresh(CODE_TEMPLATE).replace(TEMPLATE_CODE, code.encode())


def accepted_mail() -> bytes:
    """A genuine-looking "objection accepted" mail (Instagram, anna.insta@example.org)."""
    return _fresh(ACCEPTED_TEMPLATE)


def write_config(
    tmp_path: Path,
    server: Any,
    user: str,
    password: str,
    notify: list[Any],
    account: dict[str, Any] | None = None,
    **top: Any,
) -> Path:
    """Write a config for one account on the test Dovecot and return its path."""
    secret = tmp_path / f"password-{user}"
    secret.write_text(password + "\n", encoding="utf-8")
    secret.chmod(0o600)
    settings: dict[str, Any] = {
        "name": "home",
        "host": server.host,
        "port": server.port,
        "security": "tls",
        "ca_file": str(server.ca_file),
        "username": user,
        "password_file": str(secret),
        "folders": ["INBOX"],
        "timeout": "5s",
    }
    settings.update(account or {})
    config: dict[str, Any] = {
        "database": str(tmp_path / "log.sqlite3"),
        "trusted_authserv_ids": TRUSTED,
        "accounts": [settings],
        "notify": notify,
        "poll_interval": "1h",
        "heartbeat_interval": "2s",
        "reconnect_max": "2s",
    }
    config.update(top)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "META_WATCHER_CONFIG"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m watcher ARGS` to completion; never raises on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
        check=False,
        cwd=REPO,
    )


def run_in_process(
    *args: str | Path,
    env: Mapping[str, str | None] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
    expect: int | None = 0,
) -> Result:
    """`meta-watcher ARGS` in this process (click's CliRunner): exit code, stdout and stderr as
    a user sees them, without the ~0.3 s a new interpreter costs. For commands that need no real
    process (signals, locks and the real exit status are for :func:`cli` and DaemonProcess).

    *env* is laid over the test's environment (a value of None removes the variable;
    ``META_WATCHER_CONFIG`` is always removed, as in :func:`cli`); *cwd* is the working folder
    for the call. A bug (an exception that is not SystemExit) propagates with its traceback.
    With *expect* set, a different exit code fails the test, showing the output.
    """
    from watcher.cli import main

    # The command points the root logger at the runner's stderr; put the test's handlers back.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with contextlib.chdir(cwd or Path.cwd()):
            result = CliRunner().invoke(
                main,
                [str(a) for a in args],
                env={"META_WATCHER_CONFIG": None, **(env or {})},
                input=stdin,
                catch_exceptions=False,
            )
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    if expect is not None:
        assert result.exit_code == expect, (
            f"meta-watcher {' '.join(map(str, args))}: exit {result.exit_code}, not {expect}\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


class DaemonProcess:
    """`meta-watcher run --config PATH` in the background, stderr to a file."""

    def __init__(self, config: Path, log_path: Path, *extra: str) -> None:
        self.config = config
        self.log_path = log_path
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        with open(self.log_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "--config", str(self.config), *self.extra],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                env=_env(),
                cwd=REPO,
            )
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, needle: str, timeout: float, count: int = 1) -> bool:
        """Wait until *needle* appears *count* times in the log (False on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(needle) >= count:
                return True
            if self.proc is not None and self.proc.poll() is not None:
                return self.log().count(needle) >= count
            time.sleep(0.05)
        return False

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        """Exit status, or None when still running after *timeout* seconds."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
