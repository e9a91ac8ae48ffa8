"""What every mail source hands on: where a message lives, its bytes, and a folder's cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SourceKey:
    """Where a message lives: IMAP (account name, ``user@host``, folder, UIDVALIDITY, UID) or a
    local file (source name, path, folder '', uidvalidity 0, index as uid)."""

    source: str
    identity: str
    folder: str
    uidvalidity: int
    uid: int

    def label(self) -> str:
        """A short human label for logs: ``account/folder UID n`` (never secrets)."""
        if self.uidvalidity == 0:
            return f"{self.source}: {self.folder or self.identity}"
        return f"{self.source}/{self.folder} UID {self.uid}"


@dataclass(frozen=True)
class RawMessage:
    """Raw RFC 5322 bytes as fetched, with the server's INTERNALDATE (aware UTC) if known.

    ``size`` is the full message size in bytes when ``raw`` holds only its header (a message
    over the size limit); None when ``raw`` is the whole message.
    """

    key: SourceKey
    raw: bytes
    internal_at: datetime | None = None
    size: int | None = None  # RFC822.SIZE when only the header was fetched


@dataclass(frozen=True)
class Cursor:
    """How far a folder has been processed: (UIDVALIDITY, highest processed UID)."""

    uidvalidity: int
    last_uid: int
