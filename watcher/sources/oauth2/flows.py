"""The consent flows of ``meta-watcher auth``: the device flow (RFC 8628) and the browser
flow with PKCE and a loopback redirect (RFC 6749 4.1, RFC 7636, RFC 8252)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from watcher.clock import utc_now
from watcher.config import Account
from watcher.errors import SecretError, ServerError
from watcher.sources.oauth2.http import OAuthError, client_form, post_form, refused
from watcher.sources.oauth2.tokens import Tokens, endpoints_for, granted, store_for

CONSENT_TIMEOUT_SECONDS = 600.0
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

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
            {**client_form(settings), "scope": " ".join(endpoints.scopes)},
            settings.timeout,
            where,
        )
    except OAuthError as exc:
        raise refused(where, account.name, exc, "device authorization") from None
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
    form = {**client_form(settings), "grant_type": DEVICE_GRANT, "device_code": device_code}
    while clock() < deadline:
        sleep(interval)
        try:
            data = post_form(endpoints.token_url, form, settings.timeout, where)
            return granted(data, None, clock())
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
            raise refused(where, account.name, exc, "device authorization") from None
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
        **client_form(settings),
        "grant_type": "authorization_code",
        "code": query["code"],
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    try:
        data = post_form(endpoints.token_url, form, settings.timeout, where)
        tokens = granted(data, None, clock())
    except OAuthError as exc:
        raise refused(where, account.name, exc, "code exchange") from None
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
