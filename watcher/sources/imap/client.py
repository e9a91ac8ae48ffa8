"""Connecting and logging in to an IMAP server, and what a connection needs besides folders.

Every failure becomes one sentence naming the account and host (ServerError, LoginError),
never the password; see :func:`connect`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import socket
import ssl
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from imapclient.exceptions import LoginError as ImapLoginError

from watcher.config import Account, is_loopback
from watcher.errors import LoginError, ServerError
from watcher.sources import credentials, providers
from watcher.sources.imap.guard import install as install_guard

log = logging.getLogger(__name__)

# A connection (the type callers outside this package name it by).
Client = IMAPClient
# What a dropped connection, a timeout or a protocol error can raise mid-session.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (IMAPClientError, OSError)
# A NO to LOGIN that is no verdict on the credentials: RFC 5530 UNAVAILABLE and INUSE, Dovecot's
# mail_max_userip_connections ("Maximum number of connections from user+IP exceeded"),
# Gmail's "Too many simultaneous connections".
_TEMPORARY_REFUSAL = re.compile(
    r"\[(?:UNAVAILABLE|INUSE)\]|too many (?:simultaneous )?connections|"
    r"maximum number of connections",
    re.IGNORECASE,
)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The TLS context of every IMAP connection: verification always on (CA and host name),
    TLS 1.2 or newer; *ca_file* (PEM) adds trust anchors for a self-hosted server. A
    certificate pinned there may be the server's own (a leaf): partial chains are accepted,
    as Python 3.13's default context does."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def _tls_context(account: Account) -> ssl.SSLContext:
    # Verification is always on; a self-signed home server is trusted via ca_file.
    return tls_context(account.ca_file)


def _describe(exc: BaseException, account: Account | None = None) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER" and account:
        # The server's first bytes were no TLS record: a plain-text IMAP greeting ("* OK").
        return (
            f"the TLS handshake failed (WRONG_VERSION_NUMBER): port {account.effective_port} "
            "speaks plain IMAP, not TLS; use `security: starttls` on this port, or port 993 "
            "with `security: tls`"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "its TLS certificate is not trusted (set ca_file for a self-signed server)"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "it did not answer in time"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "there is no network route to the host"
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, IMAPClientError) and str(exc):
        # e.g. a greeting of "* BYE Too many connections": say what the server said.
        return f"the server said: {_server_text(exc)}"
    return type(exc).__name__


def connect(account: Account) -> IMAPClient:
    """Connect and log in to *account*; return the client.

    Raises ServerError (unreachable, TLS failure, protocol error) or LoginError (credentials
    rejected), each one sentence naming the account and host, never the password.
    """
    where = f"account {account.name}: {account.host}:{account.effective_port}"
    # The secret first: a broken password source is a config error (exit 78), and it should
    # not cost a connection to find out.
    # XOAUTH2 (Google's and Microsoft's SASL mechanism) when the account uses OAuth2.
    secret = credentials.login_secret(account)
    greeted = False
    try:
        client = IMAPClient(
            account.host,
            port=account.effective_port,
            ssl=account.security == "tls",
            ssl_context=_tls_context(account) if account.security == "tls" else None,
            timeout=account.timeout_seconds,
        )
        greeted = True
        if account.security == "starttls":
            client.starttls(_tls_context(account))
        elif account.security == "none" and not is_loopback(account.host):
            raise ServerError(f"{where}: refusing to log in without TLS to a non-loopback host")
    except ServerError:
        raise
    except (OSError, IMAPClientError) as exc:
        reason = _describe(exc, account)
        if (
            isinstance(exc, TimeoutError | socket.timeout)
            and not greeted
            and account.security == "starttls"
        ):
            # A TLS port waits for the client's handshake and never sends the plain "* OK"
            # greeting a STARTTLS client waits for: both sides wait until the timeout.
            reason += (
                "; a port that speaks TLS from the start (usually 993) stays silent to a "
                "plain IMAP client: use `security: tls` on this port"
            )
        raise ServerError(f"{where} cannot be reached: {reason}") from None
    # Bounds on what the server may make us read (guard.py): after STARTTLS, which replaces
    # the file imaplib reads from.
    install_guard(client, account.timeout_seconds)
    client.normalise_times = False  # keep INTERNALDATE's zone: we store aware UTC
    try:
        if account.uses_oauth2:
            client.oauth2_login(account.username, secret)
        else:
            client.login(account.username, secret)
    except ImapLoginError as exc:
        _quiet_logout(client)
        if isinstance(exc.__context__, IMAPClientAbortError):
            # imapclient reports a connection lost during LOGIN (a server restarting) as a
            # LoginError; it is no verdict on the credentials.
            raise ServerError(f"{where}: login failed: the connection was lost") from None
        if _TEMPORARY_REFUSAL.search(_server_text(exc)):
            # The credentials were not judged: retried like a dropped connection.
            raise ServerError(
                f"{where}: the server turned the login away for now "
                f"(server said: {_server_text(exc)})"
            ) from None
        reason = explain_login_failure(account, _server_text(exc))
        raise LoginError(f"{where} rejected the login for {account.username}: {reason}") from None
    except (OSError, IMAPClientError) as exc:
        _quiet_logout(client)
        raise ServerError(f"{where}: login failed: {_describe(exc)}") from None
    return client


def _server_text(exc: BaseException) -> str:
    # imapclient wraps the server's reply as the repr of bytes: "b'[AUTHENTICATIONFAILED] ...'".
    text = str(exc)
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        text = text[2:-1]
    return " ".join(text.split())[:160]


def explain_login_failure(account: Account, reply: str) -> str:
    """One clause saying why *account*'s login was most likely rejected, from the server's
    *reply* and the provider preset (watcher.sources.providers), with the reply quoted at the end.

    Known replies: Gmail's "Application-specific password required", Outlook.com's "Basic
    authentication is disabled" / "LOGIN failed", RFC 5530's AUTHENTICATIONFAILED.
    """
    text = reply.lower()
    provider = providers.for_host(account.host)
    said = f" (server said: {reply})" if reply else ""
    if "application-specific password" in text or "app password" in text:
        why = "the provider requires an app password (or OAuth2) for IMAP, not the account password"
    elif "basic authentication is disabled" in text or "basicauthblocked" in text:
        why = (
            "the provider has turned off password logins for IMAP: configure oauth2 and run "
            f"`meta-watcher auth {account.name}`"
        )
    elif account.uses_oauth2:
        why = (
            "the OAuth2 access token was not accepted: run `meta-watcher auth "
            f"{account.name}` again and check the client's scopes"
        )
    elif provider is not None:
        why = provider.rejected
    elif "authenticationfailed" in text or "invalid credentials" in text or "failed" in text:
        why = "the user name or password is wrong"
    else:
        why = "the credentials were not accepted"
    return why + said


def _quiet_logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - best effort on a connection we are abandoning
        client.shutdown()


def logout(client: IMAPClient) -> None:
    """Log out, ignoring a connection that is already gone."""
    _quiet_logout(client)


def drop(client: IMAPClient) -> None:
    """Close the socket of a connection that is no longer usable, without LOGOUT: after a
    read bound aborted a command (guard.py) the server may still be sending its answer, which
    a LOGOUT would have to read through."""
    with contextlib.suppress(OSError, IMAPClientError):
        client.shutdown()


def list_folders(client: IMAPClient) -> list[str]:
    """Return the names of every folder the account can see (for ``check``)."""
    return [str(name) for _flags, _delim, name in client.list_folders()]


# RFC 6154 §2: the special-use attributes a LIST reply may carry.
SPECIAL_USE = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")


def list_folders_with_use(client: IMAPClient) -> list[tuple[str, tuple[str, ...]]]:
    """Every folder as (name, its RFC 6154 special-use attributes such as ``\\Junk``), in the
    server's order (LIST; servers send the attributes with a plain LIST, RFC 6154 §5.1)."""
    out = []
    for flags, _delim, name in client.list_folders():
        names = {f.decode("ascii", "replace") if isinstance(f, bytes) else str(f) for f in flags}
        uses = tuple(u for u in SPECIAL_USE if any(n.lower() == u.lower() for n in names))
        out.append((str(name), uses))
    return out


def same_folder(configured: str, existing: str) -> bool:
    """True when the configured folder name means the server's folder *existing*: names are
    compared exactly, except INBOX, which is case-insensitive (RFC 9051 §5.1, RFC 3501 §5.1)."""
    if configured.upper() == "INBOX":
        return existing.upper() == "INBOX"
    return configured == existing


def closest_folders(name: str, existing: list[str], count: int = 3) -> list[str]:
    """Up to *count* of *existing* folder names closest to *name*: same name in another case
    first, then difflib's close matches (ratio ≥ 0.5), for "did you mean" hints."""
    # Imported here: only a missing folder needs it, not every connection.
    import difflib

    same_case = [e for e in existing if e.lower() == name.lower() and e != name]
    lowered = {e.lower(): e for e in existing}
    near = difflib.get_close_matches(name.lower(), list(lowered), n=count, cutoff=0.5)
    return list(dict.fromkeys(same_case + [lowered[n] for n in near]))[:count]


def missing_folder_sentence(account: Account, folder: str, existing: list[str]) -> str:
    """The one sentence for a configured *folder* that is not among *existing*, naming the
    closest existing names (or, when none is close, the first few)."""
    near = closest_folders(folder, existing)
    if near:
        hint = "did you mean " + " or ".join(repr(n) for n in near) + "?"
    else:
        hint = "folders there: " + ", ".join(repr(n) for n in existing[:8]) + "."
    return (
        f"account {account.name}: folder {folder!r} does not exist on {account.host} "
        f"(names other than INBOX are case-sensitive; {hint} Fix folders: in the config)"
    )


def supports_idle(client: IMAPClient) -> bool:
    """True when the server advertises IDLE (RFC 2177) in its CAPABILITY."""
    return bool(client.has_capability("IDLE"))


def enable_keepalive(
    client: IMAPClient, idle_seconds: int = 60, interval_seconds: int = 15, count: int = 4
) -> None:
    """Turn on TCP keepalive for the connection: after *idle_seconds* of silence the kernel
    probes every *interval_seconds* and drops the connection after *count* missed probes, so a
    peer that vanished (a home router forgetting the NAT entry, a suspended laptop) surfaces as
    an error within about two minutes instead of never."""
    sock = client.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", idle_seconds),
        ("TCP_KEEPINTVL", interval_seconds),
        ("TCP_KEEPCNT", count),
    ):
        option = getattr(socket, name, None)  # Linux names; macOS has only some of them
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)


def set_timeout(client: IMAPClient, seconds: float) -> None:
    """Set the socket timeout for every later read and write on *client*."""
    client.socket().settimeout(seconds)
