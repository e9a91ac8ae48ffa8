"""Which server stamps the mail of a folder: the authserv-id (RFC 8601 §2.5) of the top-most
Authentication-Results header of recent messages, for ``check`` and ``init`` to propose as
``trusted_authserv_ids`` so spoof protection works without reading raw headers.

The receiving server adds its header on top, above any a sender forged further down (RFC 8601
§5: a server removes or ignores headers claiming its own id; headers added on the way before
it are below it). The top-most header of most mail in a mailbox therefore names the mailbox's
own server. Read-only: the folder is opened with EXAMINE and only that header field is
fetched with ``BODY.PEEK[HEADER.FIELDS (AUTHENTICATION-RESULTS)]`` (RFC 9051 §6.4.5), which
never sets ``\\Seen``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from imapclient import IMAPClient

from watcher.config import Account
from watcher.sources.imap.folders import examine, unselect

# How many of the newest messages of each folder are read (a few hundred bytes each).
RECENT = 50
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


def propose_authserv_ids(
    client: IMAPClient, account: Account, folders: tuple[str, ...] | list[str]
) -> list[AuthservCount]:
    """For each folder of *folders*, its most common top-most authserv-id with how many of
    the newest messages carry it (folders with no such header are left out)."""
    out = []
    for folder in folders:
        counts, read, without = folder_authserv_ids(client, account, folder)
        if counts:
            best, carried = counts.most_common(1)[0]
            out.append(AuthservCount(folder, best, carried, read, without))
    return out
