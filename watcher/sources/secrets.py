"""Reading secrets from a command, a file, an environment variable or the keyring, and writing
private (0600) files.

The only module that runs secret commands or imports the ``keyring`` library (an optional
extra: ``pip install '.[keyring]'``). Every function raises SecretError with one sentence that
names the account and the source that failed (``password_command``, a file path, a variable
name, a keyring entry) and never the secret or the command's output.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from pathlib import Path

from watcher.errors import SecretError

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_SECONDS = 60.0
# After this long a command is probably waiting for the user (a gpg passphrase in pinentry, a
# password manager to be unlocked): say so instead of staying silent until the timeout.
WAIT_NOTICE_SECONDS = 3.0
KEYRING_HINT = "install the keyring extra: python3 -m pip install '.[keyring]'"


def from_command(command: str, where: str, key: str = "password_command") -> str:
    """Run *command* with the shell (like mbsync's PassCmd) and return its first output line.

    *where* names the account (``account gmx``), *key* the config key, for the error message.
    Raises SecretError when it cannot run, times out after COMMAND_TIMEOUT_SECONDS, exits
    non-zero or prints nothing. Its stderr is passed through to ours (pass, gpg and op ask
    for a passphrase there); its stdout is never logged.
    """
    notice = threading.Timer(
        WAIT_NOTICE_SECONDS,
        lambda: log.warning(
            "%s: waiting for %s to print the password (is it asking for a passphrase or "
            "an unlock?); giving up after %d s",
            where,
            key,
            int(COMMAND_TIMEOUT_SECONDS),
        ),
    )
    notice.daemon = True
    try:
        proc = subprocess.Popen(  # noqa: S602 - the user's own command, like mbsync PassCmd
            command, shell=True, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
    except OSError as exc:
        raise SecretError(f"{where}: {key} could not run ({type(exc).__name__})") from None
    notice.start()
    try:
        out, _err = proc.communicate(timeout=COMMAND_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        # A child of the shell (sh -c 'a | b') may still hold the pipe open: stop reading
        # instead of waiting for it to finish.
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait()
        raise SecretError(
            f"{where}: {key} did not finish within {int(COMMAND_TIMEOUT_SECONDS)} s "
            f"(check the command in {key}: run it by hand)"
        ) from None
    finally:
        notice.cancel()
    lines = out.decode("utf-8", "replace").splitlines()
    if proc.returncode != 0 or not lines or not lines[0].strip():
        raise SecretError(
            f"{where}: {key} exited with status {proc.returncode} without printing a secret"
        )
    return lines[0].strip()


def from_file(path: Path, where: str, key: str = "password_file") -> str:
    """Return the first line of *path* (a Docker secret, a systemd credential, a 0600 file).

    Under systemd, a credential of the same name in ``$CREDENTIALS_DIRECTORY`` is read first,
    so ``LoadCredential=NAME:PATH`` works while PATH itself stays unreadable to the service.
    Raises SecretError naming the file when it is missing, unreadable or empty.
    """
    candidates = [path]
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / path.name).is_file():
        candidates.insert(0, Path(cred_dir) / path.name)
    for candidate in candidates:
        try:
            text = candidate.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(
                f"{where}: {key} {candidate} cannot be read ({type(exc).__name__})"
            ) from None
        lines = text.splitlines()
        if not lines or not lines[0].strip():
            raise SecretError(f"{where}: {key} {candidate} is empty")
        return lines[0].strip()
    raise SecretError(f"{where}: {key} {path} does not exist")


def from_env(name: str, where: str, key: str = "password_env") -> str:
    """Return the value of environment variable *name*; SecretError when unset or empty."""
    value = os.environ.get(name, "")
    if not value.strip():
        raise SecretError(f"{where}: {key}: environment variable {name} is not set")
    return value.strip()


def _keyring() -> object:
    try:
        import keyring  # optional extra
    except ImportError:
        raise SecretError(f"the keyring library is not installed: {KEYRING_HINT}") from None
    return keyring


def from_keyring(service: str, username: str, where: str, key: str = "password_keyring") -> str:
    """Return the secret stored in the system keyring under (*service*, *username*).

    Store one with ``keyring set SERVICE USERNAME``. Raises SecretError when the keyring
    library or a usable backend is missing, or nothing is stored there.
    """
    keyring = _keyring()
    try:
        value = keyring.get_password(service, username)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - backends raise anything from D-Bus to OS errors
        raise SecretError(
            f"{where}: {key}: the system keyring cannot be read ({type(exc).__name__})"
        ) from None
    if not value:
        raise SecretError(
            f"{where}: {key}: nothing stored in the keyring for service {service!r} and user "
            f"{username!r} (store it with: keyring set {service} {username})"
        )
    return str(value)


def keyring_store(service: str, username: str, secret: str, where: str) -> None:
    """Store *secret* in the system keyring under (*service*, *username*); SecretError if not."""
    keyring = _keyring()
    try:
        keyring.set_password(service, username, secret)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - backends raise anything from D-Bus to OS errors
        raise SecretError(
            f"{where}: the system keyring cannot store the token ({type(exc).__name__})"
        ) from None


def keyring_load(service: str, username: str, where: str) -> str | None:
    """Return what the keyring holds under (*service*, *username*), or None."""
    keyring = _keyring()
    try:
        value = keyring.get_password(service, username)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - backends raise anything from D-Bus to OS errors
        raise SecretError(
            f"{where}: the system keyring cannot be read ({type(exc).__name__})"
        ) from None
    return None if value is None else str(value)


def write_private(path: Path, text: str) -> None:
    """Write *text* to *path* atomically with mode 0600 (folder created 0700 if missing).

    Raises SecretError naming the file when it cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise SecretError(f"{path} cannot be written ({type(exc).__name__})") from None
