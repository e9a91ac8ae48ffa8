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

from watcher.cli.init_file import save_account
from watcher.cli.init_questions import ask, ask_secret, ask_server
from watcher.cli.init_server import check_certificate, try_login
from watcher.cli.options import config_option, setup_logging
from watcher.config import choose_config, default_config_path
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
    password or token comes from.
    """
    setup_logging(0, logging.WARNING)
    address = opts["address"] or ask("E-mail address to watch", "--address")
    address = str(address).strip()
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise click.UsageError(f"{address!r} is not an e-mail address")
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
    host, security, port, username, own = ask_server(opts, preset, address)
    ca_file = str(opts["ca_file"].expanduser().resolve()) if opts["ca_file"] else None
    if own and ca_file is None and security != "none":
        ca_file = check_certificate(host, port, security, choose_config(config_path).path)

    given = [f for f in SECRET_FLAGS if opts.get(f)]
    if len(given) > 1:
        flags = ", ".join("--" + f.replace("_", "-") for f in given)
        raise click.UsageError(f"give only one of {flags}")
    values: dict[str, Any] = {
        "address": address,
        "name": opts["name"] or address,
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

    choice = choose_config(config_path)
    path = choice.path or default_config_path()
    comment = f"{preset.name}: {preset.setup}." if preset else f"{domain}: own settings."
    trusted = list(
        dict.fromkeys(
            opts["trusted"] or ([preset.authserv_id] if preset and preset.authserv_id else [])
        )
    )
    save_account(path, values, comment, trusted, force)
    needs_setup = values.get("oauth2_client_id") or values.get("password_keyring")
    # The next steps name the file unless it is the one every command finds by itself.
    flag = _config_flag(path)
    if (sys.stdin.isatty() if login is None else login) and not needs_setup:
        try_login(path, values["name"], flag)
    click.echo("Next:")
    step = 1
    if values.get("oauth2_client_id"):
        click.echo(f"  {step}. meta-watcher{flag} auth {values['name']}   (sign in once)")
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
