"""``init``: add a mailbox to the config (creating it 0600) from a provider preset, asking
for what the flags do not give. Never writes a password: the config says where it comes from."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from watcher.cli import fail
from watcher.cli.options import config_option, setup_logging
from watcher.config import choose_config, default_config_path, load_config, yamledit
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
    # No preset and no --host: a self-hosted server or an unknown provider; ask what a preset
    # would have said (with --host, the flags and defaults are the answer).
    own = preset is None and not opts["host"]
    if opts["security"] or not own:
        security = opts["security"] or (preset.security if preset else "tls")
    else:
        security = _ask(
            "Security (tls: port 993; starttls: port 143)",
            "--security",
            type=click.Choice(["tls", "starttls"]),
            default="tls",
        )
    default_port = (
        preset.port if preset and not opts["host"] else (993 if security == "tls" else 143)
    )
    if opts["port"]:
        port = opts["port"]
    elif preset is None and not opts["host"]:
        port = _ask("IMAP port", "--port", default=default_port, type=click.IntRange(1, 65535))
    else:
        port = default_port

    username = opts["username"]
    if not username and own:
        username = _ask("IMAP user name", "--username", default=address)
    ca_file = str(opts["ca_file"].expanduser().resolve()) if opts["ca_file"] else None
    if own and ca_file is None and security != "none":
        ca_file = _check_certificate(host, port, security, choose_config(config_path).path)

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
        # Round-trip edit: comments, order and other keys (a notify: block after accounts:)
        # stay as the user wrote them.
        text = yamledit.add_account(
            path.read_text(encoding="utf-8"),
            account_block(values, ""),
            "\n".join(_comment_lines(comment)),
            f"config file {path}",
        )
        text, added = yamledit.add_trusted_ids(text, trusted, f"config file {path}")
        _write_config(path, text)
        click.echo(f"Added account {values['name']} to {path}.")
        if added:
            click.echo(f"Added {', '.join(added)} to trusted_authserv_ids.")
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
    needs_setup = values.get("oauth2_client_id") or values.get("password_keyring")
    # The next steps name the file unless it is the one every command finds by itself.
    flag = _config_flag(path)
    if (sys.stdin.isatty() if login is None else login) and not needs_setup:
        _test_login(path, values["name"], flag)
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


def _check_certificate(host: str, port: int, security: str, config: Path | None) -> str | None:
    """Look at *host*'s TLS certificate; when the system does not trust it, show its SHA-256
    fingerprint and offer to pin it (its PEM written next to the config, used as ca_file) or
    to name a CA file. Returns the ca_file to write, or None."""
    from watcher.sources.imap import certs  # imported here: only this path needs it

    try:
        cert = certs.probe(host, port, security, timeout=10.0)
    except OSError as exc:
        click.echo(
            f"Could not check the TLS certificate of {host}:{port} ({exc.__class__.__name__}: "
            f"{exc}); meta-watcher check will say if it needs a ca_file."
        )
        return None
    if cert.trusted:
        click.echo(f"TLS certificate of {host}: trusted.")
        return None
    click.echo(
        f"The TLS certificate of {host}:{port} is not trusted ({cert.problem}).\n"
        f"  SHA-256 fingerprint: {cert.sha256}\n"
        "Compare it with your server's (openssl x509 -in CERT -noout -fingerprint -sha256) "
        "before you trust it."
    )
    folder = (config or default_config_path()).parent
    pinned = folder / f"{host.replace(':', '_')}.pem"
    try:
        agreed = click.confirm(f"Pin this certificate (write it to {pinned})?", default=False)
    except click.Abort:  # no answer on standard input
        agreed = False
    if agreed:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        certs.pin(cert, pinned)
        click.echo(f"Wrote {pinned}: ca_file points to it.")
        return str(pinned.resolve())
    answer = _ask("CA file that signed it (empty: none)", "--ca-file", default="")
    return str(Path(answer).expanduser().resolve()) if str(answer).strip() else None


def _test_login(path: Path, name: str, flag: str) -> None:
    """Log in to the new account once (read-only); propose the authserv-id that stamps its
    recent mail (watcher.sources.imap.authserv) and add it to trusted_authserv_ids when the
    user agrees. A failure leaves the config as written and exits with the error's exit
    code (LoginError and ServerError: unavailable; ConfigError: 78) after one sentence on
    stderr; *flag* is
    the ``--config`` option the next command needs, or ""."""
    # Imported here: init without a login needs no IMAP.
    from watcher.cli.accounts import authserv_report
    from watcher.errors import WatcherError
    from watcher.sources import imap

    config = load_config(path)
    account = next(a for a in config.accounts if a.name == name)
    try:
        client = imap.connect(account)
    except WatcherError as exc:
        # A failed test login is no success: the exit code says so to a script, and no
        # "Next:" steps follow as if all were well.
        fail(
            f"the test login failed: {exc}. The config {path} was written; fix it there, "
            f"then run meta-watcher{flag} check",
            exc.exit_code,
        )
    try:
        click.echo(f"Test login to {account.host} as {account.username}: ok.")
        found = authserv_report(client, account, list(account.folders))
    finally:
        imap.logout(client)
    trusted = {t.lower() for t in config.trusted_authserv_ids}
    for item in found:
        share = f"{item.carried_by} of the {item.messages} newest mails in {item.folder}"
        if item.authserv_id in trusted:
            click.echo(f"{item.authserv_id} ({share}) is already trusted.")
            continue
        click.echo(
            f"Your server seems to be {item.authserv_id}: it added the top-most "
            f"Authentication-Results header to {share}. Trusting it lets meta-watcher verify "
            "Meta's mail (DKIM/DMARC as that server checked it)."
        )
        try:
            agreed = click.confirm(f"Add {item.authserv_id} to trusted_authserv_ids?", default=True)
        except click.Abort:  # no answer on standard input
            agreed = False
        if not agreed:
            click.echo(f"Not added; --trusted-authserv-id {item.authserv_id} adds it later.")
        else:
            text, added = yamledit.add_trusted_ids(
                path.read_text(encoding="utf-8"), [item.authserv_id], f"config file {path}"
            )
            _write_config(path, text)
            trusted.add(item.authserv_id)
            if added:
                click.echo(f"Added {item.authserv_id} to trusted_authserv_ids.")
    if not found:
        click.echo("No mail with an Authentication-Results header to learn the server's id from.")


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
