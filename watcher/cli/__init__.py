"""Command line (``meta-watcher``, ``python -m watcher``): the group, and the one place that
turns errors into messages and exit codes.

Exit codes: 0 ok, 1 a check failed, 2 usage, 75 a server unreachable (EX_TEMPFAIL), 78 config
error (EX_CONFIG), 130 interrupted. Errors print one sentence on stderr, never a traceback
(``-v`` adds one for unexpected bugs).

Commands live one family per module (scan.py: scan; run.py: run; status.py: status, log;
accounts.py: check, auth; init.py: init; daemon.py: health, notify-test, wait-code;
outbox.py: outbox, outbox retry, outbox drop; report.py: report; rules.py: rules,
reclassify) and are imported when run or listed, so
``meta-watcher --version`` imports click alone and ``meta-watcher status`` only the config and
the store, not IMAP, the rules, Apprise or the scheduler.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import click

from watcher import __version__
from watcher.errors import WatcherError

# Command name -> (module, attribute).
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("watcher.cli.scan", "scan"),
    "run": ("watcher.cli.run", "run"),
    "status": ("watcher.cli.status", "status"),
    "log": ("watcher.cli.status", "log_command"),
    "check": ("watcher.cli.accounts", "check"),
    "auth": ("watcher.cli.accounts", "auth_command"),
    "init": ("watcher.cli.init", "init_command"),
    "health": ("watcher.cli.daemon", "health"),
    "notify-test": ("watcher.cli.daemon", "notify_test"),
    "outbox": ("watcher.cli.outbox", "outbox_group"),
    "wait-code": ("watcher.cli.daemon", "wait_code"),
    "report": ("watcher.cli.report", "report_command"),
    "rules": ("watcher.cli.rules", "rules_group"),
    "reclassify": ("watcher.cli.rules", "reclassify_command"),
}


class LazyCommands(MutableMapping[str, click.Command]):
    """The group's commands by name, each imported from its module on first access (the
    click group reads and lists them through this mapping)."""

    def __init__(self, where: dict[str, tuple[str, str]]) -> None:
        self._where = dict(where)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            module, attr = self._where[name]  # KeyError: no such command
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._where.pop(name, None)
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._where, *self._loaded]))

    def __len__(self) -> int:
        return len(self._where.keys() | self._loaded.keys())


class WatcherGroup(click.Group):
    """The ``meta-watcher`` group: commands loaded lazily; a WatcherError from any command
    becomes ``meta-watcher: <sentence>`` on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WatcherError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)


def fail(message: str, code: int) -> None:
    """Print ``meta-watcher: <message>`` on stderr and exit with *code*."""
    click.echo(f"meta-watcher: {message}", err=True)
    sys.exit(code)


@click.group(
    cls=WatcherGroup,
    commands=LazyCommands(COMMANDS),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="meta-watcher")
@click.option(
    "-v", "--verbose", "global_verbose", count=True, help="Log debug details (any command)."
)
@click.option(
    "--config",
    "global_config",
    # Unchecked, as the command's own --config (watcher.cli.options): load_config says why.
    type=click.Path(path_type=Path),
    help="Config file for any command (as the command's own --config).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="META_WATCHER_LOG_FORMAT",
    show_default=True,
    help="Log lines as text or as one JSON object per line (for log shippers).",
)
def main(global_verbose: int, global_config: Path | None, log_format: str) -> None:
    """Watch mailboxes for Meta's AI-training privacy mails and track your GDPR objections."""
    # The options are read where logging is set up (watcher.cli.options.setup_logging).
