"""What every command shares: the ``--config`` and ``-v`` options, logging, and loading the
config, the rules and the database."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from watcher.cli.configcache import (
    StoreConfig,
    cached_store_config,
    read_config_file,
    remember,
)
from watcher.shown import for_person
from watcher.store.queries import Reader

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.pipeline.rules import RulePack
    from watcher.store.store import Store


def _global_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    # `meta-watcher --config F check` and `meta-watcher check --config F` mean the same; the
    # command's own option wins when both are given.
    if value is not None:
        return value
    root = ctx.find_root().params.get("global_config")
    return root if isinstance(root, Path) else None


config_option: Callable[[Callable[..., Any]], Callable[..., Any]] = click.option(
    "--config",
    "config_path",
    # No checks here: click would turn an unreadable file or a folder into a usage error
    # (exit 2); load_config says it in one sentence with exit 78, as for $META_WATCHER_CONFIG.
    type=click.Path(path_type=Path),
    callback=_global_config,
    help="Config file (default: $META_WATCHER_CONFIG, else the user config dir).",
)
verbose_option = click.option("-v", "--verbose", count=True, help="Log debug details.")
trusted_option = click.option(
    "--trusted-authserv-id",
    "trusted",
    multiple=True,
    help="Trust Authentication-Results from this server (repeatable; adds to the config).",
)


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


class _ShownToPerson(logging.Filter):
    """Log lines carry mail values (subjects, senders, reasons): each message passes
    for_person before any formatter sees it, so no terminal escape or bidi override from a
    mail reaches the terminal or the journal."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = for_person(record.getMessage())
        record.args = None
        return True


def setup_logging(verbose: int, default: int) -> None:
    """Log to stderr at *default* level, DEBUG with ``-v`` (the command's or the group's),
    as text or JSON (the group's ``--log-format``)."""
    ctx = click.get_current_context(silent=True)
    group = ctx.find_root().params if ctx is not None else {}
    verbose = max(verbose, int(group.get("global_verbose") or 0))
    level = logging.DEBUG if verbose else default
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ShownToPerson())
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
    # Imported here: the config models are pydantic, whose import is most of the start-up
    # time that `status` and `log` save through load_store_config.
    from watcher.config import load_config

    config = load_config(config_path)
    if config.demo:
        click.echo(
            "meta-watcher: no config file found; using the bundled example mailbox "
            f"and the demo database {config.database} (see README: Configuration)",
            err=True,
        )
    return config


NOTHING_TO_WATCH = "nothing to watch: add an account (meta-watcher init) or a local source"


def nothing_to_watch(config: Config) -> bool:
    """True when *config* names no IMAP account and no local source: a run would read no
    mail at all, which a user who stopped half-way through setup should be told."""
    return not config.accounts and not config.local


def load_store_config(config_path: Path | None) -> Config | StoreConfig:
    """What ``status`` and ``log`` need of the config: the facts remembered from its last
    validation when the file (and all its validation reads) is unchanged, else the config
    validated in full (ConfigError naming the key; demo notice), whose facts are then
    remembered (watcher.cli.configcache)."""
    cached = cached_store_config(config_path)
    if cached is not None:
        return cached
    data = read_config_file(config_path)
    config = load(config_path)
    remember(config_path, data, config)
    return config


def local_config(config_path: Path | None, trusted: tuple[str, ...] = ()) -> Config:
    """The config when one exists, else defaults (no demo notice: for work on local files),
    with *trusted* authserv-ids added."""
    from watcher.config import Config, choose_config, load_config  # see load()

    choice = choose_config(config_path)
    config = load_config(config_path) if choice.path is not None else Config()
    if trusted:
        ids = tuple(dict.fromkeys(config.trusted_authserv_ids + trusted))
        config = config.model_copy(update={"trusted_authserv_ids": ids})
    return config


def open_store(config: Config | StoreConfig, must_exist: bool = False) -> Store | None:
    """The database of *config*; None when *must_exist* and it does not exist yet."""
    if must_exist and not config.database.exists():
        return None
    # Imported here: status and log read through open_reader and never need the recording
    # side of the store (nor what it imports: evidence, status replay, outbox).
    from watcher.store.store import Store

    return Store.open(config.database, store_codes=config.store_codes)


def open_reader(config: Config | StoreConfig) -> Reader | None:
    """The database of *config* opened for reading (status, log); None when it does not
    exist yet. Raises StoreError."""
    if not config.database.exists():
        return None
    return Reader.open(config.database)


def load_pack(config: Config) -> RulePack:
    """The rule pack *config* names, with its user rules (RulesError)."""
    # Imported here: the rules are not needed by status, log, health. A pack built before
    # from the same files is read back from the cache folder (watcher.pipeline.rules.cache).
    from watcher.cli.configcache import cache_dir
    from watcher.pipeline.rules.cache import load_rules_cached

    return load_rules_cached(config.rules_path, config.user_rules, cache_dir())


def plural(count: int, noun: str) -> str:
    """*count* and *noun*, plural unless one: "1 folder", "3 folders"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def short(text: str, width: int) -> str:
    """*text* cut to *width* characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Print *rows* (the first is the header) as left-aligned columns."""
    shown = [[for_person(str(c)) for c in row] for row in rows]  # mail values among them
    widths = [max(len(row[i]) for row in shown) for i in range(len(shown[0]))]
    for row in shown:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
