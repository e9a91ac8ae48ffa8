"""A small fault-injecting TCP proxy for plain IMAP on 127.0.0.1, for the server-fault tests.

It sits between the watcher and Dovecot's plain IMAP port and produces the faults Dovecot will
not produce on request: a connection reset at a chosen point of a command (LOGIN, FETCH, IDLE),
a reply held back longer than the client's timeout, a NO or BAD answer to a command the server
would accept, response lines removed or rewritten (a server that omits UIDNEXT), and
connections refused with BYE. Faults are armed for a number of firings and then disarm.

Commands are matched per client line; server data is split into lines except inside IMAP
literals (``{n}`` then n bytes, RFC 9051 4.3), which pass through untouched. Every socket has
a timeout, every thread is a daemon thread joined with a timeout on :meth:`FaultProxy.close`.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

HOST = "127.0.0.1"
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")
_TAG = re.compile(rb"^(\S+) ")
# Commands recorded in FaultProxy.commands (client lines that are anything else, such as a
# literal holding a password, are never recorded).
IMAP_COMMANDS = frozenset(
    {
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "STARTTLS",
        "AUTHENTICATE",
        "LOGIN",
        "SELECT",
        "EXAMINE",
        "CREATE",
        "DELETE",
        "RENAME",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "LIST",
        "LSUB",
        "STATUS",
        "APPEND",
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "SEARCH",
        "FETCH",
        "STORE",
        "COPY",
        "MOVE",
        "UID",
        "IDLE",
        "ENABLE",
        "NAMESPACE",
        "ID",
        "GETQUOTAROOT",
        "COMPRESS",
    }
)
# Arguments are kept for these (they hold no secrets); LOGIN and AUTHENTICATE keep none.
_KEEP_ARGUMENTS = ("FETCH", "SEARCH", "EXAMINE", "SELECT", "STATUS", "STORE", "COPY", "MOVE")


@dataclass
class Fault:
    """One armed fault, fired when a client line matches ``command`` (bytes regex, any case).

    ``action``:
      ``close``: close both connections cleanly (the client reads EOF), like ``reset``.
      ``reset``: abort both connections with RST. With ``after_bytes`` None and ``delay`` 0 it
        happens before the command is forwarded; otherwise the command is forwarded and the
        reset comes after ``after_bytes`` bytes of the server's answer and ``delay`` seconds.
      ``stall``: forward the command, then hold the server's answer back ``seconds`` seconds.
      ``reply``: do not forward; answer ``reply`` (``{tag}`` is the command's tag).
    ``times``: how many firings before it disarms.
    """

    command: re.Pattern[bytes]
    action: str
    times: int = 1
    after_bytes: int | None = None
    delay: float = 0.0
    seconds: float = 0.0
    reply: bytes = b""
    fired: int = 0


@dataclass
class _Pending:
    """A reset waiting for the server's answer: fire once ``remaining`` bytes have passed
    and ``at`` (monotonic) is reached."""

    remaining: int
    at: float


@dataclass
class _Conn:
    client: socket.socket
    server: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    stall_until: float = 0.0
    pending: _Pending | None = None


class FaultProxy:
    """Listen on 127.0.0.1:``port`` and forward to ``upstream`` (host, port).

    Attributes read by tests: ``port``, ``connections`` (accepted so far), ``events`` (one
    string per fault that fired, e.g. ``"reset: UID FETCH"``), ``commands`` (every command
    the client sent: ``"EXAMINE INBOX"``, ``"UID FETCH 1:5 (BODY.PEEK[] INTERNALDATE)"``,
    ``"LOGIN"``; arguments only where they hold no secret).
    """

    def __init__(self, upstream: tuple[str, int], timeout_seconds: float = 10.0) -> None:
        self.upstream = upstream
        self.timeout_seconds = timeout_seconds
        self.faults: list[Fault] = []
        self.rewrites: list[tuple[re.Pattern[bytes], bytes]] = []
        self.refuse_remaining = 0
        self.refusal = b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
        self.connections = 0
        self.events: list[str] = []
        self.commands: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[_Conn] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(32)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._accepter = threading.Thread(target=self._accept_loop, name="proxy", daemon=True)
        self._accepter.start()

    # ------------------------------------------------------------------ arming

    def arm(self, command: str, action: str, **options: object) -> Fault:
        """Arm a fault (see :class:`Fault`); *command* is a regex over the client's line."""
        fault = Fault(re.compile(command.encode(), re.IGNORECASE), action, **options)  # type: ignore[arg-type]
        with self._lock:
            self.faults.append(fault)
        return fault

    def rewrite(self, pattern: str, replacement: bytes) -> None:
        """Rewrite every server line (outside literals) matching *pattern* (bytes regex)."""
        with self._lock:
            self.rewrites.append((re.compile(pattern.encode()), replacement))

    def refuse(self, count: int, greeting: bytes | None = None) -> None:
        """Answer the next *count* connections with a BYE greeting and close them."""
        with self._lock:
            self.refuse_remaining = count
            if greeting is not None:
                self.refusal = greeting

    def reset_all(self) -> int:
        """Reset every open connection now (the network went away); return how many."""
        with self._lock:
            conns = [c for c in self._conns if not c.closed]
        for conn in conns:
            self._reset(conn, "reset: all connections")
        return len(conns)

    def fired(self) -> int:
        """How many times any fault fired so far."""
        with self._lock:
            return sum(f.fired for f in self.faults)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop accepting, close every connection, join the threads (bounded)."""
        self._stop.set()
        self._accepter.join(timeout=5)
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for conn in conns:
            self._close(conn)
        for thread in threads:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(0.1)
            with self._lock:
                self.connections += 1
                refuse = self.refuse_remaining > 0
                if refuse:
                    self.refuse_remaining -= 1
                    self.events.append("refused: connection")
            if refuse:
                with contextlib.suppress(OSError):
                    client.sendall(self.refusal)
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=self.timeout_seconds)
            except OSError:
                client.close()  # upstream down: the client sees the connection end
                continue
            server.settimeout(0.1)
            conn = _Conn(client, server)
            up = threading.Thread(target=self._client_to_server, args=(conn,), daemon=True)
            down = threading.Thread(target=self._server_to_client, args=(conn,), daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads += [up, down]
            up.start()
            down.start()

    def _match(self, line: bytes) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.fired < fault.times and fault.command.search(line):
                    fault.fired += 1
                    return fault
        return None

    def _client_to_server(self, conn: _Conn) -> None:
        buf = b""
        last_data = time.monotonic()
        while not conn.closed and not self._stop.is_set():
            try:
                data = conn.client.recv(65536)
            except TimeoutError:
                if time.monotonic() - last_data > 3600:
                    break  # bounded: an abandoned connection does not live forever
                continue
            except OSError:
                break
            if not data:
                break
            last_data = time.monotonic()
            buf += data
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                line += b"\r\n"
                if not self._client_line(conn, line):
                    return
        self._close(conn)

    def _record(self, line: bytes) -> None:
        words = line.decode("ascii", "replace").split()
        if words[:1] == ["DONE"]:
            verb, rest = "DONE", []
        elif len(words) >= 2 and words[1].upper() in IMAP_COMMANDS:
            verb, rest = words[1].upper(), words[2:]
            if verb == "UID" and rest:
                verb, rest = f"UID {rest[0].upper()}", rest[1:]
        else:
            return
        if rest and verb.split()[-1] in _KEEP_ARGUMENTS:
            verb += " " + " ".join(rest)
        with self._lock:
            self.commands.append(verb)

    def _client_line(self, conn: _Conn, line: bytes) -> bool:
        """Handle one client line; False when the connection is gone."""
        self._record(line)
        fault = self._match(line)
        what = " ".join(line.decode("ascii", "replace").split()[1:3]) or line[:20].decode()
        if fault is None:
            return self._send(conn, conn.server, line)
        if fault.action == "reply":
            tag = _TAG.match(line)
            reply = fault.reply.replace(b"{tag}", tag.group(1) if tag else b"*")
            self._log(f"reply: {what}")
            return self._send(conn, conn.client, reply)
        if fault.action == "reset" and fault.after_bytes is None and not fault.delay:
            self._reset(conn, f"reset: {what}")
            return False
        if fault.action == "close":
            self._log(f"close: {what}")
            self._close(conn)
            return False
        # Armed before the command goes out: the answer may come back at once.
        if fault.action == "stall":
            conn.stall_until = time.monotonic() + fault.seconds
            self._log(f"stall: {what}")
        elif fault.action == "reset":
            conn.pending = _Pending(fault.after_bytes or 0, time.monotonic() + fault.delay)
            self._log(f"reset: {what}")
        return self._send(conn, conn.server, line)

    def _server_to_client(self, conn: _Conn) -> None:
        buf = b""
        literal = 0
        last_data = time.monotonic()
        while not conn.closed and not self._stop.is_set():
            pending = conn.pending
            if pending is not None and pending.remaining <= 0 and time.monotonic() >= pending.at:
                self._reset(conn, None)
                return
            try:
                data = conn.server.recv(65536)
            except TimeoutError:
                if time.monotonic() - last_data > 3600:
                    break
                continue
            except OSError:
                break
            if not data:
                break
            last_data = time.monotonic()
            wait = conn.stall_until - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)  # the held-back answer
            buf += data
            out = b""
            while buf:
                if literal:
                    chunk, buf = buf[:literal], buf[literal:]
                    literal -= len(chunk)
                    out += chunk
                    continue
                if b"\r\n" not in buf:
                    break
                line, buf = buf.split(b"\r\n", 1)
                line = self._rewrite(line + b"\r\n")
                found = _LITERAL.search(line)
                literal = int(found.group(1)) if found else 0
                out += line
            if not self._forward_down(conn, out):
                return
        self._close(conn)

    def _forward_down(self, conn: _Conn, out: bytes) -> bool:
        pending = conn.pending
        if pending is not None:
            if len(out) >= pending.remaining and time.monotonic() >= pending.at:
                self._send(conn, conn.client, out[: pending.remaining])
                self._reset(conn, None)
                return False
            pending.remaining -= len(out)
        return self._send(conn, conn.client, out) if out else True

    def _rewrite(self, line: bytes) -> bytes:
        with self._lock:
            rewrites = list(self.rewrites)
        for pattern, replacement in rewrites:
            if pattern.search(line):
                line = pattern.sub(replacement, line)
                self._log(f"rewrite: {pattern.pattern.decode()}")
        return line

    def _send(self, conn: _Conn, sock: socket.socket, data: bytes) -> bool:
        deadline = time.monotonic() + self.timeout_seconds
        view = memoryview(data)
        while view:
            if conn.closed or time.monotonic() > deadline:
                self._close(conn)
                return False
            try:
                sent = sock.send(view)
            except TimeoutError:
                continue
            except OSError:
                self._close(conn)
                return False
            view = view[sent:]
        return True

    def _log(self, event: str) -> None:
        with self._lock:
            self.events.append(event)

    def _reset(self, conn: _Conn, event: str | None) -> None:
        if event:
            self._log(event)
        for sock in (conn.client, conn.server):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close(conn)

    def _close(self, conn: _Conn) -> None:
        with conn.lock:
            if conn.closed:
                return
            conn.closed = True
        for sock in (conn.client, conn.server):
            with contextlib.suppress(OSError):
                sock.close()


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll *condition* until it is true or *timeout* seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
