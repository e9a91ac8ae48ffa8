"""One message through the pure middle of the flow: parse -> classify -> authenticate.

:func:`process` turns a :class:`RawMessage` from any source into an :class:`Outcome` that the
store records and the status machine replays. It touches no disk and no network.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from watcher.kinds import KINDS, OTHER
from watcher.pipeline.authenticity import Verdict, authenticate, signed_view
from watcher.pipeline.message import Message, parse
from watcher.pipeline.rules import Match, RulePack, classify, domain_matches
from watcher.pipeline.rules.text import haystack
from watcher.sources.base import RawMessage, SourceKey

log = logging.getLogger(__name__)

# How mail clients mark a forward: the subject prefix (English, German, French, Spanish,
# Italian, Nordic, Dutch, Portuguese) and the block they put above the quoted mail. Bounded
# repeats keep every pattern linear on hostile text.
_FORWARD_SUBJECT = re.compile(
    r"^\s{0,10}(?:(?:re|aw|sv|antw)\s{0,3}:\s{0,3}){0,5}"
    r"(?:fwd?|wg|tr|rv|i|enc|vs|vb|doorst|pd)\s{0,3}:\s{0,10}",
    re.IGNORECASE,
)
_FORWARD_BLOCK = re.compile(
    r"-{2,20} ?(?:forwarded message|original message|weitergeleitete nachricht|"
    r"ursprüngliche nachricht|message transféré|message d'origine|messaggio inoltrato|"
    r"messaggio originale|mensaje reenviado|mensaje original|doorgestuurd bericht)"
    r"|^begin forwarded message:",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTED_ADDRESS = re.compile(r"[\w.+-]{1,64}@((?:[\w-]{1,63}\.){1,8}[a-z]{2,24})", re.IGNORECASE)
_QUOTE_SCAN_CHARS = 50_000


@dataclass(frozen=True)
class Settings:
    """The config values the pure middle needs."""

    trusted_authserv_ids: tuple[str, ...] = ()
    trust_unauthenticated: bool = False
    max_message_bytes: int = 25 * 1024 * 1024
    # The user's Meta accounts in one Accounts Center each (config ``meta_accounts:`` with
    # ``linked:``): groups of (platform, address), addresses lower-case.
    accounts_centers: tuple[tuple[tuple[str, str], ...], ...] = ()


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
    # The bytes as fetched: the store keeps them for unrecognized and suspicious mail so the
    # rules can be rerun on it later (`meta-watcher reclassify`).
    raw: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def worth_recording(self) -> bool:
        """True for what the log keeps: privacy kinds, unrecognized, Meta mail, errors."""
        return self.match.kind != OTHER or self.match.claims_meta or self.message.error is not None


def process(raw: RawMessage, pack: RulePack, settings: Settings) -> Outcome:
    """Parse, classify and authenticate one message; never raises for any input bytes."""
    message = parse(raw.raw, settings.max_message_bytes, raw.size)
    # Only what the DKIM signature vouches for decides kind, fields and account (issue 12):
    # a Subject outside its h= list is left out; the stored message keeps it for display.
    signed = signed_view(message, settings.trusted_authserv_ids)
    match = classify(signed, pack)
    forward = None if match.claims_meta else forwarded_meta_mail(signed, pack)
    if forward is not None:
        match, quoted = forward
        verdict = Verdict(
            "fail",
            (
                f"forwarded by {message.from_addr or 'an unknown sender'}: a copy of a mail from "
                f"{quoted}, which cannot be authenticated",
            ),
        )
    else:
        verdict = authenticate(message, match.claims_meta, pack, settings.trusted_authserv_ids)
    suspicious = match.kind != OTHER and verdict.result == "fail"
    authentic = verdict.result == "pass" or (
        verdict.result == "none" and settings.trust_unauthenticated
    )
    counted = (
        match.kind in KINDS
        and not suspicious
        # A message not read in full (too large, broken body) cannot have its links checked.
        and message.error is None
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
        fields={}
        if suspicious
        else _with_covered(dict(match.fields), signed, match, counted, pack, settings),
        raw=raw.raw,
    )


def _with_covered(
    fields: dict[str, str | None],
    message: Message,
    match: Match,
    counted: bool,
    pack: RulePack,
    settings: Settings,
) -> dict[str, str | None]:
    """*fields*, plus for a counted acceptance that says it also covers the other accounts of
    the same Accounts Center (rules.yaml ``covers_accounts_center:``) and whose account is in
    a group of ``settings.accounts_centers``: ``covers``, the group's other accounts as
    space-separated ``platform:address`` (the store replays them as accepted too). Nothing
    is added without ``meta_accounts`` links, so the labels of the corpus stay as they are."""
    if not settings.accounts_centers:
        return fields
    if not counted or match.kind != "objection_accepted" or not pack.covers_accounts_center:
        return fields
    text = haystack(message)
    if not any(p.search(text) for p in pack.covers_accounts_center):
        return fields
    me = (match.platform or "", (match.account or "").lower())
    for group in settings.accounts_centers:
        if me in group:
            others = [f"{p}:{a}" for p, a in group if (p, a) != me]
            if others:
                fields["covers"] = " ".join(others)
    return fields


def forwarded_meta_mail(message: Message, pack: RulePack) -> tuple[Match, str] | None:
    """Return (match, quoted Meta sender) when *message* is a person forwarding one of Meta's
    privacy mails, else None.

    A forward is a subject with a forward prefix (``Fwd:``, ``WG:``, ``TR:``...) or a
    forwarded-message block in the text; its quoted text must name an address on a Meta sender
    domain and match a rule when classified as if that address had sent it. Such a copy can
    never be authenticated: the caller records it as suspicious, "forwarded by" the person.
    """
    subject = _FORWARD_SUBJECT.sub("", message.subject, count=1)
    head = message.text[:_QUOTE_SCAN_CHARS]
    if subject == message.subject and not _FORWARD_BLOCK.search(head):
        return None
    quoted = next(
        (
            m.group(0).lower()
            for m in _QUOTED_ADDRESS.finditer(head)
            if domain_matches(m.group(1), pack.sender_domains)
        ),
        None,
    )
    if quoted is None:
        return None
    match = classify(replace(message, from_name="", from_addr=quoted, subject=subject), pack)
    return (match, quoted) if match.kind in KINDS else None
