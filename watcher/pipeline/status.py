"""The objection status machine: replay an account's events into transitions.

Statuses (per platform and account address): ``notified``, ``code_received``, ``accepted``,
``rejected``, ``info_requested``. Every counted event sets the status of its kind, except a
policy update, which sets ``notified`` only when there is no status yet or the objection was
rejected: Meta says an earlier objection still applies after a new notice.

The status is the replay of the events in order of the mail's date, whatever order the mails
were processed in, so the result never depends on fetch order, restarts or reconnects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from watcher.kinds import STATUS_OF_KIND

# Same-date tie-break: the order these steps happen in Meta's process (the kinds table's).
_KIND_ORDER = {kind: n for n, kind in enumerate(STATUS_OF_KIND)}


@dataclass(frozen=True)
class Event:
    """A counted privacy mail: ``ref`` is the messages-table id, ``mail_at`` aware UTC."""

    ref: int
    kind: str
    mail_at: datetime
    rule_id: str | None
    message_key: str  # Message-ID, else content hash: stable tie-break


@dataclass(frozen=True)
class Transition:
    """One status change in the replay: position ``seq`` (0-based) in the account's history."""

    seq: int
    from_status: str | None
    to_status: str
    event: Event


def next_status(current: str | None, kind: str) -> str | None:
    """Return the status after an event of *kind*, or None when it changes nothing."""
    target = STATUS_OF_KIND.get(kind)
    if target is None:
        return None
    if kind == "policy_update" and current not in (None, "rejected"):
        return None
    return None if target == current else target


def replay(events: Iterable[Event]) -> list[Transition]:
    """Replay *events* of one (platform, account) in date order; return the transitions.

    Duplicate events (the same mail seen twice) change nothing the second time, because a
    status never transitions to itself.
    """
    ordered = sorted(events, key=lambda e: (e.mail_at, _KIND_ORDER.get(e.kind, 99), e.message_key))
    current: str | None = None
    out: list[Transition] = []
    for event in ordered:
        target = next_status(current, event.kind)
        if target is None:
            continue
        out.append(Transition(len(out), current, target, event))
        current = target
    return out
