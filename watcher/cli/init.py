"""``init``: add a mailbox to the config (creating it 0600) from a provider preset, asking
for what the flags do not give. Never writes a password: the config says where it comes from."""

from __future__ import annotations

import json
import logging
import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from watcher.cli.options import config_option, setup_logging
from watcher.config import choose_config, default_config_path, load_config
from watcher.errors import ConfigError
from watcher.sources import providers
from watcher.sources.secrets import write_private

log = logging.getLogger(__name__)

SECRET_FLAGS = (
    "password_command",
    "password_file",
    "password_env",
    "password_keyring",
    "oauth2_client_id",
    "oauth2_token_command",
)


def _ask(text: str, flag: str, **kwargs: Any) -> Any:
    """Prompt for a value; without an answer on stdin, say which flag gives it instead."""
    try:
        return click.prompt(text, **kwargs)
    except click.Abort:
        raise click.UsageError(f"{flag} is needed (no answer on standard input)") from None


def _q(value: object) -> str:
    # A JSON string is a valid YAML double-quoted scalar: safe for any character.
    return json.dumps(str(value), ensure_ascii=False)


_HEADER = """\
# meta-watcher configuration, written by `meta-watcher init` on {date}.
# Every key is explained in the README ("Configuration"). Passwords and tokens are never
# stored in this file: each account says where its secret comes from.

# Mail servers whose Authentication-Results headers you trust (their authserv-id, RFC 8601).
# Only mail verified by one of these can change an objection status. Find yours in the raw
# source of any mail you received: the first word after "Authentication-Results:" in the
# top-most such header (Gmail: mx.google.com).
trusted_authserv_ids: [{trusted}]

# How often to look for new mail.
poll_interval: 5m

# The log of Meta's mails and of your objection status (default: the user data folder).
# database: /path/to/log.sqlite3

# One entry per mailbox (one per alias, if you use one address per Meta account).
# `meta-watcher init` adds new accounts at the end of this list.
accounts:
"""


def _secret_lines(values: dict[str, Any], name: str, address: str) -> list[str]:
    if values.get("password_command"):
        return [
            "    # The password is the first line this command prints (like mbsync's PassCmd),",
            f"    # e.g. pass show mail/{address}  |  secret-tool lookup imap {address}  |",
            "    # op read op://Private/Mail/password",
            f"    password_command: {_q(values['password_command'])}",
        ]
    if values.get("password_file"):
        return [
            "    # The password is the first line of this file (chmod 600). Docker secrets and",
            "    # systemd LoadCredential= files work too.",
            f"    password_file: {_q(values['password_file'])}",
        ]
    if values.get("password_env"):
        return [
            "    # The password is in this environment variable.",
            f"    password_env: {_q(values['password_env'])}",
        ]
    if values.get("password_keyring"):
        service = values["password_keyring"]
        return [
            "    # The password is in the system keyring; store it with:",
            f"    #   keyring set {service} {values['username']}",
            f"    password_keyring: {_q(service)}",
        ]
    if values.get("oauth2_token_command"):
        return [
            "    # OAuth2 (XOAUTH2): this command prints a valid access token.",
            f"    oauth2_token_command: {_q(values['oauth2_token_command'])}",
        ]
    lines = [
        f"    # OAuth2 (XOAUTH2) with your own client id: run `meta-watcher auth {name}` once.",
        "    # The refresh token is kept in a 0600 file in the user data folder; add",
        "    # `token_store: keyring` below to keep it in the system keyring instead.",
        "    oauth2:",
        f"      provider: {values['oauth2_provider']}",
        f"      client_id: {_q(values['oauth2_client_id'])}",
    ]
    if values.get("oauth2_client_secret"):
        lines.append(f"      client_secret: {_q(values['oauth2_client_secret'])}")
    return lines


def account_block(values: dict[str, Any], comment: str) -> str:
    """The YAML text of one ``accounts:`` entry (indented for the list), with comments."""
    name = values["name"]
    lines = [f"  # {line}" for line in textwrap.wrap(comment, 94)]
    lines += [
        f"  - name: {_q(name)}",
        f"    host: {_q(values['host'])}",
        f"    port: {int(values['port'])}",
        f"    security: {values['security']}",
    ]
    if values.get("ca_file"):
        lines.append(f"    ca_file: {_q(values['ca_file'])}")
    lines.append(f"    username: {_q(values['username'])}")
    lines += _secret_lines(values, name, values["address"])
    folders = ", ".join(_q(f) for f in values["folders"])
    lines.append(f"    folders: [{folders}]")
    return "\n".join(lines) + "\n"


def _top_level_keys(text: str) -> list[str]:
    keys = []
    for line in text.splitlines():
        if line[:1].isalpha() and ":" in line:
            keys.append(line)
    return keys


def _append_account(text: str, block: str, path: Path) -> str:
    """Add *block* at the end of the ``accounts:`` list that ends the file *text*."""
    keys = _top_level_keys(text)
    last = keys[-1].split("#", 1)[0].strip() if keys else ""
    if last == "accounts: []":
        head, _sep, tail = text.rpartition("accounts: []")
        return head + "accounts:" + tail.rstrip("\n") + "\n" + block
    if last != "accounts:":
        raise ConfigError(
            f"config file {path} does not end with an `accounts:` list, so init cannot add the "
            "account; add this entry under accounts: by hand, or use --force to start a new "
            "file:\n" + block
        )
    return text.rstrip("\n") + "\n" + block


def _write_config(path: Path, text: str) -> None:
    """Validate *text* as a config (relative paths as in *path*'s folder), then write it 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    trial = path.with_name(f".{path.name}.init-{os.getpid()}")
    try:
        write_private(trial, text)
        try:
            load_config(trial)  # raises ConfigError naming the key
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(trial), str(path))) from None
        os.replace(trial, path)
    finally:
        trial.unlink(missing_ok=True)


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
@click.option("--oauth2-provider", type=click.Choice(["google", "microsoft"]))
@click.option("--oauth2-token-command", help="Command printing an OAuth2 access token.")
@click.option("--folder", "folders", multiple=True, help="Folder to watch (repeatable; INBOX).")
@click.option("--trusted-authserv-id", "trusted", multiple=True, help="Trusted authserv-id.")
@click.option("--force", is_flag=True, help="Start a new config file even if one exists.")
@config_option
def init_command(config_path: Path | None, force: bool, **opts: Any) -> None:
    """Add a mailbox to the config (creating it, mode 0600) from the provider's preset.

    Asks for what the flags do not give. Never writes a password: the config says where the
    password or token comes from.
    """
    setup_logging(0, logging.WARNING)
    address = opts["address"] or _ask("E-mail address to watch", "--address")
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
    host = opts["host"] or (preset.host if preset else _ask("IMAP server", "--host"))
    security = opts["security"] or (preset.security if preset else "tls")
    default_port = (
        preset.port if preset and not opts["host"] else (993 if security == "tls" else 143)
    )
    if opts["port"]:
        port = opts["port"]
    elif preset is None and not opts["host"]:
        port = _ask("IMAP port", "--port", default=default_port, type=click.IntRange(1, 65535))
    else:
        port = default_port

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
        "ca_file": str(opts["ca_file"].expanduser().resolve()) if opts["ca_file"] else None,
        "username": opts["username"] or address,
        "folders": opts["folders"] or ("INBOX",),
        **{f: opts.get(f) for f in SECRET_FLAGS},
        "oauth2_client_secret": opts["oauth2_client_secret"],
        "oauth2_provider": opts["oauth2_provider"] or (preset.oauth2 if preset else None),
    }
    if values["password_file"]:
        values["password_file"] = str(Path(values["password_file"]).expanduser().resolve())
    if not given:
        _ask_secret(values, preset)
    if values.get("oauth2_client_id") and not values["oauth2_provider"]:
        raise click.UsageError(
            f"--oauth2-provider is needed for {domain}: only google and microsoft have presets "
            "(for another provider write an oauth2 block with provider: custom, see README)"
        )

    choice = choose_config(config_path)
    path = choice.path or default_config_path()
    comment = f"{preset.name}: {preset.setup}." if preset else f"{domain}: own settings."
    block = account_block(values, comment)
    trusted = list(
        dict.fromkeys(
            opts["trusted"] or ([preset.authserv_id] if preset and preset.authserv_id else [])
        )
    )
    if path.exists() and not force:
        text = _append_account(path.read_text(encoding="utf-8"), block, path)
        _write_config(path, text)
        click.echo(f"Added account {values['name']} to {path}.")
        if trusted:
            click.echo(
                f"Check that trusted_authserv_ids in {path} lists {', '.join(trusted)} "
                "(init does not change existing settings)."
            )
    else:
        header = _HEADER.format(
            date=datetime.now(UTC).date().isoformat(), trusted=", ".join(_q(t) for t in trusted)
        )
        _write_config(path, header + block)
        click.echo(f"Wrote {path} (readable only by you) with account {values['name']}.")
        if not trusted:
            click.echo(
                "Set trusted_authserv_ids in it to your provider's authserv-id, or no mail can "
                "be verified (see the comment there)."
            )
    click.echo("Next:")
    step = 1
    if values.get("oauth2_client_id"):
        click.echo(f"  {step}. meta-watcher auth {values['name']}   (sign in once)")
        step += 1
    if values.get("password_keyring"):
        click.echo(f"  {step}. keyring set {values['password_keyring']} {values['username']}")
        step += 1
    click.echo(f"  {step}. meta-watcher check   (logs in and lists the folders)")
    click.echo(f"  {step + 1}. meta-watcher run")


def _ask_secret(values: dict[str, Any], preset: Any) -> None:
    if preset is not None and preset.login == "oauth2":
        click.echo(f"{preset.name} needs OAuth2: register a client id (README: OAuth2).")
        values["oauth2_client_id"] = _ask("OAuth2 client id", "--oauth2-client-id")
        return
    choices = ["command", "file", "env", "keyring"]
    if preset is not None and preset.oauth2:
        choices.append("oauth2")
    how = _ask(
        "Where does the password come from",
        "--password-command (or --password-file, --password-env, --password-keyring)",
        type=click.Choice(choices),
        default="command",
    )
    if how == "command":
        values["password_command"] = _ask(
            f"Command printing it (e.g. pass show mail/{values['address']})", "--password-command"
        )
    elif how == "file":
        path = _ask("File holding it (first line)", "--password-file")
        values["password_file"] = str(Path(path).expanduser().resolve())
    elif how == "env":
        values["password_env"] = _ask("Environment variable holding it", "--password-env")
    elif how == "keyring":
        values["password_keyring"] = _ask(
            "Keyring service name", "--password-keyring", default="meta-watcher"
        )
    else:
        values["oauth2_client_id"] = _ask("OAuth2 client id", "--oauth2-client-id")
