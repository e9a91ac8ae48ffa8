"""Benchmark: APPEND of a verification-code mail -> notification at a local HTTP receiver.

A private Dovecot (tests/dovecot.py) and a real HTTP server behind Apprise ``json://``
(tests/httpreceiver.py); the daemon runs as ``python -m watcher run``. N mails (default 50)
are appended one at a time, each after the previous notification arrived; latency is measured
from just before the APPEND command to the receiver's arrival time, so it includes the APPEND
itself. Two modes: IDLE on (push), and polling only (``idle: false``) at ``--poll`` seconds
(default 2), which is the baseline. Prints p50/p95/max per mode and IDLE's ratio to polling.

    python bench/latency.py [--count 50] [--poll 2]

Nothing is asserted; target with IDLE: p95 under 1 s on loopback.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from daemonproc import DaemonProcess, code_mail, write_config  # noqa: E402
from dovecot import DovecotServer  # noqa: E402
from httpreceiver import Receiver  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def measure(server: DovecotServer, user: str, count: int, idle: bool, poll: float) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp, Receiver() as receiver:
        tmp_path = Path(tmp)
        extra = {} if idle else {"idle": False}
        config = write_config(
            tmp_path,
            server,
            user,
            server.passwords[user],
            [receiver.url],
            poll_interval=f"{poll}s" if not idle else "1h",
            **extra,
        )
        latencies: list[float] = []
        with DaemonProcess(config, tmp_path / "daemon.log") as daemon:
            ready = "idling" if idle else "watching"
            if not daemon.wait_log(ready, 30):
                raise SystemExit("daemon did not start:\n" + daemon.log())
            time.sleep(0.5 if idle else poll + 0.5)
            for n in range(count):
                code = f"{900000 + n:06d}"
                raw = code_mail(code)
                started = time.monotonic()
                server.append(user, "INBOX", raw)
                got = receiver.wait_for(n + 1, 60)
                if len(got) <= n:
                    raise SystemExit(f"notification {n + 1} never arrived:\n" + daemon.log())
                if code not in got[n].title:
                    raise SystemExit(f"unexpected notification {got[n].title!r}")
                latencies.append(got[n].at_monotonic - started)
            daemon.kill()
        return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--poll", type=float, default=2.0, help="poll_interval without IDLE (s)")
    args = parser.parse_args()
    with DovecotServer() as server:
        results = {}
        for name, idle in (("polling only", False), ("IDLE", True)):
            user = "idle" if idle else "poll"
            server.add_user(user)
            results[name] = measure(server, user, args.count, idle, args.poll)
        print(f"APPEND -> notification latency over {args.count} mails (seconds)")
        print(f"{'mode':<22}{'p50':>8}{'p95':>8}{'max':>8}")
        for name, values in results.items():
            label = name if name == "IDLE" else f"{name} ({args.poll:g}s)"
            print(
                f"{label:<22}{statistics.median(values):>8.3f}{percentile(values, 95):>8.3f}"
                f"{max(values):>8.3f}"
            )
        base = results["polling only"]
        push = results["IDLE"]
        print(
            f"IDLE / polling: p50 x{statistics.median(push) / statistics.median(base):.2f}, "
            f"p95 x{percentile(push, 95) / percentile(base, 95):.2f}"
        )


if __name__ == "__main__":
    main()
