"""``check`` (log in to every account and look at its folders) and ``auth`` (the one-time
OAuth2 consent of an account)."""

from __future__ import annotations

import logging
import os
import stat
import sys
import tempfile
import webbrowser
from pathlib import Path

import click

from watcher.cli.options import (
    NOTHING_TO_WATCH,
    config_option,
    load,
    load_pack,
    nothing_to_watch,
    plural,
    setup_logging,
    verbose_option,
)
from watcher.config import Account, Config, choose_config, oauth2_token_file
from watcher.config.files import os_reason
from watcher.errors import ConfigError, WatcherError
from watcher.sources import imap
from watcher.sources.imap.authserv import MIN_MAILS, MIN_SHARE, AuthservFinding, probe_authserv
from watcher.sources.mailfiles import kind_of
from watcher.sources.oauth2.flows import authorize

log = logging.getLogger(__name__)


@click.command()
@config_option
@verbose_option
def check(config_path: Path | None, verbose: int) -> None:
    """Validate config and rules, log in to each account, and check its folders."""
    setup_logging(verbose, logging.WARNING)
    config = load(config_path)
    if nothing_to_watch(config):
        # A config that checks out but reads no mail is not ready: say so, as a config error.
        raise ConfigError(NOTHING_TO_WATCH)
    problems: list[str] = []
    pack = load_pack(config)
    click.echo(f"ok: rules {config.rules_path}: {len(pack.rules)} rules")
    database_problem = _database_problem(config.database)
    if database_problem is None:
        click.echo(f"ok: database {config.database}")
    else:
        problems.append(database_problem)
        click.echo(f"FAIL: {database_problem}")
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
    for warning in _readable_by_others(choose_config(config_path).path, config):
        click.echo(f"warning: {warning}")
    proposals: list[str] = []
    for account in config.accounts:
        try:
            client = imap.connect(account)
        except WatcherError as exc:
            problems.append(str(exc))
            click.echo(f"FAIL: {exc}")
            continue
        try:
            listed = imap.list_folders_with_use(client)
            folders = [name for name, _uses in listed]
            # As run opens them: INBOX in any case, other names exactly (RFC 9051 §5.1).
            missing = [
                f for f in account.folders if not any(imap.same_folder(f, e) for e in folders)
            ]
            for folder in missing:
                msg = imap.missing_folder_sentence(account, folder, folders)
                problems.append(msg)
                click.echo(f"FAIL: {msg}")
            method = "OAuth2 (XOAUTH2)" if account.uses_oauth2 else "a password"
            shown = [f"{name} ({' '.join(uses)})" if uses else name for name, uses in listed]
            more = f", and {len(shown) - 20} more" if len(shown) > 20 else ""
            click.echo(
                f"ok: account {account.name}: logged in to {account.host} with {method}; "
                f"{plural(len(folders), 'folder')}: {', '.join(shown[:20])}{more}"
            )
            present = [f for f in account.folders if f not in missing]
            proposals.extend(_authserv_lines(client, account, present, config))
        finally:
            imap.logout(client)
    if proposals:
        click.echo(
            "proposal: trusted_authserv_ids: "
            + "["
            + ", ".join(dict.fromkeys(proposals))
            + "] (add it to the config, or run init with --trusted-authserv-id; README: "
            "Authenticity)"
        )
    for source in config.local:
        try:
            click.echo(f"ok: local source {source.name}: {kind_of(source.path)} {source.path}")
        except WatcherError as exc:
            problems.append(str(exc))
            click.echo(f"FAIL: {exc}")
    if problems:
        sys.exit(1)


def _database_problem(database: Path) -> str | None:
    """Why the database at *database* cannot be opened or created, as one sentence; None when
    it can (an existing writable file, or a folder this user may create it in). Leaves
    nothing behind: ``check`` only looks."""
    if database.exists():
        if not database.is_file():
            return f"database {database} is not a file"
        if not os.access(database, os.R_OK | os.W_OK):
            return f"database {database} cannot be written by this user"
        return None
    folder = database.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # run creates the missing folders below the nearest one
    if not folder.is_dir():
        return f"database {database} cannot be created: {folder} is not a folder"
    try:
        # Permission bits do not tell (root, read-only mounts, /proc): try, leave nothing.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"database {database} cannot be created in {folder}: {os_reason(exc)}"
    return None


def authserv_report(
    client: imap.Client, account: Account, folders: list[str]
) -> AuthservFinding | None:
    """What the top-most Authentication-Results authserv-ids of the newest mail in the
    non-Junk folders of *folders* say about the account's server (read-only); None when the
    server refuses (it is a hint, not a check)."""
    failures: tuple[type[BaseException], ...] = (*imap.CONNECTION_ERRORS, WatcherError)
    try:
        return probe_authserv(client, account, folders)
    except failures as exc:
        log.debug("authserv-id probe of %s failed: %s", account.name, exc)
        return None


def no_server_id(finding: AuthservFinding) -> str:
    """The sentence for an account where no id qualifies (``finding.proposed`` is None): what
    was seen, why it is not proposed, and what to do. No id is named as one to trust."""
    where = ", ".join(finding.sampled) or "no folder"
    if finding.best is None:
        seen = (
            f"the {finding.messages} newest mails of {where} carry no Authentication-Results header"
            if finding.messages
            else f"there is no mail to read in {where}"
        )
        if not finding.sampled and finding.skipped:
            junk = ", ".join(finding.skipped)
            seen = f"only Junk folders are watched ({junk}), and they are not read"
    elif finding.carried_by == finding.messages:  # all agree, but too few to tell
        seen = (
            f"only {plural(finding.messages, 'mail')} of {where} could be read, too few to "
            f"tell (at least {MIN_MAILS} are needed)"
        )
    else:
        seen = (
            f"{finding.best}, the most common id on the top-most Authentication-Results "
            f"header, is on only {finding.carried_by} of the {finding.messages} newest mails "
            f"of {where}; a server adds its header to every mail it delivers (at least "
            f"{MIN_SHARE:.0%} of at least {MIN_MAILS} mails are needed), so senders may have "
            "written it: do not trust it on this evidence"
        )
    return (
        f"no authserv-id that your server adds was found: {seen}. Find your server's id as "
        "README, 'Authenticity' says and set trusted_authserv_ids (a server that adds no "
        "Authentication-Results header cannot vouch for any mail)"
    )


def _authserv_lines(
    client: imap.Client, account: Account, folders: list[str], config: Config
) -> list[str]:
    """Print what the probe found for *account*; return the proposed id when it is not
    trusted yet (at most one: the id on top of nearly every sampled mail)."""
    finding = authserv_report(client, account, folders)
    if finding is None:
        return []
    trusted = {t.lower() for t in config.trusted_authserv_ids}
    for found in finding.counts:
        mark = "trusted" if found.authserv_id in trusted else "NOT in trusted_authserv_ids"
        # Information only: whether an id can be the server's is said below, account-wide.
        click.echo(
            f"info: account {account.name}: {found.folder}: {found.carried_by} of the "
            f"{found.messages} newest mails carry {found.authserv_id} on their top-most "
            f"Authentication-Results header ({mark})"
        )
    if finding.skipped:
        click.echo(
            f"info: account {account.name}: not read for the authserv-id: "
            f"{', '.join(finding.skipped)} (Junk: forged headers gather there)"
        )
    proposed = finding.proposed
    if proposed is None:
        click.echo(f"note: account {account.name}: {no_server_id(finding)}")
        return []
    share = f"{finding.carried_by} of the {finding.messages} newest mails"
    if proposed in trusted:
        click.echo(
            f"ok: account {account.name}: the trusted {proposed} is on the top-most "
            f"Authentication-Results header of {share}"
        )
        return []
    click.echo(
        f"hint: account {account.name}: {proposed} is on the top-most Authentication-Results "
        f"header of {share}: your server's id, NOT in trusted_authserv_ids"
    )
    return [proposed]


def _readable_by_others(config_file: Path | None, config: Config) -> list[str]:
    """One sentence per secret-bearing file that users other than its owner may read: the
    config (notification URLs hold tokens) and each password_file."""
    files: list[tuple[str, Path]] = [("config file", config_file)] if config_file else []
    files += [
        (f"account {a.name}: password_file", a.password_file)
        for a in config.accounts
        if a.password_file is not None
    ]
    out = []
    for what, path in files:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue  # a missing password file is reported when it is used
        if mode & 0o044:
            who = "everyone" if mode & 0o004 else "its group"
            out.append(f"{what} {path} is readable by {who} (mode {mode:04o}): chmod 600 {path}")
    return out


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
