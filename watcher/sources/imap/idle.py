"""IMAP IDLE (RFC 2177): waiting for the server to report new mail, and NOOP."""

from __future__ import annotations

import select
import ssl
import time
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient


@dataclass(frozen=True)
class IdleNews:
    """What one wait in IDLE brought: ``new_mail`` (an EXISTS response), ``heard`` (the server
    said anything, e.g. Dovecot's "* OK Still here"), ``closed`` (the server said BYE) and
    ``suspect`` (woke early with nothing to read: often an EOF, to be probed with NOOP)."""

    new_mail: bool
    heard: bool
    closed: bool
    suspect: bool


def _reports_new_mail(responses: list[Any]) -> bool:
    return any(
        isinstance(r, tuple) and len(r) >= 2 and r[1] in (b"EXISTS", b"RECENT") for r in responses
    )


def idle_start(client: IMAPClient) -> bool:
    """Send IDLE and wait for the server's continuation (RFC 2177). Returns True when the
    server reported new mail just before it (imaplib keeps such untagged responses aside)."""
    client.idle()
    pending = client._imap.untagged_responses
    return pending.pop("EXISTS", None) is not None or pending.pop("RECENT", None) is not None


def idle_wait(client: IMAPClient, timeout_seconds: float, wake_fd: int | None = None) -> IdleNews:
    """Wait up to *timeout_seconds* for responses during IDLE.

    imapclient's ``idle_check`` swallows an EOF and returns nothing, which would look like
    silence forever; a wait that returns early with nothing is therefore ``suspect``.

    With *wake_fd* (a pipe that becomes readable when the caller must stop), the wait also
    ends when that descriptor is readable, returning no news: an idle connection then sleeps
    until the server speaks or the caller stops, instead of waking often to look at a flag.
    """
    if wake_fd is not None:
        sock = client.socket()
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        if not pending:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            poller.register(wake_fd, select.POLLIN)
            ready = {fd for fd, _event in poller.poll(max(timeout_seconds, 0.0) * 1000)}
            if sock.fileno() not in ready:
                return IdleNews(False, False, False, False)  # timed out, or woken to stop
        responses = client.idle_check(timeout=0)
        # Readable but nothing to read: the server closed the connection (EOF).
        return IdleNews(
            _reports_new_mail(responses),
            bool(responses),
            any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses),
            not responses,
        )
    started = time.monotonic()
    responses = client.idle_check(timeout=timeout_seconds)
    elapsed = time.monotonic() - started
    new_mail = _reports_new_mail(responses)
    bye = any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses)
    woke_for_nothing = not responses and elapsed < timeout_seconds * 0.5
    return IdleNews(new_mail, bool(responses), bye, woke_for_nothing)


def idle_done(client: IMAPClient) -> bool:
    """End IDLE (send DONE and read the tagged OK). Returns True when responses read on the
    way reported new mail."""
    _text, responses = client.idle_done()
    return _reports_new_mail(list(responses))


def noop(client: IMAPClient) -> bool:
    """Send NOOP: proves the connection still works (raises CONNECTION_ERRORS otherwise).
    Returns True when the server reported new mail in its answer (RFC 9051 6.1.2)."""
    _text, responses = client.noop()
    return _reports_new_mail(list(responses))
