"""One message through the pure middle of the flow: parse -> classify -> authenticate.

:func:`process` turns a :class:`RawMessage` from any source into an :class:`Outcome` that the
store records and the status machine replays. It touches no disk and no network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from watcher.authenticity import Verdict, authenticate
from watcher.message import Message, parse
from watcher.rules import KINDS, OTHER, Match, RulePack, classify

log = logging.getLogger(__name__)


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
class Settings:
    """The config values the pure middle needs."""

    trusted_authserv_ids: tuple[str, ...] = ()
    trust_unauthenticated: bool = False
    max_message_bytes: int = 25 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    """Everything known about one processed message.

    ``suspicious``: looks like a Meta privacy mail but failed authenticity (never counted).
    ``counted``: changes the account's status (a privacy kind, authentic, account known).
    ``mail_at``: the Date header, else INTERNALDATE (``date_source`` says which), aware UTC.
    ``fields`` are the extracted values; empty for a suspicious mail, whose values are not
    to be trusted.
    """

    key: SourceKey
    message: Message
    match: Match
    verdict: Verdict
    suspicious: bool
    counted: bool
    mail_at: datetime | None
    date_source: str
    fields: dict[str, str | None] = field(default_factory=dict)

    @property
    def worth_recording(self) -> bool:
        """True for what the log keeps: privacy kinds, unrecognized, Meta mail, errors."""
        return self.match.kind != OTHER or self.match.claims_meta or self.message.error is not None


def process(raw: RawMessage, pack: RulePack, settings: Settings) -> Outcome:
    """Parse, classify and authenticate one message; never raises for any input bytes."""
    message = parse(raw.raw, settings.max_message_bytes, raw.size)
    match = classify(message, pack)
    verdict = authenticate(message, match.claims_meta, pack, settings.trusted_authserv_ids)
    suspicious = match.kind != OTHER and verdict.result == "fail"
    authentic = verdict.result == "pass" or (
        verdict.result == "none" and settings.trust_unauthenticated
    )
    counted = (
        match.kind in KINDS
        and not suspicious
        and authentic
        and match.platform is not None
        and match.account is not None
    )
    if message.date_at is not None:
        mail_at, date_source = message.date_at, "date"
    elif raw.internal_at is not None:
        mail_at, date_source = raw.internal_at, "internaldate"
    else:
        mail_at, date_source = None, "none"
    return Outcome(
        key=raw.key,
        message=message,
        match=match,
        verdict=verdict,
        suspicious=suspicious,
        counted=counted,
        mail_at=mail_at,
        date_source=date_source,
        fields={} if suspicious else dict(match.fields),
    )


def mask_code(code: str | None) -> str | None:
    """Mask a verification code for storage and logs: ``482913`` -> ``48****``."""
    if not code:
        return code
    return code[:2] + "*" * (len(code) - 2)
