"""Where an account's OAuth2 tokens come from: provider endpoints, the stored grant (a 0600
file or the keyring), and refreshing the access token (RFC 6749 6)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from watcher.clock import utc_now
from watcher.config import Account, OAuth2Settings, oauth2_token_file
from watcher.errors import SecretError
from watcher.sources import secrets as secret_sources
from watcher.sources.oauth2.http import OAuthError, client_form, post_form, refused

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300.0
KEYRING_SERVICE = "meta-watcher-oauth2"


@dataclass(frozen=True)
class Endpoints:
    """Where and how to ask for tokens: a provider preset merged with the account's overrides.

    ``flow`` is the default consent flow; ``redirect_host`` the host name in the loopback
    redirect URI; ``auth_params`` extra authorization request parameters (Google needs
    ``access_type=offline`` and ``prompt=consent`` to issue a refresh token).
    """

    auth_url: str | None
    token_url: str
    device_url: str | None
    scopes: tuple[str, ...]
    flow: str
    redirect_host: str = "127.0.0.1"
    auth_params: tuple[tuple[str, str], ...] = ()


PRESETS: dict[str, Endpoints] = {
    # Google's device flow does not allow the Gmail scope, so consent goes through the browser.
    "google": Endpoints(
        auth_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL
        device_url="https://oauth2.googleapis.com/device/code",
        scopes=("https://mail.google.com/",),
        flow="redirect",
        redirect_host="127.0.0.1",
        auth_params=(("access_type", "offline"), ("prompt", "consent")),
    ),
    "microsoft": Endpoints(
        auth_url="https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize",
        token_url="https://login.microsoftonline.com/consumers/oauth2/v2.0/token",  # noqa: S106
        device_url="https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode",
        scopes=("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"),
        flow="device",
        redirect_host="localhost",
    ),
}


def endpoints_for(settings: OAuth2Settings) -> Endpoints:
    """Merge the provider preset with the URLs, scopes and flow set in *settings*."""
    base = PRESETS.get(settings.provider)
    token_url = settings.token_url or (base.token_url if base else None)
    assert token_url is not None  # config validation requires token_url for custom
    return Endpoints(
        auth_url=settings.auth_url or (base.auth_url if base else None),
        token_url=token_url,
        device_url=settings.device_url or (base.device_url if base else None),
        scopes=settings.scopes or (base.scopes if base else ()),
        flow=settings.flow or (base.flow if base else "redirect"),
        redirect_host=base.redirect_host if base else "127.0.0.1",
        auth_params=base.auth_params if base else (),
    )


@dataclass(frozen=True)
class Tokens:
    """What the token endpoint granted: ``expires_at`` aware UTC (None: unknown). The token
    values are left out of the repr so a traceback or a debug print cannot show them."""

    access_token: str | None = field(repr=False)
    expires_at: datetime | None
    refresh_token: str | None = field(repr=False)

    def to_json(self) -> str:
        """Serialise for the token store."""
        return json.dumps(
            {
                "access_token": self.access_token,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "refresh_token": self.refresh_token,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Tokens:
        """Parse what :meth:`to_json` wrote; raises ValueError when it is not that."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        expires = data.get("expires_at")
        return cls(
            access_token=data.get("access_token") or None,
            expires_at=datetime.fromisoformat(expires) if expires else None,
            refresh_token=data.get("refresh_token") or None,
        )

    def fresh(self, now: datetime, margin_seconds: float = REFRESH_MARGIN_SECONDS) -> bool:
        """True when the access token is known to stay valid for more than *margin_seconds*."""
        return (
            self.access_token is not None
            and self.expires_at is not None
            and self.expires_at - timedelta(seconds=margin_seconds) > now
        )


# ---------------------------------------------------------------------------- token stores


class TokenStore(Protocol):
    """Where an account's tokens live between runs."""

    def load(self) -> Tokens | None:
        """The stored tokens, or None when there are none yet."""

    def save(self, tokens: Tokens) -> None:
        """Replace the stored tokens."""

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold off other processes refreshing the same tokens."""


class FileTokenStore:
    """A JSON file, mode 0600, replaced atomically; ``<file>.lock`` serialises refreshes."""

    def __init__(self, path: Path, where: str) -> None:
        self.path = path
        self.where = where

    def load(self) -> Tokens | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretError(
                f"{self.where}: token file {self.path} cannot be read ({type(exc).__name__})"
            ) from None
        try:
            return Tokens.from_json(text)
        except (ValueError, TypeError):
            raise SecretError(
                f"{self.where}: token file {self.path} is damaged; run `meta-watcher auth` again"
            ) from None

    def save(self, tokens: Tokens) -> None:
        secret_sources.write_private(self.path, tokens.to_json())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(
                self.path.with_name(self.path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600
            )
        except OSError as exc:
            raise SecretError(
                f"{self.where}: token folder {self.path.parent} is not writable "
                f"({type(exc).__name__})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


class KeyringTokenStore:
    """The system keyring, service KEYRING_SERVICE, user = the account name."""

    def __init__(self, account_name: str, where: str) -> None:
        self.account_name = account_name
        self.where = where

    def load(self) -> Tokens | None:
        text = secret_sources.keyring_load(KEYRING_SERVICE, self.account_name, self.where)
        if text is None:
            return None
        try:
            return Tokens.from_json(text)
        except (ValueError, TypeError):
            raise SecretError(
                f"{self.where}: the keyring entry {KEYRING_SERVICE}/{self.account_name} is "
                "damaged; run `meta-watcher auth` again"
            ) from None

    def save(self, tokens: Tokens) -> None:
        secret_sources.keyring_store(
            KEYRING_SERVICE, self.account_name, tokens.to_json(), self.where
        )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        yield  # the keyring has no lock; a duplicate refresh is harmless


def store_for(account: Account) -> TokenStore:
    """The token store *account*'s ``oauth2.token_store`` names."""
    assert account.oauth2 is not None
    where = f"account {account.name}"
    if account.oauth2.token_store == "keyring":  # noqa: S105 - a storage kind
        return KeyringTokenStore(account.name, where)
    return FileTokenStore(oauth2_token_file(account), where)


def granted(data: dict[str, Any], previous_refresh: str | None, now: datetime) -> Tokens:
    """The Tokens of a token endpoint's answer *data* (RFC 6749 5.1) at *now*; keeps
    *previous_refresh* when the answer brings no new refresh token. Raises OAuthError."""
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthError("invalid_response", "no access_token in the answer")
    try:
        expires_in = float(data.get("expires_in", 3600))
    except (TypeError, ValueError):
        expires_in = 3600.0
    refresh = data.get("refresh_token")
    return Tokens(
        access_token=access,
        expires_at=now + timedelta(seconds=max(expires_in, 0.0)),
        # Google keeps the refresh token; Microsoft may send a new one (rotation).
        refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
    )


@dataclass
class TokenManager:
    """Hands out a valid access token for one account, refreshing it when needed (RFC 6749 6).

    ``clock`` returns aware UTC now; ``margin_seconds`` is how long before expiry a token is
    refreshed.
    """

    account_name: str
    settings: OAuth2Settings
    store: TokenStore
    clock: Callable[[], datetime] = utc_now
    margin_seconds: float = REFRESH_MARGIN_SECONDS

    @property
    def where(self) -> str:
        return f"account {self.account_name}"

    def access_token(self) -> str:
        """Return an access token valid for at least ``margin_seconds``.

        Raises SecretError when there is no stored grant or the provider refuses the refresh
        token, ServerError when the token endpoint cannot be reached.
        """
        with self.store.lock():
            tokens = self.store.load()
            if tokens is None or (tokens.refresh_token is None and tokens.access_token is None):
                raise SecretError(
                    f"{self.where} has no OAuth2 token yet: run `meta-watcher auth "
                    f"{self.account_name}`"
                )
            if tokens.fresh(self.clock(), self.margin_seconds):
                assert tokens.access_token is not None
                return tokens.access_token
            if tokens.refresh_token is None:
                raise SecretError(
                    f"{self.where}: the OAuth2 access token expired and there is no refresh "
                    f"token: run `meta-watcher auth {self.account_name}`"
                )
            new = self.refresh(tokens.refresh_token)
            self.store.save(new)
            assert new.access_token is not None
            return new.access_token

    def refresh(self, refresh_token: str) -> Tokens:
        """Trade *refresh_token* for a new access token (RFC 6749 6)."""
        endpoints = endpoints_for(self.settings)
        form = {
            **client_form(self.settings),
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        now = self.clock()
        try:
            data = post_form(endpoints.token_url, form, self.settings.timeout, self.where)
            tokens = granted(data, refresh_token, now)
        except OAuthError as exc:
            raise refused(self.where, self.account_name, exc, "token refresh") from None
        log.info("%s: OAuth2 access token refreshed", self.where)
        return tokens


def token_manager(account: Account) -> TokenManager:
    """The TokenManager of an account that has ``oauth2`` settings."""
    assert account.oauth2 is not None
    return TokenManager(account.name, account.oauth2, store_for(account))
