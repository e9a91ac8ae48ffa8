"""Start-up cost of ``meta-watcher --version`` and ``meta-watcher status``.

Each command runs as a child process ``--runs`` times (default 15, after one warm-up run);
printed is the median wall time, the median less ``python -c pass`` (the command's own work:
imports and what it does), and, from one ``python -X importtime`` run, the slowest top-level
imports and how many of the package's own modules were loaded. ``status`` reads a small
database (one recorded corpus mail) through a config file written to a temporary folder.

Run: ``python bench/startup.py [--runs 15]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def wall(cmd: list[str], env: dict[str, str], runs: int) -> float:
    """Median wall seconds of *runs* runs of *cmd* (after one unmeasured run)."""
    times = []
    for n in range(runs + 1):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, check=False)
        elapsed = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr[-400:]!r}")
        if n:
            times.append(elapsed)
    return statistics.median(times)


def importtime(cmd: list[str], env: dict[str, str]) -> tuple[list[tuple[int, str]], int]:
    """(cumulative microseconds, module) of the slowest top-level imports, and how many
    watcher modules were imported, from ``python -X importtime``."""
    done = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]], env=env, cwd=REPO, capture_output=True, text=True
    )
    top: list[tuple[int, str]] = []
    own = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") < 2:
            continue
        _self, cumulative, name = line[12:].split("|", 2)
        if not cumulative.strip().isdigit():
            continue
        module = name.strip()
        own += module.startswith("watcher")
        if len(name) - len(name.lstrip()) == 1:  # nested imports are indented further
            top.append((int(cumulative), module))
    return sorted(top, reverse=True)[:6], own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # Without PYTHONDONTWRITEBYTECODE: commands run from compiled bytecode, as installed ones do
    # (the unmeasured first run writes it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(REPO)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "log.sqlite3"
        config = Path(tmp) / "config.yaml"
        config.write_text(f"database: {db}\ntrusted_authserv_ids: [mx.home.example]\n")
        eml = REPO / "tests" / "corpus"
        first = sorted(eml.glob("*.eml"))[0]
        subprocess.run(
            [py, "-m", "watcher", "scan", "--config", str(config), "--db", str(db), str(first)],
            env=env,
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        commands = {
            "python -c pass": [py, "-c", "pass"],
            "meta-watcher --version": [py, "-m", "watcher", "--version"],
            "meta-watcher status": [py, "-m", "watcher", "status", "--config", str(config)],
        }
        floor = wall(commands["python -c pass"], env, args.runs)
        print(f"{'command':<26} {'wall median':>12} {'own work':>10}  watcher modules")
        for label, cmd in commands.items():
            seconds = floor if label == "python -c pass" else wall(cmd, env, args.runs)
            slowest, own = importtime(cmd, env)
            print(
                f"{label:<26} {seconds * 1000:>9.0f} ms {(seconds - floor) * 1000:>7.0f} ms  {own}"
            )
            if label != "python -c pass":
                shown = ", ".join(f"{m} {us / 1000:.0f} ms" for us, m in slowest)
                print(f"{'':<26} slowest imports: {shown}")


if __name__ == "__main__":
    main()
