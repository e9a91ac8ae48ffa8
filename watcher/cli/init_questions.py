"""``init``'s questions: what the flags and the provider preset do not give (server,
security, port, user name, where the secret comes from) is asked on the terminal; without an
answer on standard input the error names the flag that gives it instead.

Each question reads one line. At a terminal a wrong or empty answer is asked again; from a
pipe or file (no one to ask again) it is an error naming the flag, after the question was
shown once. Ctrl-C is not "no answer": KeyboardInterrupt goes up to the command, which says
what was written."""

from __future__ import annotations

import email.utils
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from watcher.sources.providers import Provider

# The README section a user registers an OAuth2 client with.
OAUTH2_README = "README: 'OAuth2: Gmail and Outlook.com'"


def _at_terminal() -> bool:
    return sys.stdin.isatty()


def _read(prompt: str) -> str | None:
    """One line typed after *prompt* (stripped), None at the end of standard input."""
    click.echo(prompt, nl=False)
    try:
        # click's hook for reading a line: input(), or the test runner's stand-in.
        line = click.termui.visible_prompt_func("")
    except EOFError:
        click.echo()  # end the question's line before the error
        return None
    except KeyboardInterrupt:
        click.echo()
        raise
    return line.strip()


def ask(
    text: str,
    flag: str,
    *,
    default: Any = None,
    type: Any = None,  # a click type or a Python type, as for click.prompt
    value_proc: Callable[[str], Any] | None = None,
    see: str = "",
) -> Any:
    """Ask *text* and return the answer converted by *value_proc* or *type* (a click type,
    as for click.prompt); an empty answer is *default* when there is one.

    Raises click.UsageError naming *flag* (the flag that gives the value instead) when standard
    input ends, or when the answer is empty or wrong and standard input is not a terminal (at a
    terminal the question is asked again, after one line saying what was wrong); *see* (a
    README section) ends that error. KeyboardInterrupt (Ctrl-C) propagates."""
    convert = value_proc or click.types.convert_type(type, default)
    choices = ""
    if isinstance(type, click.Choice):
        choices = f" ({', '.join(map(str, type.choices))})"
    shown = f" [{default}]" if default not in (None, "") else ""
    prompt = f"{text}{choices}{shown}: "
    needed = f"{flag} is needed (no answer on standard input{'; ' + see if see else ''})"
    while True:
        answer = _read(prompt)
        if answer is None:
            raise click.UsageError(needed)
        if not answer:
            if default is not None:
                answer = str(default)
            elif _at_terminal():
                continue
            else:
                click.echo()  # a piped answer is not echoed: end the question's line
                raise click.UsageError(needed)
        try:
            return convert(answer)
        except click.BadParameter as exc:
            if not _at_terminal():
                click.echo()
                raise click.UsageError(
                    f"{exc.message.rstrip('.')}; or give {flag}{' (' + see + ')' if see else ''}"
                ) from None
            click.echo(f"Error: {exc.message}", err=True)


def confirm(text: str, default: bool) -> bool | None:
    """Ask a yes/no question; None when standard input ends without an answer. At a terminal
    anything but y/yes/n/no (or Enter: *default*) is asked again; from a pipe it is a
    click.UsageError. KeyboardInterrupt (Ctrl-C) propagates."""
    prompt = f"{text} {'[Y/n]' if default else '[y/N]'}: "
    while True:
        answer = _read(prompt)
        if answer is None:
            return None
        word = answer.lower()
        if not word:
            return default
        if word in ("y", "yes"):
            return True
        if word in ("n", "no"):
            return False
        if not _at_terminal():
            raise click.UsageError(f"{answer!r} is not y or n (the answer to {text!r})")
        click.echo("Error: answer y or n", err=True)


def check_address(text: str) -> str:
    """*text* (stripped) when it is one e-mail address: one @, a non-empty local part and a
    domain of dot-separated non-empty labels (or ``localhost``), nothing RFC 5322 would read
    as a display name or a second address. Raises click.BadParameter in one sentence."""
    address = str(text).strip()
    local, at, domain = address.rpartition("@")
    labels = domain.split(".")
    ok = (
        at == "@"
        and local
        and "@" not in local
        and not any(c.isspace() or ord(c) < 32 or c in '<>()[],;:"\\' for c in address)
        and (domain.lower() == "localhost" or (len(labels) > 1 and all(labels)))
        and email.utils.parseaddr(address)[1] == address
    )
    if not ok:
        raise click.BadParameter(
            f"{address!r} is not an e-mail address: it needs one @ with a name before it and "
            "a domain like example.org after it"
        )
    return address


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
        click.echo(
            f"{preset.name} needs OAuth2: register a client id ({OAUTH2_README}) and give it "
            "here or with --oauth2-client-id."
        )
        values["oauth2_client_id"] = ask(
            "OAuth2 client id", "--oauth2-client-id", see=OAUTH2_README
        )
        return
    choices = ["command", "file", "env", "keyring"]
    flags = "--password-command (or --password-file, --password-env, --password-keyring)"
    see = ""
    if preset is not None and preset.oauth2:
        choices.append("oauth2")
        flags = flags[:-1] + "; for OAuth2 --oauth2-client-id)"
        see = OAUTH2_README
    how = ask(
        "Where does the password come from",
        flags,
        type=click.Choice(choices),
        default="command",
        see=see,
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
        values["oauth2_client_id"] = ask(
            "OAuth2 client id", "--oauth2-client-id", see=OAUTH2_README
        )
