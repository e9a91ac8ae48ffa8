"""Commands around the daemon: ``health``, ``notify-test``, ``wait-code``."""

from __future__ import annotations

import logging
import re
import sys
from datetime import timedelta
from pathlib import Path

import click

from watcher.cli.options import (
    NOTHING_TO_WATCH,
    config_option,
    load,
    load_pack,
    nothing_to_watch,
    open_store,
    setup_logging,
    verbose_option,
)
from watcher.clock import utc_now
from watcher.config import Config, parse_duration
from watcher.daemon.health import health_report
from watcher.daemon.wait_code import require_accounts, wait_for_code
from watcher.errors import ConfigError
from watcher.notify.apprise import send_test_notifications


@click.command(name="health")
@config_option
@verbose_option
def health(config_path: Path | None, verbose: int) -> None:
    """Exit 0 when every watcher thread of the running daemon reported recently and is well.

    One line per IMAP folder and local source; for a container HEALTHCHECK or monitoring.
    Exit 1 otherwise (daemon stopped or stuck, a connection down, a login rejected).
    """

    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    store = open_store(config, must_exist=True)
    if store is None:
        click.echo(f"FAIL: database {config.database} does not exist: the daemon never ran")
        sys.exit(1)
    try:
        results = health_report(config, store.heartbeats(), utc_now())
    finally:
        store.close()
    if not results:
        click.echo("FAIL: the config names no account and no local source to watch")
        sys.exit(1)
    for r in results:
        click.echo(f"{'ok' if r.ok else 'FAIL'}: {r.worker}: {r.sentence}")
    sys.exit(0 if all(r.ok for r in results) else 1)


@click.command(name="notify-test")
@config_option
@verbose_option
def notify_test(config_path: Path | None, verbose: int) -> None:
    """Send one test notification to every target in ``notify``; say which failed and why."""
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    if not config.notify:
        click.echo(
            "meta-watcher: no notification targets: add Apprise URLs under notify: in the "
            "config (see README: Notifications)",
            err=True,
        )
        sys.exit(1)
    failed = 0
    for target, error in send_test_notifications(config.notify):
        if error is None:
            click.echo(f"ok: {target.label} ({target.scheme}): sent")
        else:
            failed += 1
            click.echo(f"FAIL: {target.label} ({target.scheme}): {error}")
    sys.exit(1 if failed else 0)


_ZERO = re.compile(r"\s*0*\.?0*\s*[smhd]?\s*", re.IGNORECASE)


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """An option's duration in seconds; click names the option in the error ("Invalid value
    for '--since': ..."). Zero ("0s": from now) only where the option allows it. The text as
    typed stays in ``ctx.meta`` for messages."""
    ctx.meta[f"typed_{param.name}"] = value
    if param.name == "since" and value and _ZERO.fullmatch(value) and any(c == "0" for c in value):
        return 0.0
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _warn_unknown_address(config: Config, address: str) -> None:
    """Say so when *address* is neither a config account nor an account recorded mail named,
    and list the known ones: most often a typo. It may still be right (a new alias), so the
    wait goes on."""
    names = {a.name.lower() for a in config.accounts} | {
        a.username.lower() for a in config.accounts
    }
    store = open_store(config, must_exist=True)
    recorded: list[str] = []
    if store is not None:
        try:
            recorded = store.known_accounts()
        finally:
            store.close()
    if address.lower() in names | {r.lower() for r in recorded}:
        return
    known = list(dict.fromkeys([*recorded, *(a.name for a in config.accounts)]))
    click.echo(
        f"meta-watcher: {address} is not a config account and no recorded mail names it "
        f"(known: {', '.join(known) or 'none'}); waiting for it anyway",
        err=True,
    )


@click.command(name="wait-code")
@click.option(
    "--account",
    "address",
    metavar="ADDR",
    help="The Meta account's e-mail address (or a config account name); default: any.",
)
@click.option(
    "--timeout",
    default="15m",
    show_default=True,
    callback=_duration,
    help="Give up after this long (30s, 15m...).",
)
@click.option(
    "--since",
    default="10m",
    show_default=True,
    callback=_duration,
    help="Also accept a code that arrived this long before the command started (0s: only "
    "a code that arrives from now on).",
)
@config_option
@verbose_option
def wait_code(
    address: str | None,
    timeout: float,
    since: float,
    config_path: Path | None,
    verbose: int,
) -> None:
    """Wait for Meta's verification code and print it (exit 0), or exit 1 on timeout.

    For filling in Meta's objection form: run it, ask Meta for the code, type what it prints.
    Watches the IMAP folders itself (read-only), so it works with or without the daemon.
    """
    timeout_seconds, since_seconds = timeout, since
    typed = click.get_current_context().meta.get("typed_timeout", f"{timeout:g}s")
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    if nothing_to_watch(config):
        # Before "waiting up to ...": no code can arrive, so waiting would only end in timeout.
        raise ConfigError(NOTHING_TO_WATCH)
    require_accounts(config)  # before "waiting up to ...", like the check above
    pack = load_pack(config)
    if address:
        _warn_unknown_address(config, address)
    who = address or "any account"
    click.echo(f"waiting up to {typed} for a verification code for {who}...", err=True)
    watched: list[str] = []
    found = wait_for_code(config, pack, address, timeout_seconds, since_seconds, watched)
    if found is None:
        click.echo(
            f"meta-watcher: no verification code for {who} arrived within {typed} "
            f"(watched: {', '.join(watched) or 'no folder'}). A code is valid for about an "
            "hour: ask Meta for a new one and run wait-code again.",
            err=True,
        )
        sys.exit(1)
    when = found.arrived_at.strftime("%H:%M:%S UTC") if found.arrived_at else "unknown time"
    if found.dated and found.arrived_at and abs(found.arrived_at - found.dated) > timedelta(days=1):
        # Arrived is when the folder got it (INTERNALDATE): a mail moved or restored there
        # now can hold an old code, which its own Date shows.
        when += f" (the mail itself is dated {found.dated:%Y-%m-%d}: maybe an old code)"
    click.echo(
        f"code for {found.platform or 'Meta'} account {found.account or '(not named)'} from "
        f"{found.mailbox}, arrived {when}"
        + ("" if found.verified else "; NOT VERIFIED (no trusted Authentication-Results)")
        + (
            "; it was in your Spam folder: mark it as not spam so Meta's answer reaches the inbox"
            if found.in_spam
            else ""
        ),
        err=True,
    )
    click.echo(found.code)
