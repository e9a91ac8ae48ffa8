"""A local OAuth 2.0 provider for tests: token, device-code, authorize and introspection endpoints.

It stands in for Google's and Microsoft's endpoints on 127.0.0.1: meta-watcher talks to it over
real HTTP, and Dovecot's oauth2 passdb validates the access tokens it issues through its
introspection endpoint (RFC 7662), so an XOAUTH2 login only works with a token this provider
issued and still considers valid.

Endpoints (all on ``base_url``):
  GET  /authorize   RFC 6749 4.1.1 + PKCE (RFC 7636): redirects to redirect_uri with a code
  POST /token       grants: authorization_code, refresh_token, device_code (RFC 8628 3.4)
  POST /device      RFC 8628 3.1 device authorization
  POST /introspect  RFC 7662 token introspection (used by Dovecot)
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from dovecot import DovecotServer

HOST = "127.0.0.1"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class _Device:
    client_id: str
    scope: str
    user_code: str
    username: str | None = None  # set when the user approved
    denied: bool = False
    polls: int = 0


@dataclass
class OAuthProvider:
    """The provider's state; start with :meth:`start`, stop with :meth:`stop` (or ``with``).

    ``clients`` maps client_id -> client_secret (None for a public client). ``login_as`` is the
    user who "signs in" at /authorize. ``access_ttl_seconds`` is the lifetime of new access
    tokens. ``requests`` records (path, form) of every request, for assertions; ``rotate_refresh``
    makes /token issue a new refresh token on refresh (as Microsoft does).
    """

    clients: dict[str, str | None] = field(default_factory=lambda: {"test-client": None})
    login_as: str | None = None
    access_ttl_seconds: int = 3600
    rotate_refresh: bool = False
    device_interval_seconds: int = 1
    auto_approve_device: str | None = None  # username that approves on the first poll
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)
    _devices: dict[str, _Device] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> OAuthProvider:
        provider = self

        class Handler(_Handler):
            owner = provider

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._server.timeout = 5
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> OAuthProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "provider not started"
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def introspection_url(self) -> str:
        return self.base_url + "/introspect"

    def endpoints(self) -> dict[str, str]:
        """The URLs for an account's ``oauth2`` settings."""
        return {
            "auth_url": self.base_url + "/authorize",
            "token_url": self.base_url + "/token",
            "device_url": self.base_url + "/device",
        }

    # -- test controls ------------------------------------------------------------

    def issue(self, username: str, ttl_seconds: int | None = None) -> tuple[str, str]:
        """Issue (access_token, refresh_token) for *username* directly, as after a consent."""
        with self._lock:
            return self._issue(username, ttl_seconds, None)

    def revoke_all(self, username: str) -> None:
        """Invalidate every access and refresh token of *username*."""
        with self._lock:
            for token, (user, _exp) in list(self.access_tokens.items()):
                if user == username:
                    del self.access_tokens[token]
            for token, user in list(self.refresh_tokens.items()):
                if user == username:
                    del self.refresh_tokens[token]

    def approve_device(self, user_code: str, username: str) -> None:
        with self._lock:
            for dev in self._devices.values():
                if dev.user_code == user_code:
                    dev.username = username

    def grants(self, grant_type: str) -> int:
        """How many /token requests with this grant_type were made."""
        return sum(
            1
            for path, form in self.requests
            if path == "/token" and form.get("grant_type") == grant_type
        )

    # -- internals -------------------------------------------------------------------

    def _issue(self, username: str, ttl: int | None, refresh: str | None) -> tuple[str, str]:
        access = "at-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = (username, time.time() + (ttl or self.access_ttl_seconds))
        if refresh is None or self.rotate_refresh:
            if refresh is not None:
                self.refresh_tokens.pop(refresh, None)
            refresh = "rt-" + secrets.token_urlsafe(24)
            self.refresh_tokens[refresh] = username
        return access, refresh

    def _token_response(self, username: str, refresh: str | None) -> dict[str, object]:
        access, new_refresh = self._issue(username, None, refresh)
        body: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl_seconds,
            "scope": "mail",
        }
        if refresh is None or new_refresh != refresh:
            body["refresh_token"] = new_refresh
        return body

    def _check_client(self, form: dict[str, str]) -> bool:
        client_id = form.get("client_id", "")
        if client_id not in self.clients:
            return False
        secret = self.clients[client_id]
        return secret is None or form.get("client_secret") == secret

    def handle_token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self._lock:
            if not self._check_client(form):
                return 401, {"error": "invalid_client"}
            grant = form.get("grant_type")
            if grant == "refresh_token":
                user = self.refresh_tokens.get(form.get("refresh_token", ""))
                if user is None:
                    return 400, {
                        "error": "invalid_grant",
                        "error_description": "Token has been expired or revoked.",
                    }
                return 200, self._token_response(user, form["refresh_token"])
            if grant == "authorization_code":
                code = self._codes.pop(form.get("code", ""), None)
                if code is None or code["redirect_uri"] != form.get("redirect_uri"):
                    return 400, {"error": "invalid_grant"}
                verifier = form.get("code_verifier", "")
                challenge = (
                    base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                    .rstrip(b"=")
                    .decode()
                )
                if challenge != code["code_challenge"]:
                    return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}
                return 200, self._token_response(code["username"], None)
            if grant == DEVICE_GRANT:
                dev = self._devices.get(form.get("device_code", ""))
                if dev is None:
                    return 400, {"error": "expired_token"}
                dev.polls += 1
                if dev.username is None and self.auto_approve_device and dev.polls >= 2:
                    dev.username = self.auto_approve_device
                if dev.denied:
                    return 400, {"error": "access_denied"}
                if dev.username is None:
                    return 400, {"error": "authorization_pending"}
                del self._devices[form["device_code"]]
                return 200, self._token_response(dev.username, None)
            return 400, {"error": "unsupported_grant_type"}

    def handle_device(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self._lock:
            if form.get("client_id") not in self.clients:
                return 400, {"error": "invalid_client"}
            device_code = secrets.token_urlsafe(16)
            user_code = secrets.token_hex(4).upper()
            self._devices[device_code] = _Device(
                form["client_id"], form.get("scope", ""), user_code
            )
            return 200, {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": self.base_url + "/device-login",
                "expires_in": 60,
                "interval": self.device_interval_seconds,
            }

    def handle_authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """Return (status, Location) for GET /authorize."""
        with self._lock:
            redirect = query.get("redirect_uri", "")
            if query.get("client_id") not in self.clients or not redirect:
                return 400, ""
            username = self.login_as or query.get("login_hint")
            if not username:
                return 302, redirect + "?" + urlencode(
                    {"error": "access_denied", "state": query.get("state", "")}
                )
            code = secrets.token_urlsafe(16)
            self._codes[code] = {
                "username": username,
                "redirect_uri": redirect,
                "code_challenge": query.get("code_challenge", ""),
            }
            return 302, redirect + "?" + urlencode({"code": code, "state": query.get("state", "")})

    def handle_introspect(self, form: dict[str, str]) -> dict[str, object]:
        with self._lock:
            entry = self.access_tokens.get(form.get("token", ""))
            if entry is None or entry[1] < time.time():
                return {"active": False}
            return {"active": True, "username": entry[0], "exp": int(entry[1])}


class _Handler(BaseHTTPRequestHandler):
    owner: OAuthProvider
    timeout = 10

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        return {k: v[0] for k, v in parse_qs(body).items()}

    def _json(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._form()
        self.owner.requests.append((path, form))
        if path == "/token":
            self._json(*self.owner.handle_token(form))
        elif path == "/device":
            self._json(*self.owner.handle_device(form))
        elif path == "/introspect":
            self._json(200, self.owner.handle_introspect(form))
        else:
            self._json(404, {"error": "not_found"})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.owner.requests.append((parts.path, query))
        if parts.path == "/authorize":
            status, location = self.owner.handle_authorize(query)
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(404, {"error": "not_found"})


# -- pytest fixtures (import them into a test module to use them) ----------------------------

_oauth_users = itertools.count(1)


@pytest.fixture(scope="session")
def oauth_idp() -> Iterator[OAuthProvider]:
    """The local OAuth provider for the whole session (client ``test-client``, public)."""
    with OAuthProvider() as provider:
        yield provider


@pytest.fixture(scope="session")
def oauth_dovecot(oauth_idp: OAuthProvider) -> Iterator[DovecotServer]:
    """A DovecotServer that also accepts XOAUTH2/OAUTHBEARER tokens issued by ``oauth_idp``."""
    with DovecotServer(oauth2_introspection_url=oauth_idp.introspection_url) as server:
        yield server


@pytest.fixture
def oauth_reset(oauth_idp: OAuthProvider) -> Iterator[OAuthProvider]:
    """``oauth_idp`` with its knobs back at their defaults after the test."""
    yield oauth_idp
    oauth_idp.login_as = None
    oauth_idp.access_ttl_seconds = 3600
    oauth_idp.rotate_refresh = False
    oauth_idp.auto_approve_device = None


def new_user(server: DovecotServer, domain: str = "example.org") -> tuple[str, str]:
    """A fresh user ``nameN@domain`` on *server*; returns (username, password)."""
    name = f"user{next(_oauth_users)}@{domain}"
    return name, server.add_user(name)
