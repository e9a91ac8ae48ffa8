"""The evidence report's content: every Meta privacy mail per account, the status timeline, the
deadlines, and whether Meta answered in time (rendered by render.py, originals by export.py).

Deadlines: the effective date Meta's policy mail states, and GDPR Art. 12(3): the controller
informs the data subject of the action taken on a request "without undue delay and in any
event within one month of receipt of the request" (extendable by two further months only if
the data subject is told so within the first month). The request's receipt is taken as the
date of Meta's last confirmation-code mail before the answer (Meta sends one each time the form
is sent; see watcher.kinds.answer_due); the answer is the first objection_accepted,
objection_rejected or info_requested mail after it. Only authentic (counted) mails move the
timeline; the others are listed and marked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from watcher.kinds import ANSWER_KINDS, SUBMISSION_KINDS, answer_due
from watcher.store.rows import MailRow, TransitionRow
from watcher.store.store import Store

NO_ADDRESS = "(address not identified)"
Verdict = Literal["in_time", "late", "pending", "overdue"]


def mail_at(mail: MailRow) -> datetime:
    """The mail's date (Date header, else INTERNALDATE, else when it was processed), aware UTC."""
    return datetime.fromisoformat(mail.mail_date or mail.processed_at).astimezone(UTC)


@dataclass(frozen=True)
class Objection:
    """One objection and its deadline: ``objected_at`` (last confirmation-code mail),
    ``due_at`` (one month later, GDPR Art. 12(3)), the ``answer`` mail if any, and the
    ``verdict``; ``effective_date`` is the date the policy notice before it names, and
    ``before_effective`` whether the objection came before it (None when none is known)."""

    objected_at: datetime
    code_mail: MailRow
    due_at: datetime
    answer: MailRow | None
    verdict: Verdict
    effective_date: date | None
    before_effective: bool | None

    @property
    def answered_at(self) -> datetime | None:
        """Date of the answer mail, or None."""
        return mail_at(self.answer) if self.answer else None


@dataclass(frozen=True)
class AccountReport:
    """Everything about one (platform, account address): mails oldest first, transitions,
    objections with their deadlines, the current status and the policy's effective date."""

    platform: str
    account: str
    mails: tuple[MailRow, ...]
    transitions: tuple[TransitionRow, ...]
    objections: tuple[Objection, ...]
    status: str | None
    status_since: str | None
    effective_date: date | None

    def change_caused_by(self, mail: MailRow) -> str | None:
        """``from -> to`` when *mail* caused a status transition, else None."""
        for t in self.transitions:
            if mail.counted and t.message_id == mail.message_id and t.mail_date == mail.mail_date:
                return f"{t.from_status or '(none)'} -> {t.to_status}"
        return None


@dataclass(frozen=True)
class Report:
    """The whole report: when it was made and one AccountReport per (platform, account)."""

    generated_at: datetime
    accounts: tuple[AccountReport, ...]


def _stated_dates(mails: Iterable[MailRow]) -> list[tuple[datetime, date]]:
    """(mail date, effective date) of every authentic policy mail that states one, in order."""
    found: list[tuple[datetime, date]] = []
    for m in mails:
        value = m.fields.get("effective_date") if m.counted else None
        if m.kind == "policy_update" and value:
            try:
                found.append((mail_at(m), date.fromisoformat(value)))
            except ValueError:
                continue
    return sorted(found)


def _effective_date(mails: Iterable[MailRow]) -> date | None:
    """The effective date the most recent authentic policy mail states."""
    stated = _stated_dates(mails)
    return stated[-1][1] if stated else None


def _effective_for(stated: list[tuple[datetime, date]], objected_at: datetime) -> date | None:
    # The notice the objection answered: the last one before it, else the first one at all.
    before = [eff for at, eff in stated if at <= objected_at]
    if before:
        return before[-1]
    return stated[0][1] if stated else None


def objections(mails: Sequence[MailRow], now: datetime) -> list[Objection]:
    """Replay the counted mails (oldest first) into objections: a confirmation-code mail opens
    one, later codes before an answer belong to it and move its date to theirs (the deadline
    counts from the last one, see watcher.kinds.answer_due), the next answer closes it.
    Each is compared with the effective date of the policy notice before it. Pure."""
    out: list[Objection] = []
    open_code: MailRow | None = None
    stated = _stated_dates(mails)

    def close(answer: MailRow | None) -> None:
        assert open_code is not None
        start = mail_at(open_code)
        due = answer_due(start)
        verdict: Verdict
        if answer is not None:
            verdict = "in_time" if mail_at(answer) <= due else "late"
        else:
            verdict = "pending" if now <= due else "overdue"
        effective = _effective_for(stated, start)
        before = None if effective is None else start.date() < effective
        out.append(Objection(start, open_code, due, answer, verdict, effective, before))

    for mail in sorted((m for m in mails if m.counted), key=lambda m: (mail_at(m), m.id)):
        if mail.kind in SUBMISSION_KINDS:
            open_code = mail
        elif mail.kind in ANSWER_KINDS and open_code is not None:
            close(mail)
            open_code = None
    if open_code is not None:
        close(None)
    return out


def build_report(store: Store, account: str | None = None, now: datetime | None = None) -> Report:
    """Collect the report from *store*: every account, or only *account* (case-insensitive).

    *now* (aware UTC, default the current time) decides whether an unanswered objection is
    still pending or overdue.
    """
    now = now or datetime.now(UTC)
    mails = store.report_mails(account)
    transitions = store.transitions()
    statuses = {(s.platform, s.account): s for s in store.current_status()}
    groups: dict[tuple[str, str], list[MailRow]] = {}
    for mail in mails:
        key = (mail.platform or "unknown", mail.account or NO_ADDRESS)
        groups.setdefault(key, []).append(mail)
    out = []
    for (platform, address), group in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        effective = _effective_date(group)
        status = statuses.get((platform, address))
        out.append(
            AccountReport(
                platform=platform,
                account=address,
                mails=tuple(group),
                transitions=tuple(
                    t for t in transitions if (t.platform, t.account) == (platform, address)
                ),
                objections=tuple(objections(group, now)),
                status=status.status if status else None,
                status_since=status.since if status else None,
                effective_date=effective,
            )
        )
    return Report(now, tuple(out))
