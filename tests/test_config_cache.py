"""`status` and `log` start without pydantic when the config is unchanged since its last
validation (watcher.cli.configcache), and a config that changed, or whose validation would
now read the filesystem differently, is validated in full again: still one sentence and
exit 78 when it is broken."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from daemonproc import REPO, run_in_process

from watcher.cli.configcache import cached_store_config


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A cache folder of this test's own, for this process and for child processes."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"database: {tmp_path / 'w.db'}\n{extra}", encoding="utf-8")
    return path


def _status_modules(config: Path) -> tuple[int, str, set[str]]:
    """Run `meta-watcher status` as a user would; its exit code, stderr and the modules it
    imported (top-level packages and full names)."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['meta-watcher', 'status', '--config', sys.argv[1]]\n"
        "try:\n"
        "    runpy.run_module('watcher', run_name='__main__')\n"
        "finally:\n"
        "    names = {m.split('.')[0] for m in sys.modules} | set(sys.modules)\n"
        "    print(' '.join(sorted(names)), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "META_WATCHER_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-c", probe, str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )
    *lines, modules = done.stderr.splitlines()
    return done.returncode, "\n".join(lines), set(modules.split())


def test_an_unchanged_config_is_read_without_pydantic(
    tmp_path: Path, cache_env: dict[str, str]
) -> None:
    config = _config(tmp_path)
    code, _, first = _status_modules(config)
    assert code == 0
    assert "pydantic" in first  # nothing remembered yet: validated in full
    code, _, second = _status_modules(config)
    assert code == 0
    assert "pydantic" not in second
    assert "yaml" not in second


def test_status_reads_the_log_without_the_recording_side(
    tmp_path: Path, cache_env: dict[str, str]
) -> None:
    """status and log open the database through store.queries.Reader: the Store that
    records mail, and what only recording needs (evidence, dateutil), are not imported."""
    from watcher.store.store import Store

    config = _config(tmp_path)
    Store.open(tmp_path / "w.db").close()
    _status_modules(config)  # remembers the config's facts
    code, err, modules = _status_modules(config)
    assert code == 0, err
    assert "watcher.store.queries" in modules  # the database was read
    heavy_modules = (
        "watcher.store.store",
        "watcher.pipeline.evidence",
        "watcher.pipeline.status",
        "watcher.sources.base",
        "dateutil",
        "pydantic",
    )
    for heavy in heavy_modules:
        assert heavy not in modules, heavy


def test_the_remembered_facts_are_the_validated_ones(
    tmp_path: Path, cache_env: dict[str, str]
) -> None:
    config = _config(tmp_path, "store_codes: true\n")
    run_in_process("status", "--config", config)
    cached = cached_store_config(config)
    assert cached is not None
    assert cached.database == tmp_path / "w.db"
    assert cached.store_codes is True


def test_a_config_broken_since_its_last_validation_is_still_one_sentence_and_exit_78(
    tmp_path: Path, cache_env: dict[str, str]
) -> None:
    config = _config(tmp_path)
    run_in_process("status", "--config", config)
    assert cached_store_config(config) is not None
    config.write_text(f"database: {tmp_path / 'w.db'}\nstore_codes: maybe\n", encoding="utf-8")
    assert cached_store_config(config) is None
    for command in ("status", "log"):
        done = run_in_process(command, "--config", config, expect=78)
        assert done.stderr.startswith(f"meta-watcher: config file {config}: store_codes")
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_file_the_validation_checked_that_is_gone_means_validating_again(
    tmp_path: Path, cache_env: dict[str, str]
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here\n", encoding="utf-8")
    account = (
        "accounts:\n"
        "  - name: a\n"
        "    host: 127.0.0.1\n"
        "    username: a\n"
        "    password_env: A_PASSWORD\n"
        f"    ca_file: {ca}\n"
    )
    config = _config(tmp_path, account)
    run_in_process("status", "--config", config)
    assert cached_store_config(config) is not None
    ca.unlink()  # the config's bytes are the same; its validation would now fail
    assert cached_store_config(config) is None
    done = run_in_process("status", "--config", config, expect=78)
    assert "ca_file" in done.stderr


def test_a_config_with_meta_accounts_is_always_validated_in_full(
    tmp_path: Path, cache_env: dict[str, str]
) -> None:
    config = _config(
        tmp_path, "meta_accounts:\n  - platform: instagram\n    address: a@example.org\n"
    )
    done = run_in_process("status", "--config", config)
    assert "a@example.org" in done.stdout  # listed even before any mail
    assert cached_store_config(config) is None


def test_remembered_facts_are_private(tmp_path: Path, cache_env: dict[str, str]) -> None:
    """They name the database and mail folders, like the 0600 config (trial 2: 0644)."""
    config = _config(tmp_path)
    _status_modules(config)
    entries = list(Path(cache_env["XDG_CACHE_HOME"]).glob("meta-watcher/config/*.json"))
    assert entries
    for entry in entries:
        assert entry.stat().st_mode & 0o077 == 0
    assert entries[0].parent.stat().st_mode & 0o077 == 0
