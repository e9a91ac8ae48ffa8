"""Config values a typo or a hostile file can hold (issue 12, item 5): durations that are not
finite or absurdly long, and YAML that expands without bound. Each is one sentence, exit 78."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

MAX_SECONDS = 365 * 86400  # the documented maximum of every duration (README)


def _mw(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("META_WATCHER")}
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    "value", [".nan", ".inf", "-.inf", "1000000000000000000000000000", "1e27", "400d", "99999999h"]
)
@pytest.mark.parametrize("command", ["check", "run"])
def test_a_duration_that_is_not_finite_or_too_long_is_one_sentence_and_exit_78(
    tmp_path: Path, value: str, command: str
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {tmp_path / 'db.sqlite3'}\npoll_interval: {value}\n")
    done = _mw(command, "--config", str(config))
    assert done.returncode == 78, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert "poll_interval" in line
    assert "365" in line or "duration" in line


def test_the_maximum_duration_is_accepted(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {tmp_path / 'db.sqlite3'}\nnotify_max_age: {MAX_SECONDS}\n")
    done = _mw("check", "--config", str(config))
    assert "notify_max_age" not in done.stderr


def test_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    config = tmp_path / "config.yaml"
    # Used by a real key, so validation walks the 10**10 strings the aliases stand for.
    lines.append("reminder_days: *a9")
    config.write_text("\n".join(lines) + f"\ndatabase: {tmp_path / 'db.sqlite3'}\n")
    started = time.monotonic()
    done = _mw("check", "--config", str(config), timeout=60)
    elapsed = time.monotonic() - started
    print(f"billion laughs: check exited {done.returncode} after {elapsed:.2f} s")
    assert elapsed < 10
    assert done.returncode == 78
    (line,) = done.stderr.strip().splitlines()
    assert "alias" in line


def test_an_oversized_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {tmp_path / 'db.sqlite3'}\n" + "# padding\n" * 200_000)
    done = _mw("check", "--config", str(config))
    assert done.returncode == 78
    (line,) = done.stderr.strip().splitlines()
    assert "larger than" in line
