"""``status`` and ``log``: what the log says about each objection. Kept light: they import
the store, and the config models only when the config changed since it was last validated
(watcher.cli.configcache); nothing of IMAP, the rules or notifications."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from watcher.cli.configcache import StoreConfig
from watcher.cli.options import (
    config_option,
    load_store_config,
    open_reader,
    print_table,
    setup_logging,
    short,
    verbose_option,
)
from watcher.kinds import OBJECTION_FORMS, next_step
from watcher.store.queries import Reader
from watcher.store.rows import COVERED_BY, StatusRow

if TYPE_CHECKING:
    # Not imported to run: the config models are pydantic, and these commands start
    # without it when the config is unchanged (watcher.cli.configcache).
    from watcher.config import Config, MetaAccount


@click.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array of objects.")
@config_option
@verbose_option
def status(as_json: bool, config_path: Path | None, verbose: int) -> None:
    """Show where each account's objection stands: one row per (platform, account)."""
    setup_logging(verbose, logging.WARNING)
    config = load_store_config(config_path)
    store = open_reader(config)
    rows = [] if store is None else store.current_status()
    attention = {} if store is None else store.needs_attention()
    facts = {} if store is None else store.next_step_facts()
    spam = [] if store is None else _spam_folders(store)
    if store is not None:
        store.close()
    rows, unlisted = _with_meta_accounts(rows, config.meta_accounts)
    names = {m.key: m.label for m in config.meta_accounts}
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
                        "next_step": _next_step(r, facts),
                        "name": names.get((r.platform, r.account)),
                    }
                    for r in rows
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if rows:
        table = [("PLATFORM", "ACCOUNT", "STATUS", "SINCE", "SET BY", "NEXT STEP")] + [
            (
                r.platform,
                _account_label(r, config.meta_accounts),
                r.status,
                r.since[:10] or "-",
                short(r.subject, 40) or "-",
                _next_step(r, facts),
            )
            for r in rows
        ]
        print_table(table)
    else:
        click.echo("No objection status yet: no verified Meta privacy mail has been recorded.")
    notes = {
        "suspicious": "look-alike mail(s) that failed authentication (never counted); "
        "see README, 'The SQLite log'",
        "unrecognized": "Meta privacy mail(s) no rule recognised; see README, 'The SQLite log'",
        "error": "mail(s) that could not be fetched or parsed; see README, 'The SQLite log'",
        "unverified": "Meta privacy mail(s) not counted because no trusted server vouched for "
        "them: set trusted_authserv_ids, then start a fresh database (README, 'Authenticity')",
    }
    trusted = _trusted_ids(config, config_path) if attention.get("unverified") else ()
    if trusted:
        # Trusted ids are set: these mails lacked their verdict (forged, or not delivered
        # through that server); trusting another id or starting over would not help.
        notes["unverified"] = (
            "Meta privacy mail(s) not counted: they carried no Authentication-Results header "
            f"from the trusted server(s) {', '.join(trusted)} (forged, or delivered another "
            "way); see README, 'Authenticity'"
        )
    for key, count in attention.items():
        if count:
            click.echo(f"note: {count} {notes[key]}")
    for platform, account in unlisted:
        click.echo(
            f"note: Meta mail for {platform} {account}, which meta_accounts does not list: "
            "add it (README, 'Your Meta accounts')"
        )
    if spam:
        click.echo(
            f"note: Meta privacy mail was found in Spam ({', '.join(spam)}): look there and "
            "mark it as not spam, so Meta's next mail reaches the inbox"
        )


def _trusted_ids(config: Config | StoreConfig, config_path: Path | None) -> tuple[str, ...]:
    """The config's trusted_authserv_ids. The facts status keeps between runs (*config* a
    watcher.cli.configcache.StoreConfig) do not hold them: the config is then read in full,
    only when a note needs them."""
    if not isinstance(config, StoreConfig):
        return config.trusted_authserv_ids
    from watcher.config import load_config  # imported here: pydantic, for this note only

    return load_config(config_path).trusted_authserv_ids


def _with_meta_accounts(
    rows: list[StatusRow], listed: tuple[MetaAccount, ...]
) -> tuple[list[StatusRow], list[tuple[str, str]]]:
    """*rows* plus a ``no_notice`` row for each of the config's ``meta_accounts`` that has no
    status yet, and the (platform, account) of rows that ``meta_accounts`` does not list
    (none when it lists nothing: then everything is as without the section)."""
    if not listed:
        return rows, []
    have = {(r.platform, r.account) for r in rows}
    missing = [
        StatusRow(m.platform, m.key[1], "no_notice", "", None, "", None)
        for m in listed
        if m.key not in have
    ]
    keys = {m.key for m in listed}
    unlisted = [(r.platform, r.account) for r in rows if (r.platform, r.account) not in keys]
    return rows + missing, unlisted


def _account_label(row: StatusRow, listed: tuple[MetaAccount, ...]) -> str:
    """The ACCOUNT column: the address, with the meta_accounts name and "business"."""
    for m in listed:
        if m.key == (row.platform, row.account):
            extra = [x for x in (m.name, "business" if m.business else None) if x]
            return f"{row.account} ({', '.join(extra)})" if extra else row.account
    return row.account


def _spam_folders(store: Reader) -> list[str]:
    """``account/folder`` of each spam folder (by name, watcher.sources.base.looks_like_junk)
    that holds a recorded genuine Meta privacy mail."""
    rows = store.query(
        "SELECT DISTINCT source, folder FROM messages "
        "WHERE uidvalidity != 0 AND suspicious = 0 AND kind NOT IN ('other', 'unrecognized')"
    )
    if not rows:
        return []
    # Imported only when there are folders to judge: status starts without the sources.
    from watcher.sources.base import looks_like_junk

    return sorted(f"{r[0]}/{r[1]}" for r in rows if looks_like_junk(str(r[1])))


def _minute(iso_time: str | None) -> str | None:
    # "2024-06-01T10:00:00+00:00" -> "2024-06-01 10:00 UTC" (the store keeps UTC).
    return f"{iso_time[:16].replace('T', ' ')} UTC" if iso_time else None


def _next_step(row: StatusRow, facts: dict[tuple[str, str], dict[str, str | None]]) -> str:
    """The NEXT STEP for *row* (wording: watcher.kinds.next_step)."""
    mine = facts.get((row.platform, row.account), {})
    return next_step(
        row.status,
        effective_date=mine.get("effective_date"),
        form_link=mine.get("form_link") or OBJECTION_FORMS.get(row.platform),
        code_at=_minute(row.since),
        newest_code_at=_minute(mine.get("newest_code_at")),
    )


@click.command(name="log")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
@verbose_option
def log_command(as_json: bool, config_path: Path | None, verbose: int) -> None:
    """Show every status transition, oldest mail first."""
    setup_logging(verbose, logging.WARNING)
    config = load_store_config(config_path)
    store = open_reader(config)
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
                        "why": _why(r.rule_id),
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
                _why(r.rule_id),
            )
            for r in rows
        ]
        print_table(table)


def _why(rule_id: str | None) -> str:
    """The RULE column: the rule's id, or for a transition caused by a linked account's
    acceptance (rule id ``accounts-center:<platform>:<address>``, watcher.store) which
    account's acceptance covered it."""
    if rule_id and rule_id.startswith(COVERED_BY):
        platform, _, account = rule_id[len(COVERED_BY) :].partition(":")
        return f"covered by the acceptance for {platform} {account} (same Accounts Center)"
    return rule_id or "-"
