"""The only module that speaks IMAP (through imapclient): connect, EXAMINE, search, bulk fetch.

Read-only by construction: folders are opened with EXAMINE (RFC 9051 6.3.3) and messages
fetched with ``BODY.PEEK[]`` (RFC 9051 6.4.5), which never sets ``\\Seen``; no STORE, COPY,
MOVE, EXPUNGE or APPEND is ever sent.

New mail is found by UID: a folder's cursor is (UIDVALIDITY, highest processed UID). The server
narrows the new UIDs with ``UID SEARCH`` (sender and subject words from rules.yaml); only the
hits are fetched, in batches. When the server refuses ``SEARCH CHARSET UTF-8``, the search is
retried with the ASCII words only; when that fails too, the From and Subject headers of the
new UIDs are fetched in bulk and the candidates picked here.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import ssl
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from imapclient.exceptions import LoginError as ImapLoginError

from watcher.config import Account, is_loopback
from watcher.crashpoint import crash_point
from watcher.errors import FolderError, LoginError, ServerError
from watcher.pipeline.rules import RulePack
from watcher.sources import credentials
from watcher.sources.base import RawMessage, SourceKey

log = logging.getLogger(__name__)

FETCH_BATCH = 50
# UIDs per header FETCH in the fallback: about 7 KB of command line, well under servers' limits
# (Dovecot's imap_max_line_length is 64 KB).
HEADER_BATCH = 1000
# What a dropped connection, a timeout or a protocol error can raise mid-session.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (IMAPClientError, OSError)
_HEADER_FIELDS = b"BODY[HEADER.FIELDS (FROM SUBJECT)]"
# A NO to LOGIN that is no verdict on the credentials: RFC 5530 UNAVAILABLE and INUSE, Dovecot's
# mail_max_userip_connections ("Maximum number of connections from user+IP exceeded"),
# Gmail's "Too many simultaneous connections".
_TEMPORARY_REFUSAL = re.compile(
    r"\[(?:UNAVAILABLE|INUSE)\]|too many (?:simultaneous )?connections|"
    r"maximum number of connections",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SearchPlan:
    """Server-side search words: ``from_words`` match the From header (display name or
    address), ``subject_words`` the Subject. Built from rules.yaml by :func:`search_plan`."""

    from_words: tuple[str, ...]
    subject_words: tuple[str, ...]

    def is_candidate(self, from_header: str, subject: str) -> bool:
        """Client-side version of the search, for the header-fetch fallback."""
        f, s = from_header.lower(), subject.lower()
        return any(w.lower() in f for w in self.from_words) or any(
            w.lower() in s for w in self.subject_words
        )


# IMAP SEARCH matches substrings (RFC 9051 6.4.4): a two-letter subject word such as "KI" or
# "IA" matches "Kino", "Wiki", "media", "via", "social" and so picks a third of a real
# mailbox. Mail that talks about "KI" or "IA" and claims to be Meta also names Meta, Facebook
# or Instagram in its subject or From, which the other words catch.
MIN_SUBJECT_WORD = 4


def search_plan(pack: RulePack) -> SearchPlan:
    """Derive the search words: Meta's sender domains' names and the look-alike tokens of four
    letters or more for From; ``search_subject_words`` of MIN_SUBJECT_WORD characters or more
    for Subject. A word contained in another is kept and the longer one dropped (IMAP SEARCH
    matches substrings)."""
    words = {t for t in pack.lookalike_tokens if len(t) >= 4}
    words |= {d.split(".")[-2] for d in pack.sender_domains if d.count(".") >= 1}
    from_words = sorted(w for w in words if not any(o != w and o in w for o in words))
    subject_words = [w for w in pack.search_subject_words if len(w) >= MIN_SUBJECT_WORD]
    folded = [w.casefold() for w in subject_words]
    subject_words = [
        w
        for w, f in zip(subject_words, folded, strict=True)
        if not any(o != f and o in f for o in folded)
    ]
    return SearchPlan(tuple(from_words), tuple(subject_words))


def _or_tree(terms: list[list[str]]) -> list[str]:
    if len(terms) == 1:
        return terms[0]
    mid = len(terms) // 2
    return ["OR", *_or_tree(terms[:mid]), *_or_tree(terms[mid:])]


def _tls_context(account: Account) -> ssl.SSLContext:
    # Verification is always on; a self-signed home server is trusted via ca_file.
    ctx = ssl.create_default_context(cafile=str(account.ca_file) if account.ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _describe(exc: BaseException) -> str:
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
    try:
        client = IMAPClient(
            account.host,
            port=account.effective_port,
            ssl=account.security == "tls",
            ssl_context=_tls_context(account) if account.security == "tls" else None,
            timeout=account.timeout_seconds,
        )
        if account.security == "starttls":
            client.starttls(_tls_context(account))
        elif account.security == "none" and not is_loopback(account.host):
            raise ServerError(f"{where}: refusing to log in without TLS to a non-loopback host")
    except ServerError:
        raise
    except (OSError, IMAPClientError) as exc:
        raise ServerError(f"{where} cannot be reached: {_describe(exc)}") from None
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
    from watcher.sources import providers

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


@dataclass(frozen=True)
class FolderState:
    """What EXAMINE told us: UIDVALIDITY, UIDNEXT (None when the server omits it), EXISTS."""

    uidvalidity: int
    uidnext: int | None
    exists: int


def examine(client: IMAPClient, account: Account, folder: str) -> FolderState:
    """Open *folder* read-only (EXAMINE); raises FolderError when it does not exist."""
    try:
        info = client.select_folder(folder, readonly=True)
    except IMAPClientError as exc:
        text = str(exc).lower()
        if "nonexistent" in text or "doesn't exist" in text or "not exist" in text:
            raise FolderError(
                f"account {account.name}: folder {folder!r} does not exist on {account.host}"
            ) from None
        raise ServerError(
            f"account {account.name}: cannot open folder {folder!r} on {account.host}"
        ) from None
    uidvalidity = int(info[b"UIDVALIDITY"])
    uidnext = info.get(b"UIDNEXT")
    return FolderState(uidvalidity, int(uidnext) if uidnext else None, int(info.get(b"EXISTS", 0)))


def folder_status(client: IMAPClient, folder: str) -> FolderState | None:
    """Ask for *folder*'s UIDVALIDITY, UIDNEXT and MESSAGES without opening it (STATUS, RFC
    9051 6.3.11): one round trip, so a poll that finds nothing new costs no EXAMINE, SEARCH
    or FETCH. Returns None when the server refuses (the caller then EXAMINEs, which names the
    problem); a dropped connection raises one of CONNECTION_ERRORS.

    RFC 9051 advises against STATUS on the selected folder: callers that keep a connection
    across polls :func:`unselect` after working on a folder.
    """
    try:
        info = client.folder_status(folder, [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"])
    except IMAPClientAbortError:
        raise
    except IMAPClientError:
        return None
    try:
        uidnext = info.get(b"UIDNEXT")
        return FolderState(
            int(info[b"UIDVALIDITY"]),
            int(uidnext) if uidnext else None,
            int(info.get(b"MESSAGES", 0)),
        )
    except (KeyError, TypeError, ValueError):
        return None


def unselect(client: IMAPClient) -> None:
    """Leave the selected folder without expunging anything (UNSELECT, RFC 3691; else CLOSE,
    which expunges nothing in a folder opened with EXAMINE, RFC 9051 6.4.1)."""
    if client.has_capability("UNSELECT"):
        client.unselect_folder()
    else:
        client.close_folder()


def list_folders(client: IMAPClient) -> list[str]:
    """Return the names of every folder the account can see (for ``check``)."""
    return [str(name) for _flags, _delim, name in client.list_folders()]


def uids_with_message_id(client: IMAPClient, message_id: str) -> list[int]:
    """UIDs in the open folder whose Message-ID header contains *message_id* (RFC 9051 6.4.4
    HEADER search), ascending; for re-fetching evidence after UIDVALIDITY changed."""
    return sorted(int(uid) for uid in client.search(["HEADER", "Message-ID", message_id]))


# Connections whose server refused SEARCH CHARSET UTF-8: later searches on them (the next UID
# range of the same scan) go straight to the ASCII search instead of failing and warning again.
_REFUSED_UTF8: weakref.WeakSet[IMAPClient] = weakref.WeakSet()


def _search(
    client: IMAPClient, plan: SearchPlan, start: int, end: int | None = None
) -> list[int] | None:
    terms = [["FROM", w] for w in plan.from_words] + [["SUBJECT", w] for w in plan.subject_words]
    utf8_terms = terms
    ascii_terms = [t for t in terms if t[1].isascii()]
    for charset, chosen in (("UTF-8", utf8_terms), (None, ascii_terms)):
        if charset is None and chosen == utf8_terms:
            continue  # nothing non-ASCII to drop: the same search would fail the same way
        if charset is not None and client in _REFUSED_UTF8:
            continue
        uid_range = f"{start}:{end if end is not None else '*'}"
        criteria: list[Any] = ["UID", uid_range, *_or_tree(chosen)]
        try:
            found = client.search(criteria, charset=charset)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            log.warning(
                "server refused SEARCH%s (%s); trying a simpler search",
                f" CHARSET {charset}" if charset else "",
                str(exc)[:120],
            )
            if charset is not None:
                _REFUSED_UTF8.add(client)
            continue
        last = end if end is not None else float("inf")
        return sorted(u for u in (int(x) for x in found) if start <= u <= last)
    return None


def _header_candidates(
    client: IMAPClient, plan: SearchPlan, start: int, end: int | None = None
) -> list[int]:
    from watcher.pipeline.message import parse  # only the fallback needs header parsing

    # imapclient 4 cannot FETCH a range such as "n:*" (it int()s the message set to filter
    # the response), so the new UIDs are listed first and fetched in batches of explicit UIDs.
    last = end if end is not None else float("inf")
    listed = client.search(["UID", f"{start}:{end if end is not None else '*'}"])
    uids = sorted(u for u in (int(x) for x in listed) if start <= u <= last)
    out = []
    for offset in range(0, len(uids), HEADER_BATCH):
        batch = uids[offset : offset + HEADER_BATCH]
        response = client.fetch(batch, ["BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]"])
        for uid, data in response.items():
            header = parse(bytes(data.get(_HEADER_FIELDS, b"")))
            from_header = f"{header.from_name} <{header.from_addr}>"
            if plan.is_candidate(from_header, header.subject):
                out.append(int(uid))
    return sorted(out)


def candidate_uids(
    client: IMAPClient, plan: SearchPlan, start: int, end: int | None = None
) -> list[int]:
    """Return the UIDs from *start* to *end* (default: the last) that may be Meta mail or a
    look-alike, ascending.

    ``UID n:*`` always returns the folder's last message even when it is below n (RFC 9051
    6.4.4), so results are filtered client-side.
    """
    found = _search(client, plan, start, end)
    if found is None:
        log.warning("falling back to fetching From/Subject headers of new messages")
        found = _header_candidates(client, plan, start, end)
    return found


def highest_uid(client: IMAPClient, state: FolderState, start: int) -> int:
    """Return the highest UID now in the folder (UIDNEXT-1, or searched when UIDNEXT is
    missing); 0 for an empty folder."""
    if state.uidnext is not None:
        return state.uidnext - 1
    if state.exists == 0:
        return 0
    found = client.search(["UID", f"{max(start, 1)}:*"])
    return max((int(u) for u in found), default=0)


def _from_field(item: dict[bytes, Any]) -> bytes:
    # The response key echoes the request without ".PEEK"; Dovecot and others may differ in
    # case or spacing, so match on the prefix.
    for key, value in item.items():
        if key.upper().startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return b""


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def fetch_messages(
    client: IMAPClient,
    key_for: Callable[[int], SourceKey],
    uids: list[int],
    max_bytes: int,
    wanted: Callable[[bytes], bool] | None = None,
) -> Iterator[RawMessage]:
    """Fetch *uids* in batches of FETCH_BATCH with ``BODY.PEEK[]``; yield them in UID order.

    A message larger than *max_bytes* is fetched as headers only (``BODY.PEEK[HEADER]``) and
    recorded as too large by the parser. With *wanted*, each message's From header (raw
    ``From:`` field bytes) comes with its size, and a message for which ``wanted`` is False is
    skipped without fetching its body: the search is a substring match and also picks mail
    from "metallbau-schmidt.de" or about "Metadaten", which cannot be Meta's.
    """
    items_first = ["RFC822.SIZE"] + (["BODY.PEEK[HEADER.FIELDS (FROM)]"] if wanted else [])
    for offset in range(0, len(uids), FETCH_BATCH):
        batch = uids[offset : offset + FETCH_BATCH]
        sizes = client.fetch(batch, items_first)
        if wanted is not None:
            batch = [u for u in batch if u not in sizes or wanted(_from_field(sizes[u]))]
        small = [u for u in batch if int(sizes.get(u, {}).get(b"RFC822.SIZE", 0)) <= max_bytes]
        large = [u for u in batch if u not in small]
        fetched: dict[int, RawMessage] = {}
        for part, chosen in ((b"BODY[]", small), (b"BODY[HEADER]", large)):
            if not chosen:
                continue
            items = client.fetch(chosen, [f"BODY.PEEK[{part[5:-1].decode()}]", "INTERNALDATE"])
            for uid, item in items.items():
                fetched[int(uid)] = RawMessage(
                    key_for(int(uid)),
                    bytes(item.get(part) or b""),
                    _aware(item.get(b"INTERNALDATE")),
                    size=int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0)) or None,
                )
        for uid in batch:
            if uid in fetched:
                crash_point("fetch")
                yield fetched[uid]
            else:
                log.warning("%s vanished before it could be fetched", key_for(uid).label())


# ---------------------------------------------------------------------- IDLE (RFC 2177)


@dataclass(frozen=True)
class IdleNews:
    """What one wait in IDLE brought: ``new_mail`` (an EXISTS response), ``heard`` (the server
    said anything, e.g. Dovecot's "* OK Still here"), ``closed`` (the server said BYE) and
    ``suspect`` (woke early with nothing to read: often an EOF, to be probed with NOOP)."""

    new_mail: bool
    heard: bool
    closed: bool
    suspect: bool


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


def _reports_new_mail(responses: list[Any]) -> bool:
    return any(
        isinstance(r, tuple) and len(r) >= 2 and r[1] in (b"EXISTS", b"RECENT") for r in responses
    )


def idle_start(client: IMAPClient) -> bool:
    """Send IDLE and wait for the server's continuation (RFC 2177). Returns True when the
    server reported new mail just before it (imaplib keeps such untagged responses aside)."""
    client.idle()
    pending = client._imap.untagged_responses
    return pending.pop("EXISTS", None) is not None or pending.pop("RECENT", None) is not None


def idle_wait(client: IMAPClient, timeout_seconds: float, wake_fd: int | None = None) -> IdleNews:
    """Wait up to *timeout_seconds* for responses during IDLE.

    imapclient's ``idle_check`` swallows an EOF and returns nothing, which would look like
    silence forever; a wait that returns early with nothing is therefore ``suspect``.

    With *wake_fd* (a pipe that becomes readable when the caller must stop), the wait also
    ends when that descriptor is readable, returning no news: an idle connection then sleeps
    until the server speaks or the caller stops, instead of waking often to look at a flag.
    """
    import time

    if wake_fd is not None:
        import select

        sock = client.socket()
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        if not pending:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            poller.register(wake_fd, select.POLLIN)
            ready = {fd for fd, _event in poller.poll(max(timeout_seconds, 0.0) * 1000)}
            if sock.fileno() not in ready:
                return IdleNews(False, False, False, False)  # timed out, or woken to stop
        responses = client.idle_check(timeout=0)
        # Readable but nothing to read: the server closed the connection (EOF).
        return IdleNews(
            _reports_new_mail(responses),
            bool(responses),
            any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses),
            not responses,
        )
    started = time.monotonic()
    responses = client.idle_check(timeout=timeout_seconds)
    elapsed = time.monotonic() - started
    new_mail = _reports_new_mail(responses)
    bye = any(isinstance(r, tuple) and r and r[0] == b"BYE" for r in responses)
    woke_for_nothing = not responses and elapsed < timeout_seconds * 0.5
    return IdleNews(new_mail, bool(responses), bye, woke_for_nothing)


def idle_done(client: IMAPClient) -> bool:
    """End IDLE (send DONE and read the tagged OK). Returns True when responses read on the
    way reported new mail."""
    _text, responses = client.idle_done()
    return _reports_new_mail(list(responses))


def noop(client: IMAPClient) -> bool:
    """Send NOOP: proves the connection still works (raises CONNECTION_ERRORS otherwise).
    Returns True when the server reported new mail in its answer (RFC 9051 6.1.2)."""
    _text, responses = client.noop()
    return _reports_new_mail(list(responses))


def first_uid_since(client: IMAPClient, since_at: datetime) -> int | None:
    """The lowest UID of the selected folder with an INTERNALDATE on or after the day before
    *since_at* (SEARCH SINCE has day granularity, RFC 9051 6.4.4), or None when there is
    none."""
    from datetime import timedelta

    day = (since_at.astimezone(UTC) - timedelta(days=1)).date()
    found = client.search(["SINCE", day])
    return min((int(u) for u in found), default=None)
