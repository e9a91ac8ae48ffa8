"""Benchmark: the first scan of a big mailbox, meta-watcher against the alternatives.

Generates (or reuses) a Maildir of N messages (1 in 200 a Meta privacy mail or look-alike from
tests/corpus, 1 in 500 with a 7-12 MB attachment, the rest 2-60 KB), serves it with a private
Dovecot over TLS on 127.0.0.1, warms Dovecot's index, then times in the same run:

- meta-watcher ``run --once`` on a fresh database,
- imapfilter (Debian) with server-side ``SEARCH FROM`` on Meta's sender domains, fetching hits,
- imapautofiler (PyPI) in dry-run with a From-header rule (one header FETCH per message),
- a plain imaplib script: bulk From fetch of every message, then fetch the candidates,
- a plain imaplib script fetching every message whole.

Prints wall time, bytes Dovecot sent (its per-session ``out=``), peak RSS, CPU time, the Meta
mails each found, and ratios against imapfilter; then checks meta-watcher recorded every
planted Meta mail and look-alike with the kind the corpus labels give.

Run: ``python bench/first_scan.py --messages 50000`` (default 5,000 for a quick try).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchlib import BenchServer, Result, mailbox_for, mib, run_child, table, watcher_config
from mailgen import Mailbox, meta_sender_domains

HERE = Path(__file__).resolve().parent

IMAPFILTER_LUA = """\
options.info = false
options.timeout = 120
local account = IMAP {{
  server = 'localhost',
  port = {port},
  username = '{user}',
  password = '{password}',
  ssl = 'tls1.2',
}}
local inbox = account['INBOX']
local hits = nil
for _, domain in ipairs({{ {domains} }}) do
  local found = inbox:contain_from(domain)
  if hits == nil then hits = found else hits = hits + found end
end
local n = 0
for _, mesg in ipairs(hits) do
  local mbox, uid = table.unpack(mesg)
  local text = mbox[uid]:fetch_message()
  if text ~= nil then n = n + 1 end
end
print('found ' .. n)
"""

IMAPAUTOFILER_YAML = """\
server:
  hostname: 127.0.0.1
  port: {port}
  username: {user}
  password: "{password}"
  ca_file: {ca_file}
mailboxes:
  - name: INBOX
    rules:
      - or:
          rules:
{rules}
        action:
          name: move
          dest-mailbox: Meta
"""


def contender_commands(server: BenchServer, work: Path) -> dict[str, list[str] | str]:
    """Each contender's command line, or a string saying why it cannot run."""
    domains = meta_sender_domains()
    # IMAP SEARCH matches substrings: searching "facebook.com" also finds
    # "support.facebook.com", so imapfilter gets one search per domain not contained in another.
    searched = [d for d in domains if not any(o != d and o in d for o in domains)]
    base = [server.host, str(server.port), server.user, str(server.password_file)]
    base.append(str(server.ca_file))
    cmds: dict[str, list[str] | str] = {}
    imapfilter = shutil.which("imapfilter")
    if imapfilter:
        lua = work / "imapfilter.lua"
        lua.write_text(
            IMAPFILTER_LUA.format(
                port=server.port,
                user=server.user,
                password=server.password,
                domains=", ".join(f"'{d}'" for d in searched),
            )
        )
        cmds["imapfilter"] = [imapfilter, "-c", str(lua), "-t", str(server.ca_file)]
    else:
        cmds["imapfilter"] = "not installed (run bench/install-deps)"
    try:
        import imapautofiler  # noqa: F401

        rules = "\n".join(
            f"            - headers:\n                - name: from\n"
            f"                  substring: '{d}'"
            for d in domains
        )
        cfg = work / "imapautofiler.yml"
        cfg.write_text(
            IMAPAUTOFILER_YAML.format(
                port=server.port,
                user=server.user,
                password=server.password,
                ca_file=server.ca_file,
                rules=rules,
            )
        )
        cmds["imapautofiler"] = [
            sys.executable,
            "-c",
            "import sys; from imapautofiler.app import main; sys.exit(main())",
            "--dry-run",
            "-c",
            str(cfg),
        ]
    except ImportError:
        cmds["imapautofiler"] = "not installed (run bench/install-deps)"
    cmds["imaplib-headers"] = [
        sys.executable,
        str(HERE / "contenders" / "imaplib_headers.py"),
        *base,
        *domains,
    ]
    cmds["full-fetch"] = [sys.executable, str(HERE / "contenders" / "full_fetch.py"), *base]
    cmds["full-fetch"] += list(domains)
    return cmds


def parse_found(name: str, stdout: str, stderr: str) -> int | None:
    if name == "imapautofiler":
        # A matched mail is reported as "move: ..." or, when its report fails (a mail without
        # a Date header), as "failed to move ...": both count as found.
        lines = stderr.splitlines()
        return sum(1 for ln in lines if ln.startswith("move: ") or "failed to move" in ln)
    for line in stdout.splitlines():
        if line.startswith("found "):
            return int(line.split()[1])
    return None


def watcher_found(database: Path, box: Mailbox) -> tuple[int, list[str]]:
    """(messages recorded with a kind other than ``other``, problems with planted mail)."""
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute("SELECT message_id, kind, suspicious FROM messages").fetchall()
    finally:
        conn.close()
    recorded = {mid: (kind, bool(susp)) for mid, kind, susp in rows}
    problems = []
    for p in box.planted:
        got = recorded.get(p.message_id)
        if got is None:
            problems.append(f"missed {p.corpus_file} ({p.message_id})")
        elif got != (p.kind, p.suspicious):
            problems.append(f"{p.corpus_file}: recorded {got}, labelled {(p.kind, p.suspicious)}")
    found = sum(1 for kind, _s in recorded.values() if kind != "other")
    return found, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000, help="mailbox size (5000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast contenders")
    parser.add_argument("--slow-repeat", type=int, default=1, help="runs of the slow ones")
    parser.add_argument(
        "--only", action="append", default=[], help="run only this contender (repeatable)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run meta-watcher once under cProfile, print the top 25 cumulative entries, stop",
    )
    args = parser.parse_args()

    box = mailbox_for(args.messages, args.seed)
    server = BenchServer(box)
    try:
        print(f"dovecot warm-up (index and header cache): {server.warm_up():.2f} s", flush=True)
        work = Path(tempfile.mkdtemp(prefix="first-scan-", dir=server.work))
        if args.profile:
            profile_watcher(server, work)
            return
        cmds: dict[str, list[str] | str] = {"meta-watcher": []}
        cmds.update(contender_commands(server, work))
        if args.only:
            cmds = {k: v for k, v in cmds.items() if k in args.only}
        results = {name: Result(name) for name in cmds}
        slow = {"imapautofiler", "full-fetch"}
        rounds = max(args.repeat, args.slow_repeat)
        planted_problems: list[str] = []
        for rnd in range(rounds):
            for name, cmd in cmds.items():
                res = results[name]
                if rnd >= (args.slow_repeat if name in slow else args.repeat):
                    continue
                if isinstance(cmd, str):
                    res.note = cmd
                    continue
                if name == "meta-watcher":
                    db = work / f"watcher-{rnd}.sqlite3"
                    config = watcher_config(server, db, work / f"watcher-{rnd}.yaml")
                    cmd = [sys.executable, "-m", "watcher", "run", "--once", "--config"]
                    cmd.append(str(config))
                run = run_child(cmd, server)
                res.runs.append(run)
                if run.returncode != 0:
                    res.note = f"exit {run.returncode}: {(run.stderr or run.stdout)[-300:]}"
                if name == "meta-watcher":
                    res.found, planted_problems = watcher_found(db, box)
                else:
                    res.found = parse_found(name, run.stdout, run.stderr)
                print(
                    f"  round {rnd + 1} {name}: {run.wall_seconds:.2f} s, "
                    f"{mib(run.server_out_bytes)} from the server, "
                    f"{mib(run.peak_rss_bytes)} peak RSS, found {res.found}",
                    flush=True,
                )
        report(box, results, planted_problems)
    finally:
        server.close()


def profile_watcher(server: BenchServer, work: Path, top: int = 25) -> None:
    """Run meta-watcher's first scan once under cProfile (fresh database); print its wall time
    and the *top* entries by cumulative time. cProfile adds overhead per Python call, so the
    figures are for ranking, not for the comparison with imapfilter."""
    import pstats

    db = work / "watcher-profile.sqlite3"
    config = watcher_config(server, db, work / "watcher-profile.yaml")
    # Kept after the server's work directory goes, for pstats' print_callers and the like.
    prof = HERE / "out" / "watcher.prof"
    prof.parent.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "watcher"]
    cmd += ["run", "--once", "--config", str(config)]
    run = run_child(cmd, server)
    print(f"meta-watcher under cProfile: {run.wall_seconds:.2f} s wall, exit {run.returncode}")
    if run.returncode != 0:
        print((run.stderr or run.stdout)[-600:])
    if prof.exists():
        pstats.Stats(str(prof)).sort_stats("cumulative").print_stats(top)
        print(f"profile kept in {prof}")


def report(box: Mailbox, results: dict[str, Result], problems: list[str]) -> None:
    base = results.get("imapfilter")
    have_base = base is not None and base.runs
    rows: list[list[object]] = [
        ["contender", "wall", "CPU", "bytes from server", "peak RSS", "found", "runs"]
    ]
    if have_base:
        rows[0] += ["wall/imapfilter", "bytes/imapfilter"]
    for res in results.values():
        if not res.runs:
            rows.append([res.name, "-", "-", "-", "-", "-", 0] + (["", ""] if have_base else []))
            continue
        row: list[object] = [
            res.name,
            f"{res.median('wall_seconds'):.2f} s",
            f"{res.median('cpu_seconds'):.2f} s",
            mib(res.median("server_out_bytes")),
            mib(res.median("peak_rss_bytes")),
            res.found,
            len(res.runs),
        ]
        if have_base:
            assert base is not None
            row.append(f"{res.median('wall_seconds') / base.median('wall_seconds'):.2f}x")
            row.append(f"{res.median('server_out_bytes') / base.median('server_out_bytes'):.2f}x")
        rows.append(row)
    print()
    print(f"first scan of {box.messages} messages (medians; Dovecot over TLS on 127.0.0.1)")
    print(table(rows))
    for res in results.values():
        if res.note:
            print(f"note: {res.name}: {res.note}")
    kinds = Counter(p.kind for p in box.planted)
    on_meta = sum(p.sender_is_meta for p in box.planted)
    print(
        f"planted: {len(box.planted)} ({on_meta} from Meta's sender domains, "
        f"{len(box.planted) - on_meta} look-alikes from other domains; "
        f"{sum(p.suspicious for p in box.planted)} labelled suspicious); kinds: "
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    )
    if "meta-watcher" in results and results["meta-watcher"].runs:
        if problems:
            print(f"meta-watcher MISSED or misfiled {len(problems)} planted mails:")
            for line in problems[:20]:
                print(f"  {line}")
        else:
            print(
                f"meta-watcher recorded every planted mail ({len(box.planted)}) "
                "with its labelled kind and suspicion"
            )
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"(finished {started})")


if __name__ == "__main__":
    main()
