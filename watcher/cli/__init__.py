"""Command line: the only place that turns errors into messages and exit codes.

Exit codes: 0 ok, 1 a check failed, 2 usage, 75 a server unreachable (EX_TEMPFAIL), 78 config
error (EX_CONFIG). Errors print one sentence on stderr, never a traceback (``-v`` adds one for
unexpected bugs).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from watcher import __version__
from watcher.config import Config, choose_config, load_config
from watcher.errors import WatcherError

if TYPE_CHECKING:
    from watcher.pipeline.process import Outcome
    from watcher.pipeline.rules import RulePack
    from watcher.store.store import Store

log = logging.getLogger("watcher")

F = TypeVar("F", bound=Callable[..., Any])


# Set by the global options of `main` (`meta-watcher -v --log-format json run`).
_LOG_OPTIONS: dict[str, Any] = {"verbose": 0, "format": "text"}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line for log shippers: time (ISO 8601 UTC), level, logger, message
    and, for an unexpected error, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        from datetime import UTC, datetime

        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _setup_logging(verbose: int, default: int) -> None:
    verbose = max(verbose, int(_LOG_OPTIONS["verbose"]))
    level = logging.DEBUG if verbose else default
    handler = logging.StreamHandler(sys.stderr)
    # One line per event, no timestamp: journald and docker add their own.
    handler.setFormatter(
        JsonLogFormatter()
        if _LOG_OPTIONS["format"] == "json"
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


def _fail(message: str, code: int) -> None:
    click.echo(f"meta-watcher: {message}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn WatcherError into one sentence on stderr and its exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except WatcherError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


config_option: Callable[[Callable[..., Any]], Callable[..., Any]] = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file (default: $META_WATCHER_CONFIG, else the user config dir).",
)
verbose_option = click.option("-v", "--verbose", count=True, help="Log debug details.")


def _load(config_path: Path | None) -> Config:
    config = load_config(config_path)
    if config.demo:
        click.echo(
            "meta-watcher: no config file found; using the bundled example mailbox "
            f"and the demo database {config.database} (see README: Configuration)",
            err=True,
        )
    return config


def _open_store(config: Config, must_exist: bool = False) -> Store | None:
    from watcher.store.store import Store

    if must_exist and not config.database.exists():
        return None
    return Store.open(config.database, store_codes=config.store_codes)


def _rules(config: Config) -> RulePack:
    from watcher.pipeline.rules import load_rules

    return load_rules(config.rules_path, config.user_rules)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="meta-watcher")
@click.option(
    "-v", "--verbose", "global_verbose", count=True, help="Log debug details (any command)."
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="META_WATCHER_LOG_FORMAT",
    show_default=True,
    help="Log lines as text or as one JSON object per line (for log shippers).",
)
def main(global_verbose: int, log_format: str) -> None:
    """Watch mailboxes for Meta's AI-training privacy mails and track your GDPR objections."""
    _LOG_OPTIONS.update(verbose=global_verbose, format=log_format)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.option(
    "--db", type=click.Path(path_type=Path, dir_okay=False), help="Also record to this database."
)
@click.option(
    "--trusted-authserv-id",
    "trusted",
    multiple=True,
    help="Trust Authentication-Results from this server (repeatable; adds to the config).",
)
@config_option
@verbose_option
@handle_errors
def scan(
    paths: tuple[Path, ...],
    as_json: bool,
    db: Path | None,
    trusted: tuple[str, ...],
    config_path: Path | None,
    verbose: int,
) -> None:
    """Classify local mail: .eml files, mbox files or Maildir folders.

    Prints what each message is; verification codes are shown in full here, because you are
    at the terminal. With --db the results are recorded like `run` does.
    """
    from watcher.daemon.runner import RunReport, ingest, settings_of
    from watcher.pipeline.process import process
    from watcher.pipeline.status import Transition
    from watcher.sources.mailfiles import display_path, kind_of, read_source
    from watcher.store.store import Store

    _setup_logging(verbose, logging.WARNING)
    choice = choose_config(config_path)
    config = load_config(config_path) if choice.path is not None else Config()
    if trusted:
        ids = tuple(dict.fromkeys(config.trusted_authserv_ids + trusted))
        config = config.model_copy(update={"trusted_authserv_ids": ids})
    pack = _rules(config)
    settings = settings_of(config)

    def show(outcome: Outcome, source: str) -> None:
        match = outcome.match
        if as_json:
            click.echo(json.dumps(_scan_record(source, outcome), ensure_ascii=False))
            return
        fields = " ".join(f"{k}={v}" for k, v in outcome.fields.items())
        flag = " SUSPICIOUS" if outcome.suspicious else ""
        error = f" error={outcome.message.error}" if outcome.message.error else ""
        click.echo(
            f"{source}: {match.kind}{flag} platform={match.platform or '-'} "
            f"account={match.account or '-'} auth={outcome.verdict.result} "
            f"rule={match.rule_id or '-'} {fields}".rstrip()
            + error
        )

    store = Store.open(db, store_codes=config.store_codes) if db is not None else None
    failed: WatcherError | None = None
    try:
        for path in paths:
            label = display_path(path)
            try:
                single = kind_of(path) == "eml"
                messages = read_source(path)
            except WatcherError as exc:  # one bad path does not stop the others
                click.echo(f"meta-watcher: {exc}", err=True)
                failed = failed or exc
                continue

            def shown(
                outcome: Outcome,
                _added: list[Transition],
                single: bool = single,
                label: str = label,
            ) -> None:
                show(outcome, label if single else f"{label}#{outcome.key.uid}")

            if store is not None:
                ingest(store, pack, settings, messages, RunReport(), on_recorded=shown)
            else:
                for raw in messages:
                    shown(process(raw, pack, settings), [])
    finally:
        if store is not None:
            store.close()
    if failed is not None:
        sys.exit(failed.exit_code)


def _scan_record(source: str, outcome: Outcome) -> dict[str, Any]:
    match, msg = outcome.match, outcome.message
    return {
        "source": source,
        "message_id": msg.message_id,
        "kind": match.kind,
        "platform": match.platform,
        "account": match.account,
        "language": match.language,
        "authenticity": outcome.verdict.result,
        "authenticity_reasons": list(outcome.verdict.reasons),
        "suspicious": outcome.suspicious,
        "rule": match.rule_id,
        "fields": outcome.fields,
        "error": msg.error,
    }


@main.command()
@click.option("--once", is_flag=True, help="Process new mail once, then exit (for cron).")
@config_option
@verbose_option
@handle_errors
def run(once: bool, config_path: Path | None, verbose: int) -> None:
    """Process new mail of every account and folder; keep polling unless --once."""
    _setup_logging(verbose, logging.INFO)
    config = _load(config_path)
    if not config.trusted_authserv_ids and not config.trust_unauthenticated:
        log.warning(
            "trusted_authserv_ids is empty: no mail can be verified, so no status will change; "
            "set it before the first run (README, 'Authenticity')"
        )
    pack = _rules(config)
    store = _open_store(config)
    assert store is not None
    try:
        store.acquire_run_lock()
        if not once:
            from watcher.daemon.daemon import run_forever

            run_forever(config, store, pack)
            return
        from watcher.daemon.runner import run_once_notifying

        report = run_once_notifying(config, store, pack)
    finally:
        store.close()
    click.echo(
        f"processed {report.fetched} candidate message(s): {report.recorded} recorded, "
        f"{report.duplicates} already known, {report.transitions} status change(s)",
        err=True,
    )
    if report.exit_code:
        sys.exit(report.exit_code)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects.")
@config_option
@verbose_option
@handle_errors
def status(as_json: bool, config_path: Path | None, verbose: int) -> None:
    """Show where each account's objection stands: one row per (platform, account)."""
    _setup_logging(verbose, logging.WARNING)
    config = _load(config_path)
    store = _open_store(config, must_exist=True)
    rows = [] if store is None else store.current_status()
    attention = {} if store is None else store.needs_attention()
    if store is not None:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "platform": r.platform,
                        "account": r.account,
                        "status": r.status,
                        "since": r.since,
                        "message_id": r.message_id,
                    }
                    for r in rows
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if rows:
        table = [("PLATFORM", "ACCOUNT", "STATUS", "SINCE", "SET BY")] + [
            (r.platform, r.account, r.status, r.since[:10], _short(r.subject, 50)) for r in rows
        ]
        _print_table(table)
    else:
        click.echo("No objection status yet: no verified Meta privacy mail has been recorded.")
    notes = {
        "suspicious": "look-alike mail(s) that failed authentication (never counted); "
        "see README, 'The SQLite log'",
        "unrecognized": "Meta privacy mail(s) no rule recognised; see README, 'The SQLite log'",
        "error": "mail(s) that could not be parsed; see README, 'The SQLite log'",
        "unverified": "Meta privacy mail(s) not counted because no trusted server vouched for "
        "them: set trusted_authserv_ids, then start a fresh database (README, 'Authenticity')",
    }
    for key, count in attention.items():
        if count:
            click.echo(f"note: {count} {notes[key]}")


@main.command(name="log")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
@verbose_option
@handle_errors
def log_command(as_json: bool, config_path: Path | None, verbose: int) -> None:
    """Show every status transition, oldest mail first."""
    _setup_logging(verbose, logging.WARNING)
    config = _load(config_path)
    store = _open_store(config, must_exist=True)
    rows = [] if store is None else store.transitions()
    if store is not None:
        store.close()
    for r in rows:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "platform": r.platform,
                        "account": r.account,
                        "from": r.from_status,
                        "to": r.to_status,
                        "mail_date": r.mail_date,
                        "recorded_at": r.recorded_at,
                        "message_id": r.message_id,
                        "rule": r.rule_id,
                    },
                    ensure_ascii=False,
                )
            )
    if not as_json:
        if not rows:
            click.echo("No status transitions recorded yet.")
            return
        table = [("MAIL DATE", "PLATFORM", "ACCOUNT", "FROM", "TO", "RULE")] + [
            (
                r.mail_date[:10],
                r.platform,
                r.account,
                r.from_status or "-",
                r.to_status,
                r.rule_id or "-",
            )
            for r in rows
        ]
        _print_table(table)


@main.command()
@config_option
@verbose_option
@handle_errors
def check(config_path: Path | None, verbose: int) -> None:
    """Validate config and rules, log in to each account, and check its folders."""
    from watcher.sources import imap

    _setup_logging(verbose, logging.WARNING)
    config = _load(config_path)
    problems: list[str] = []
    pack = _rules(config)
    click.echo(f"ok: rules {config.rules_path}: {len(pack.rules)} rules")
    if not config.trusted_authserv_ids:
        click.echo(
            "warning: trusted_authserv_ids is empty: no mail can be verified, so no status "
            "will change (name your mail server's authserv-id, see README)"
        )
    if config.trust_unauthenticated:
        click.echo(
            "warning: trust_unauthenticated is on: spoof protection is off for mail without a "
            "trusted Authentication-Results header"
        )
    for account in config.accounts:
        try:
            client = imap.connect(account)
        except WatcherError as exc:
            problems.append(str(exc))
            click.echo(f"FAIL: {exc}")
            continue
        try:
            folders = imap.list_folders(client)
            missing = [f for f in account.folders if f not in folders]
            for folder in missing:
                msg = (
                    f"account {account.name}: folder {folder!r} does not exist on "
                    f"{account.host} (names are case-sensitive; fix folders: in the config)"
                )
                problems.append(msg)
                click.echo(f"FAIL: {msg}")
            method = "OAuth2 (XOAUTH2)" if account.uses_oauth2 else "a password"
            click.echo(
                f"ok: account {account.name}: logged in to {account.host} with {method}; "
                f"{len(folders)} folders: {', '.join(folders[:20])}"
            )
        finally:
            imap.logout(client)
    for source in config.local:
        from watcher.sources.mailfiles import kind_of

        try:
            click.echo(f"ok: local source {source.name}: {kind_of(source.path)} {source.path}")
        except WatcherError as exc:
            problems.append(str(exc))
            click.echo(f"FAIL: {exc}")
    if problems:
        sys.exit(1)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


from watcher import cli_daemon  # noqa: E402 - the daemon's commands, registered on main

main.add_command(cli_daemon.health)
main.add_command(cli_daemon.notify_test)
main.add_command(cli_daemon.wait_code)


# Commands for setting up accounts and for evidence (watcher/cli_setup.py).
from watcher.cli_setup import auth_command, init_command, report_command  # noqa: E402

main.add_command(init_command)
main.add_command(auth_command)
main.add_command(report_command)

# Commands for explaining and extending the rules (watcher/cli_rules.py).
from watcher.cli.rules import reclassify_command, rules_group  # noqa: E402

main.add_command(rules_group)
main.add_command(reclassify_command)
