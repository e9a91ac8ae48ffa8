"""Benchmark: ``status`` and ``log`` with a big log (default 100,000 recorded messages).

Builds (once, cached under bench/out/) a database through ``Store.record``: outcomes of the
corpus mails with new keys and Message-IDs: 1 in 20 a counted privacy mail of one of 200
accounts, 1 in 100 a look-alike or unrecognized Meta mail, the rest Meta's everyday mail
(recorded because it claims to be Meta, changing nothing). Then prints:

- the store queries the commands run (in process, median of 20),
- ``meta-watcher status`` and ``meta-watcher log`` end to end (median of 5 child processes),
  against ``python -c pass`` and ``meta-watcher --version`` (the interpreter and CLI floor).

Run: ``python bench/status_log.py [--messages 100000]``
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import run_child, table
from mailgen import OUT, REPO

sys.path.insert(0, str(REPO))


def build(path: Path, messages: int) -> float:
    """Record *messages* outcomes into a new database at *path*; return seconds taken."""
    from watcher.config import package_file
    from watcher.pipeline.process import Settings, process
    from watcher.pipeline.rules import load_rules
    from watcher.sources.base import Cursor, RawMessage, SourceKey
    from watcher.store.store import Store

    pack = load_rules(package_file("rules.yaml"))
    settings = Settings(trusted_authserv_ids=("mx.home.example",))
    outcomes = []
    for path_ in sorted((REPO / "tests" / "corpus").glob("*.eml")):
        key = SourceKey("bench", "b@h", "INBOX", 1, 1)
        outcomes.append(process(RawMessage(key, path_.read_bytes()), pack, settings))
    counted = [o for o in outcomes if o.counted]
    # Most of a real log is Meta's everyday mail (friend notifications, login codes): recorded
    # because it claims to be Meta, but it changes no status.
    everyday = [o for o in outcomes if o.match.kind == "other" and o.match.claims_meta]
    odd = [o for o in outcomes if o.suspicious or o.match.kind == "unrecognized"]
    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with Store.open(tmp) as store:
        for n in range(1, messages + 1):
            if n % 20 == 0:  # 1 in 20: a privacy mail of one of 200 accounts
                base = counted[n // 20 % len(counted)]
                account = f"user{n // 20 % 200}@example.org"
                base = dataclasses.replace(
                    base, match=dataclasses.replace(base.match, account=account)
                )
            elif n % 100 == 1:  # 1 in 100: a look-alike or an unrecognized Meta mail
                base = odd[n // 100 % len(odd)]
            else:
                base = everyday[n % len(everyday)]
            message = dataclasses.replace(
                base.message, message_id=f"<status-{n}@bench.example>", sha256=f"{n:064x}"
            )
            key = SourceKey("bench", "b@h", "INBOX", 1, n)
            store.record(dataclasses.replace(base, key=key, message=message), Cursor(1, n))
    tmp.rename(path)
    return time.perf_counter() - t0


def median_ms(func: Callable[[], object], times: int = 20) -> float:
    runs = []
    for _ in range(times):
        t0 = time.perf_counter()
        func()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()

    from watcher.store.store import Store

    OUT.mkdir(exist_ok=True)
    db = OUT / f"status-v2-{args.messages}.sqlite3"
    if not db.exists():
        print(f"building {db} ...", flush=True)
        print(f"built in {build(db, args.messages):.1f} s", flush=True)
    config = OUT / f"status-{args.messages}.yaml"
    config.write_text(f"database: {db}\ntrusted_authserv_ids: [mx.home.example]\n")

    with Store.open(db) as store:
        n_messages, n_transitions = store.count("messages"), store.count("transitions")
        statuses = len(store.current_status())
        rows = [["store query (in process)", "median"]]
        rows.append(["Store.open", f"{median_ms(lambda: Store.open(db).close()):.1f} ms"])
        rows.append(["current_status()", f"{median_ms(store.current_status):.1f} ms"])
        if hasattr(store, "needs_attention"):
            rows.append(["needs_attention()", f"{median_ms(store.needs_attention):.1f} ms"])
        rows.append(["transitions()", f"{median_ms(store.transitions):.1f} ms"])
    print(
        f"database: {n_messages} messages, {n_transitions} transitions, "
        f"{statuses} (platform, account) statuses"
    )
    print(table(rows))

    py = sys.executable
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "meta-watcher --version": [py, "-m", "watcher", "--version"],
        "meta-watcher status": [py, "-m", "watcher", "status", "--config", str(config)],
        "meta-watcher log": [py, "-m", "watcher", "log", "--config", str(config)],
        "meta-watcher log --json": [py, "-m", "watcher", "log", "--json", "--config", str(config)],
    }
    rows = [["command (child process)", "wall median", "CPU", "peak RSS", "output lines"]]
    for label, cmd in commands.items():
        runs = [run_child(cmd, None, env={"PYTHONPATH": str(REPO)}) for _ in range(5)]
        bad = [r for r in runs if r.returncode != 0]
        if bad:
            print(f"{label}: exit {bad[0].returncode}: {bad[0].stderr[-300:]}")
        rows.append(
            [
                label,
                f"{statistics.median(r.wall_seconds for r in runs) * 1000:.0f} ms",
                f"{statistics.median(r.cpu_seconds for r in runs) * 1000:.0f} ms",
                f"{statistics.median(r.peak_rss_bytes for r in runs) / 2**20:.1f} MiB",
                len(runs[0].stdout.splitlines()),
            ]
        )
    print(table(rows))


if __name__ == "__main__":
    main()
