"""Local mail for `scan` and `run`: .eml, mbox, Maildir; and demo mode with no config."""

from __future__ import annotations

import json
import mailbox
from collections.abc import Iterator, Mapping
from pathlib import Path

import click
import pytest
from click.testing import Result
from daemonproc import run_in_process
from test_corpus import CORPUS, MANIFEST

from watcher.errors import ConfigError
from watcher.sources.mailfiles import kind_of, read_source

NAMES = sorted(MANIFEST["messages"])


def run_cli(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """`meta-watcher ARGS` in this process, *env* laid over the test's environment."""
    return run_in_process(*args, env=env, expect=None)


def make_mbox(path: Path) -> None:
    box = mailbox.mbox(path)
    for name in NAMES:
        box.add((CORPUS / name).read_bytes())
    box.close()


def make_maildir(path: Path) -> None:
    box = mailbox.Maildir(path)
    for name in NAMES:
        box.add((CORPUS / name).read_bytes())
    box.close()


def test_mbox_and_maildir_yield_every_message_once(tmp_path: Path) -> None:
    make_mbox(tmp_path / "export.mbox")
    make_maildir(tmp_path / "Maildir")
    assert kind_of(tmp_path / "export.mbox") == "mbox"
    assert kind_of(tmp_path / "Maildir") == "maildir"
    assert kind_of(CORPUS / NAMES[0]) == "eml"
    for source in (tmp_path / "export.mbox", tmp_path / "Maildir"):
        raws = {m.raw for m in read_source(source)}
        assert raws == {(CORPUS / n).read_bytes() for n in NAMES}


def test_maildir_without_tmp_or_new_and_with_dotfiles_is_read(tmp_path: Path) -> None:
    (tmp_path / "M" / "cur").mkdir(parents=True)
    (tmp_path / "M" / "cur" / ".keep").write_text("")
    (tmp_path / "M" / "cur" / "1.a:2,S").write_bytes((CORPUS / NAMES[0]).read_bytes())
    assert [m.key.folder for m in read_source(tmp_path / "M")] == ["1.a"]


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        list(read_source(tmp_path / "nope.eml"))


def test_scan_mbox_json_labels_each_message_with_its_position(tmp_path: Path) -> None:
    make_mbox(tmp_path / "export.mbox")
    done = run_cli(
        "scan", "--json", "--trusted-authserv-id", "mx.home.example", str(tmp_path / "export.mbox")
    )
    assert done.exit_code == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["source"].rsplit("#", 1)[1] for r in records] == [str(i) for i in range(1, 27)]
    kinds = [r["kind"] for r in records]
    assert kinds == [MANIFEST["messages"][n]["kind"] for n in NAMES]
    code = next(r for r in records if r["kind"] == "verification_code")
    assert code["fields"]["code"].isdigit()  # in full at the terminal


def test_scan_with_db_records_like_run(tmp_path: Path) -> None:
    db = tmp_path / "scan.sqlite3"
    files = [str(CORPUS / n) for n in NAMES]
    done = run_cli("scan", "--db", str(db), "--trusted-authserv-id", "mx.home.example", *files)
    assert done.exit_code == 0, done.stderr
    config = tmp_path / "c.yaml"
    config.write_text(f"database: {db}\n", encoding="utf-8")
    status = json.loads(run_cli("status", "--json", "--config", str(config)).stdout)
    assert {r["account"] for r in status} >= {"anna.beispiel@example.org", "ben.sample@example.net"}


def test_demo_mode_runs_on_the_bundled_example_mailbox(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}
    first = run_cli("run", "--once", env=env)
    assert first.exit_code == 0, first.stderr
    assert "bundled example mailbox" in first.stderr
    assert (tmp_path / "data" / "meta-watcher" / "demo.sqlite3").exists()
    table = run_cli("status", env=env).stdout
    assert "accepted" in table
    assert "rejected" in table
    assert "code_received" in table
    again = run_cli("run", "--once", env=env)
    assert "0 recorded" in again.stderr
    log = run_cli("log", "--json", env=env).stdout.splitlines()
    assert all(json.loads(line)["to"] for line in log)
    assert len(log) == 7


def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    """*command* and, for a group, every command under it, each with its full name."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_command_and_option_has_help_text() -> None:
    from watcher.cli import COMMANDS, main

    found = dict(_commands(main, "meta-watcher"))
    # Every registered command is listed, subcommands of groups (rules test, ...) included.
    assert {f"meta-watcher {name}" for name in COMMANDS} <= found.keys()
    assert "meta-watcher rules test" in found
    for name, command in found.items():
        assert (command.help or "").strip(), f"{name} has no help text"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{name} {param.opts[0]} has no help text"
        # The help page renders (a broken docstring or option would raise here).
        shown = " ".join(run_in_process(*name.split()[1:], "--help").stdout.split())
        assert " ".join((command.help or "").split()[:5]) in shown, name
