"""The secret an account logs in with: its password from the configured source
(watcher.sources.secrets), or an OAuth2 access token (watcher.sources.oauth2).

Every function raises SecretError with one sentence naming the account and the source that
failed, never the secret.
"""

from __future__ import annotations

from watcher.config import Account, MqttSettings
from watcher.errors import SecretError
from watcher.sources.secrets import from_command, from_env, from_file, from_keyring


def password(account: Account) -> str:
    """Resolve and return *account*'s password from its configured source.

    Raises SecretError naming the source (never the secret) when it cannot be read, or
    when the account uses OAuth2 and has no password.
    """
    where = f"account {account.name}"
    if account.password_file is not None:
        return from_file(account.password_file, where)
    if account.password_env is not None:
        return from_env(account.password_env, where)
    if account.password_keyring is not None:
        return from_keyring(account.password_keyring, account.username, where)
    if account.password_command is not None:
        return from_command(account.password_command, where)
    raise SecretError(f"{where} logs in with OAuth2 and has no password")


def access_token(account: Account) -> str:
    """Return a valid OAuth2 access token for *account*'s XOAUTH2 login (RFC 6750 bearer).

    From ``oauth2_token_command`` (run each time), else from the stored token of
    ``meta-watcher auth``, refreshed when it expires within a few minutes. Raises
    SecretError (no token yet, refresh refused) or ServerError (token endpoint unreachable).
    """
    where = f"account {account.name}"
    if account.oauth2_token_command is not None:
        return from_command(account.oauth2_token_command, where, "oauth2_token_command")
    if account.oauth2 is None:
        raise SecretError(f"{where} has no oauth2 or oauth2_token_command configured")
    # Imported here: the token store and its HTTP client (urllib.request, http.client) are
    # only for OAuth2 accounts, not on every start of a password account's run.
    from watcher.sources.oauth2.tokens import token_manager

    return token_manager(account).access_token()


def login_secret(account: Account) -> str:
    """The secret *account* logs in with: an access token for XOAUTH2, else the password."""
    return access_token(account) if account.uses_oauth2 else password(account)


def mqtt_password(settings: MqttSettings) -> str | None:
    """The MQTT broker password from ``password_file``, ``password_env`` or
    ``password_command`` (the sources accounts use); None when none is set. Raises
    SecretError naming the source, never the secret."""
    where = "mqtt"
    if settings.password_file is not None:
        return from_file(settings.password_file, where)
    if settings.password_env is not None:
        return from_env(settings.password_env, where)
    if settings.password_command is not None:
        return from_command(settings.password_command, where)
    return None
