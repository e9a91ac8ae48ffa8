"""Which server stamps the mail of an account: the authserv-id (RFC 8601 §2.5) of the top-most
Authentication-Results header of recent messages, for ``check`` and ``init`` to propose as
``trusted_authserv_ids`` so spoof protection works without reading raw headers.

The receiving server adds its header on top of *every* message it delivers, above any a sender
wrote further down, and removes or ignores headers claiming its own id (RFC 8601 §5). So the
id of the mailbox's own server is on top of (nearly) all of its mail, and an id on top of only
some of it was written by senders: a server that adds no header of its own leaves a forged
``Authentication-Results: mx.attacker.example; dkim=pass`` on top of each spam mail. An id is
therefore proposed only when it tops at least MIN_SHARE of at least MIN_MAILS sampled mails,
and Junk folders, where forged mail gathers, are not sampled.

Read-only: each folder is opened with EXAMINE and only that header field is fetched with
``BODY.PEEK[HEADER.FIELDS (AUTHENTICATION-RESULTS)]`` (RFC 9051 §6.4.5), which never sets
``\\Seen``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from imapclient import IMAPClient

from watcher.config import Account
from watcher.sources.base import looks_like_junk
from watcher.sources.imap.folders import examine, junk_folders, unselect

# How many of the newest messages of each folder are read (a few hundred bytes each).
RECENT = 50
# A server's own header is on every mail it delivers; a few mails from before it stamped (or
# moved in from another account) may lack it. Below this share of the sampled mails, or with
# fewer mails than MIN_MAILS, an id says nothing about the server.
MIN_SHARE = 0.95
MIN_MAILS = 5
# init offers to add an id by default (Enter) only when it tops every one of at least this
# many mails: in a new or quiet mailbox a handful of spam mails with a forged header would
# otherwise be "every mail".
CONFIDENT_MAILS = 20
_FIELD = b"BODY.PEEK[HEADER.FIELDS (AUTHENTICATION-RESULTS)]"


@dataclass(frozen=True)
class AuthservCount:
    """In one folder: how many of the *read* newest messages have *authserv_id* on their
    top-most Authentication-Results header (``messages`` read; ``without`` had none)."""

    folder: str
    authserv_id: str
    carried_by: int
    messages: int
    without: int


def top_authserv_id(header_block: bytes) -> str | None:
    """The authserv-id of the first (top-most) Authentication-Results field in
    *header_block* (header lines as the server returned them), lower-cased; None when there is
    none or it is empty. The id is the first word before ";" (RFC 8601 §2.2: ``authserv-id
    [ CFWS authres-version ] ...``)."""
    message = BytesHeaderParser(policy=compat32).parsebytes(header_block)
    values = message.get_all("Authentication-Results") or []
    if not values:
        return None
    words = str(values[0]).split(";", 1)[0].split()
    return words[0].lower() if words else None


def _header_block(item: dict[bytes, Any]) -> bytes:
    # The response key echoes the request without ".PEEK"; servers differ in case and spacing.
    for key, value in item.items():
        if key.upper().startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return b""


def folder_authserv_ids(
    client: IMAPClient, account: Account, folder: str, recent: int = RECENT
) -> tuple[Counter[str], int, int]:
    """(count per top-most authserv-id, messages read, messages without any such header)
    over the *recent* newest messages of *folder*. Raises FolderError for a missing folder,
    CONNECTION_ERRORS when the connection drops."""
    state = examine(client, account, folder)
    try:
        if state.exists == 0:
            return Counter(), 0, 0
        # UID SEARCH ALL: a few bytes per message even in a large folder; the newest last.
        newest = sorted(int(u) for u in client.search(["ALL"]))[-recent:]
        fetched = client.fetch(newest, [_FIELD]) if newest else {}
        found: Counter[str] = Counter()
        without = 0
        for item in fetched.values():
            top = top_authserv_id(_header_block(item))
            if top is None:
                without += 1
            else:
                found[top] += 1
        return found, len(fetched), without
    finally:
        unselect(client)


@dataclass(frozen=True)
class AuthservFinding:
    """What the newest mail of an account's non-Junk folders says about its server's id.

    *counts* per sampled folder (folders without any such header left out); *sampled* the
    folders read, *skipped* the watched Junk folders left unread; *best* the most common
    top-most id over all sampled mails and *carried_by* how many of the *messages* read carry
    it (mails without the header count as not carrying it); *proposed* is *best* when it
    passes :func:`choose_authserv_id`, else None.
    """

    counts: tuple[AuthservCount, ...]
    sampled: tuple[str, ...]
    skipped: tuple[str, ...]
    best: str | None
    carried_by: int
    messages: int
    proposed: str | None

    @property
    def unanimous(self) -> bool:
        """True when the proposed id tops every sampled mail."""
        return self.proposed is not None and self.carried_by == self.messages

    @property
    def confident(self) -> bool:
        """True when the proposed id tops every one of at least CONFIDENT_MAILS mails."""
        return self.unanimous and self.messages >= CONFIDENT_MAILS


def choose_authserv_id(counts: Counter[str], messages: int) -> str | None:
    """The id of *counts* (top-most authserv-id -> mails carrying it) that tops at least
    MIN_SHARE of *messages* (mails read, including those without the header), when
    *messages* is at least MIN_MAILS; else None. RFC 8601 §5: the receiving server's header
    is on every mail it delivers, so only such an id can be the server's own."""
    if messages < MIN_MAILS or not counts:
        return None
    best, carried = counts.most_common(1)[0]
    return best if carried >= MIN_SHARE * messages else None


def probe_authserv(
    client: IMAPClient, account: Account, folders: tuple[str, ...] | list[str]
) -> AuthservFinding:
    """Read the top-most Authentication-Results id of the RECENT newest mails of each of
    *folders* that is no Junk folder (marked ``\\Junk`` by the server, RFC 6154, or named
    like one) and choose the account's server id over all of them. When every folder is a
    Junk folder, nothing is sampled. Raises FolderError for a missing folder,
    CONNECTION_ERRORS when the connection drops."""
    junk = set(junk_folders(client))
    skipped = tuple(f for f in folders if f in junk or looks_like_junk(f))
    sampled = tuple(f for f in folders if f not in skipped)
    per_folder = []
    total: Counter[str] = Counter()
    messages = 0
    for folder in sampled:
        counts, read, without = folder_authserv_ids(client, account, folder)
        total.update(counts)
        messages += read
        if counts:
            top, carried = counts.most_common(1)[0]
            per_folder.append(AuthservCount(folder, top, carried, read, without))
    best = total.most_common(1)[0] if total else None
    return AuthservFinding(
        counts=tuple(per_folder),
        sampled=sampled,
        skipped=skipped,
        best=best[0] if best else None,
        carried_by=best[1] if best else 0,
        messages=messages,
        proposed=choose_authserv_id(total, messages),
    )
