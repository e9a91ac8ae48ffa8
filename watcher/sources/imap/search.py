"""Finding candidate mail on the server: ``UID SEARCH`` for Meta's sender and subject words,
with fallbacks for servers that refuse part of it (RFC 9051 6.4.4)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

log = logging.getLogger(__name__)

# UIDs per header FETCH in the fallback: about 7 KB of command line, well under servers' limits
# (Dovecot's imap_max_line_length is 64 KB).
HEADER_BATCH = 1000
_HEADER_FIELDS = b"BODY[HEADER.FIELDS (FROM SUBJECT)]"


# Reads a raw ``From:`` and ``Subject:`` header block into (From as "name <address>",
# Subject), decoded as classification decodes them.
HeaderReader = Callable[[bytes], tuple[str, str]]


class SearchWords(Protocol):
    """What the search is derived from (a rule pack, watcher.pipeline.rules.RulePack)."""

    @property
    def sender_domains(self) -> tuple[str, ...]:
        """Meta's sender domains (``facebookmail.com``)."""
        ...

    @property
    def lookalike_tokens(self) -> tuple[str, ...]:
        """Brand words a look-alike sender domain contains."""
        ...

    @property
    def search_subject_words(self) -> tuple[str, ...]:
        """Words a privacy mail's subject may hold."""
        ...


@dataclass(frozen=True)
class SearchPlan:
    """Server-side search words: ``from_words`` match the From header (display name or
    address), ``subject_words`` the Subject. Built from rules.yaml by :func:`search_plan`.
    ``read_header`` decodes the headers the fallback fetches (see HeaderReader)."""

    from_words: tuple[str, ...]
    subject_words: tuple[str, ...]
    read_header: HeaderReader = field(compare=False, repr=False)

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


def search_plan(pack: SearchWords, read_header: HeaderReader) -> SearchPlan:
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
    return SearchPlan(tuple(from_words), tuple(subject_words), read_header)


def _or_tree(terms: list[list[str]]) -> list[str]:
    if len(terms) == 1:
        return terms[0]
    mid = len(terms) // 2
    return ["OR", *_or_tree(terms[:mid]), *_or_tree(terms[mid:])]


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
            from_header, subject = plan.read_header(bytes(data.get(_HEADER_FIELDS, b"")))
            if plan.is_candidate(from_header, subject):
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
