"""``check`` (log in to every account and look at its folders) and ``auth`` (the one-time
OAuth2 consent of an account)."""

from __future__ import annotations

import logging
import os
import sys
import webbrowser
from pathlib import Path

import click

from watcher.cli.options import config_option, load, load_pack, setup_logging, verbose_option
from watcher.config import Account, oauth2_token_file
from watcher.errors import ConfigError, WatcherError
from watcher.sources import imap
from watcher.sources.mailfiles import kind_of
from watcher.sources.oauth2.flows import authorize


@click.command()
@config_option
@verbose_option
def check(config_path: Path | None, verbose: int) -> None:
    """Validate config and rules, log in to each account, and check its folders."""
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    problems: list[str] = []
    pack = load_pack(config)
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
        try:
            click.echo(f"ok: local source {source.name}: {kind_of(source.path)} {source.path}")
        except WatcherError as exc:
            problems.append(str(exc))
            click.echo(f"FAIL: {exc}")
    if problems:
        sys.exit(1)


def _has_gui() -> bool:
    # Without a display, webbrowser would start a text browser (lynx, w3m) in this terminal.
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def _find_account(accounts: tuple[Account, ...], name: str) -> Account:
    for account in accounts:
        if account.name == name or account.username == name:
            return account
    names = ", ".join(a.name for a in accounts) or "none"
    raise ConfigError(f"no account called {name!r} in the config (accounts: {names})")


@click.command("auth")
@click.argument("account_name")
@click.option("--flow", type=click.Choice(["redirect", "device"]), help="Default: the provider's.")
@click.option("--no-browser", is_flag=True, help="Print the address instead of opening a browser.")
@click.option(
    "--paste",
    is_flag=True,
    help="Paste the address the browser ends on instead of listening (containers, SSH).",
)
@click.option("--no-check", is_flag=True, help="Do not log in to the IMAP server afterwards.")
@config_option
@verbose_option
def auth_command(
    account_name: str,
    flow: str | None,
    no_browser: bool,
    paste: bool,
    no_check: bool,
    config_path: Path | None,
    verbose: int,
) -> None:
    """Sign in to ACCOUNT's provider once (OAuth2) and keep the refresh token.

    Google: a browser page, then a redirect to this machine (or --paste). Microsoft: a code to
    enter at the address shown (device flow). The token goes to a 0600 file or the keyring.
    """
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    account = _find_account(config.accounts, account_name)
    if account.oauth2 is not None:
        authorize(
            account,
            say=click.echo,
            flow=flow,
            open_browser=None if no_browser or paste or not _has_gui() else webbrowser.open,
            paste=(lambda: str(click.prompt("Address", prompt_suffix=": "))) if paste else None,
        )
        where = (
            "the system keyring"
            if account.oauth2.token_store == "keyring"  # noqa: S105 - a storage kind
            else str(oauth2_token_file(account))
        )
        click.echo(f"ok: account {account.name}: OAuth2 grant stored in {where}")
    elif account.oauth2_token_command is not None:
        click.echo(f"account {account.name} gets its tokens from oauth2_token_command")
    else:
        raise ConfigError(
            f"account {account.name} logs in with a password; add an oauth2 block to it first "
            "(README: OAuth2)"
        )
    if no_check:
        return
    client = imap.connect(account)
    imap.logout(client)
    click.echo(f"ok: account {account.name}: logged in to {account.host} with OAuth2 (XOAUTH2)")
