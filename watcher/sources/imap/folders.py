"""Working in one folder, read-only: EXAMINE, STATUS, UNSELECT, and fetching messages by UID
with ``BODY.PEEK`` (RFC 9051 6.3.3, 6.4.5), which never sets ``\\Seen``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from watcher.config import Account
from watcher.crashpoint import crash_point
from watcher.errors import FolderError, ServerError
from watcher.sources.base import RawMessage, SourceKey, looks_like_junk
from watcher.sources.imap.client import list_folders, missing_folder_sentence
from watcher.sources.imap.guard import guard_of

log = logging.getLogger(__name__)

FETCH_BATCH = 50
# The header of a message whose body the server would not send within bounds is fetched on
# its own, up to this many bytes (Dovecot's default header limit is 10 MB, but a real header
# is a few KB; this only has to name sender, subject and date for the record).
HEADER_LIMIT = 256 * 1024


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
            raise FolderError(missing_folder_sentence(account, folder, _names(client))) from None
        raise ServerError(
            f"account {account.name}: cannot open folder {folder!r} on {account.host}"
        ) from None
    uidvalidity = int(info[b"UIDVALIDITY"])
    uidnext = info.get(b"UIDNEXT")
    return FolderState(uidvalidity, int(uidnext) if uidnext else None, int(info.get(b"EXISTS", 0)))


def _names(client: IMAPClient) -> list[str]:
    # For the "did you mean" hint of a missing folder; a server refusing LIST gives none.
    try:
        return list_folders(client)
    except IMAPClientAbortError:
        raise
    except IMAPClientError:
        return []


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


def junk_folders(client: IMAPClient) -> list[str]:
    """The account's spam folders: those LIST marks ``\\Junk`` (RFC 6154; Dovecot, Gmail and
    others send the attribute with a plain LIST, servers with SPECIAL-USE also answer ``LIST
    RETURN (SPECIAL-USE)``), else those named like one (JUNK_NAMES: Spam, Junk, Junk-E-Mail,
    Spamverdacht, ``[Gmail]/Spam``...). Folders that cannot be selected are left out; [] when
    the server refuses LIST. A dropped connection raises one of CONNECTION_ERRORS."""
    try:
        listed = client.list_folders()
    except IMAPClientAbortError:
        raise
    except IMAPClientError:
        return []
    selectable = [(flags, name) for flags, _sep, name in listed if b"\\Noselect" not in flags]
    flagged = [name for flags, name in selectable if b"\\Junk" in flags]
    if not flagged and client.has_capability("SPECIAL-USE"):
        try:
            special = client.find_special_folder(b"\\Junk")
        except IMAPClientAbortError:
            raise
        except IMAPClientError:
            special = None
        if special:
            flagged = [special]
    return flagged or [name for _flags, name in selectable if looks_like_junk(name)]


def unselect(client: IMAPClient) -> None:
    """Leave the selected folder without expunging anything (UNSELECT, RFC 3691; else CLOSE,
    which expunges nothing in a folder opened with EXAMINE, RFC 9051 6.4.1)."""
    if client.has_capability("UNSELECT"):
        client.unselect_folder()
    else:
        client.close_folder()


def uids_with_message_id(client: IMAPClient, message_id: str) -> list[int]:
    """UIDs in the open folder whose Message-ID header contains *message_id* (RFC 9051 6.4.4
    HEADER search), ascending; for re-fetching evidence after UIDVALIDITY changed."""
    return sorted(int(uid) for uid in client.search(["HEADER", "Message-ID", message_id]))


# Connections whose server refused SEARCH CHARSET UTF-8: later searches on them (the next UID


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
    guard = guard_of(client)
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
            announced = [int(sizes.get(u, {}).get(b"RFC822.SIZE", 0)) for u in chosen]
            if guard is not None:
                # No literal may be larger than the server said (plus slack).
                guard.expect(max(announced), sum(announced))
            items = client.fetch(chosen, [f"BODY.PEEK[{part[5:-1].decode()}]", "INTERNALDATE"])
            for uid, item in items.items():
                fetched[int(uid)] = RawMessage(
                    key_for(int(uid)),
                    bytes(item.get(part) or b""),
                    _aware(item.get(b"INTERNALDATE")),
                    size=int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0)) or None,
                )
        missing = [uid for uid in batch if uid not in fetched]
        still_there = _still_there(client, missing)
        for uid in batch:
            if uid in fetched:
                crash_point("fetch")
                yield fetched[uid]
            elif uid in still_there:
                # imapclient drops a FETCH answer for a UID it did not ask for (a server
                # answering UID 99 for UID 1): the mail is there but unread, so the scan
                # must not move the cursor past it.
                raise ServerError(
                    f"{key_for(uid).label()}: the server did not return this message although "
                    "UID SEARCH finds it; not moving past it, trying again at the next poll"
                )
            else:
                log.warning("%s vanished before it could be fetched", key_for(uid).label())


def fetch_header(
    client: IMAPClient, uid: int, limit: int = HEADER_LIMIT
) -> tuple[bytes, datetime | None]:
    """The header block (``BODY.PEEK[HEADER]``) and INTERNALDATE of *uid* in the open folder,
    with no literal over *limit* bytes accepted (a larger one raises an imaplib abort, and
    the connection is then unusable); (b"", None) when the server does not return it."""
    guard = guard_of(client)
    if guard is not None:
        guard.expect(limit, limit)
    items = client.fetch([uid], ["BODY.PEEK[HEADER]", "INTERNALDATE"])
    item = items.get(uid, {})
    return bytes(item.get(b"BODY[HEADER]") or b""), _aware(item.get(b"INTERNALDATE"))


def _still_there(client: IMAPClient, uids: list[int]) -> set[int]:
    """Which of *uids* the open folder still holds (UID SEARCH UID, RFC 9051 6.4.4)."""
    if not uids:
        return set()
    found = client.search(["UID", ",".join(str(u) for u in uids)])
    return {int(u) for u in found} & set(uids)


def first_uid_since(client: IMAPClient, since_at: datetime) -> int | None:
    """The lowest UID of the selected folder with an INTERNALDATE on or after the day before
    *since_at* (SEARCH SINCE has day granularity, RFC 9051 6.4.4), or None when there is
    none."""
    day = (since_at.astimezone(UTC) - timedelta(days=1)).date()
    found = client.search(["SINCE", day])
    return min((int(u) for u in found), default=None)
