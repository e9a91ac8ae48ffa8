"""OAuth 2.0 for XOAUTH2 IMAP logins: consent (``meta-watcher auth``), storage, refresh.

Sources: RFC 6749 (OAuth 2.0: 4.1 authorization code grant, 6 refreshing an access token),
RFC 7636 (PKCE), RFC 8252 (native apps: loopback redirect 7.3), RFC 8628 (device authorization
grant), Google's "OAuth 2.0 for mobile & desktop apps" and Microsoft identity platform docs
(``consumers`` tenant for personal Outlook.com accounts; scope
``https://outlook.office.com/IMAP.AccessAsUser.All``).

The user brings their own client id (and, for Google desktop clients, the client secret, which
Google documents as not confidential for installed apps). The refresh token is kept in a 0600
file or the system keyring; the access token is refreshed when it expires within
REFRESH_MARGIN_SECONDS. HTTP goes only to the configured endpoints, with the standard library's
urllib. No token ever appears in a log line, an error message or a repr.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

from watcher import __version__
from watcher import secrets as secret_sources
from watcher.config import Account, OAuth2Settings, is_loopback, oauth2_token_file
from watcher.errors import SecretError, ServerError

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300.0
CONSENT_TIMEOUT_SECONDS = 600.0
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
KEYRING_SERVICE = "meta-watcher-oauth2"
MAX_RESPONSE_BYTES = 1_000_000


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


# ---------------------------------------------------------------------------- HTTP


class OAuthError(Exception):
    """An RFC 6749 5.2 error response: ``error`` code and optional ``description``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(error)
        self.error = error
        self.description = description


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urlsplit(url).hostname or ""
    if is_loopback(host):
        # A proxy from the environment must not see loopback traffic (tests, local helpers).
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def post_form(url: str, form: dict[str, str], timeout_seconds: float, where: str) -> dict[str, Any]:
    """POST *form* (application/x-www-form-urlencoded) to *url*; return the JSON object.

    Raises OAuthError for an RFC 6749 error response, ServerError when the endpoint cannot be
    reached or answers something that is not JSON. Never puts *form* into a message.
    """
    host = urlsplit(url).netloc
    request = urllib.request.Request(  # noqa: S310 - scheme checked by config (https/loopback)
        url,
        data=urlencode(form).encode("ascii"),
        headers={
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": f"meta-watcher/{__version__}",
        },
        method="POST",
    )
    status = 0
    try:
        with _opener(url).open(request, timeout=timeout_seconds) as response:
            status = response.status
            body = response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        status = exc.code
        body = exc.read(MAX_RESPONSE_BYTES)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerError(
            f"{where}: the OAuth2 endpoint {host} cannot be reached ({_reason(reason)})"
        ) from None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ServerError(f"{where}: the OAuth2 endpoint {host} answered HTTP {status}, not JSON")
    if status >= 400 or "error" in data:
        raise OAuthError(str(data.get("error", f"http_{status}")), _short(data))
    return data


def _reason(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(reason, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(reason, TimeoutError | socket.timeout):
        return "it did not answer in time"
    return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)[:80]


def _short(data: dict[str, Any]) -> str:
    text = str(data.get("error_description") or "").splitlines()
    return text[0][:160] if text else ""


def _tokens(data: dict[str, Any], previous_refresh: str | None, now: datetime) -> Tokens:
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


def _client_form(settings: OAuth2Settings) -> dict[str, str]:
    form = {"client_id": settings.client_id}
    if settings.client_secret:
        form["client_secret"] = settings.client_secret
    return form


def _refused(where: str, name: str, exc: OAuthError, during: str) -> SecretError:
    why = f"{exc.error}: {exc.description}" if exc.description else exc.error
    if exc.error == "invalid_grant":
        return SecretError(
            f"{where}: the provider refused the stored OAuth2 grant during {during} ({why}); "
            f"run `meta-watcher auth {name}` again"
        )
    if exc.error in ("invalid_client", "unauthorized_client"):
        return SecretError(
            f"{where}: the provider rejected oauth2.client_id/client_secret during {during} ({why})"
        )
    return SecretError(f"{where}: the OAuth2 {during} failed ({why})")


# ---------------------------------------------------------------------------- refresh


def utc_now() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


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
            **_client_form(self.settings),
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        now = self.clock()
        try:
            data = post_form(endpoints.token_url, form, self.settings.timeout, self.where)
            tokens = _tokens(data, refresh_token, now)
        except OAuthError as exc:
            raise _refused(self.where, self.account_name, exc, "token refresh") from None
        log.info("%s: OAuth2 access token refreshed", self.where)
        return tokens


def token_manager(account: Account) -> TokenManager:
    """The TokenManager of an account that has ``oauth2`` settings."""
    assert account.oauth2 is not None
    return TokenManager(account.name, account.oauth2, store_for(account))


# ---------------------------------------------------------------------------- consent flows


Say = Callable[[str], None]


def device_flow(
    account: Account,
    say: Say,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = utc_now,
) -> Tokens:
    """RFC 8628: show a code for the user to enter on the provider's page; poll for tokens.

    Polls every ``interval`` seconds (plus 5 after ``slow_down``) until the code expires.
    Raises SecretError when consent is denied or the code expires, ServerError when the
    endpoints cannot be reached.
    """
    assert account.oauth2 is not None
    settings, where = account.oauth2, f"account {account.name}"
    endpoints = endpoints_for(settings)
    if not endpoints.device_url:
        raise SecretError(
            f"{where}: oauth2.device_url is not set, so the device flow is not available"
        )
    try:
        start = post_form(
            endpoints.device_url,
            {**_client_form(settings), "scope": " ".join(endpoints.scopes)},
            settings.timeout,
            where,
        )
    except OAuthError as exc:
        raise _refused(where, account.name, exc, "device authorization") from None
    device_code = str(start.get("device_code", ""))
    user_code = str(start.get("user_code", ""))
    # Google says verification_url, RFC 8628 verification_uri.
    uri = str(start.get("verification_uri") or start.get("verification_url") or "")
    if not device_code or not user_code or not uri:
        raise ServerError(f"{where}: the device authorization answer lacks a code or a URL")
    interval = max(_number(start.get("interval"), 5.0), 1.0)
    expires_in = min(_number(start.get("expires_in"), 900.0), CONSENT_TIMEOUT_SECONDS)
    say(f"Open {uri} in a browser and enter the code {user_code} (valid {int(expires_in)} s).")
    deadline = clock() + timedelta(seconds=expires_in)
    form = {**_client_form(settings), "grant_type": DEVICE_GRANT, "device_code": device_code}
    while clock() < deadline:
        sleep(interval)
        try:
            data = post_form(endpoints.token_url, form, settings.timeout, where)
            return _tokens(data, None, clock())
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += 5
                continue
            if exc.error == "access_denied":
                raise SecretError(
                    f"{where}: the sign-in was declined on the provider's page"
                ) from None
            if exc.error == "expired_token":
                break
            raise _refused(where, account.name, exc, "device authorization") from None
    raise SecretError(f"{where}: the code expired before the sign-in was completed; run auth again")


def _number(value: object, default: float) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Redirect(HTTPServer):
    """One-shot loopback listener: keeps the query of the first request carrying ``state``."""

    timeout = 1.0
    query: dict[str, str] | None = None


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _Redirect

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the URL carries the authorization code: never log it

    def do_GET(self) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if "state" not in query:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.query = query
        ok = "code" in query
        body = (
            "<!doctype html><meta charset=utf-8><title>meta-watcher</title><p>"
            + (
                "meta-watcher received the authorisation. You can close this tab."
                if ok
                else "The authorisation was not granted. See the terminal for details."
            )
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def redirect_flow(
    account: Account,
    say: Say,
    open_browser: Callable[[str], object] | None = None,
    paste: Callable[[], str] | None = None,
    timeout_seconds: float = CONSENT_TIMEOUT_SECONDS,
    clock: Callable[[], datetime] = utc_now,
) -> Tokens:
    """RFC 6749 4.1 with PKCE (RFC 7636) and a loopback redirect (RFC 8252 7.3).

    Prints the authorization URL (and opens it with *open_browser* when given), then waits up
    to *timeout_seconds* for the browser to come back to ``http://127.0.0.1:PORT/``. With
    *paste*, nothing listens: the user pastes the address the browser ended on (for headless
    machines and containers). Raises SecretError when consent is refused, the state does not
    match or the time runs out.
    """
    assert account.oauth2 is not None
    settings, where = account.oauth2, f"account {account.name}"
    endpoints = endpoints_for(settings)
    if not endpoints.auth_url:
        raise SecretError(
            f"{where}: oauth2.auth_url is not set, so the browser flow is not available"
        )
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(24)
    server: _Redirect | None = None
    if paste is None:
        try:
            server = _Redirect(("127.0.0.1", settings.redirect_port), _RedirectHandler)
        except OSError as exc:
            raise SecretError(
                f"{where}: cannot listen on 127.0.0.1:{settings.redirect_port} for the redirect "
                f"({type(exc).__name__}); set oauth2.redirect_port to a free port"
            ) from None
        port = int(server.server_address[1])
    else:
        port = settings.redirect_port or _free_port()
    redirect_uri = f"http://{endpoints.redirect_host}:{port}/"
    params = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(endpoints.scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "login_hint": account.username,
        **dict(endpoints.auth_params),
    }
    url = endpoints.auth_url + ("&" if "?" in endpoints.auth_url else "?") + urlencode(params)
    say(f"Open this address in a browser and sign in as {account.username}:\n{url}")
    try:
        if paste is not None:
            say(
                "Then copy the address the browser ends on (it may show an error page) "
                "and paste it here."
            )
            query = {k: v[0] for k, v in parse_qs(urlsplit(paste().strip()).query).items()}
        else:
            assert server is not None
            if open_browser is not None:
                open_browser(url)
            deadline = time.monotonic() + timeout_seconds
            while server.query is None and time.monotonic() < deadline:
                server.handle_request()
            if server.query is None:
                raise SecretError(
                    f"{where}: no answer from the browser within {int(timeout_seconds)} s"
                )
            query = server.query
    finally:
        if server is not None:
            server.server_close()
    if query.get("state") != state:
        raise SecretError(f"{where}: the answer does not belong to this sign-in (state mismatch)")
    if "code" not in query:
        raise SecretError(
            f"{where}: the provider did not grant access ({query.get('error', 'no code')})"
        )
    form = {
        **_client_form(settings),
        "grant_type": "authorization_code",
        "code": query["code"],
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    try:
        data = post_form(endpoints.token_url, form, settings.timeout, where)
        tokens = _tokens(data, None, clock())
    except OAuthError as exc:
        raise _refused(where, account.name, exc, "code exchange") from None
    return tokens


def authorize(
    account: Account,
    say: Say,
    flow: str | None = None,
    open_browser: Callable[[str], object] | None = None,
    paste: Callable[[], str] | None = None,
) -> Tokens:
    """Run the consent flow (*flow*, else the account's or provider's) and store the grant.

    Returns the tokens; raises SecretError or ServerError as the flows do, and SecretError when
    the provider granted no refresh token (the watcher could not keep running unattended).
    """
    if account.oauth2 is None:
        raise SecretError(
            f"account {account.name} has no oauth2 settings (oauth2_token_command accounts get "
            "their tokens from that command)"
        )
    chosen = flow or endpoints_for(account.oauth2).flow
    if chosen == "device":
        tokens = device_flow(account, say)
    else:
        tokens = redirect_flow(account, say, open_browser=open_browser, paste=paste)
    if tokens.refresh_token is None:
        raise SecretError(
            f"account {account.name}: the provider granted no refresh token (Microsoft needs the "
            "offline_access scope; Google needs access_type=offline)"
        )
    store_for(account).save(tokens)
    return tokens
