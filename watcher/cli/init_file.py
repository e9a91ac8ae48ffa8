"""``init``'s config file: the YAML text of a new account (comments saying where its secret
comes from), the commented header of a new file, and writing it: validated as a config
first, then written 0600 as a new file or edited in place keeping the user's comments and
order (watcher.config.yamledit). Never writes a password."""

from __future__ import annotations

import json
import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from watcher.config import load_config, yamledit
from watcher.errors import ConfigError
from watcher.sources.secrets import write_private


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
    lines = [f"  # {line}" for line in _comment_lines(comment)]
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


def _comment_lines(comment: str) -> list[str]:
    return textwrap.wrap(comment, 94)


def write_config(path: Path, text: str) -> None:
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


def save_account(
    path: Path, values: dict[str, Any], comment: str, trusted: list[str], force: bool
) -> None:
    """Add the account *values* (with *comment* above it) to the config at *path*, and the
    authserv-ids *trusted*; a new file (or *force*) starts from the commented header. Says
    on stdout what was written. Raises ConfigError (naming the key) when the result would
    not load."""
    block = account_block(values, comment)
    if path.exists() and not force:
        # Round-trip edit: comments, order and other keys (a notify: block after accounts:)
        # stay as the user wrote them.
        text = yamledit.add_account(
            path.read_text(encoding="utf-8"),
            account_block(values, ""),
            "\n".join(_comment_lines(comment)),
            f"config file {path}",
        )
        text, added = yamledit.add_trusted_ids(text, trusted, f"config file {path}")
        write_config(path, text)
        click.echo(f"Added account {values['name']} to {path}.")
        if added:
            click.echo(f"Added {', '.join(added)} to trusted_authserv_ids.")
    else:
        header = _HEADER.format(
            date=datetime.now(UTC).date().isoformat(), trusted=", ".join(_q(t) for t in trusted)
        )
        write_config(path, header + block)
        click.echo(f"Wrote {path} (readable only by you) with account {values['name']}.")
