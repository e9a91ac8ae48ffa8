"""Bounds on what an IMAP server may make the watcher read, for a hostile or broken server
(issue 12): imaplib reads every literal whole into memory, keeps every untagged line until the
command ends, and its socket timeout bounds one read, not a command. There is no hook for
this in imaplib or imapclient, so the file imaplib reads from is wrapped (a byte-budget
reader) instead of forking either library.

Per command: a monotonic deadline (IDLE has none: it waits by design), at most
MAX_UNTAGGED_LINES lines and MAX_LINE_BYTES bytes of lines besides literals, and no literal
over the current literal limit (by default DEFAULT_MAX_LITERAL; a FETCH of bodies announces
their sizes first, see :meth:`ReadGuard.expect`). Going over raises GuardError, an imaplib
abort: the connection is then unusable and is dropped like a lost one.
"""

from __future__ import annotations

import imaplib
import io
import time
import types
from typing import Any

# A literal larger than this aborts the command unless a FETCH announced more.
DEFAULT_MAX_LITERAL = 64 * 1024 * 1024
# What a literal may exceed the size the server announced (RFC822.SIZE) by: servers count
# line ends differently, and a message may be changed (by a filter) between two FETCHes.
LITERAL_SLACK = 64 * 1024
# Untagged lines per command (an honest answer of the watcher's commands has a few thousand
# at most: LIST of a large account, FETCH of a batch), and their bytes besides literals.
MAX_UNTAGGED_LINES = 100_000
MAX_LINE_BYTES = 16 * 1024 * 1024
# A command may take this many socket timeouts, plus one second per READ_RATE bytes it is
# expected to bring (a FETCH of large bodies over a slow line).
DEADLINE_TIMEOUTS = 4
READ_RATE = 64 * 1024
# Literals are read in pieces of this size, so the deadline is looked at in between.
_CHUNK = 256 * 1024


# Words every GuardError sentence holds, to find it again after imaplib re-wraps it.
_REASONS = ("took too long to answer one command", "untagged data for one command", "a literal of")


class GuardError(imaplib.IMAP4.abort):
    """The server went over a bound (one sentence saying which); the connection is unusable."""


class ReadGuard:
    """The file-like object imaplib reads server data from (``imap.file``), with bounds.

    *inner* is imaplib's buffered socket file; *timeout_seconds* the account's socket
    timeout (the deadline of a command is DEADLINE_TIMEOUTS of them)."""

    def __init__(self, inner: Any, timeout_seconds: float) -> None:
        self._inner = inner
        self._timeout = timeout_seconds
        self.max_literal = DEFAULT_MAX_LITERAL
        self._deadline = float("inf")
        self._lines = 0
        self._line_bytes = 0
        # Set by expect(), taken by the next start(): the bounds of the command about to go.
        self._expected: tuple[int, int] | None = None

    def start(self, command: str) -> None:
        """A new command is sent: reset the budgets and start its deadline (none for IDLE),
        with the bounds :meth:`expect` announced for it, if any."""
        self._lines = 0
        self._line_bytes = 0
        expected, self._expected = self._expected, None
        self.max_literal = DEFAULT_MAX_LITERAL
        if command.upper() == "IDLE":
            self._deadline = float("inf")
            return
        self._deadline = time.monotonic() + DEADLINE_TIMEOUTS * self._timeout
        if expected is not None:
            largest, total = expected
            self.max_literal = largest + LITERAL_SLACK
            self._deadline += (total + 1) / READ_RATE

    def expect(self, largest: int, total: int) -> None:
        """The next command's answer carries literals of at most *largest* bytes, *total* in
        all (sizes the server announced with RFC822.SIZE): a literal over *largest* +
        LITERAL_SLACK aborts it, and its deadline grows by *total* / READ_RATE seconds. Call
        it just before sending the command (:meth:`start` takes it; a later command does
        not inherit it)."""
        self._expected = (largest, total)

    def _check_deadline(self) -> None:
        if time.monotonic() > self._deadline:
            raise GuardError("the server took too long to answer one command")

    def readline(self, limit: int = -1) -> bytes:
        """One line (imaplib caps its length), counted against the command's budgets. Read
        from what the buffer holds, one socket read at a time, so that a line trickled a byte
        at a time also ends at the deadline."""
        parts: list[bytes] = []
        got = 0
        while True:
            self._check_deadline()
            buffered: bytes = self._inner.peek(1)  # at most one socket read
            if not buffered:
                break  # EOF
            end = buffered.find(b"\n")
            take = len(buffered) if end < 0 else end + 1
            if limit >= 0:
                take = min(take, limit - got)
            piece: bytes = self._inner.read(take)  # already buffered: does not block
            parts.append(piece)
            got += len(piece)
            if piece.endswith(b"\n") or (limit >= 0 and got >= limit):
                break
        line = b"".join(parts)
        self._lines += 1
        self._line_bytes += len(line)
        if self._lines > MAX_UNTAGGED_LINES or self._line_bytes > MAX_LINE_BYTES:
            raise GuardError(
                "the server sent more untagged data for one command than any answer needs"
            )
        return line

    def read(self, size: int = -1) -> bytes:
        """A literal of *size* bytes, read in pieces with the deadline looked at in between;
        GuardError when *size* is over the literal limit."""
        if size < 0 or size > self.max_literal:
            raise GuardError(
                f"the server announced a literal of {size} bytes, over the limit of "
                f"{self.max_literal} bytes"
            )
        out = io.BytesIO()
        while out.tell() < size:
            self._check_deadline()
            piece = self._inner.read1(min(_CHUNK, size - out.tell()))
            if not piece:
                break  # EOF: imaplib sees the short literal and fails as for a lost peer
            out.write(piece)
        return out.getvalue()

    def close(self) -> None:
        """Close the wrapped file (imaplib's shutdown)."""
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def install(client: Any, timeout_seconds: float) -> ReadGuard:
    """Wrap the file imaplib reads from in *client* (an IMAPClient, after STARTTLS) with a
    ReadGuard, and start its budgets on every command imaplib sends. Returns the guard."""
    imap = client._imap
    guard = ReadGuard(imap.file, timeout_seconds)
    imap.file = guard
    send_command = imap._command

    def command(_imap: Any, name: str, *args: Any) -> Any:
        guard.start(name)
        return send_command(name, *args)

    # A bound method, like the one it replaces: imaplib tells an AUTHENTICATE literator
    # (a bound method) from a literal by comparing its type with that of self._command.
    imap._command = types.MethodType(command, imap)
    client._watcher_guard = guard
    return guard


def guard_reason(exc: BaseException) -> str | None:
    """The sentence of a GuardError inside *exc* (imaplib re-raises an abort during a command
    as a plain abort "command: X => <text>"), or None when *exc* is no bound gone over."""
    text = str(exc)
    if not any(marker in text for marker in _REASONS) or "the server " not in text:
        return None
    return text[text.index("the server ") :]


def literal_refused(exc: BaseException) -> str | None:
    """The sentence of a GuardError about one literal over its limit inside *exc* (a fault of
    one message: the same FETCH fails the same way again), or None for anything else
    (floods and deadlines may be the line's fault, and are retried at the next poll)."""
    reason = guard_reason(exc)
    return reason if reason is not None and "a literal of" in reason else None


def guard_of(client: Any) -> ReadGuard | None:
    """The ReadGuard installed on *client*, if any."""
    found = getattr(client, "_watcher_guard", None)
    return found if isinstance(found, ReadGuard) else None
