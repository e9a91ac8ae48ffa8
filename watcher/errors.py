"""The exceptions meta-watcher raises; the CLI turns each into one sentence and an exit code.

Every message is a plain sentence that says what went wrong and where (a config key, a file,
a host); none ever contains a password, token or verification code.
"""

from __future__ import annotations

# sysexits.h codes the CLI uses (also documented in README).
EX_USAGE = 2
EX_UNAVAILABLE = 75  # EX_TEMPFAIL: server unreachable, try again later
EX_CONFIG = 78


class WatcherError(Exception):
    """Base class: an expected failure with a user-facing one-sentence message."""

    exit_code: int = 1


class ConfigError(WatcherError):
    """Raised when the config file is missing, unreadable or invalid (names the key)."""

    exit_code = EX_CONFIG


class RulesError(ConfigError):
    """Raised when a rules file does not validate (names the rule id and key)."""


class SecretError(ConfigError):
    """Raised when a password source (file, env, command) cannot produce a secret."""


class ServerError(WatcherError):
    """Raised when an IMAP server cannot be reached, fails TLS, or breaks the protocol."""

    exit_code = EX_UNAVAILABLE


class LoginError(ServerError):
    """Raised when the IMAP server rejects the credentials (not retried in a tight loop)."""


class FolderError(ServerError):
    """Raised when a configured folder does not exist on the server: a configuration error
    (exit 78, like ``check``), though the daemon keeps retrying it like a server fault."""

    exit_code = EX_CONFIG


class StoreError(WatcherError):
    """Raised when the SQLite log cannot be opened, migrated or written."""


class LockedError(StoreError):
    """Raised when another meta-watcher process already holds the database lock."""


class MessageGoneError(WatcherError):
    """Raised when a source no longer holds a message asked for again (moved, deleted)."""
