"""Talking to an OAuth2 endpoint (RFC 6749): form POSTs, JSON answers, error responses."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

from watcher import __version__
from watcher.config import OAuth2Settings, is_loopback
from watcher.errors import SecretError, ServerError

MAX_RESPONSE_BYTES = 1_000_000


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


def client_form(settings: OAuth2Settings) -> dict[str, str]:
    """The client's credentials as form fields (RFC 6749 2.3.1): id, and secret if any."""
    form = {"client_id": settings.client_id}
    if settings.client_secret:
        form["client_secret"] = settings.client_secret
    return form


def refused(where: str, name: str, exc: OAuthError, during: str) -> SecretError:
    """The SecretError for an error response *exc* during *during*, telling what to do."""
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
