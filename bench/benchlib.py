"""Shared helpers for the benchmarks: a Dovecot server with a big mailbox, running a contender
as a child process with its wall time, peak RSS and the bytes Dovecot sent it, and printing.

Nothing here is a test: these scripts print figures (and ratios against a baseline measured
in the same run) and never assert on time.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailgen import OUT, REPO, Mailbox, generate, install

sys.path[:0] = [str(REPO), str(REPO / "tests")]

from dovecot import DovecotServer  # noqa: E402  (tests/ is put on the path above)


@dataclass
class Run:
    """One child process run: wall seconds, CPU seconds, peak RSS in bytes, server bytes."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    server_out_bytes: int
    server_in_bytes: int
    sessions: int
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Result:
    """The runs of one contender and what it found."""

    name: str
    runs: list[Run] = field(default_factory=list)
    found: int | None = None
    note: str = ""

    def median(self, attr: str) -> float:
        return statistics.median(float(getattr(r, attr)) for r in self.runs)


class BenchServer:
    """A private Dovecot (tests/dovecot.py) with one user whose INBOX is a generated Maildir.

    The server's temp dir is put under bench/out so the generated Maildir can be hard-linked
    into it instead of copied.
    """

    def __init__(self, mailbox: Mailbox | None, user: str = "bench") -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        # A SIGTERM (timeout, kill) unwinds like Ctrl-C, so the server is stopped, not left.
        signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
        tempfile.tempdir = str(OUT)  # DovecotServer uses mkdtemp(); same file system as OUT
        os.chmod(OUT, 0o711)  # Dovecot's unprivileged processes traverse into the temp dir
        try:
            self.server = DovecotServer(socket_timeout=60).start()
        finally:
            tempfile.tempdir = None
        self.user = user
        self.password = self.server.add_user(user)
        self.home = self.server.home(user)
        if mailbox is not None:
            st = os.stat(self.home)
            install(mailbox, self.server.maildir(user), st.st_uid, st.st_gid)
        self.work = Path(tempfile.mkdtemp(prefix="run-", dir=self.server.tmp_dir))
        self.password_file = self.work / "password"
        self.password_file.write_text(self.password + "\n")
        self.password_file.chmod(0o600)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ca_file(self) -> Path:
        return self.server.ca_file

    def session_count(self) -> int:
        return len(self.server.session_bytes(self.user))

    def sessions_since(self, before: int, timeout: float = 10.0) -> list[tuple[int, int]]:
        """The (in, out) byte counts of sessions that ended after *before* were logged;
        waits (bounded) for the log lines, which Dovecot writes just after the disconnect."""
        deadline = time.monotonic() + timeout
        while True:
            sessions = self.server.session_bytes(self.user)[before:]
            if sessions or time.monotonic() > deadline:
                # One more short wait: a contender with several sessions logs them in a row.
                time.sleep(0.2)
                return self.server.session_bytes(self.user)[before:]
            time.sleep(0.05)

    def warm_up(self) -> float:
        """Open INBOX once, search From and Subject and fetch every message's From/Subject,
        so Dovecot's index and cache are built before anyone is timed; return seconds."""
        t0 = time.perf_counter()
        with self.server.client(self.user) as c:
            c.select_folder("INBOX", readonly=True)
            c.search(["OR", "FROM", "warmup", "SUBJECT", "warmup"])
            uids = c.search(["ALL"])
            # IMAPClient 4 cannot fetch a "1:*" range (it int()s the message set): use lists.
            for k in range(0, len(uids), 2000):
                c.fetch(
                    uids[k : k + 2000], ["BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]", "RFC822.SIZE"]
                )
        return time.perf_counter() - t0

    def close(self) -> None:
        self.server.close()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment plus *extra*, without PYTHONDONTWRITEBYTECODE: a contender runs as
    an installed program does, from compiled bytecode (written on its first, warm-up run),
    not compiling its modules from source on every run (0.15 s of a first scan)."""
    env = {**os.environ, **(extra or {})}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_child(
    cmd: Sequence[str],
    server: BenchServer | None,
    env: dict[str, str] | None = None,
    timeout: float = 600.0,
) -> Run:
    """Run *cmd*, timing it from spawn to exit; peak RSS and CPU from wait4's rusage; the
    bytes Dovecot sent from its logout lines. Killed after *timeout* seconds."""
    before = server.session_count() if server is not None else 0
    # GNU time forks the contender from a ~2 MB process: a child forked straight from this
    # (bigger) Python would inherit its high-water RSS in wait4's ru_maxrss.
    time_bin = shutil.which("time") or "/usr/bin/time"
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rusage,
    ):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [time_bin, "-q", "-f", "%M %U %S", "-o", rusage.name, *cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=child_env(env),
            start_new_session=True,
        )
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _pid, status, _usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        fields = rusage.read().split()[-3:]
        maxrss_kib, user_s, sys_s = int(fields[0]), float(fields[1]), float(fields[2])
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    sessions = server.sessions_since(before) if server is not None else []
    return Run(
        wall_seconds=wall,
        cpu_seconds=user_s + sys_s,
        peak_rss_bytes=maxrss_kib * 1024,
        server_out_bytes=sum(o for _i, o in sessions),
        server_in_bytes=sum(i for i, _o in sessions),
        sessions=len(sessions),
        returncode=proc.returncode,
        stdout=stdout,
        stderr=stderr,
    )


def mib(n: float) -> str:
    """Bytes as a short human figure (KiB, MiB or GiB)."""
    if n >= 1024**3:
        return f"{n / 1024**3:.2f} GiB"
    if n >= 1024**2:
        return f"{n / 1024**2:.1f} MiB"
    return f"{n / 1024:.1f} KiB"


def table(rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned plain-text table."""
    text = [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(text[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in text
    )


def mailbox_for(messages: int, seed: int) -> Mailbox:
    """Generate (or reuse) the benchmark Maildir, printing how long it took."""
    t0 = time.perf_counter()
    box = generate(messages, seed)
    took = time.perf_counter() - t0
    print(
        f"mailbox: {box.messages} messages, {len(box.planted)} Meta/look-alike mails planted, "
        f"{box.large} with a 7-12 MB attachment, {mib(box.total_bytes)} on disk "
        f"({box.path}, ready in {took:.1f} s)",
        flush=True,
    )
    return box


def watcher_config(
    server: BenchServer, database: Path, path: Path, extra: str = "", idle: bool = True
) -> Path:
    """Write a meta-watcher config for the bench user; return its path."""
    path.write_text(
        f"database: {database}\n"
        "trusted_authserv_ids: [mx.home.example]\n"
        "poll_interval: 300\n"
        f"{extra}"
        "accounts:\n"
        "  - name: bench\n"
        f"    host: {server.host}\n"
        f"    port: {server.port}\n"
        f"    ca_file: {server.ca_file}\n"
        f"    username: {server.user}\n"
        f"    password_file: {server.password_file}\n"
        f"    idle: {'true' if idle else 'false'}\n"
        "    folders: [INBOX]\n",
        encoding="utf-8",
    )
    return path
