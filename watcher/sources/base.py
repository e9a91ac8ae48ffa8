"""What every mail source is and hands on: the MailSource protocol, where a message lives
(SourceKey), its bytes (RawMessage) and how far a folder has been read (Cursor).

A source is an IMAP account (watcher.sources.imap) or a local Maildir, mbox or ``.eml`` file
(watcher.sources.mailfiles); a new one (JMAP, the Gmail API) is one more module implementing
:class:`MailSource`. Sources only read: nothing is marked, moved or deleted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# RFC 9051 2.3.1.1: an IMAP folder's UIDVALIDITY is a non-zero number, so 0 can mark the
# messages of local files, which have none (the messages table stores it as is).
LOCAL_UIDVALIDITY = 0

# Names providers give their spam folder when the server does not mark it \Junk (RFC 6154
# SPECIAL-USE): compared case-insensitively with a folder name's last level ("INBOX.Spam",
# "INBOX/Junk") or with the whole name ("[Gmail]/Spam").
JUNK_NAMES = frozenset(
    {
        "spam",
        "junk",
        "junk-e-mail",
        "junk e-mail",
        "junk email",
        "junk mail",
        "spamverdacht",
        "bulk mail",
        "[gmail]/spam",
        "[google mail]/spam",
    }
)


def looks_like_junk(folder: str) -> bool:
    """True when the IMAP folder name *folder* is one providers use for spam (JUNK_NAMES).

    Used where only the recorded folder name is known (``status``); a folder the server marks
    ``\\Junk`` under another name is flagged on its SourceKey (``junk``) while it is read.
    """
    name = folder.strip().lower()
    last = re.split(r"[/.]", name)[-1] if name else name
    return name in JUNK_NAMES or last in JUNK_NAMES


@dataclass(frozen=True)
class Cursor:
    """How far a folder has been processed: (UIDVALIDITY, highest processed UID)."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class SourceKey:
    """Where a message lives: IMAP (account name, ``user@host``, folder, UIDVALIDITY, UID) or a
    local file (source name, ``local:<name>``, the item in the file or folder,
    LOCAL_UIDVALIDITY, its 1-based index as uid); see :meth:`local`."""

    source: str
    identity: str
    folder: str
    uidvalidity: int
    uid: int
    # The folder is the account's spam folder (RFC 6154 \\Junk, or a JUNK_NAMES name): the
    # user must look there. Not part of the identity of the message.
    junk: bool = field(default=False, compare=False)

    @property
    def in_spam(self) -> bool:
        """True when the message was found in a spam folder (``junk`` or by its name)."""
        return self.junk or (not self.is_local and looks_like_junk(self.folder))

    @classmethod
    def local(cls, source: str, identity: str, item: str, index: int) -> SourceKey:
        """The key of the *index*-th message (1-based) of a local source; *item* names it in
        the file or folder (a Maildir key, ``<path>#N`` in an mbox, an ``.eml`` path)."""
        return cls(source, identity, item, LOCAL_UIDVALIDITY, index)

    @property
    def is_local(self) -> bool:
        """True for a message of a local file (no IMAP folder, no cursor)."""
        return self.uidvalidity == LOCAL_UIDVALIDITY

    def cursor(self) -> Cursor | None:
        """The folder's cursor once this message is processed; None for a local file."""
        return None if self.is_local else Cursor(self.uidvalidity, self.uid)

    def label(self) -> str:
        """A short human label for logs: ``account/folder UID n`` (never secrets)."""
        if self.is_local:
            return f"{self.source}: {self.folder or self.identity}"
        return f"{self.source}/{self.folder} UID {self.uid}"


@dataclass(frozen=True)
class RawMessage:
    """Raw RFC 5322 bytes as fetched, with the server's INTERNALDATE (aware UTC) if known.

    ``size`` is the full message size in bytes when ``raw`` holds only its header (a message
    over the size limit); None when ``raw`` is the whole message. ``fetch_error`` is one
    sentence when the source could not read the message within its bounds (an IMAP server
    sending a literal larger than it announced): ``raw`` then holds its header, or nothing,
    and the message is recorded with that error, so the cursor moves past it and the run
    goes on; it is not fetched again.
    """

    key: SourceKey
    raw: bytes
    internal_at: datetime | None = None
    size: int | None = None  # RFC822.SIZE when only the header was fetched
    fetch_error: str | None = None


@dataclass(frozen=True)
class MessageRef:
    """A recorded message to fetch again: where it was (``key``) and what it was: its
    Message-ID (to find it after a move) and the SHA-256 of its bytes (hex)."""

    key: SourceKey
    message_id: str | None
    sha256: str


class Scan:
    """The new mail of one folder: ``messages`` (read lazily, in UID order) and ``end``, the
    cursor to record once all of them are processed (None: leave the cursor as it is).

    A context manager: leaving it stops the reading and releases what the scan holds (the
    folder selected on a kept IMAP connection), also when processing stopped early.
    """

    def __init__(
        self,
        messages: Iterable[RawMessage] = (),
        end: Cursor | None = None,
        on_close: Callable[[], None] | None = None,
        total: int | None = None,
    ) -> None:
        self.messages = messages
        self.end = end
        self._on_close = on_close
        # How many new messages the scan searches (for progress); None when unknown.
        self.total = total

    def close(self) -> None:
        """Stop reading and release the folder (once)."""
        if isinstance(self.messages, Iterator) and hasattr(self.messages, "close"):
            self.messages.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> Scan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MailSource(Protocol):
    """Where mail comes from: one IMAP account or one local Maildir, mbox or ``.eml``.

    ``name`` is the config's name for it, ``identity`` whose mail it is (``user@host`` for
    IMAP, ``local:<name>`` for files: cursors and duplicates are per identity), ``folders``
    the folders to read (``("",)`` for a local source). Use it as a context manager, or call
    :meth:`close`, to log out.
    """

    @property
    def name(self) -> str:
        """The config's name for the source."""
        ...

    @property
    def identity(self) -> str:
        """Whose mail it is (cursors and duplicates are per identity)."""
        ...

    @property
    def folders(self) -> tuple[str, ...]:
        """The folders to read."""
        ...

    def new_messages(self, folder: str, cursor: Cursor | None) -> Scan:
        """The mail of *folder* that *cursor* (None: nothing read yet) has not seen.

        Raises WatcherError (server unreachable, folder missing, files unreadable).
        """
        ...

    def fetch_original(self, ref: MessageRef) -> bytes:
        """The bytes of the recorded message *ref*, exactly (their SHA-256 is
        ``ref.sha256``). Raises MessageGoneError when the source no longer holds it, another
        WatcherError when the source cannot be read."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
