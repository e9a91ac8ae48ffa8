"""A hostile IMAP server against `meta-watcher run --once` (issue 12, item 3): a literal far
larger than the announced RFC822.SIZE, an endless untagged flood, a body trickled one byte at
a time, and a FETCH answered for another UID. Memory (peak RSS of the watcher's process) and
time are bounded, and the cursor never passes a UID that was asked for and not returned."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemonproc import REPO, _env, code_mail, write_config
from hostile_imap import GiB, HostileIMAP

pytestmark = pytest.mark.timeout(180)

MiB = 1 << 20
RSS_BOUND = 200 * MiB  # the watcher's own footprint is ~60 MiB


def run_once(config: Path, limit: float) -> tuple[int, str, float, int]:
    """Run `run --once`; return (exit code, stderr, seconds, peak RSS in bytes)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "--once", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(),
        cwd=REPO,
    )
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None and time.monotonic() - started < limit:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    _out, err = proc.communicate(timeout=30)
    return proc.returncode, err.decode(errors="replace"), time.monotonic() - started, peak


def _config(tmp_path: Path, server: HostileIMAP) -> Path:
    return write_config(
        tmp_path,
        server,
        server.user,
        server.password,
        [],
        account={"security": "none", "host": "127.0.0.1", "ca_file": None, "timeout": "2s"},
    )


def _cursor(tmp_path: Path) -> int | None:
    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        row = db.execute("SELECT last_uid FROM cursors").fetchone()
    return None if row is None else int(row[0])


def test_literal_larger_than_announced_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    with HostileIMAP([code_mail("271828")], max_lifetime=170) as server:
        server.huge_literal(1, size=3 * GiB // 2, announced=1000)
        code, err, seconds, peak = run_once(_config(tmp_path, server), limit=120)
        print(
            f"1.5 GB literal after RFC822.SIZE 1000: exit {code}, {seconds:.1f} s, "
            f"peak RSS {peak / MiB:.0f} MiB, server sent {server.streams[-1].sent / MiB:.0f} MiB"
        )
        assert peak < RSS_BOUND
        assert seconds < 60
        # The message is recorded with the error (see the next test) and the run goes on.
        assert code == 0, err
        assert "literal of 1610612736 bytes" in err
        assert _cursor(tmp_path) == 1


def test_endless_untagged_flood_is_cut_off(tmp_path: Path) -> None:
    with HostileIMAP([code_mail("271828")], max_lifetime=170) as server:
        server.flood("UID FETCH")
        code, err, seconds, peak = run_once(_config(tmp_path, server), limit=120)
        print(f"endless '* OK' flood: exit {code}, {seconds:.1f} s, peak RSS {peak / MiB:.0f} MiB")
        assert peak < RSS_BOUND
        assert seconds < 60
        assert code != 0
        assert "more untagged data for one command" in err


def test_trickled_body_ends_at_the_command_deadline(tmp_path: Path) -> None:
    with HostileIMAP([code_mail("271828")], max_lifetime=170) as server:
        server.trickle(1, seconds_per_byte=1.5)
        code, err, seconds, _peak = run_once(_config(tmp_path, server), limit=120)
        print(f"body trickled 1 byte / 1.5 s: exit {code} after {seconds:.1f} s")
        # Deadline: 4 socket timeouts (2 s) plus the announced size at 64 KiB/s.
        assert seconds < 30
        assert code != 0
        assert "took too long to answer one command" in err


def test_fetch_answered_for_another_uid_never_moves_the_cursor_past_it(tmp_path: Path) -> None:
    with HostileIMAP([code_mail("271828"), code_mail("314159")], max_lifetime=170) as server:
        server.wrong_uid(1, 99)
        config = _config(tmp_path, server)
        code, err, _seconds, _peak = run_once(config, limit=60)
        assert code != 0
        assert "did not return this message although UID SEARCH finds it" in err
        assert _cursor(tmp_path) is None


def test_bare_bad_to_idle_backs_off_instead_of_reconnecting_every_second(tmp_path: Path) -> None:
    from daemonproc import DaemonProcess

    with HostileIMAP([code_mail("271828")], max_lifetime=170) as server:
        server.bare_bad("IDLE", times=1_000_000)
        config = write_config(
            tmp_path,
            server,
            server.user,
            server.password,
            [],
            account={"security": "none", "host": "127.0.0.1", "ca_file": None, "timeout": "2s"},
            reconnect_max="8s",
        )
        with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
            assert daemon.wait_log("idling", timeout=30), daemon.log()
            start = server.connections
            time.sleep(15)
            made = server.connections - start
        print(f"bare BAD to IDLE: {made} connections in 15 s (backoff 1, 2, 4, 8 s)")
        # Two connections per attempt (IDLE worker and its catch-up poll); backoff 1+2+4+8 s.
        assert made <= 10


def _messages(tmp_path: Path) -> list[tuple[int, str | None, str | None]]:
    """(uid, kind, error) of every recorded message, by UID."""
    with sqlite3.connect(tmp_path / "log.sqlite3") as db:
        rows = db.execute("SELECT uid, kind, error FROM messages ORDER BY uid").fetchall()
    return [(int(uid), kind, error) for uid, kind, error in rows]


def _body_fetches(server: HostileIMAP, uid: int) -> int:
    """How many FETCH commands asked for the whole body of *uid* (alone or in a set)."""
    count = 0
    for command in server.commands:
        if "FETCH" not in command or "BODY.PEEK[]" not in command:
            continue
        uids = command.split()[2]
        for part in uids.split(","):
            low, _sep, high = part.partition(":")
            if int(low) <= uid <= int(high or low):
                count += 1
    return count


def test_oversized_literal_is_recorded_with_an_error_and_the_run_goes_on(tmp_path: Path) -> None:
    codes = ["271828", "314159", "161803", "141421", "173205"]
    with HostileIMAP([code_mail(c) for c in codes], max_lifetime=170) as server:
        server.huge_literal(3, size=3 * GiB // 2, announced=1000)
        config = _config(tmp_path, server)
        code, err, seconds, peak = run_once(config, limit=120)
        print(
            f"1.5 GB literal on UID 3 of 5: exit {code}, {seconds:.1f} s, peak RSS "
            f"{peak / MiB:.0f} MiB, {server.connections} connections, "
            f"server sent {sum(s.sent for s in server.streams) / MiB:.0f} MiB"
        )
        assert peak < RSS_BOUND
        assert seconds < 60
        assert code == 0, err
        recorded = _messages(tmp_path)
        assert [uid for uid, _kind, _error in recorded] == [1, 2, 3, 4, 5], recorded
        good = [(uid, kind) for uid, kind, error in recorded if error is None]
        assert all(kind == "verification_code" for _uid, kind in good), recorded
        assert [uid for uid, _kind in good] == [1, 2, 4, 5], recorded
        bad = [error for uid, _kind, error in recorded if uid == 3]
        assert bad[0] is not None
        # Bounded by what RFC822.SIZE announced (1000 bytes + 64 KiB slack), not 64 MiB.
        assert "literal of 1610612736 bytes, over the limit of 66536 bytes" in bad[0]
        with sqlite3.connect(tmp_path / "log.sqlite3") as db:
            (sender,) = db.execute("SELECT sender FROM messages WHERE uid = 3").fetchone()
        assert "facebookmail.com" in sender  # its header was fetched on its own
        assert err.count("UID 3: the server announced a literal of 1610612736 bytes") == 1, err
        assert err.count("recorded with this error") == 1, err
        assert _cursor(tmp_path) == 5
        fetched_before = _body_fetches(server, 3)

        code, err, _seconds, _peak = run_once(config, limit=60)
        assert code == 0, err
        assert _body_fetches(server, 3) == fetched_before  # not fetched again
        assert len(_messages(tmp_path)) == 5  # recorded once
