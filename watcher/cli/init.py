"""``init``: add a mailbox to the config (creating it 0600) from a provider preset, asking
for what the flags do not give. Never writes a password: the config says where it comes from.
This module is the command (its flags, the order of the steps and the next steps it prints);
the questions are in init_questions.py, the look at the server in init_server.py and the
file in init_file.py."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from watcher.cli import fail
from watcher.cli.init_file import save_account
from watcher.cli.init_questions import OAUTH2_README, ask, ask_secret, ask_server, check_address
from watcher.cli.init_server import check_certificate, try_login
from watcher.cli.options import config_option, setup_logging
from watcher.config import choose_config, default_config_path, yamledit
from watcher.config.files import os_reason
from watcher.errors import ConfigError
from watcher.sources import providers

log = logging.getLogger(__name__)

SECRET_FLAGS = (
    "password_command",
    "password_file",
    "password_env",
    "password_keyring",
    "oauth2_client_id",
    "oauth2_token_command",
)


@click.command("init")
@click.option("--address", help="The e-mail address to watch (your Facebook/Instagram login).")
@click.option("--name", help="The account's name in the config (default: the address).")
@click.option("--host", help="IMAP server (default: from the provider preset).")
@click.option("--port", type=click.IntRange(1, 65535), help="IMAP port (default: 993 or 143).")
@click.option("--security", type=click.Choice(["tls", "starttls", "none"]), help="Default: tls.")
@click.option(
    "--ca-file", type=click.Path(path_type=Path), help="CA file for a self-signed server."
)
@click.option("--username", help="IMAP user name (default: the address).")
@click.option("--password-command", help="Command printing the password (pass, secret-tool, op).")
@click.option("--password-file", type=click.Path(path_type=Path), help="File with the password.")
@click.option("--password-env", help="Environment variable holding the password.")
@click.option("--password-keyring", help="Keyring service holding the password.")
@click.option("--oauth2-client-id", help="Your OAuth2 client id (Gmail, Outlook.com).")
@click.option("--oauth2-client-secret", help="The client secret, if your client has one.")
@click.option(
    "--oauth2-provider",
    type=click.Choice(["google", "microsoft"]),
    help="Whose OAuth2 endpoints (default: from the preset).",
)
@click.option("--oauth2-token-command", help="Command printing an OAuth2 access token.")
@click.option("--folder", "folders", multiple=True, help="Folder to watch (repeatable; INBOX).")
@click.option("--trusted-authserv-id", "trusted", multiple=True, help="Trusted authserv-id.")
@click.option("--force", is_flag=True, help="Start a new config file even if one exists.")
@click.option(
    "--login/--no-login",
    default=None,
    help="Log in once to test the settings and propose the server's authserv-id "
    "(default: when run at a terminal).",
)
@config_option
def init_command(config_path: Path | None, force: bool, login: bool | None, **opts: Any) -> None:
    """Add a mailbox to the config (creating it, mode 0600) from the provider's preset.

    Asks for what the flags do not give. Never writes a password: the config says where the
    password or token comes from. Ctrl-C says what was written and exits 130.
    """
    setup_logging(0, logging.WARNING)
    wrote: list[str] = []  # what is on disk so far, for the sentence after Ctrl-C
    try:
        _init(config_path, force, login, opts, wrote)
    except KeyboardInterrupt:
        fail(f"init interrupted: {'; '.join(wrote) or 'nothing was written'}", 130)


def _address(given: str | None) -> str:
    if given is None:
        return str(ask("E-mail address to watch", "--address", value_proc=check_address))
    try:
        return check_address(given)
    except click.BadParameter as exc:
        raise click.UsageError(exc.message) from None


def _refuse_taken_name(path: Path, name: str) -> None:
    """Refuse *name* when an account or local source of the config at *path* has it: before
    any question, and in words that do not make the file look broken."""
    if not path.exists():
        return
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {os_reason(exc)}") from None
    if name in yamledit.names(text, f"config file {path}"):
        raise click.UsageError(
            f"an account named {name} is already in {path}; choose another with --name"
        )


def _init(
    config_path: Path | None,
    force: bool,
    login: bool | None,
    opts: dict[str, Any],
    wrote: list[str],
) -> None:
    address = _address(opts["address"])
    choice = choose_config(config_path)
    path = choice.path or default_config_path()
    name = opts["name"] or address
    if not force:
        _refuse_taken_name(path, name)
    preset = providers.for_address(address)
    domain = providers.domain_of(address)
    if preset is not None:
        click.echo(f"{preset.name}: IMAP {preset.host}:{preset.port} ({preset.security}).")
        click.echo(f"Note: {preset.setup}.")
    elif not opts["host"]:
        click.echo(
            f"meta-watcher has no preset for {domain}: enter your provider's or your own "
            "server's IMAP settings."
        )
    given = [f for f in SECRET_FLAGS if opts.get(f)]
    if len(given) > 1:
        flags = ", ".join("--" + f.replace("_", "-") for f in given)
        raise click.UsageError(f"give only one of {flags}")
    passwords = [f for f in given if f.startswith("password")]
    if preset is not None and preset.login == "oauth2" and passwords and not opts["host"]:
        # The preset's server takes no password at all: the config could never log in.
        raise click.UsageError(
            f"{preset.name} accepts no password for IMAP: give --oauth2-client-id with your "
            f"own client id instead of --{passwords[0].replace('_', '-')} ({OAUTH2_README})"
        )
    host, security, port, username, own = ask_server(opts, preset, address)
    ca_file = str(opts["ca_file"].expanduser().resolve()) if opts["ca_file"] else None
    if own and ca_file is None and security != "none":
        ca_file = check_certificate(host, port, security, choice.path, wrote)

    values: dict[str, Any] = {
        "address": address,
        "name": name,
        "host": host,
        "port": port,
        "security": security,
        "ca_file": ca_file,
        "username": username or address,
        "folders": opts["folders"] or ("INBOX",),
        **{f: opts.get(f) for f in SECRET_FLAGS},
        "oauth2_client_secret": opts["oauth2_client_secret"],
        "oauth2_provider": opts["oauth2_provider"] or (preset.oauth2 if preset else None),
    }
    if values["password_file"]:
        values["password_file"] = str(Path(values["password_file"]).expanduser().resolve())
    if not given:
        ask_secret(values, preset)
    if values.get("oauth2_client_id") and not values["oauth2_provider"]:
        raise click.UsageError(
            f"--oauth2-provider is needed for {domain}: only google and microsoft have presets "
            "(for another provider write an oauth2 block with provider: custom, see README)"
        )

    comment = f"{preset.name}: {preset.setup}." if preset else f"{domain}: own settings."
    trusted = list(
        dict.fromkeys(
            opts["trusted"] or ([preset.authserv_id] if preset and preset.authserv_id else [])
        )
    )
    save_account(path, values, comment, trusted, force)
    wrote.append(f"{path} was written with account {name}")
    needs_setup = values.get("oauth2_client_id") or values.get("password_keyring")
    # The next steps name the file unless it is the one every command finds by itself.
    flag = _config_flag(path)
    if (sys.stdin.isatty() if login is None else login) and not needs_setup:
        try_login(path, name, flag)
    # Said last: the test login may just have set an id.
    where = f"config file {path}"
    if not yamledit.trusted_ids(path.read_text(encoding="utf-8"), where):
        click.echo(
            f"Set trusted_authserv_ids in {path} to your provider's authserv-id, or no mail "
            "can be verified (see the comment there)."
        )
    click.echo("Next:")
    step = 1
    if values.get("oauth2_client_id"):
        click.echo(f"  {step}. meta-watcher{flag} auth {name}   (sign in once)")
        step += 1
    if values.get("password_keyring"):
        click.echo(f"  {step}. keyring set {values['password_keyring']} {values['username']}")
        step += 1
    click.echo(f"  {step}. meta-watcher{flag} check   (logs in and lists the folders)")
    click.echo(f"  {step + 1}. meta-watcher{flag} run")


def _config_flag(path: Path) -> str:
    """`` --config PATH`` (shell-quoted) when *path* is not the default config path, else ""."""
    if path.expanduser().absolute() == default_config_path().absolute():
        return ""
    return f" --config {shlex.quote(str(path))}"
