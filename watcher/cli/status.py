"""``status`` and ``log``: what the log says about each objection. Kept light: they import
the config and the store, nothing of IMAP, the rules or notifications."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from watcher.cli.options import (
    config_option,
    load,
    open_store,
    print_table,
    setup_logging,
    short,
    verbose_option,
)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects.")
@config_option
@verbose_option
def status(as_json: bool, config_path: Path | None, verbose: int) -> None:
    """Show where each account's objection stands: one row per (platform, account)."""
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    store = open_store(config, must_exist=True)
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
            (r.platform, r.account, r.status, r.since[:10], short(r.subject, 50)) for r in rows
        ]
        print_table(table)
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


@click.command(name="log")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
@verbose_option
def log_command(as_json: bool, config_path: Path | None, verbose: int) -> None:
    """Show every status transition, oldest mail first."""
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    store = open_store(config, must_exist=True)
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
        print_table(table)
