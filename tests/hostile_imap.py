"""A scripted IMAP4rev1 server on 127.0.0.1 that misbehaves on request, for the tests of
behaviour no real server shows (issue 12 item 3, "Servers that push late").

Dovecot (tests/dovecot.py) stays the real server for everything else; this one speaks just
enough IMAP4rev1 (RFC 3501 / RFC 9051) for imapclient and for what watcher/imap.py and
watcher/daemon.py send: CAPABILITY, LOGIN, STARTTLS, SELECT/EXAMINE (UIDVALIDITY, UIDNEXT,
EXISTS), STATUS, LIST (plain, ``LIST (SPECIAL-USE)`` and ``RETURN (SPECIAL-USE)``, RFC 6154),
NAMESPACE, ID, ENABLE, UNSELECT/CLOSE, SEARCH/UID SEARCH (CHARSET, OR/NOT, FROM/TO/SUBJECT/
HEADER/BODY/TEXT, UID and sequence sets, SINCE/BEFORE/ON, SENT*, flags, LARGER/SMALLER),
FETCH/UID FETCH (UID, FLAGS, INTERNALDATE, RFC822.SIZE, RFC822[.HEADER|.TEXT],
BODY[.PEEK][] / [HEADER] / [TEXT] / [HEADER.FIELDS (...)] / [HEADER.FIELDS.NOT (...)] with
``<start.length>``), NOOP, CHECK, IDLE/DONE (RFC 2177) and LOGOUT. Synchronising and LITERAL+
literals from the client are read. Commands that would change a mailbox (STORE, COPY, MOVE,
EXPUNGE, APPEND, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE) are refused with NO and
recorded in :attr:`HostileIMAP.write_attempts`, so a test can assert the client never sent one.

Misbehaviours (each armed by a method, all observable in :attr:`HostileIMAP.streams`,
:attr:`HostileIMAP.events`):

* :meth:`HostileIMAP.huge_literal`: ``RFC822.SIZE`` announces *announced* bytes, then the
  ``BODY[]`` literal is ``{size}`` bytes (many GB): the real message followed by generated
  filler, produced chunk by chunk (never held in memory), until done, the client hangs up,
  the client stops reading, or the server stops.
* :meth:`HostileIMAP.flood`: before answering a matching command, send untagged
  ``* OK ...`` lines, a given number or endlessly (until the client hangs up).
* :meth:`HostileIMAP.trickle`: the ``BODY[]`` literal of a UID is sent one byte every
  *seconds_per_byte*, so each read finishes within any socket timeout but the FETCH never ends.
* :meth:`HostileIMAP.wrong_uid`: a FETCH for UID *asked* is answered as UID *answered*.
* :meth:`HostileIMAP.bare_bad` / :meth:`HostileIMAP.reply`: answer a matching command with a
  canned reply instead (``{tag} BAD`` with no text breaks imaplib's grammar: it aborts).
* IDLE push (``idle=``): ``"prompt"`` (Dovecot-like: EXISTS as soon as mail arrives),
  ``"on_done"`` (GNU Mailutils imap4d-like: new mail is reported only in the answer to DONE
  or NOOP, never during IDLE), ``"periodic"`` (Courier-like: the session looks for new mail
  every *idle_interval* seconds, Debian's IMAP_IDLE_TIMEOUT is 60). ``idle_keepalive`` sends
  Dovecot's ``* OK Still here`` every so many seconds.
* :meth:`HostileIMAP.add_message` adds mail at run time (new UID, UIDNEXT grows).

Bounds: every socket has a short timeout (the loops look at the stop flag between reads and
writes), a client silent for *client_timeout* seconds or one that stops reading for
*stall_seconds* is dropped, command lines and literals are capped, and the whole server stops
itself after *max_lifetime* seconds (also on ``close()`` / leaving the ``with`` block, which
joins every thread with a timeout).
"""

from __future__ import annotations

import contextlib
import email.header
import email.message
import email.parser
import email.policy
import email.utils
import re
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import imapclient

HOST = "127.0.0.1"
GiB = 1 << 30
IdleMode = Literal["prompt", "on_done", "periodic"]

# A socket operation never waits longer than this; loops look at the stop flag in between.
_TICK = 0.05
# Caps on what a client may send (Dovecot's imap_max_line_length is 64 KB).
MAX_LINE = 64 * 1024
MAX_COMMAND = 1 << 20
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LITERAL_END = re.compile(rb"\{(\d{1,9})(\+?)\}\r?\n$")
_BODY_ITEM = re.compile(r"^BODY(\.PEEK)?\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$")
# Filler for huge literals: one 64 KiB block of 80-byte lines, sent again and again.
_FILLER = (b"X" * 78 + b"\r\n") * 819 + b"Y" * 1118 + b"\r\n"
_FILLER_LINE_COUNT = 820
DEFAULT_CAPABILITIES = (
    "IMAP4rev1",
    "LITERAL+",
    "IDLE",
    "UIDPLUS",
    "UNSELECT",
    "SPECIAL-USE",
    "LIST-EXTENDED",
    "NAMESPACE",
    "ID",
    "ENABLE",
    "CHILDREN",
)
_WRITE_COMMANDS = frozenset(
    {"STORE", "COPY", "MOVE", "EXPUNGE", "APPEND", "CREATE", "DELETE", "RENAME"}
    | {"SUBSCRIBE", "UNSUBSCRIBE"}
)
# Arguments kept in HostileIMAP.commands (the others may hold secrets or are noise).
_KEEP_ARGUMENTS = frozenset({"FETCH", "SEARCH", "EXAMINE", "SELECT", "STATUS", "LIST"})


class Atom(str):
    """An IMAP atom from a client command (a bare word such as ``INBOX`` or ``BODY[]``)."""


Token = Atom | bytes | list["Token"]


class _Hangup(Exception):
    """The session ends: the text says why ("client hung up", "server stopped", ...)."""


class _Bad(Exception):
    """The command is malformed or unsupported: answered ``<tag> BAD <text>``."""


# ---------------------------------------------------------------------- mailbox model


@dataclass
class Message:
    """One message: *raw* with CRLF line ends, INTERNALDATE (aware), flags as bytes."""

    uid: int
    raw: bytes
    internaldate: datetime
    flags: set[bytes] = field(default_factory=set)
    _headers: email.message.Message | None = field(default=None, repr=False)

    @property
    def header_block(self) -> bytes:
        """The header including the blank line that ends it (RFC 5322 section 2.1)."""
        end = self.raw.find(b"\r\n\r\n")
        return self.raw if end < 0 else self.raw[: end + 4]

    @property
    def body(self) -> bytes:
        end = self.raw.find(b"\r\n\r\n")
        return b"" if end < 0 else self.raw[end + 4 :]

    def header_text(self, name: str) -> str:
        """Every *name* field's value, RFC 2047 words decoded (values up to 16 KB only: the
        stdlib decoder is quadratic, and this server must stay fast on hostile headers)."""
        if self._headers is None:
            text = self.header_block.decode("utf-8", "replace")
            self._headers = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text)
        out = []
        for value in self._headers.get_all(name) or []:
            value = str(value)
            if "=?" in value and len(value) <= 16384:
                with contextlib.suppress(Exception):
                    value = str(email.header.make_header(email.header.decode_header(value)))
            out.append(value)
        return "\n".join(out)


@dataclass
class Folder:
    """A folder: its name, UIDVALIDITY, next UID, messages in UID order, and its RFC 6154
    special-use attribute (``"\\Junk"``) or None."""

    name: str
    uidvalidity: int
    uidnext: int = 1
    messages: list[Message] = field(default_factory=list)
    special_use: str | None = None


@dataclass
class StreamRecord:
    """One misbehaviour that ran: ``kind`` is ``huge``, ``trickle`` or ``flood``; ``planned``
    is the literal size in bytes (``flood``: lines, None for endless); ``sent`` bytes (lines
    for ``flood``) actually written; ``ended`` is "" while it runs, then ``complete``,
    ``client hung up``, ``client stopped reading`` or ``server stopped``; times are
    ``time.monotonic()``."""

    kind: str
    command: str
    uid: int | None
    planned: int | None
    sent: int = 0
    ended: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None


@dataclass
class _Literal:
    """A literal to stream: *data* first, then filler up to *size*; one byte every
    *seconds_per_byte* when that is above 0."""

    data: bytes
    size: int
    kind: str = "plain"
    uid: int | None = None
    seconds_per_byte: float = 0.0


@dataclass
class _Canned:
    pattern: re.Pattern[str]
    response: bytes
    times: int
    fired: int = 0


@dataclass
class _Flood:
    pattern: re.Pattern[str]
    lines: int | None
    times: int
    text: bytes
    fired: int = 0


# ---------------------------------------------------------------------- the server


class HostileIMAP:
    """A threaded IMAP server on 127.0.0.1:``port`` serving one user's folders.

    ``messages``: raw mails for INBOX (UIDs 1, 2, ...). ``folders``: more folders as
    ``{name: special_use or None}``, default ``{"Spam": "\\\\Junk"}``. ``tls``: None (plain),
    ``"implicit"`` (IMAPS) or ``"starttls"``; the throwaway CA is at :attr:`ca_file`.
    ``idle``/``idle_interval``/``idle_keepalive``: see the module docstring.
    ``omit_uidnext``: EXAMINE/SELECT and STATUS leave UIDNEXT out (allowed by RFC 3501).
    ``max_lifetime``: seconds until the server closes itself. ``client_timeout``: a client
    silent this long between commands is dropped (default: *max_lifetime*; an IDLE lasts
    until DONE or the lifetime ends). ``stall_seconds``: a client that reads nothing this
    long while the server writes is dropped.

    Attributes tests read: ``port``, ``connections``, ``commands`` (``"UID FETCH 1 (UID
    BODY.PEEK[])"``, ``"LOGIN"``: no secrets), ``events`` (one line per notable thing),
    ``streams`` (:class:`StreamRecord`), ``write_attempts``, ``idle_sessions`` (sessions in
    IDLE now), ``sent_bytes`` (to all clients), ``expired`` (the lifetime ran out).
    """

    def __init__(
        self,
        messages: Iterable[bytes] = (),
        *,
        user: str = "anna",
        password: str = "hostile-secret",
        folders: dict[str, str | None] | None = None,
        tls: Literal["implicit", "starttls"] | None = None,
        idle: IdleMode = "prompt",
        idle_interval: float = 60.0,
        idle_keepalive: float | None = None,
        omit_uidnext: bool = False,
        uidvalidity: int = 1_700_000_000,
        max_lifetime: float = 120.0,
        client_timeout: float | None = None,
        stall_seconds: float = 10.0,
    ) -> None:
        self.user = user
        self.password = password
        self.tls = tls
        self.idle_mode: IdleMode = idle
        self.idle_interval = idle_interval
        self.idle_keepalive = idle_keepalive
        self.omit_uidnext = omit_uidnext
        self.client_timeout = client_timeout if client_timeout is not None else max_lifetime
        self.stall_seconds = stall_seconds
        self.capabilities: list[str] = list(DEFAULT_CAPABILITIES)
        self.connections = 0
        self.commands: list[str] = []
        self.events: list[str] = []
        self.streams: list[StreamRecord] = []
        self.write_attempts: list[str] = []
        self.idle_sessions = 0
        self.sent_bytes = 0
        self.expired = False
        self.lock = threading.RLock()
        self.folders: dict[str, Folder] = {"INBOX": Folder("INBOX", uidvalidity)}
        for n, (name, special) in enumerate(
            (folders if folders is not None else {"Spam": "\\Junk"}).items(), start=1
        ):
            self.folders[name] = Folder(name, uidvalidity + n, special_use=special)
        for raw in messages:
            self.add_message(raw)
        self._huge: dict[tuple[str | None, int], tuple[int, int | None, tuple[str, ...]]] = {}
        self._trickle: dict[tuple[str | None, int], tuple[float, tuple[str, ...]]] = {}
        self._wrong_uid: dict[tuple[str | None, int], int] = {}
        self._canned: list[_Canned] = []
        self._floods: list[_Flood] = []
        self._stop = threading.Event()
        self._sessions: list[_Session] = []
        self._threads: list[threading.Thread] = []
        self._dir = Path(tempfile.mkdtemp(prefix="hostile-imap-"))
        self.ca_file: Path | None = None
        self._server_ctx: ssl.SSLContext | None = None
        if tls is not None:
            self.ca_file, cert, key = _make_certificates(self._dir)
            self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._server_ctx.load_cert_chain(cert, key)
            if tls == "starttls":
                self.capabilities.append("STARTTLS")
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(32)
        self._listener.settimeout(0.1)
        self.host = HOST
        self.port: int = self._listener.getsockname()[1]
        self.started = time.monotonic()
        self._timer = threading.Timer(max_lifetime, self._expire)
        self._timer.daemon = True
        self._timer.start()
        self._accepter = threading.Thread(
            target=self._accept_loop, name="hostile-imap", daemon=True
        )
        self._accepter.start()

    # ------------------------------------------------------------------ mailbox

    def folder(self, name: str) -> Folder:
        """The folder *name* (INBOX in any case); KeyError when there is none."""
        return self.folders["INBOX" if name.upper() == "INBOX" else name]

    def add_message(
        self,
        raw: bytes,
        folder: str = "INBOX",
        internaldate: datetime | None = None,
        flags: Iterable[bytes] = (),
    ) -> int:
        """Deliver *raw* (line ends normalised to CRLF) to *folder* now; return its UID.
        Sessions see it as their IDLE mode says (prompt, on DONE/NOOP, or at the next tick)."""
        raw = re.sub(rb"\r?\n", b"\r\n", raw)
        with self.lock:
            box = self.folder(folder)
            uid = box.uidnext
            box.uidnext += 1
            when = internaldate or datetime.now(UTC).replace(microsecond=0)
            box.messages.append(Message(uid, raw, when, set(flags)))
            self.events.append(f"delivered: {box.name} UID {uid}")
        return uid

    # ------------------------------------------------------------------ misbehaviours

    def huge_literal(
        self,
        uid: int,
        size: int = 5 * GiB,
        announced: int | None = None,
        folder: str | None = None,
        sections: tuple[str, ...] = ("",),
    ) -> None:
        """Answer ``BODY[]`` (or ``RFC822``) of *uid* with a literal of *size* bytes: the
        message, then generated filler. ``RFC822.SIZE`` says *announced* (default: the real
        size). Streams lazily; stops when the client hangs up or stops reading. *sections*:
        which literals misbehave, ``""`` the whole message, ``"HEADER"`` ``BODY[HEADER]`` /
        ``RFC822.HEADER``, ``"TEXT"`` the body."""
        with self.lock:
            self._huge[(folder, uid)] = (size, announced, sections)

    def trickle(
        self,
        uid: int,
        seconds_per_byte: float = 1.5,
        folder: str | None = None,
        sections: tuple[str, ...] = ("",),
    ) -> None:
        """Send the ``BODY[]`` literal of *uid* (or the *sections* named as for
        :meth:`huge_literal`) one byte every *seconds_per_byte* seconds."""
        with self.lock:
            self._trickle[(folder, uid)] = (seconds_per_byte, sections)

    def wrong_uid(self, asked: int, answered: int, folder: str | None = None) -> None:
        """Answer every FETCH of UID *asked* with ``UID answered`` (same data otherwise)."""
        with self.lock:
            self._wrong_uid[(folder, asked)] = answered

    def flood(
        self,
        command: str,
        lines: int | None = None,
        times: int = 1,
        text: bytes = b"* OK [ALERT] The server has something to say",
    ) -> None:
        """Before answering a command matching *command* (regex over the recorded command,
        e.g. ``"UID FETCH"``), send *lines* untagged lines (None: until the client hangs
        up); armed for *times* commands."""
        with self.lock:
            self._floods.append(_Flood(re.compile(command, re.IGNORECASE), lines, times, text))

    def reply(self, command: str, response: bytes, times: int = 1) -> None:
        """Answer a command matching *command* with *response* instead of running it
        (``{tag}`` is replaced by the command's tag); armed for *times* commands."""
        with self.lock:
            self._canned.append(_Canned(re.compile(command, re.IGNORECASE), response, times))

    def bare_bad(self, command: str, times: int = 1, tagged: bool = True) -> None:
        """Answer a matching command with a bare ``<tag> BAD`` (no text: imaplib cannot
        parse it and aborts the connection) or, with ``tagged=False``, with ``* BAD`` and
        then the tagged ``BAD`` a real server would send."""
        response = b"{tag} BAD\r\n" if tagged else b"* BAD\r\n{tag} BAD Command refused\r\n"
        self.reply(command, response, times)

    def _lookup(
        self, table: Mapping[tuple[str | None, int], object], folder: str, uid: int
    ) -> object:
        with self.lock:
            if (folder, uid) in table:
                return table[(folder, uid)]
            return table.get((None, uid))

    # ------------------------------------------------------------------ clients

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting this server's throwaway CA (TLS modes only)."""
        if self.ca_file is None:
            raise RuntimeError("this server was started without TLS")
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, *, login: bool = True, timeout: float = 5.0) -> imapclient.IMAPClient:
        """An imapclient connection to this server (TLS as configured), logged in unless
        *login* is False."""
        implicit = self.tls == "implicit"
        client = imapclient.IMAPClient(
            HOST,
            port=self.port,
            ssl=implicit,
            ssl_context=self.ssl_context() if implicit else None,
            timeout=timeout,
        )
        if self.tls == "starttls":
            client.starttls(self.ssl_context())
        if login:
            client.login(self.user, self.password)
        return client

    def wait_for(self, condition: Callable[[], object], timeout: float = 5.0) -> bool:
        """Poll *condition* until it is true or *timeout* seconds pass; its last value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.02)
        return bool(condition())

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    def close(self) -> None:
        """Stop accepting, end every session, join the threads (bounded), remove the
        temporary TLS material. Safe to call twice."""
        self._stop.set()
        self._timer.cancel()
        if threading.current_thread() is not self._accepter:
            self._accepter.join(timeout=5)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self.lock:
            sessions = list(self._sessions)
            threads = list(self._threads)
        for session in sessions:
            session.abort()
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _expire(self) -> None:
        self.expired = True
        self.log("lifetime over: server stopped itself")
        self.close()

    def __enter__(self) -> HostileIMAP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log(self, event: str) -> None:
        with self.lock:
            self.events.append(event)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = _Session(self, sock)
            thread = threading.Thread(target=session.run, name="hostile-imap-session", daemon=True)
            with self.lock:
                self.connections += 1
                self._sessions.append(session)
                self._threads.append(thread)
            thread.start()


# ---------------------------------------------------------------------- one connection


class _Session:
    """One client connection, served by one thread: read a command, answer it, repeat."""

    def __init__(self, server: HostileIMAP, sock: socket.socket) -> None:
        self.s = server
        self.sock: socket.socket = sock
        self.buf = b""
        self.authenticated = False
        self.selected: Folder | None = None
        self.readonly = True
        self.announced = 0
        self.closed = False
        self.tls_active = False

    # ------------------------------------------------------------------ lifecycle

    def abort(self) -> None:
        """Called from another thread: unblock and end this session."""
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        why = "client hung up"
        try:
            if self.s.tls == "implicit":
                self._start_tls()
            self.sock.settimeout(_TICK)
            caps = " ".join(self.s.capabilities)
            self.send(f"* OK [CAPABILITY {caps}] hostile-imap ready\r\n".encode())
            while not self.closed:
                data = self.read_command()
                self.handle(data)
        except _Hangup as exc:
            why = str(exc)
        except (OSError, ssl.SSLError) as exc:
            why = f"connection error: {type(exc).__name__}"
        finally:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.close()
            self.s.log(f"session ended: {why}")

    def _start_tls(self) -> None:
        assert self.s._server_ctx is not None
        self.sock.settimeout(5.0)
        try:
            self.sock = self.s._server_ctx.wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            raise _Hangup(f"TLS handshake failed: {exc}") from None
        self.sock.settimeout(_TICK)
        self.tls_active = True

    # ------------------------------------------------------------------ I/O

    def _check(self) -> None:
        if self.closed or self.s._stop.is_set():
            raise _Hangup("server stopped")

    def _fill(self, deadline: float, quiet: bool = False) -> bool:
        """Read more into the buffer; False (only when *quiet*) if *deadline* passed first."""
        while True:
            self._check()
            if time.monotonic() > deadline:
                if quiet:
                    return False
                raise _Hangup("client silent too long")
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ssl.SSLWantReadError:
                continue
            except OSError:
                raise _Hangup("client hung up") from None
            if not data:
                raise _Hangup("client hung up")
            self.buf += data
            return True

    def readline(self, deadline: float, quiet: bool = False) -> bytes | None:
        """One line (with its line end); None when *quiet* and *deadline* passed."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line, self.buf = self.buf[: end + 1], self.buf[end + 1 :]
                return line
            if len(self.buf) > MAX_LINE:
                self.send(b"* BYE line too long\r\n")
                raise _Hangup("client line too long")
            if not self._fill(deadline, quiet):
                return None

    def _read_exact(self, size: int, deadline: float) -> bytes:
        while len(self.buf) < size:
            self._fill(deadline)
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def read_command(self) -> bytes:
        """A whole command including its literals (RFC 9051 4.3: ``{n}`` waits for our
        ``+`` continuation, ``{n+}`` (LITERAL+) does not)."""
        deadline = time.monotonic() + self.s.client_timeout
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.readline(deadline)
            assert line is not None
            parts.append(line)
            total += len(line)
            found = _LITERAL_END.search(line)
            if not found:
                return b"".join(parts)
            size = int(found.group(1))
            total += size
            if total > MAX_COMMAND:
                self.send(b"* BYE command too long\r\n")
                raise _Hangup("client command too long")
            if not found.group(2):
                self.send(b"+ Ready for literal data\r\n")
            parts.append(self._read_exact(size, deadline))

    def peer_gone(self) -> bool:
        """True when the client has closed its side (plain TCP only: a TLS socket cannot
        peek, and there a later send fails instead)."""
        if isinstance(self.sock, ssl.SSLSocket):
            return False
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return False
        try:
            data = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return False
        except OSError:
            return True
        return data == b""

    def send(self, data: bytes | memoryview) -> None:
        """Write all of *data*; raises _Hangup when the client is gone or stops reading."""
        view = memoryview(data)
        stall = time.monotonic() + self.s.stall_seconds
        while view:
            self._check()
            try:
                sent = self.sock.send(view)
            except (TimeoutError, ssl.SSLWantWriteError):
                if time.monotonic() > stall:
                    raise _Hangup("client stopped reading") from None
                continue
            except OSError:
                raise _Hangup("client hung up") from None
            if sent:
                stall = time.monotonic() + self.s.stall_seconds
                with self.s.lock:
                    self.s.sent_bytes += sent
            view = view[sent:]

    # ------------------------------------------------------------------ dispatch

    def handle(self, data: bytes) -> None:
        try:
            tokens = tokenize(data)
        except ValueError:
            self.send(b"* BAD Cannot parse the command\r\n")
            return
        if len(tokens) < 2 or not isinstance(tokens[0], Atom) or not isinstance(tokens[1], Atom):
            self.send(b"* BAD Missing tag or command\r\n")
            return
        tag, command, args = str(tokens[0]), tokens[1].upper(), tokens[2:]
        if command == "UID" and args and isinstance(args[0], Atom):
            command, args = f"UID {args[0].upper()}", args[1:]
        recorded = command
        if command.split()[-1] in _KEEP_ARGUMENTS:
            recorded = " ".join([command, *(_show(a) for a in args)])
        with self.s.lock:
            self.s.commands.append(recorded)
        if self._canned_reply(tag, recorded) or self._maybe_flood(recorded):
            return
        try:
            self.dispatch(tag, command, args)
        except _Bad as exc:
            self.send(f"{tag} BAD {exc}\r\n".encode())
        except RecursionError:  # e.g. SEARCH NOT NOT NOT ... nested beyond the stack
            self.send(f"{tag} BAD Criteria nested too deep\r\n".encode())

    def _canned_reply(self, tag: str, recorded: str) -> bool:
        with self.s.lock:
            canned = next(
                (c for c in self.s._canned if c.fired < c.times and c.pattern.search(recorded)),
                None,
            )
            if canned is not None:
                canned.fired += 1
        if canned is None:
            return False
        self.s.log(f"canned reply: {recorded.split(' (')[0]}")
        self.send(canned.response.replace(b"{tag}", tag.encode()))
        return True

    def _maybe_flood(self, recorded: str) -> bool:
        """Send a flood armed for *recorded*; returns False (the command then runs) unless
        the flood ended the session."""
        with self.s.lock:
            flood = next(
                (f for f in self.s._floods if f.fired < f.times and f.pattern.search(recorded)),
                None,
            )
            if flood is None:
                return False
            flood.fired += 1
            record = StreamRecord("flood", recorded, None, flood.lines)
            self.s.streams.append(record)
        self.s.log(f"flood: {recorded}")
        batch = b"".join(flood.text + b" %d\r\n" % n for n in range(1000))
        try:
            while flood.lines is None or record.sent < flood.lines:
                count = 1000 if flood.lines is None else min(1000, flood.lines - record.sent)
                chunk = batch if count == 1000 else b"".join(batch.splitlines(True)[:count])
                if flood.lines is None and self.peer_gone():
                    raise _Hangup("client hung up")
                self.send(chunk)
                record.sent += count
        except _Hangup as exc:
            self._finish(record, str(exc))
            raise
        self._finish(record, "complete")
        return False

    def _finish(self, record: StreamRecord, how: str) -> None:
        with self.s.lock:
            record.ended = how
            record.finished = time.monotonic()
        self.s.log(f"{record.kind}: {how} after {record.sent} of {record.planned}")

    def dispatch(self, tag: str, command: str, args: list[Token]) -> None:
        ok = f"{tag} OK {command} completed\r\n".encode()
        if command == "CAPABILITY":
            self.send(f"* CAPABILITY {' '.join(self.s.capabilities)}\r\n".encode() + ok)
        elif command == "NOOP" or command == "CHECK":
            self.announce()
            self.send(ok)
        elif command == "LOGOUT":
            self.send(b"* BYE Logging out\r\n" + ok)
            raise _Hangup("client logged out")
        elif command == "ID":
            self.send(b'* ID ("name" "hostile-imap")\r\n' + ok)
        elif command == "STARTTLS":
            if self.s.tls != "starttls" or self.tls_active:
                raise _Bad("STARTTLS not available")
            self.send(f"{tag} OK Begin TLS negotiation now\r\n".encode())
            self._start_tls()
        elif command == "LOGIN":
            self.login(tag, args)
        elif command == "AUTHENTICATE":
            self.send(f"{tag} NO [CANNOT] Only LOGIN here\r\n".encode())
        elif not self.authenticated:
            raise _Bad(f"{command} needs LOGIN first")
        elif command in ("SELECT", "EXAMINE"):
            self.select(tag, command, args)
        elif command == "STATUS":
            self.status(args)
            self.send(ok)
        elif command in ("LIST", "LSUB"):
            self.list_folders(command, args)
            self.send(ok)
        elif command == "NAMESPACE":
            self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n' + ok)
        elif command == "ENABLE":
            self.send(b"* ENABLED\r\n" + ok)
        elif command.split()[-1] in _WRITE_COMMANDS:
            with self.s.lock:
                self.s.write_attempts.append(command)
            self.send(f"{tag} NO [READ-ONLY] This test server changes nothing\r\n".encode())
        elif command == "IDLE":  # allowed in the authenticated state too (RFC 2177)
            self.idle(tag)
        elif self.selected is None:
            raise _Bad(f"{command} needs a selected folder")
        elif command in ("UNSELECT", "CLOSE"):
            self.selected = None
            self.send(ok)
        elif command in ("SEARCH", "UID SEARCH"):
            self.search(tag, command, args)
        elif command in ("FETCH", "UID FETCH"):
            self.fetch(command, args)
            self.send(ok)
        else:
            raise _Bad(f"unknown command {command}")

    # ------------------------------------------------------------------ commands

    def login(self, tag: str, args: list[Token]) -> None:
        if len(args) != 2:
            raise _Bad("LOGIN needs a user and a password")
        user, password = _text(args[0]), _text(args[1])
        if user == self.s.user and password == self.s.password:
            self.authenticated = True
            caps = " ".join(self.s.capabilities)
            self.send(f"{tag} OK [CAPABILITY {caps}] Logged in\r\n".encode())
        else:
            self.s.log("login rejected")
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n".encode())

    def _folder(self, token: Token) -> Folder | None:
        name = imapclient.imap_utf7.decode(_bytes(token))
        try:
            return self.s.folder(name)
        except KeyError:
            return None

    def select(self, tag: str, command: str, args: list[Token]) -> None:
        if not args:
            raise _Bad(f"{command} needs a folder")
        box = self._folder(args[0])
        self.selected = None
        if box is None:
            self.send(f"{tag} NO [NONEXISTENT] Mailbox doesn't exist\r\n".encode())
            return
        with self.s.lock:
            exists = len(box.messages)
            lines = [
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                "* OK [PERMANENTFLAGS ()] Read-only mailbox."
                if command == "EXAMINE"
                else "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] ok",
                f"* {exists} EXISTS",
                "* 0 RECENT",
                f"* OK [UIDVALIDITY {box.uidvalidity}] UIDs valid",
            ]
            if not self.s.omit_uidnext:
                lines.append(f"* OK [UIDNEXT {box.uidnext}] Predicted next UID")
        self.selected, self.readonly, self.announced = box, command == "EXAMINE", exists
        mode = "READ-ONLY" if self.readonly else "READ-WRITE"
        lines.append(f"{tag} OK [{mode}] {command} completed")
        self.send(("\r\n".join(lines) + "\r\n").encode())

    def status(self, args: list[Token]) -> None:
        if len(args) != 2 or not isinstance(args[1], list):
            raise _Bad("STATUS needs a folder and a list of items")
        box = self._folder(args[0])
        if box is None:
            raise _Bad("no such folder")  # Dovecot answers NO; BAD is as good for tests
        out = []
        with self.s.lock:
            values = {
                "MESSAGES": len(box.messages),
                "UIDNEXT": box.uidnext,
                "UIDVALIDITY": box.uidvalidity,
                "UNSEEN": sum(1 for m in box.messages if b"\\Seen" not in m.flags),
                "RECENT": 0,
            }
        for item in args[1]:
            name = _text(item).upper()
            if name not in values:
                raise _Bad(f"unknown STATUS item {name}")
            if name == "UIDNEXT" and self.s.omit_uidnext:
                continue
            out.append(f"{name} {values[name]}")
        self.send(f"* STATUS {_quote(box.name)} ({' '.join(out)})\r\n".encode())

    def list_folders(self, command: str, args: list[Token]) -> None:
        """``LIST [(selection)] ref pattern [RETURN (options)]`` (RFC 5258, RFC 6154):
        selection ``SPECIAL-USE`` lists only special-use folders; attributes always carry
        the special use (allowed without RETURN by RFC 6154 section 2)."""
        only_special = False
        if args and isinstance(args[0], list):
            only_special = any(_text(t).upper() == "SPECIAL-USE" for t in args[0])
            args = args[1:]
        if len(args) < 2:
            raise _Bad("LIST needs a reference and a pattern")
        pattern = _text(args[0]) + imapclient.imap_utf7.decode(_bytes(args[1]))
        regex = re.compile(
            "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern)
            + r"\Z",
            re.IGNORECASE,
        )
        with self.s.lock:
            boxes = list(self.s.folders.values())
        lines = []
        for box in boxes:
            if only_special and not box.special_use:
                continue
            if not regex.match(box.name):
                continue
            attrs = ["\\HasNoChildren"] + ([box.special_use] if box.special_use else [])
            name = imapclient.imap_utf7.encode(box.name).decode("ascii")
            lines.append(f'* {command} ({" ".join(attrs)}) "/" {_quote(name)}\r\n')
        self.send("".join(lines).encode())

    def announce(self) -> None:
        """Report mail that arrived since this session last said EXISTS."""
        if self.selected is None:
            return
        with self.s.lock:
            exists = len(self.selected.messages)
        if exists > self.announced:
            self.announced = exists
            self.send(f"* {exists} EXISTS\r\n* 0 RECENT\r\n".encode())

    # ------------------------------------------------------------------ SEARCH

    def search(self, tag: str, command: str, args: list[Token]) -> None:
        assert self.selected is not None
        charset = "utf-8"
        if len(args) >= 2 and _text(args[0]).upper() == "CHARSET":
            charset = _text(args[1]).lower()
            args = args[2:]
            if charset not in ("utf-8", "us-ascii"):
                self.send(f"{tag} NO [BADCHARSET (UTF-8 US-ASCII)] Unknown charset\r\n".encode())
                return
        if not args:
            raise _Bad("SEARCH needs criteria")
        with self.s.lock:
            messages = list(self.selected.messages)
        matcher = _SearchParser(args, charset, messages).parse_all()
        uid_mode = command.startswith("UID")
        found = [
            str(m.uid if uid_mode else seq)
            for seq, m in enumerate(messages, start=1)
            if matcher(m, seq)
        ]
        self.send(("* SEARCH" + "".join(" " + f for f in found) + "\r\n").encode())
        self.send(f"{tag} OK {command} completed\r\n".encode())

    # ------------------------------------------------------------------ FETCH

    def fetch(self, command: str, args: list[Token]) -> None:
        assert self.selected is not None
        if len(args) != 2:
            raise _Bad("FETCH needs a message set and items")
        uid_mode = command.startswith("UID")
        with self.s.lock:
            messages = list(self.selected.messages)
        top = messages[-1].uid if uid_mode and messages else len(messages)
        wanted = parse_set(_text(args[0]), top)
        items = args[1] if isinstance(args[1], list) else [args[1]]
        names = [_text(i).upper() for i in items]
        for macro, expansion in (
            ("ALL", ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]),
            ("FAST", ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]),
        ):
            if names == [macro]:
                names = expansion
        for seq, msg in enumerate(messages, start=1):
            if (msg.uid if uid_mode else seq) in wanted:
                self._fetch_one(seq, msg, names, uid_mode)

    def _fetch_one(self, seq: int, msg: Message, names: list[str], uid_mode: bool) -> None:
        assert self.selected is not None
        folder = self.selected.name
        answered = self.s._lookup(self.s._wrong_uid, folder, msg.uid)
        uid = int(answered) if isinstance(answered, int) else msg.uid
        if uid != msg.uid:
            self.s.log(f"wrong uid: asked {msg.uid}, answered {uid}")
        huge = self.s._lookup(self.s._huge, folder, msg.uid)
        trickle = self.s._lookup(self.s._trickle, folder, msg.uid)
        parts: list[bytes | _Literal] = []
        if uid_mode or "UID" in names:
            parts.append(f"UID {uid}".encode())
        sets_seen = False
        for name in names:
            if name == "UID":
                continue
            if name == "FLAGS":
                parts.append(b"FLAGS (" + b" ".join(sorted(msg.flags)) + b")")
            elif name == "INTERNALDATE":
                parts.append(b'INTERNALDATE "' + _imap_date(msg.internaldate).encode() + b'"')
            elif name == "RFC822.SIZE":
                size = len(msg.raw)
                if isinstance(huge, tuple) and huge[1] is not None:
                    size = huge[1]
                parts.append(f"RFC822.SIZE {size}".encode())
            else:
                key, data, part, peek = self._section(name, msg)
                sets_seen |= not peek
                literal = _Literal(data, len(data))
                if isinstance(huge, tuple) and part in huge[2]:
                    literal = _Literal(data, max(huge[0], len(data)), "huge", uid)
                elif isinstance(trickle, tuple) and part in trickle[1]:
                    literal = _Literal(data, len(data), "trickle", uid, trickle[0])
                parts += [key.encode(), literal]
        if sets_seen and not self.readonly and b"\\Seen" not in msg.flags:
            with self.s.lock:
                msg.flags.add(b"\\Seen")
            parts.append(b"FLAGS (" + b" ".join(sorted(msg.flags)) + b")")
        # Small pieces are gathered and written at once; only a misbehaving literal is
        # streamed on its own.
        out = bytearray(f"* {seq} FETCH (".encode())
        for n, piece in enumerate(parts):
            if n:
                out += b" "
            if isinstance(piece, _Literal) and piece.kind != "plain":
                self.send(bytes(out))
                out = bytearray()
                self.send_literal(piece, " ".join(["FETCH", *names]))
            elif isinstance(piece, _Literal):
                out += b"{%d}\r\n" % piece.size + piece.data
            else:
                out += piece
        self.send(bytes(out) + b")\r\n")

    def _section(self, name: str, msg: Message) -> tuple[str, bytes, str | None, bool]:
        """(response key, data, part, is PEEK) for a body item *name*; part is ``""`` (the
        whole message), ``"HEADER"`` or ``"TEXT"``, None for anything partial."""
        if name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
            data = {"RFC822": msg.raw, "RFC822.HEADER": msg.header_block}.get(name, msg.body)
            part: str | None = {"RFC822": "", "RFC822.HEADER": "HEADER"}.get(name, "TEXT")
            return name, data, part, name == "RFC822.HEADER"
        found = _BODY_ITEM.match(name)
        if not found:
            raise _Bad(f"unsupported FETCH item {name}")
        peek, section, start, length = found.groups()
        section = " ".join(section.split())
        if section == "":
            data = msg.raw
        elif section == "HEADER":
            data = msg.header_block
        elif section in ("TEXT", "1"):
            data = msg.body
        elif section.startswith(("HEADER.FIELDS ", "HEADER.FIELDS.NOT ")):
            fields = {f.upper() for f in re.findall(r"[^\s()]+", section.split(" ", 1)[1])}
            data = _header_fields(msg.header_block, fields, section.startswith("HEADER.FIELDS.NOT"))
        else:
            raise _Bad(f"unsupported section {section}")
        key = f"BODY[{section}]"
        part = {"": "", "HEADER": "HEADER", "TEXT": "TEXT", "1": "TEXT"}.get(section)
        if start is not None:
            begin = int(start)
            data = data[begin : begin + int(length)] if length is not None else data[begin:]
            key += f"<{begin}>"
            part = None
        return key, data, part, bool(peek)

    def send_literal(self, literal: _Literal, command: str) -> None:
        """``{size}`` CRLF and the bytes: plain, huge (filler generated chunk by chunk,
        never held in memory) or trickled (one byte per tick of *seconds_per_byte*)."""
        self.send(b"{%d}\r\n" % literal.size)
        if literal.kind == "plain":
            self.send(literal.data)
            return
        record = StreamRecord(literal.kind, command, literal.uid, literal.size)
        with self.s.lock:
            self.s.streams.append(record)
        self.s.log(f"{literal.kind} literal: UID {literal.uid}, {literal.size} bytes")
        try:
            if literal.kind == "trickle":
                for n in range(len(literal.data)):
                    if n and self.s._stop.wait(literal.seconds_per_byte):
                        raise _Hangup("server stopped")
                    if self.peer_gone():
                        raise _Hangup("client hung up")
                    self.send(literal.data[n : n + 1])
                    record.sent += 1
            else:
                for chunk in _huge_chunks(literal.data, literal.size):
                    self.send(chunk)
                    record.sent += len(chunk)
        except _Hangup as exc:
            self._finish(record, str(exc))
            raise
        self._finish(record, "complete")

    # ------------------------------------------------------------------ IDLE

    def idle(self, tag: str) -> None:
        """RFC 2177 IDLE until DONE, reporting new mail as :attr:`HostileIMAP.idle_mode`
        says. Ends (the session too) when the client hangs up or the server stops."""
        self.send(b"+ idling\r\n")
        with self.s.lock:
            self.s.idle_sessions += 1
        started = time.monotonic()
        next_tick = started + self.s.idle_interval
        keepalive = self.s.idle_keepalive
        next_keepalive = started + keepalive if keepalive else float("inf")
        try:
            while True:
                line = self.readline(time.monotonic() + _TICK, quiet=True)
                if line is not None:
                    if line.strip().upper() == b"DONE":
                        self.announce()  # every mode reports pending mail on DONE
                        self.send(f"{tag} OK Idle completed\r\n".encode())
                    else:
                        self.send(f"{tag} BAD Expected DONE\r\n".encode())
                    return
                now = time.monotonic()  # no limit of its own: the lifetime ends it
                mode = self.s.idle_mode
                if mode == "prompt":
                    self.announce()
                elif mode == "periodic" and now >= next_tick:
                    next_tick += self.s.idle_interval
                    self.announce()
                if now >= next_keepalive:
                    next_keepalive += keepalive or 0
                    self.send(b"* OK Still here\r\n")
        finally:
            with self.s.lock:
                self.s.idle_sessions -= 1


# ---------------------------------------------------------------------- SEARCH parsing


Matcher = Callable[[Message, int], bool]


class _SearchParser:
    """SEARCH criteria (RFC 9051 6.4.4) into a predicate over (message, sequence number).
    String keys match case-insensitive substrings of the decoded header (BODY/TEXT: of the
    raw bytes read as UTF-8, without transfer decoding)."""

    def __init__(self, tokens: list[Token], charset: str, messages: list[Message]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.charset = charset
        self.max_uid = messages[-1].uid if messages else 0
        self.max_seq = len(messages)

    def parse_all(self) -> Matcher:
        keys = []
        while self.pos < len(self.tokens):
            keys.append(self.key())
        return lambda m, s: all(k(m, s) for k in keys)

    def _next(self) -> Token:
        if self.pos >= len(self.tokens):
            raise _Bad("SEARCH criteria end too early")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def _string(self) -> str:
        token = self._next()
        if isinstance(token, list):
            raise _Bad("a string was expected")
        raw = token.encode("latin-1") if isinstance(token, Atom) else token
        return raw.decode(self.charset if self.charset == "utf-8" else "ascii", "replace")

    def _date(self) -> date:
        text = _text(self._next())
        try:
            day, month, year = text.split("-")
            return date(int(year), _MONTHS.index(month.title()) + 1, int(day))
        except ValueError:
            raise _Bad(f"bad date {text}") from None

    def key(self) -> Matcher:
        token = self._next()
        if isinstance(token, list):
            sub = _SearchParser(token, self.charset, [])
            sub.max_uid, sub.max_seq = self.max_uid, self.max_seq
            return sub.parse_all()
        word = _text(token).upper()
        flags = {
            "SEEN": (b"\\Seen", True),
            "UNSEEN": (b"\\Seen", False),
            "ANSWERED": (b"\\Answered", True),
            "UNANSWERED": (b"\\Answered", False),
            "FLAGGED": (b"\\Flagged", True),
            "UNFLAGGED": (b"\\Flagged", False),
            "DELETED": (b"\\Deleted", True),
            "UNDELETED": (b"\\Deleted", False),
            "DRAFT": (b"\\Draft", True),
            "UNDRAFT": (b"\\Draft", False),
        }
        if word in flags:
            flag, present = flags[word]
            return lambda m, s: (flag in m.flags) == present
        if word in ("ALL", "OLD"):
            return lambda m, s: True
        if word in ("NEW", "RECENT"):
            return lambda m, s: False
        if word == "NOT":
            inner = self.key()
            return lambda m, s: not inner(m, s)
        if word == "OR":
            left, right = self.key(), self.key()
            return lambda m, s: left(m, s) or right(m, s)
        if word == "UID":
            uids = parse_set(_text(self._next()), self.max_uid)
            return lambda m, s: m.uid in uids
        if re.fullmatch(r"[\d*:,]+", word):
            seqs = parse_set(word, self.max_seq)
            return lambda m, s: s in seqs
        if word in ("FROM", "TO", "CC", "BCC", "SUBJECT"):
            needle = self._string().casefold()
            return lambda m, s: needle in m.header_text(word.title()).casefold()
        if word == "HEADER":
            name, needle = self._string(), self._string().casefold()
            return lambda m, s: needle in m.header_text(name).casefold()
        if word in ("BODY", "TEXT"):
            needle = self._string().casefold()
            whole = word == "TEXT"
            return lambda m, s: (
                needle in (m.raw if whole else m.body).decode("utf-8", "replace").casefold()
            )
        if word in ("LARGER", "SMALLER"):
            limit = int(_text(self._next()))
            if word == "LARGER":
                return lambda m, s: len(m.raw) > limit
            return lambda m, s: len(m.raw) < limit
        if word in ("SINCE", "BEFORE", "ON", "SENTSINCE", "SENTBEFORE", "SENTON"):
            day = self._date()
            when = _sent_date if word.startswith("SENT") else _internal_day
            test = {"SINCE": "ge", "BEFORE": "lt", "ON": "eq"}[word.removeprefix("SENT")]
            return lambda m, s: _compare(when(m), day, test)
        raise _Bad(f"unsupported SEARCH key {word}")


def _internal_day(msg: Message) -> date | None:
    return msg.internaldate.date()


def _sent_date(msg: Message) -> date | None:
    try:
        return email.utils.parsedate_to_datetime(msg.header_text("Date")).date()
    except (TypeError, ValueError, IndexError):
        return None


def _compare(value: date | None, day: date, test: str) -> bool:
    if value is None:
        return False
    return {"ge": value >= day, "lt": value < day, "eq": value == day}[test]


# ---------------------------------------------------------------------- helpers


class _Set:
    """A parsed IMAP sequence set: membership test over (low, high) ranges."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.ranges = ranges

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and any(lo <= value <= hi for lo, hi in self.ranges)


def parse_set(text: str, top: int) -> _Set:
    """``1:5,7,9:*`` with ``*`` = *top* (the highest UID or sequence number); ranges may be
    written backwards (RFC 9051 9: ``seq-range``). At most 10,000 ranges."""
    ranges = []
    pieces = text.split(",")
    if len(pieces) > 10_000:
        raise _Bad("sequence set too long")
    for piece in pieces:
        ends = piece.split(":")
        if len(ends) > 2 or not all(e == "*" or e.isdigit() for e in ends):
            raise _Bad(f"bad sequence set {text[:40]}")
        values = [top if e == "*" else int(e) for e in ends]
        ranges.append((min(values), max(values)))
    return _Set(ranges)


def tokenize(data: bytes) -> list[Token]:
    """Split a command (literals inline: ``{n}`` CRLF then n bytes) into atoms, strings and
    parenthesised lists. Brackets keep their content in the atom
    (``BODY.PEEK[HEADER.FIELDS (FROM)]`` is one atom). Raises ValueError when malformed."""
    root: list[Token] = []
    stack = [root]
    i, n = 0, len(data)
    literal = re.compile(rb"\{(\d{1,9})\+?\}\r?\n")
    while i < n:
        c = data[i : i + 1]
        if c in (b" ", b"\r", b"\n"):
            i += 1
        elif c == b"(":
            if len(stack) > 32:
                raise ValueError("lists nested too deep")
            inner: list[Token] = []
            stack[-1].append(inner)
            stack.append(inner)
            i += 1
        elif c == b")":
            if len(stack) == 1:
                raise ValueError("unbalanced )")
            stack.pop()
            i += 1
        elif c == b'"':
            out = bytearray()
            j = i + 1
            while True:
                if j >= n:
                    raise ValueError("unterminated string")
                ch = data[j]
                if ch == 0x5C and j + 1 < n:
                    out.append(data[j + 1])
                    j += 2
                    continue
                if ch == 0x22:
                    break
                out.append(ch)
                j += 1
            stack[-1].append(bytes(out))
            i = j + 1
        elif c == b"{":
            found = literal.match(data, i)
            if not found:
                raise ValueError("bad literal")
            start = found.end()
            stack[-1].append(data[start : start + int(found.group(1))])
            i = start + int(found.group(1))
        else:
            j, depth = i, 0
            while j < n:
                ch2 = data[j : j + 1]
                if ch2 == b"[":
                    depth += 1
                elif ch2 == b"]":
                    depth = max(depth - 1, 0)
                elif depth == 0 and ch2 in (b" ", b"(", b")", b"\r", b"\n"):
                    break
                j += 1
            stack[-1].append(Atom(data[i:j].decode("latin-1")))
            i = j
    if len(stack) != 1:
        raise ValueError("unbalanced (")
    return root


def _text(token: Token) -> str:
    if isinstance(token, list):
        raise _Bad("a string was expected, not a list")
    return str(token) if isinstance(token, Atom) else token.decode("utf-8", "replace")


def _bytes(token: Token) -> bytes:
    if isinstance(token, list):
        raise _Bad("a string was expected, not a list")
    return token.encode("latin-1") if isinstance(token, Atom) else token


def _show(token: Token) -> str:
    if isinstance(token, list):
        return "(" + " ".join(_show(t) for t in token) + ")"
    if isinstance(token, Atom):
        return str(token)
    return '"' + token.decode("utf-8", "replace") + '"'


def _quote(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.\-/\[\]]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_date(when: datetime) -> str:
    """INTERNALDATE text (RFC 9051 date-time): ``03-Jun-2024 18:02:44 +0000``."""
    offset = when.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return (
        f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d} "
        f"{when:%H:%M:%S} {sign}{hh:02d}{mm:02d}"
    )


def _header_fields(header: bytes, fields: set[str], exclude: bool) -> bytes:
    """The header fields named in *fields* (or all others, *exclude*), with their folded
    continuation lines, then the blank line (RFC 9051 6.4.5 HEADER.FIELDS)."""
    out: list[bytes] = []
    keep = False
    for line in header.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if keep:
                out.append(line)
            continue
        name = line.split(b":", 1)[0].strip().decode("latin-1").upper()
        keep = (name in fields) != exclude
        if keep:
            out.append(line)
    return b"".join(x + b"\r\n" for x in out) + b"\r\n"


def _huge_chunks(head: bytes, size: int) -> Iterator[bytes | memoryview]:
    """*head*, then filler, *size* bytes in all, 64 KiB at a time (nothing is kept)."""
    yield head[:size]
    left = size - min(len(head), size)
    block = memoryview(_FILLER)
    while left > 0:
        take = min(left, len(block))
        yield block[:take]
        left -= take


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost: with the
    ``cryptography`` package when installed, else the openssl CLI. Returns (ca, cert, key)."""
    ca, cert, key = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    try:
        _certificates_cryptography(ca, cert, key)
    except ImportError:
        _certificates_openssl(directory, ca, cert, key)
    return ca, cert, key


def _certificates_cryptography(ca_path: Path, cert_path: Path, key_path: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile-imap test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificates_openssl(directory: Path, ca: Path, cert: Path, key: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError(
            "TLS for the hostile IMAP server needs the cryptography package or the openssl CLI"
        )
    ext = directory / "server.ext"
    ext.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    d = str(directory)
    commands = [
        ["openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", str(ca),
         "-days", "2", "-subj", "/CN=hostile-imap test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *ec, "-keyout", str(key), "-out", f"{d}/server.csr",
         "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", str(ca),
         "-CAkey", f"{d}/ca.key", "-set_serial", "0x1", "-days", "2",
         "-extfile", str(ext), "-out", str(cert)],
    ]  # fmt: skip
    for cmd in commands:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr}")
