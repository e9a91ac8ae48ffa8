"""Benchmark: what a watcher costs between mails, after its first scan.

On a generated mailbox served by a private Dovecot (TLS, 127.0.0.1) this measures, in order:

1. the first scan (``watcher.daemon.runner.poll_account``, in process) that sets the cursor;
2. N poll cycles with no new mail on one persistent connection (``poll_account(client=...)``):
   IMAP round trips per poll (commands sent, from imaplib's tag counter) and bytes per poll
   (Dovecot's ``out=`` for that session, less a session that only logs in and out);
3. the same N cycles the way the daemon's safety-net poll runs them, one connection per poll
   (TLS handshake and LOGIN included);
4. N cycles with one new mail delivered into the Maildir before each poll (every 10th a Meta
   mail from tests/corpus), on the persistent connection;
5. RSS of this process over ``--cycles`` polls with no new mail (default 10,000);
6. the idle daemon (``meta-watcher run``, IDLE on): CPU seconds over ``--idle-seconds`` from
   /proc, scaled to an hour, plus its safety-net polls (one per ``poll_interval``).

Run: ``python bench/steady_state.py [--messages 5000] [--polls 100] [--cycles 10000]``
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import BenchServer, mailbox_for, mib, table, watcher_config
from mailgen import corpus_meta_mails

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes(pid: int | str = "self") -> int:
    """Current resident set size of *pid*."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def cpu_seconds(pid: int) -> float:
    """CPU seconds of *pid* so far, summed over its threads from /proc/PID/task/*/schedstat
    (nanoseconds; /proc/PID/stat counts in 10 ms ticks, too coarse for an idle process)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just ended
    return total / 1e9


def wakeups(pid: int) -> dict[str, int]:
    """Times each thread of *pid* was scheduled so far, by thread name."""
    out: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip() + "/" + task.name
            out[name] = int((task / "schedstat").read_text().split()[2])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


class Deliverer:
    """Puts a new message into the Maildir's new/ the way a local delivery agent does."""

    def __init__(self, server: BenchServer) -> None:
        self.maildir = server.server.maildir(server.user)
        st = os.stat(self.maildir)
        self.uid, self.gid = st.st_uid, st.st_gid
        self.meta = corpus_meta_mails()
        self.count = 0

    def deliver(self) -> None:
        self.count += 1
        n = self.count
        if n % 10 == 0:
            _name, raw, _label = self.meta[n // 10 % len(self.meta)]
            raw = raw.replace(b"Message-ID: <", f"Message-ID: <steady-{n}-".encode(), 1)
        else:
            raw = (
                f"From: Karl Klein <karl@example.org>\nTo: anna@example.org\n"
                f"Subject: Einkaufsliste {n}\nMessage-ID: <steady-{n}@example.org>\n"
                f"Date: Mon, 3 Mar 2025 10:00:00 +0000\n\nMilch, Brot, Butter.\n"
            ).encode()
        name = f"{int(time.time())}.S{n}P{os.getpid()}.bench"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, self.maildir / "new" / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="mailbox size (5000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--polls", type=int, default=100, help="cycles per measurement (100)")
    parser.add_argument("--cycles", type=int, default=10_000, help="cycles for the RSS run")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=150.0,
        help="idle daemon window (150 s: 2 heartbeats, a server keepalive)",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from watcher.config import load_config
    from watcher.daemon.ingest import RunReport, settings_of
    from watcher.daemon.runner import poll_account
    from watcher.pipeline.rules import load_rules
    from watcher.sources import imap
    from watcher.sources.imap import source as imap_source
    from watcher.store.store import Store

    box = mailbox_for(args.messages, args.seed)
    server = BenchServer(box)
    rows: list[list[object]] = [["measurement", "round trips/poll", "bytes/poll", "note"]]
    try:
        server.warm_up()
        work = Path(tempfile.mkdtemp(prefix="steady-", dir=server.work))
        config = load_config(watcher_config(server, work / "db.sqlite3", work / "config.yaml"))
        account = config.accounts[0]
        pack = load_rules(config.rules_path, config.user_rules)
        settings = settings_of(config)
        store = Store.open(config.database)

        t0 = time.perf_counter()
        report = RunReport()
        scan_before = server.session_count()
        poll_account(account, store, pack, settings, report)
        server.sessions_since(scan_before)  # wait for its logout line: not to be counted below
        print(
            f"first scan: {time.perf_counter() - t0:.2f} s, {report.fetched} fetched, "
            f"{report.recorded} recorded",
            flush=True,
        )

        # A session that only logs in and out: subtracted from the persistent session.
        before = server.session_count()
        imap.logout(imap.connect(account))
        _base_in, base_out = server.sessions_since(before)[-1]

        def persistent(cycles: int, deliver: Deliverer | None = None) -> tuple[float, float]:
            before = server.session_count()
            client = imap.connect(account)
            tags0 = client._imap.tagnum
            for _ in range(cycles):
                if deliver is not None:
                    deliver.deliver()
                poll_account(account, store, pack, settings, RunReport(), client=client)
            trips = (client._imap.tagnum - tags0) / cycles
            imap.logout(client)
            out = server.sessions_since(before)[-1][1] - base_out
            return trips, out / cycles

        trips, per_poll = persistent(args.polls)
        rows.append(
            [f"{args.polls} polls, no new mail, one connection", f"{trips:.2f}",
             f"{per_poll:.0f} B", "STATUS only"]
        )  # fmt: skip

        created: list[Any] = []
        # ImapAccount (watcher/sources/imap/source.py) connects for each poll.
        connect = imap_source.connect

        def counting_connect(acc: Any) -> Any:
            client = connect(acc)
            created.append(client)
            return client

        imap_source.connect = counting_connect  # type: ignore[assignment]
        before = server.session_count()
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(args.polls):
            poll_account(account, store, pack, settings, RunReport())
        fresh_cpu = (time.process_time() - c0) / args.polls
        fresh_wall = (time.perf_counter() - w0) / args.polls
        imap_source.connect = connect  # type: ignore[assignment]
        sessions = server.sessions_since(before)
        fresh_trips = sum(c._imap.tagnum for c in created) / len(created)
        rows.append(
            [f"{args.polls} polls, no new mail, new connection each", f"{fresh_trips:.2f} + TLS",
             f"{sum(o for _i, o in sessions) / len(sessions):.0f} B",
             f"{fresh_wall * 1000:.1f} ms wall, {fresh_cpu * 1000:.1f} ms CPU per poll"]
        )  # fmt: skip

        deliverer = Deliverer(server)
        recorded_before = store.count("messages")
        trips, per_poll = persistent(args.polls, deliverer)
        recorded = store.count("messages") - recorded_before
        rows.append(
            [f"{args.polls} polls, one new mail each, one connection", f"{trips:.2f}",
             f"{per_poll:.0f} B", f"{recorded} Meta mails recorded of {args.polls // 10} sent"]
        )  # fmt: skip
        print(table(rows), flush=True)

        client = imap.connect(account)
        marks = {0, 100, 1000, args.cycles}
        rss: list[tuple[int, int]] = [(0, rss_bytes())]
        t0 = time.perf_counter()
        for cycle in range(1, args.cycles + 1):
            poll_account(account, store, pack, settings, RunReport(), client=client)
            if cycle in marks:
                rss.append((cycle, rss_bytes()))
        took = time.perf_counter() - t0
        imap.logout(client)
        print(
            f"RSS over {args.cycles} polls with no new mail ({took / args.cycles * 1000:.2f} ms "
            "per poll): " + ", ".join(f"after {c}: {mib(r)}" for c, r in rss),
            flush=True,
        )
        store.close()
        idle_daemon(server, work, args.idle_seconds, fresh_cpu, config.poll_interval)
    finally:
        server.close()


def idle_daemon(
    server: BenchServer, work: Path, seconds: float, poll_cpu: float, poll_interval: float
) -> None:
    """Start ``meta-watcher run`` (IDLE), wait until it idles, then measure its CPU."""
    config = watcher_config(server, work / "db.sqlite3", work / "daemon.yaml")
    log_path = work / "daemon.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[1],
        )
    try:
        deadline = time.monotonic() + 60
        while b"idling" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                print("daemon did not reach IDLE:\n" + log_path.read_text()[-2000:])
                return
            time.sleep(0.1)
        # Let start-up work settle (the first safety-net poll, reminders, lazy imports): wait
        # for 5 quiet seconds in a row, at most 60 s.
        quiet_since, last, settle_end = time.monotonic(), cpu_seconds(proc.pid), time.monotonic()
        settle_end += 60
        while time.monotonic() - quiet_since < 5 and time.monotonic() < settle_end:
            time.sleep(0.5)
            now_cpu = cpu_seconds(proc.pid)
            if now_cpu - last > 0.001:
                quiet_since = time.monotonic()
            last = now_cpu
        cpu0, rss0, t0 = cpu_seconds(proc.pid), rss_bytes(proc.pid), time.monotonic()
        wake0 = wakeups(proc.pid)
        time.sleep(seconds)
        cpu1, rss1, took = cpu_seconds(proc.pid), rss_bytes(proc.pid), time.monotonic() - t0
        wake1 = wakeups(proc.pid)
        per_hour = (cpu1 - cpu0) / took * 3600
        polls = 3600 / poll_interval
        print(
            f"idle daemon (IDLE, poll_interval {poll_interval:.0f} s): {cpu1 - cpu0:.3f} CPU s "
            f"in {took:.0f} s = {per_hour:.2f} CPU s/hour idling; + {polls:.0f} safety-net "
            f"polls/hour x {poll_cpu * 1000:.0f} ms = {per_hour + polls * poll_cpu:.2f} CPU "
            f"s/hour; RSS {mib(rss0)} -> {mib(rss1)}; threads "
            f"{len(os.listdir(f'/proc/{proc.pid}/task'))}",
            flush=True,
        )
        busy = {k: (wake1[k] - wake0.get(k, 0)) / took for k in wake1}
        print(
            "  wake-ups per second by thread: "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(busy.items()) if v > 0)
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


if __name__ == "__main__":
    main()
