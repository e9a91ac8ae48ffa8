"""Server faults against a real Dovecot, most produced by a fault-injecting proxy in front of it
(tests/faultproxy.py): connection resets during LOGIN, FETCH and IDLE, a stopped and restarted
server, a kicked session, a reply slower than the timeout, a server that omits UIDNEXT, UIDs
above 2^31, NO and BAD answers to SEARCH CHARSET, and refused connections.

Every case runs the real daemon (`meta-watcher run` as a process) and must end the same way:
every mail processed and notified exactly once, the daemon still running, one plain log line
saying what happened (no traceback), and the mailbox exactly as it was (flags, message count,
folder list).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from daemonproc import DaemonProcess, code_mail, write_config
from dovecot import DovecotServer
from faultproxy import FaultProxy, wait_until
from httpreceiver import Receiver

ACCOUNT_TIMEOUT = 2.0  # seconds: the account's socket timeout in these tests
NON_META = (
    b"From: Karl <karl@example.com>\r\nTo: anna.beispiel@example.org\r\n"
    b"Subject: Grillen am Samstag\r\nMessage-ID: <bbq-%d@example.com>\r\n"
    b"Date: Mon, 03 Jun 2024 11:02:44 -0700\r\n\r\nKommst du?\r\n"
)


def mailbox_state(server: DovecotServer, user: str) -> dict[str, Any]:
    """Folders, and per folder the message count and each UID's flags (\\Recent left out:
    it is per session, not stored)."""
    state: dict[str, Any] = {}
    with server.client(user) as client:
        for _flags, _delim, name in client.list_folders():
            info = client.select_folder(name, readonly=True)
            uids = client.search("ALL") if int(info[b"EXISTS"]) else []
            flags = client.get_flags(uids) if uids else {}
            state[str(name)] = (
                int(info[b"EXISTS"]),
                {uid: sorted(f for f in fl if f != b"\\Recent") for uid, fl in flags.items()},
            )
    return state


@dataclass
class Case:
    """One fault scenario: the proxy, the daemon, the receiver, and the mail sent so far."""

    server: DovecotServer
    user: str
    password: str
    tmp_path: Path
    proxy: FaultProxy
    receiver: Receiver
    codes: list[str]
    daemon: DaemonProcess | None = None
    config: Path | None = None
    next_code: int = 100_000

    def send_codes(self, count: int) -> list[str]:
        """APPEND *count* verification-code mails (and one ordinary mail) directly to Dovecot."""
        sent = []
        for _ in range(count):
            self.next_code += 7919
            code = str(self.next_code)[-6:]
            self.server.append(self.user, "INBOX", code_mail(code))
            sent.append(code)
        self.server.append(self.user, "INBOX", NON_META % self.next_code)
        self.codes += sent
        return sent

    def start(self, **top: Any) -> DaemonProcess:
        account = {
            "host": "127.0.0.1",
            "port": self.proxy.port,
            "security": "none",
            "ca_file": None,
            "timeout": f"{ACCOUNT_TIMEOUT}s",
        }
        settings: dict[str, Any] = {"reconnect_max": "1s", "poll_interval": "1h"}
        settings.update(top)
        self.config = write_config(
            self.tmp_path,
            self.server,
            self.user,
            self.password,
            [self.receiver.url],
            account=account,
            **settings,
        )
        self.daemon = DaemonProcess(self.config, self.tmp_path / "daemon.log").start()
        return self.daemon

    def log(self) -> str:
        return self.daemon.log() if self.daemon else ""

    def recorded_codes(self) -> int:
        conn = sqlite3.connect(self.tmp_path / "log.sqlite3", timeout=10)
        try:
            rows = conn.execute(
                "SELECT count(*) FROM messages WHERE kind = 'verification_code'"
            ).fetchone()
        finally:
            conn.close()
        return int(rows[0])

    def notified_codes(self) -> list[str]:
        return [
            r.title.split()[-1] for r in self.receiver.received if "verification" in r.title.split()
        ]

    def wait_all(self, timeout: float = 45) -> None:
        """Wait until every code sent so far was notified (fails with the daemon's log)."""

        def done() -> bool:
            return set(self.notified_codes()) >= set(self.codes)

        if not wait_until(done, timeout):
            pytest.fail(
                f"not every code was notified within {timeout}s: sent {self.codes}, "
                f"notified {self.notified_codes()}\n--- daemon log ---\n{self.log()}"
            )

    def check_exactly_once_and_alive(self) -> None:
        assert self.daemon is not None
        assert self.daemon.proc is not None
        assert self.daemon.proc.poll() is None, "the daemon died:\n" + self.log()
        time.sleep(0.5)  # a duplicate would arrive right behind the original
        counts = Counter(self.notified_codes())
        assert counts == Counter(self.codes), (counts, self.log())
        assert self.recorded_codes() == len(self.codes)
        conn = sqlite3.connect(self.tmp_path / "log.sqlite3", timeout=10)
        try:
            dupes = conn.execute(
                "SELECT message_id, count(*) FROM messages GROUP BY identity, message_id "
                "HAVING count(*) > 1"
            ).fetchall()
            outbox = conn.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        finally:
            conn.close()
        assert dupes == []
        assert dict(outbox) == {"sent": len(self.codes)}, outbox

    def check_log(self, pattern: str) -> None:
        """The fault is told in one plain line (matching *pattern*), and nothing else went
        wrong: no traceback, no unexpected error."""
        log = self.log()
        lines = [line for line in log.splitlines() if re.search(pattern, line)]
        assert lines, f"no log line matches {pattern!r}:\n{log}"
        assert all(line.startswith(("WARNING ", "ERROR ", "INFO ")) for line in lines), lines
        assert "Traceback" not in log
        assert not re.search(r"unexpected [A-Z]\w+|failed unexpectedly", log), log
        assert self.password not in log

    def stop(self) -> None:
        assert self.daemon is not None
        self.daemon.signal(signal.SIGTERM)
        assert self.daemon.wait(15) == 0, self.log()


@pytest.fixture
def case(dovecot: DovecotServer, dovecot_user: tuple[str, str], tmp_path: Path) -> Iterator[Case]:
    user, password = dovecot_user
    with (
        FaultProxy((dovecot.host, dovecot.starttls_port)) as proxy,
        Receiver() as receiver,
    ):
        c = Case(dovecot, user, password, tmp_path, proxy, receiver, [])
        try:
            yield c
        finally:
            if c.daemon is not None:
                c.daemon.kill()


def run_case(
    case: Case,
    arm: Callable[[FaultProxy], None],
    log_pattern: str,
    *,
    while_running: Callable[[Case], None] | None = None,
    **settings: Any,
) -> None:
    """The common shape: mail before start, arm the fault, start, mail while running,
    everything once, daemon alive, one log line, mailbox unchanged, clean stop."""
    case.send_codes(2)
    arm(case.proxy)
    case.start(**settings)
    case.wait_all()
    if while_running is not None:
        while_running(case)
    case.send_codes(2)
    case.wait_all()
    assert case.proxy.events or while_running is not None, "the fault never happened"
    state = mailbox_state(case.server, case.user)
    assert_read_only(case.proxy.commands)
    case.check_exactly_once_and_alive()
    case.check_log(log_pattern)
    case.stop()
    assert mailbox_state(case.server, case.user) == state
    inbox = state["INBOX"]
    assert inbox[0] == 3 * 2  # 4 codes + 2 ordinary mails, none gone
    assert all(flags == [] for flags in inbox[1].values()), inbox  # never \Seen


# Commands that change a mailbox, and fetch items that set \Seen (RFC 9051 6.4.5).
WRITES = {"SELECT", "STORE", "COPY", "MOVE", "EXPUNGE", "APPEND", "CREATE", "DELETE", "RENAME"}
SETS_SEEN = re.compile(r"BODY\[|RFC822(?:\.TEXT)?(?=[ )])", re.IGNORECASE)


def assert_read_only(commands: list[str]) -> None:
    r"""The watcher sent only read-only commands: EXAMINE, never SELECT, never a write, and
    only fetch items that leave \Seen alone."""
    assert commands, "the proxy saw no command"
    verbs = {c.split()[0] if not c.startswith("UID ") else c.split()[1] for c in commands}
    assert not verbs & WRITES, sorted(verbs & WRITES)
    assert any(c.startswith("EXAMINE") for c in commands), commands[:20]
    fetches = [c for c in commands if "FETCH" in c.split()[:2]]
    assert fetches
    assert not [c for c in fetches if SETS_SEEN.search(c)], fetches


LOST = r"account home.*(lost|failed|reset|ended|did not answer)"


def test_connection_reset_during_fetch(case: Case) -> None:
    run_case(
        case,
        lambda p: p.arm(r"UID FETCH .*BODY\.PEEK\[\]", "reset", after_bytes=700),
        LOST,
    )
    assert any(e.startswith("reset: UID FETCH") for e in case.proxy.events)


def test_connection_reset_during_login(case: Case) -> None:
    run_case(case, lambda p: p.arm(r"^\S+ LOGIN ", "reset", times=2), r"account home.*127\.0\.0\.1")
    resets = [e for e in case.proxy.events if e.startswith("reset")]
    assert len(resets) == 2
    assert all(e.startswith("reset: LOGIN") for e in resets), resets


def test_connection_closed_during_login(case: Case) -> None:
    """EOF instead of a reset (a server restarting): imapclient calls that a LoginError, but
    it says nothing about the password, so no hour-long login_retry and no notification."""
    run_case(
        case,
        lambda p: p.arm(r"^\S+ LOGIN ", "close", times=2),
        r"account home.*login failed: the connection was lost",
    )
    assert not [r for r in case.receiver.received if "log in" in r.title.lower()]


def test_connection_reset_during_idle(case: Case) -> None:
    def reconnected(c: Case) -> None:
        assert wait_until(lambda: c.proxy.fired() >= 1, 30), c.proxy.events
        assert wait_until(lambda: c.log().count("idling") >= 2, 30), c.log()

    # The first IDLE is answered, then the connection dies under it a second later.
    run_case(
        case,
        lambda p: p.arm(r"^\S+ IDLE", "reset", after_bytes=0, delay=1.0),
        LOST,
        while_running=reconnected,
    )


def test_session_kicked_by_the_server(case: Case) -> None:
    def kick(c: Case) -> None:
        assert wait_until(lambda: "idling" in c.log(), 20), c.log()
        c.server.kick(c.user)
        assert wait_until(lambda: c.log().count("idling") >= 2, 30), c.log()

    # Depending on what the worker was doing: in IDLE "ended the session (BYE)", in a poll
    # "failed during the poll".
    run_case(case, lambda p: None, r"account home.*(BYE|lost|ended|failed)", while_running=kick)


def test_server_stopped_and_started_again(case: Case) -> None:
    def outage(c: Case) -> None:
        assert wait_until(lambda: "idling" in c.log(), 20), c.log()
        c.server.stop()
        time.sleep(2 * ACCOUNT_TIMEOUT)  # a few reconnects fail meanwhile
        c.server.start()
        assert wait_until(lambda: c.log().count("idling") >= 2, 30), c.log()

    run_case(case, lambda p: None, r"account home.*127\.0\.0\.1", while_running=outage)


def test_reply_slower_than_the_timeout(case: Case) -> None:
    run_case(
        case,
        lambda p: p.arm(r"UID FETCH .*BODY\.PEEK\[\]", "stall", seconds=ACCOUNT_TIMEOUT + 3),
        r"account home.*(did not answer|timed out|TimeoutError|timeout)",
    )


def test_server_that_omits_uidnext(case: Case) -> None:
    def arm(p: FaultProxy) -> None:
        p.rewrite(r"\[UIDNEXT \d+\] ?", b"")  # EXAMINE's untagged OK
        p.rewrite(r"UIDNEXT \d+ ?", b"")  # STATUS (... UIDNEXT n ...)

    run_case(case, arm, r"idling")
    assert any(e.startswith("rewrite") for e in case.proxy.events)


@pytest.mark.parametrize(
    "answer",
    [
        b"NO [BADCHARSET (US-ASCII)] Unsupported charset",
        b"BAD Error in IMAP command UID SEARCH: Unknown charset",
    ],
    ids=["NO", "BAD"],
)
def test_search_charset_refused_falls_back_to_ascii(case: Case, answer: bytes) -> None:
    run_case(
        case,
        lambda p: p.arm(r"SEARCH CHARSET", "reply", reply=b"{tag} " + answer + b"\r\n", times=999),
        r"refused SEARCH CHARSET",
    )


def test_too_many_connections_refused_with_bye(case: Case) -> None:
    run_case(case, lambda p: p.refuse(3), r"account home.*Too many connections")
    assert case.proxy.events.count("refused: connection") == 3


def test_too_many_connections_refused_at_login(case: Case) -> None:
    """Dovecot's mail_max_userip_connections answers LOGIN with NO [UNAVAILABLE]: a temporary
    refusal, not a wrong password, so it is retried with the reconnect backoff, not after
    login_retry (an hour), and no login-failure notification is sent."""
    reply = (
        b"{tag} NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded "
        b"(mail_max_userip_connections=10)\r\n"
    )
    run_case(
        case,
        lambda p: p.arm(r"^\S+ LOGIN ", "reply", reply=reply, times=3),
        r"account home.*Maximum number of connections",
    )
    assert not [r for r in case.receiver.received if "log in" in r.title.lower()]


# ----------------------------------------------------------------- UIDs above 2^31


def write_maildir_with_uids(
    server: DovecotServer, user: str, mails: list[bytes], first: int
) -> None:
    """Put *mails* into the user's INBOX with UIDs from *first* on, before Dovecot ever opened
    it: the Maildir files plus a dovecot-uidlist that assigns the UIDs."""
    maildir = server.maildir(user)
    st = os.stat(server.home(user))
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    lines = []
    for n, raw in enumerate(mails):
        name = f"1700000000.M{n}P1.test"
        (maildir / "cur" / f"{name}:2,").write_bytes(raw)
        lines.append(f"{first + n} :{name}:2,")
    uidvalidity = 1_700_000_000
    header = f"3 V{uidvalidity} N{first + len(mails)} G{os.urandom(16).hex()}"
    (maildir / "dovecot-uidlist").write_text(header + "\n" + "\n".join(lines) + "\n")
    for root, dirs, files in os.walk(maildir):
        for name in dirs + files:
            os.chown(os.path.join(root, name), st.st_uid, st.st_gid)
    os.chown(maildir, st.st_uid, st.st_gid)


def test_uids_above_2_to_the_31(case: Case) -> None:
    first = 2**31 + 1000
    codes = ["310001", "310002", "310003"]
    write_maildir_with_uids(case.server, case.user, [code_mail(c) for c in codes], first)
    case.codes += codes
    with case.server.client(case.user) as client:
        client.select_folder("INBOX", readonly=True)
        assert sorted(client.search("ALL")) == [first, first + 1, first + 2]
    case.start()
    case.wait_all()
    case.send_codes(2)  # APPEND continues above 2^31
    case.wait_all()
    case.check_exactly_once_and_alive()
    conn = sqlite3.connect(case.tmp_path / "log.sqlite3", timeout=10)
    try:
        uids = [r[0] for r in conn.execute("SELECT uid FROM messages ORDER BY uid")]
        cursor = conn.execute("SELECT last_uid FROM cursors").fetchone()[0]
    finally:
        conn.close()
    assert uids[:3] == [first, first + 1, first + 2]
    assert all(uid > 2**31 for uid in uids)
    assert cursor >= uids[-1]
    case.stop()
