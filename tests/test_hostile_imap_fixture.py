"""The scripted hostile IMAP server itself (tests/hostile_imap.py), driven by plain imapclient
(and a raw socket where imapclient would read gigabytes): the commands the watcher sends work,
and each misbehaviour is observable and bounded. Every test has a time limit."""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import imapclient
import pytest
from hostile_imap import GiB, HostileIMAP
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

pytestmark = pytest.mark.timeout(30)

META = (
    b"From: Instagram <security@mail.instagram.com>\r\n"
    b"To: anna.insta@example.org\r\n"
    b"Subject: =?utf-8?q?Best=C3=A4tigungscode?= for Instagram\r\n"
    b"Message-ID: <code-1@mail.instagram.com>\r\n"
    b"Date: Mon, 03 Jun 2024 11:02:44 -0700\r\n"
    b"\r\n"
    b"Your code is 123456.\r\n"
)
BBQ = (
    b"From: Karl <karl@example.com>\r\nTo: anna@example.org\r\n"
    b"Subject: Grillen am Samstag\r\nMessage-ID: <bbq@example.com>\r\n"
    b"Date: Tue, 04 Jun 2024 09:00:00 +0200\r\n\r\nKommst du?\r\n"
)
POLICY = (
    b"From: Facebook <notification@facebookmail.com>\r\nTo: anna@example.org\r\n"
    b"Subject: Wir informieren dich \xc3\xbcber KI bei Meta\r\n"
    b"Message-ID: <policy@facebookmail.com>\r\n"
    b"Date: Wed, 05 Jun 2024 09:00:00 +0000\r\n\r\nDatenschutzrichtlinie\r\n"
)


@pytest.fixture
def server() -> Iterator[HostileIMAP]:
    with HostileIMAP([META, BBQ, POLICY], max_lifetime=60) as s:
        yield s


class Raw:
    """A bare IMAP client on a socket, for answers imapclient would buffer whole."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"* OK")
        self.n = 0

    def send(self, text: str) -> str:
        self.n += 1
        tag = f"R{self.n}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        return tag

    def command(self, text: str) -> list[bytes]:
        """Send *text*; return every line up to and including the tagged answer."""
        tag = self.send(text).encode()
        lines = []
        while True:
            line = self.file.readline(1 << 20)
            assert line, "server closed the connection"
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def login(self, server: HostileIMAP) -> None:
        assert self.command(f"LOGIN {server.user} {server.password}")[-1].split()[1] == b"OK"
        assert self.command("EXAMINE INBOX")[-1].split()[1] == b"OK"

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def rss_bytes() -> int:
    """This process's resident set size now (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


# ---------------------------------------------------------------------- plain IMAP


def test_login_examine_status_list_as_the_watcher_does(server: HostileIMAP) -> None:
    with pytest.raises(LoginError):
        server.client(login=False).login(server.user, "wrong")
    client = server.client()
    assert client.has_capability("IDLE")
    assert client.has_capability("SPECIAL-USE")
    info = client.select_folder("INBOX", readonly=True)
    assert info[b"EXISTS"] == 3
    assert info[b"UIDNEXT"] == 4
    assert info[b"UIDVALIDITY"] == server.folder("INBOX").uidvalidity
    assert b"READ-ONLY" in info
    status = client.folder_status("INBOX", [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"])
    assert status == {b"UIDVALIDITY": 1_700_000_000, b"UIDNEXT": 4, b"MESSAGES": 3}
    folders = {name: flags for flags, _delim, name in client.list_folders()}
    assert set(folders) == {"INBOX", "Spam"}
    assert b"\\Junk" in folders["Spam"]
    assert client.find_special_folder(imapclient.imapclient.JUNK) == "Spam"
    with pytest.raises(IMAPClientError):
        client.select_folder("Nowhere", readonly=True)
    with pytest.raises(IMAPClientError, match=r"(?i)selected"):
        client.unselect_folder()  # a failed EXAMINE leaves no folder selected (RFC 9051 6.3.2)
    client.select_folder("INBOX", readonly=True)
    client.unselect_folder()
    client.logout()
    # RFC 6154 extended LIST: the selection option lists only special-use folders.
    raw = Raw(server.port)
    raw.login(server)
    special = raw.command('LIST (SPECIAL-USE) "" "*"')
    assert special[:-1] == [b'* LIST (\\HasNoChildren \\Junk) "/" Spam\r\n']
    returned = raw.command('LIST "" "*" RETURN (SPECIAL-USE)')
    assert len(returned) == 3
    raw.close()
    assert "LOGIN" in server.commands
    assert 'EXAMINE "INBOX"' in server.commands
    assert not any(server.password in c for c in server.commands)


def test_search_and_fetch_like_the_watcher(server: HostileIMAP) -> None:
    client = server.client()
    client.select_folder("INBOX", readonly=True)
    # The watcher's search: CHARSET UTF-8, an OR tree of FROM/SUBJECT words, a UID range;
    # a non-ASCII word goes as a literal.
    criteria = ["UID", "1:*", "OR", "FROM", "instagram", "OR", "SUBJECT", "über KI", "FROM", "zz"]
    assert client.search(criteria, charset="UTF-8") == [1, 3]
    # RFC 2047 words in the Subject are decoded before matching.
    assert client.search(["SUBJECT", "bestätigungscode"], charset="UTF-8") == [1]
    assert client.search(["UID", "2:*"]) == [2, 3]
    assert client.search(["HEADER", "Message-ID", "bbq@example.com"]) == [2]
    assert client.search(["NOT", "FROM", "karl"]) == [1, 3]
    assert client.search(["SENTSINCE", datetime(2024, 6, 4).date()]) == [2, 3]
    assert client.search(["SINCE", datetime.now(UTC).date()]) == [1, 2, 3]
    with pytest.raises(IMAPClientError, match="BADCHARSET"):
        client.search(["FROM", "x"], charset="KOI8-R")
    with pytest.raises(IMAPClientError, match="nested too deep"):
        client.search(["NOT"] * 5000 + ["ALL"])
    first = client.fetch([1, 2, 3], ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (FROM)]"])
    assert first[1][b"RFC822.SIZE"] == len(META)
    assert first[2][b"BODY[HEADER.FIELDS (FROM)]"] == b"From: Karl <karl@example.com>\r\n\r\n"
    bodies = client.fetch([1, 3], ["BODY.PEEK[]", "INTERNALDATE"])
    assert bodies[1][b"BODY[]"] == META
    assert bodies[3][b"BODY[]"] == POLICY
    assert isinstance(bodies[1][b"INTERNALDATE"], datetime)
    header = client.fetch([2], ["BODY.PEEK[HEADER]", "FLAGS"])[2]
    assert header[b"BODY[HEADER]"] == BBQ.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert header[b"FLAGS"] == ()
    # Read-only: EXAMINE + BODY[] sets no flag, and writes are refused and recorded.
    client.fetch([2], ["BODY[]"])
    assert client.get_flags([2]) == {2: ()}
    with pytest.raises(IMAPClientError, match="READ-ONLY"):
        client.add_flags([2], [b"\\Seen"])
    assert server.write_attempts == ["UID STORE"]
    client.logout()
    assert "UID FETCH 1,3 (BODY.PEEK[] INTERNALDATE)" in server.commands


def test_tls_implicit_and_starttls() -> None:
    for mode in ("implicit", "starttls"):
        with HostileIMAP([META], tls=mode, max_lifetime=30) as server:  # type: ignore[arg-type]
            assert server.ca_file is not None
            assert server.ca_file.exists()
            client = server.client()
            assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1
            assert client.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"] == META
            client.logout()
    # A client that does not trust the throwaway CA refuses the server.
    with (
        HostileIMAP(tls="implicit", max_lifetime=30) as server,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        imapclient.IMAPClient("127.0.0.1", port=server.port, ssl=True, timeout=5)


def test_add_message_at_runtime_and_noop_reports_it(server: HostileIMAP) -> None:
    client = server.client()
    client.select_folder("INBOX", readonly=True)
    uid = server.add_message(BBQ.replace(b"bbq@", b"bbq2@"))
    assert uid == 4
    _text, responses = client.noop()
    assert (4, b"EXISTS") in responses
    assert client.folder_status("INBOX", [b"UIDNEXT"])[b"UIDNEXT"] == 5
    assert client.search(["HEADER", "Message-ID", "bbq2@"]) == [4]
    spam_uid = server.add_message(META, folder="Spam")
    assert spam_uid == 1
    assert client.folder_status("Spam", [b"MESSAGES"])[b"MESSAGES"] == 1
    client.logout()


# ---------------------------------------------------------------------- IDLE modes


def _idle_until_exists(client: imapclient.IMAPClient, limit: float) -> float | None:
    """Seconds from now until the server reports EXISTS during IDLE, None within *limit*."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        responses = client.idle_check(timeout=0.1)
        if any(r[1:2] == (b"EXISTS",) for r in responses if isinstance(r, tuple)):
            return time.monotonic() - started
    return None


def test_idle_prompt_reports_new_mail_at_once(server: HostileIMAP) -> None:
    client = server.client()
    client.select_folder("INBOX", readonly=True)
    client.idle()
    assert server.wait_for(lambda: server.idle_sessions == 1)
    server.add_message(BBQ)
    latency = _idle_until_exists(client, 2.0)
    assert latency is not None
    assert latency < 0.5
    print(f"prompt IDLE: EXISTS {latency * 1000:.0f} ms after delivery")
    client.idle_done()
    client.logout()


def test_idle_on_done_reports_only_when_the_client_ends_idle() -> None:
    # GNU Mailutils imap4d: nothing during IDLE; the answer to DONE carries the news.
    with HostileIMAP([META], idle="on_done", max_lifetime=30) as server:
        client = server.client()
        client.select_folder("INBOX", readonly=True)
        client.idle()
        assert server.wait_for(lambda: server.idle_sessions == 1)
        server.add_message(BBQ)
        assert _idle_until_exists(client, 1.5) is None
        _text, responses = client.idle_done()
        assert (2, b"EXISTS") in responses
        client.logout()


def test_idle_periodic_reports_new_mail_only_at_its_interval() -> None:
    # Courier: the session looks for new mail every IMAP_IDLE_TIMEOUT seconds.
    interval = 1.5
    with HostileIMAP([META], idle="periodic", idle_interval=interval, max_lifetime=30) as server:
        client = server.client()
        client.select_folder("INBOX", readonly=True)
        client.idle()
        idle_started = time.monotonic()
        assert server.wait_for(lambda: server.idle_sessions == 1)
        time.sleep(0.2)
        server.add_message(BBQ)
        delivered = time.monotonic()
        latency = _idle_until_exists(client, interval * 2)
        assert latency is not None
        # Reported at the first tick (interval after IDLE began), not at delivery.
        assert latency >= interval - (delivered - idle_started) - 0.2
        assert latency <= interval + 0.5
        print(f"periodic IDLE ({interval} s): EXISTS {latency:.2f} s after delivery")
        client.idle_done()
        client.logout()


def test_idle_keepalive_says_still_here() -> None:
    with HostileIMAP(idle_keepalive=0.3, max_lifetime=30) as server:
        client = server.client()
        client.select_folder("INBOX", readonly=True)
        client.idle()
        responses = client.idle_check(timeout=1.0)
        assert (b"OK", b"Still here") in responses
        client.idle_done()
        client.logout()


# ---------------------------------------------------------------------- misbehaviours


def test_huge_literal_after_small_announced_size_with_imapclient(server: HostileIMAP) -> None:
    size = 8 << 20
    server.huge_literal(1, size=size, announced=1000)
    client = server.client()
    client.select_folder("INBOX", readonly=True)
    assert client.fetch([1], ["RFC822.SIZE"])[1][b"RFC822.SIZE"] == 1000
    body = client.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"]
    # The announced 1000 bytes were a lie: imapclient holds the whole 8 MiB.
    assert len(body) == size
    assert body.startswith(META)
    assert server.streams[-1].kind == "huge"
    assert server.streams[-1].ended == "complete"
    # Only the sections asked for misbehave: here UID 2's header, not its whole message.
    server.huge_literal(2, size=1 << 20, sections=("HEADER",))
    assert len(client.fetch([2], ["BODY.PEEK[HEADER]"])[2][b"BODY[HEADER]"]) == 1 << 20
    assert client.fetch([2], ["BODY.PEEK[]"])[2][b"BODY[]"] == BBQ
    client.logout()


def test_huge_literal_is_generated_lazily_and_stops_when_the_client_hangs_up(
    server: HostileIMAP,
) -> None:
    server.huge_literal(1, size=5 * GiB, announced=1000)
    raw = Raw(server.port)
    raw.login(server)
    raw.send("UID FETCH 1 (BODY.PEEK[])")
    first = raw.file.readline()
    assert first.endswith(b"BODY[] {%d}\r\n" % (5 * GiB))
    before = rss_bytes()
    buffer = bytearray(1 << 20)
    received, started = 0, time.monotonic()
    while received < 256 << 20:
        got = raw.file.readinto(buffer)
        assert got
        received += got
    seconds = time.monotonic() - started
    grown = rss_bytes() - before
    raw.close()
    record = server.streams[-1]
    assert server.wait_for(lambda: record.ended != "", timeout=5)
    assert record.ended == "client hung up"
    assert 256 << 20 <= record.sent < 5 * GiB
    # Sending 256 MiB cost the (same-process) server no memory to speak of.
    assert grown < 64 << 20, grown
    print(f"huge literal: 256 MiB in {seconds:.2f} s, RSS grew {grown >> 20} MiB, stopped")


def test_untagged_flood_counted_then_endless(server: HostileIMAP) -> None:
    server.flood("NOOP", lines=5000)
    client = server.client()
    _text, responses = client.noop()
    assert len(responses) == 5000
    assert responses[0][0] == b"OK"
    client.logout()
    assert server.streams[-1].ended == "complete"
    server.flood("UID FETCH")  # endless
    raw = Raw(server.port)
    raw.login(server)
    raw.send("UID FETCH 1 (UID)")
    lines, deadline = 0, time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert raw.file.readline().startswith(b"* OK [ALERT]")
        lines += 1
    raw.close()
    record = server.streams[-1]
    assert server.wait_for(lambda: record.ended != "", timeout=5)
    assert record.ended == "client hung up"
    assert record.planned is None
    assert record.sent >= lines > 10_000
    print(f"endless flood: {lines} untagged lines read in 1 s, stopped at hang-up")


def test_trickled_body_outlives_any_socket_timeout(server: HostileIMAP) -> None:
    server.trickle(1, seconds_per_byte=0.25)
    client = server.client(timeout=1.0)
    client.select_folder("INBOX", readonly=True)
    outcome: list[object] = []

    def fetch() -> None:
        try:
            outcome.append(client.fetch([1], ["BODY.PEEK[]"]))
        except Exception as exc:
            outcome.append(exc)

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(3.0)
    # Three socket timeouts later the FETCH is still running: every read got a byte in time.
    assert worker.is_alive()
    assert not outcome
    record = server.streams[-1]
    assert record.kind == "trickle"
    assert 8 <= record.sent <= 16
    assert record.ended == ""
    # Hang up under the reading thread (imapclient's shutdown() would wait for its lock).
    client.socket().shutdown(socket.SHUT_RDWR)
    worker.join(3.0)
    assert not worker.is_alive()
    assert isinstance(outcome[0], Exception)
    assert server.wait_for(lambda: record.ended == "client hung up", timeout=2)
    assert record.sent < len(META)


def test_fetch_for_uid_1_answered_as_uid_99(server: HostileIMAP) -> None:
    server.wrong_uid(1, 99)
    client = server.client()
    client.select_folder("INBOX", readonly=True)
    # imapclient drops answers for UIDs it did not ask for: UID 1 looks vanished.
    assert client.fetch([1], ["BODY.PEEK[]", "INTERNALDATE"]) == {}
    assert list(client.fetch([2], ["RFC822.SIZE"])) == [2]
    client.logout()
    assert "wrong uid: asked 1, answered 99" in server.events
    raw = Raw(server.port)
    raw.login(server)
    lines = raw.command("UID FETCH 1 (RFC822.SIZE)")
    assert lines[0] == b"* 1 FETCH (UID 99 RFC822.SIZE %d)\r\n" % len(META)
    raw.close()


def test_bare_bad(server: HostileIMAP) -> None:
    server.bare_bad("UID SEARCH")
    client = server.client()
    client.select_folder("INBOX", readonly=True)
    # "<tag> BAD" without text is outside imaplib's grammar: the connection is aborted.
    with pytest.raises(IMAPClientAbortError, match="unexpected response"):
        client.search(["ALL"])
    client.shutdown()
    server.bare_bad("NOOP", tagged=False)
    client = server.client()
    with pytest.raises(IMAPClientError, match="refused"):
        client.noop()
    assert client.noop()  # armed once: the next NOOP is answered normally
    client.logout()


def test_canned_reply_and_omitted_uidnext() -> None:
    with HostileIMAP([META], omit_uidnext=True, max_lifetime=30) as server:
        server.reply(r"^LOGIN", b"{tag} NO [UNAVAILABLE] Maximum number of connections\r\n")
        with pytest.raises(LoginError, match="UNAVAILABLE"):
            server.client()
        client = server.client()
        info = client.select_folder("INBOX", readonly=True)
        assert b"UIDNEXT" not in info
        assert info[b"EXISTS"] == 1
        client.logout()


def test_max_lifetime_stops_the_server_and_its_sessions() -> None:
    server = HostileIMAP([META], max_lifetime=1.0)
    try:
        client = server.client()
        client.select_folder("INBOX", readonly=True)
        client.idle()
        assert server.wait_for(lambda: server.expired, timeout=3)
        # The IDLE session was closed: the client reads EOF (no responses), and no new
        # connection is accepted.
        assert server.wait_for(lambda: server.idle_sessions == 0, timeout=2)
        with pytest.raises((OSError, imaplib.IMAP4.abort)):
            client.idle_done()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1).recv(1)
        assert any(re.match("lifetime over", e) for e in server.events)
    finally:
        server.close()
