"""The Dovecot test server itself: TLS, STARTTLS, APPEND, kick, restart, errors."""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

import imapclient
import pytest
from dovecot import (
    INSTALL_HINT,
    DovecotError,
    DovecotNotInstalledError,
    DovecotServer,
    free_ports,
)

T = TypeVar("T")

MESSAGE = (
    b"From: Sender <sender@example.org>\r\n"
    b"To: Anna <anna@example.org>\r\n"
    b"Subject: fixture test\r\n"
    b"Message-ID: <fixture-test@example.org>\r\n"
    b"\r\n"
    b"Hello.\r\n"
)


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, what: str = "condition") -> T:
    """Poll `predicate` until truthy (returned) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_tls_login_verified_with_ca_file(
    dovecot: DovecotServer, dovecot_user: tuple[str, str]
) -> None:
    user, password = dovecot_user
    ctx = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with imapclient.IMAPClient(
        "127.0.0.1", dovecot.port, ssl=True, ssl_context=ctx, timeout=10
    ) as c:
        sock = c.socket()
        assert isinstance(sock, ssl.SSLSocket)
        cert = sock.getpeercert()
        assert cert is not None
        assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
        c.login(user, password)
        assert b"IDLE" in c.capabilities()
        assert c.select_folder("INBOX")[b"EXISTS"] == 0


def test_wrong_password_is_rejected(dovecot: DovecotServer, dovecot_user: tuple[str, str]) -> None:
    user, _ = dovecot_user
    with (
        imapclient.IMAPClient(
            "127.0.0.1", dovecot.port, ssl_context=dovecot.ssl_context(), timeout=10
        ) as c,
        pytest.raises(imapclient.exceptions.LoginError),
    ):
        c.login(user, "not-the-password")


def test_tls_without_ca_fails_verification(dovecot: DovecotServer) -> None:
    # Default context = system CAs only, which never signed our per-run CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        imapclient.IMAPClient(
            "127.0.0.1",
            dovecot.port,
            ssl=True,
            ssl_context=ssl.create_default_context(),
            timeout=10,
        )


def test_starttls_port(dovecot: DovecotServer, dovecot_user: tuple[str, str]) -> None:
    user, password = dovecot_user
    with imapclient.IMAPClient("127.0.0.1", dovecot.starttls_port, ssl=False, timeout=10) as c:
        assert not isinstance(c.socket(), ssl.SSLSocket)
        assert b"STARTTLS" in c.capabilities()
        c.starttls(dovecot.ssl_context())
        assert isinstance(c.socket(), ssl.SSLSocket)
        c.login(user, password)
        c.select_folder("INBOX")


def test_append_returns_uid_and_message_is_there(
    dovecot: DovecotServer, dovecot_user: tuple[str, str]
) -> None:
    user, _ = dovecot_user
    uid = dovecot.append(user, "INBOX", MESSAGE, flags=[rb"\Seen"])
    uid2 = dovecot.append(user, "INBOX", MESSAGE.replace(b"fixture test", b"second"))
    assert uid2 == uid + 1
    with dovecot.client(user) as c:
        c.select_folder("INBOX", readonly=True)
        assert c.search() == [uid, uid2]
        data = c.fetch([uid], ["BODY.PEEK[]", "FLAGS"])[uid]
    assert data[b"BODY[]"] == MESSAGE
    assert rb"\Seen" in data[b"FLAGS"]
    files = [f for sub in ("new", "cur") for f in (dovecot.maildir(user) / sub).iterdir()]
    assert len(files) == 2


def test_folders(dovecot: DovecotServer, dovecot_user: tuple[str, str]) -> None:
    user, _ = dovecot_user
    dovecot.create_folder(user, "Archive/2024")
    uid = dovecot.append(user, "Archive/2024", MESSAGE)
    assert uid == 1
    with dovecot.client(user, starttls=True) as c:
        assert c.folder_exists("Archive/2024")
    dovecot.delete_folder(user, "Archive/2024")
    with dovecot.client(user) as c:
        assert not c.folder_exists("Archive/2024")


def test_kick_drops_session(dovecot: DovecotServer, dovecot_user: tuple[str, str]) -> None:
    user, _ = dovecot_user
    c = dovecot.client(user)
    try:
        c.select_folder("INBOX")
        c.noop()
        dovecot.kick(user)

        def dropped() -> bool:
            try:
                c.noop()
            except (imaplib.IMAP4.abort, OSError):
                return True
            return False

        wait_for(dropped, what="the kicked session to be closed")
    finally:
        c.shutdown()


def test_session_bytes_are_logged(dovecot: DovecotServer, dovecot_user: tuple[str, str]) -> None:
    user, _ = dovecot_user
    with dovecot.client(user) as c:
        c.select_folder("INBOX")
    sessions = wait_for(lambda: dovecot.session_bytes(user), what="the logout log line")
    bytes_in, bytes_out = sessions[0]
    assert bytes_in > 0
    assert bytes_out > 0
    assert re.search(rf"imap\({user}\).*Logged out in=\d+ out=\d+", dovecot.log_text())


def test_restart_keeps_mail_and_ports() -> None:
    with DovecotServer(user="bob") as server:
        uid = server.append("bob", "INBOX", MESSAGE)
        ports = (server.port, server.starttls_port)
        with server.client("bob") as c:
            validity = c.select_folder("INBOX")[b"UIDVALIDITY"]
        server.restart()
        assert (server.port, server.starttls_port) == ports
        with server.client("bob") as c:
            assert c.select_folder("INBOX")[b"UIDVALIDITY"] == validity
            assert c.search() == [uid]
        tmp_dir = server.tmp_dir
        assert tmp_dir is not None
    assert not server.running
    assert not tmp_dir.exists()


def test_start_picks_new_ports_if_one_was_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        picks = iter([[taken, *free_ports(1)]])  # first pick loses the race
        monkeypatch.setattr("dovecot.free_ports", lambda n: next(picks, None) or free_ports(n))
        with DovecotServer(user="carl") as server:
            assert taken not in (server.port, server.starttls_port)
            assert "Address already in use" in server.log_text()
            with server.client("carl") as c:
                c.noop()


def test_missing_dovecot_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dovecot.find_binary", lambda name: None)
    with pytest.raises(DovecotNotInstalledError) as e:
        DovecotServer().start()
    assert "sudo apt-get install dovecot-imapd" in str(e.value)
    assert str(e.value) == INSTALL_HINT


def test_unsupported_version_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dovecot.dovecot_version", lambda binary: (2, 4, 1))
    with pytest.raises(DovecotError, match=r"Dovecot 2\.4\.1 .* not supported"):
        DovecotServer().start()
