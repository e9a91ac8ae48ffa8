"""What every command shares: the ``--config`` and ``-v`` options, logging, and loading the
config, the rules and the database."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from watcher.config import Config, choose_config, load_config
from watcher.store.store import Store

if TYPE_CHECKING:
    from watcher.pipeline.rules import RulePack

F = TypeVar("F", bound=Callable[..., Any])

config_option: Callable[[Callable[..., Any]], Callable[..., Any]] = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file (default: $META_WATCHER_CONFIG, else the user config dir).",
)
verbose_option = click.option("-v", "--verbose", count=True, help="Log debug details.")
trusted_option = click.option(
    "--trusted-authserv-id",
    "trusted",
    multiple=True,
    help="Trust Authentication-Results from this server (repeatable; adds to the config).",
)


def handle_errors(func: F) -> F:
    """Nothing to do: the group maps errors to exit codes for every command
    (watcher.cli.WatcherGroup). Kept for commands written before that (cli/rules.py)."""
    return func


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line for log shippers: time (ISO 8601 UTC), level, logger, message
    and, for an unexpected error, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(verbose: int, default: int) -> None:
    """Log to stderr at *default* level, DEBUG with ``-v`` (the command's or the group's),
    as text or JSON (the group's ``--log-format``)."""
    ctx = click.get_current_context(silent=True)
    group = ctx.find_root().params if ctx is not None else {}
    verbose = max(verbose, int(group.get("global_verbose") or 0))
    level = logging.DEBUG if verbose else default
    handler = logging.StreamHandler(sys.stderr)
    # One line per event, no timestamp: journald and docker add their own.
    handler.setFormatter(
        JsonLogFormatter()
        if group.get("log_format") == "json"
        else logging.Formatter("%(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("imapclient", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING if not verbose else logging.INFO)
    # HTTP client and Apprise debug lines carry notification URLs, whose paths and queries
    # hold tokens: never below WARNING, even with -v.
    for leaky in ("urllib3", "requests", "apprise", "oauthlib", "requests_oauthlib"):
        logging.getLogger(leaky).setLevel(logging.WARNING)


def load(config_path: Path | None) -> Config:
    """The config (ConfigError naming the key); in demo mode, say so on stderr."""
    config = load_config(config_path)
    if config.demo:
        click.echo(
            "meta-watcher: no config file found; using the bundled example mailbox "
            f"and the demo database {config.database} (see README: Configuration)",
            err=True,
        )
    return config


def local_config(config_path: Path | None, trusted: tuple[str, ...] = ()) -> Config:
    """The config when one exists, else defaults (no demo notice: for work on local files),
    with *trusted* authserv-ids added."""
    choice = choose_config(config_path)
    config = load_config(config_path) if choice.path is not None else Config()
    if trusted:
        ids = tuple(dict.fromkeys(config.trusted_authserv_ids + trusted))
        config = config.model_copy(update={"trusted_authserv_ids": ids})
    return config


def open_store(config: Config, must_exist: bool = False) -> Store | None:
    """The database of *config*; None when *must_exist* and it does not exist yet."""
    if must_exist and not config.database.exists():
        return None
    return Store.open(config.database, store_codes=config.store_codes)


def load_pack(config: Config) -> RulePack:
    """The rule pack *config* names, with its user rules (RulesError)."""
    # Imported here: the rules (pydantic models, YAML) are not needed by status, log, health.
    from watcher.pipeline.rules import load_rules

    return load_rules(config.rules_path, config.user_rules)


def short(text: str, width: int) -> str:
    """*text* cut to *width* characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Print *rows* (the first is the header) as left-aligned columns."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
