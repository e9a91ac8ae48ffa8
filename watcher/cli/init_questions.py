"""``init``'s questions: what the flags and the provider preset do not give (server,
security, port, user name, where the secret comes from) is asked on the terminal; without an
answer on standard input the error names the flag that gives it instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from watcher.sources.providers import Provider


def ask(text: str, flag: str, **kwargs: Any) -> Any:
    """Prompt for a value; without an answer on stdin, say which flag gives it instead."""
    try:
        return click.prompt(text, **kwargs)
    except click.Abort:
        raise click.UsageError(f"{flag} is needed (no answer on standard input)") from None


def ask_server(
    opts: dict[str, Any], preset: Provider | None, address: str
) -> tuple[str, str, int, str | None, bool]:
    """The IMAP server settings from the flags (*opts*), else the *preset*, else asked:
    (host, security, port, username or None, own). *own* is True for a server without a
    preset and without ``--host`` (self-hosted or an unknown provider)."""
    host = opts["host"] or (preset.host if preset else ask("IMAP server", "--host"))
    # No preset and no --host: a self-hosted server or an unknown provider; ask what a preset
    # would have said (with --host, the flags and defaults are the answer).
    own = preset is None and not opts["host"]
    if opts["security"] or not own:
        security = opts["security"] or (preset.security if preset else "tls")
    else:
        security = ask(
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
        port = ask("IMAP port", "--port", default=default_port, type=click.IntRange(1, 65535))
    else:
        port = default_port

    username = opts["username"]
    if not username and own:
        username = ask("IMAP user name", "--username", default=address)
    return host, security, port, username, own


def ask_secret(values: dict[str, Any], preset: Provider | None) -> None:
    """Ask where the password (or OAuth2 client id) comes from and put it into *values*."""
    if preset is not None and preset.login == "oauth2":
        click.echo(f"{preset.name} needs OAuth2: register a client id (README: OAuth2).")
        values["oauth2_client_id"] = ask("OAuth2 client id", "--oauth2-client-id")
        return
    choices = ["command", "file", "env", "keyring"]
    if preset is not None and preset.oauth2:
        choices.append("oauth2")
    how = ask(
        "Where does the password come from",
        "--password-command (or --password-file, --password-env, --password-keyring)",
        type=click.Choice(choices),
        default="command",
    )
    if how == "command":
        values["password_command"] = ask(
            f"Command printing it (e.g. pass show mail/{values['address']})", "--password-command"
        )
    elif how == "file":
        path = ask("File holding it (first line)", "--password-file")
        values["password_file"] = str(Path(path).expanduser().resolve())
    elif how == "env":
        values["password_env"] = ask("Environment variable holding it", "--password-env")
    elif how == "keyring":
        values["password_keyring"] = ask(
            "Keyring service name", "--password-keyring", default="meta-watcher"
        )
    else:
        values["oauth2_client_id"] = ask("OAuth2 client id", "--oauth2-client-id")
