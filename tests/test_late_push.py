"""Servers that push late (issue 12): GNU Mailutils imap4d reports new mail only when the client
ends IDLE, Courier only every IMAP_IDLE_TIMEOUT (60 s). The scripted server (tests/
hostile_imap.py) behaves that way; the daemon notices mail IDLE did not announce, renews that
folder's IDLE every ``idle_renew_late`` from then on, says so once, and the next mail is
seen within about that long instead of at the silence probe."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from daemonproc import DaemonProcess, code_mail, write_config
from hostile_imap import HostileIMAP

pytestmark = pytest.mark.timeout(120)

SILENCE = 8.0  # the NOOP probe: before the fix, when on_done mail was noticed
LATE_RENEW = 1.5  # idle_renew_late in this test (25 s by default)
SAID = "not during IDLE; renewing IDLE every 1.5s"


def _latency(daemon: DaemonProcess, server: HostileIMAP, code: str, nth: int) -> float:
    # Delivered while the daemon is in IDLE (not in the moment between two IDLE commands).
    assert server.wait_for(lambda: server.idle_sessions == 1, timeout=10)
    time.sleep(0.5)  # past the catch-up poll right after IDLE starts (idle_start)
    server.add_message(code_mail(code))
    delivered = time.monotonic()
    assert daemon.wait_log("1 recorded", timeout=SILENCE * 3, count=nth), daemon.log()
    return time.monotonic() - delivered


@pytest.mark.parametrize("mode", ["on_done", "periodic"])
def test_late_push_shortens_idle_renewal_and_says_so_once(tmp_path: Path, mode: str) -> None:
    # periodic: Courier-like, new mail reported during IDLE only every 60 s.
    with HostileIMAP(idle=mode, idle_interval=60.0, max_lifetime=110) as server:  # type: ignore[arg-type]
        config = write_config(
            tmp_path,
            server,
            server.user,
            server.password,
            [],
            account={"security": "none", "host": "127.0.0.1", "ca_file": None},
            idle_silence=f"{SILENCE}s",
            idle_renew="10m",
            idle_renew_late=f"{LATE_RENEW}s",
        )
        with DaemonProcess(config, tmp_path / "daemon.log", "-v") as daemon:
            assert daemon.wait_log("idling (renewed every 600s)", timeout=30), daemon.log()
            before = _latency(daemon, server, "271828", 1)
            assert daemon.wait_log(SAID, timeout=5), daemon.log()
            after = [
                _latency(daemon, server, code, n) for n, code in ((2, "314159"), (3, "161803"))
            ]
            print(
                f"{mode}: first mail noticed after {before:.1f} s (silence probe), "
                f"then after {after[0]:.1f} s and {after[1]:.1f} s "
                f"(IDLE renewed every {LATE_RENEW} s)"
            )
            assert before >= SILENCE * 0.6
            assert max(after) < LATE_RENEW + 2.0
            assert daemon.log().count(SAID) == 1


POLL = 6.0  # the safety poll in the next test: before the switch, what finds the mail
SAID_POLL = "only to a poll on another connection, not during IDLE; renewing IDLE every 1.5s"


@pytest.mark.parametrize("mode", ["on_done", "periodic"])
def test_mail_only_the_safety_poll_finds_shortens_idle_renewal(tmp_path: Path, mode: str) -> None:
    # IDLE stays silent (on_done: Mailutils; periodic every 60 s: Courier) and no NOOP probe
    # runs (idle_silence 5m), so only the daemon's safety poll finds the mail.
    with HostileIMAP(idle=mode, idle_interval=60.0, max_lifetime=110) as server:  # type: ignore[arg-type]
        config = write_config(
            tmp_path,
            server,
            server.user,
            server.password,
            [],
            account={"security": "none", "host": "127.0.0.1", "ca_file": None},
            poll_interval=f"{POLL}s",
            idle_silence="5m",
            idle_renew="10m",
            idle_renew_late=f"{LATE_RENEW}s",
        )
        with DaemonProcess(config, tmp_path / "daemon.log", "-v") as daemon:
            assert daemon.wait_log("idling (renewed every 600s)", timeout=30), daemon.log()
            time.sleep(POLL)  # past the safety poll that runs at start
            before = _latency(daemon, server, "271828", 1)
            assert daemon.wait_log(SAID_POLL, timeout=10), daemon.log()
            after = [
                _latency(daemon, server, code, n)
                for n, code in ((2, "314159"), (3, "161803"), (4, "141421"))
            ]
            print(
                f"{mode}, IDLE silent: first mail noticed after {before:.1f} s (safety poll "
                f"every {POLL:g} s), then after {', '.join(f'{s:.1f}' for s in after)} s "
                f"(IDLE renewed every {LATE_RENEW} s)"
            )
            assert max(after) < LATE_RENEW + 2.0
            assert daemon.log().count("not during IDLE; renewing IDLE every") == 1
