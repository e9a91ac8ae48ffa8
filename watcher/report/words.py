"""The report's plain-text values, shared by every format: dates, verdicts, labels."""

from __future__ import annotations

from datetime import UTC, datetime

from watcher.kinds import label_of
from watcher.report.objections import AccountReport, Objection
from watcher.store.rows import MailRow

VERDICT_TEXT: dict[str, str] = {
    "in_time": "answered in time",
    "late": "answered late",
    "pending": "no answer yet, still within the month",
    "overdue": "no answer within the month: overdue",
}


def day(value: datetime | None) -> str:
    """``2024-06-03`` (UTC), or empty."""
    return value.astimezone(UTC).strftime("%Y-%m-%d") if value else ""


def stamp(value: datetime | None) -> str:
    """``2024-06-03 18:02 UTC``, or empty."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def authenticity_text(mail: MailRow) -> str:
    """``pass (verified by mx.example)``, or the verdict with its reasons."""
    if mail.authenticity == "pass":
        return f"pass (Authentication-Results of {mail.authserv_id or 'a trusted server'})"
    reasons = "; ".join(mail.auth_reasons)
    label = "FAILED" if mail.authenticity == "fail" else "not verified"
    at = f" at {mail.authserv_id}" if mail.authserv_id else ""
    return f"{label}{at}: {reasons}" if reasons else f"{label}{at}"


def kind(mail: MailRow) -> str:
    """The label of the mail's kind, marked when it was suspicious or not counted."""
    text = label_of(mail.kind)
    if mail.suspicious:
        text += " (SUSPICIOUS: failed authenticity, not counted)"
    elif not mail.counted:
        text += " (not counted)"
    return text


def title(acc: AccountReport) -> str:
    """``Facebook — anna@example.org``."""
    return f"{acc.platform.capitalize()} — {acc.account}"


def answer_text(obj: Objection) -> str:
    """The label of the objection's answer, or empty."""
    if obj.answer is None:
        return ""
    return label_of(obj.answer.kind)


def status_text(acc: AccountReport) -> str:
    """The account's current status and since when."""
    if acc.status is None:
        return "no status (no authentic privacy mail recorded)"
    since = acc.status_since[:10] if acc.status_since else ""
    return f"{acc.status} (since {since})"


def effective_text(acc: AccountReport) -> str:
    """The effective date Meta's policy names, or that no mail states one."""
    return acc.effective_date.isoformat() if acc.effective_date else "not stated in any mail"


def before_text(obj: Objection) -> str:
    """Whether the objection came before the effective date, and that date."""
    if obj.before_effective is None or obj.effective_date is None:
        return "unknown (no effective date stated)"
    return f"{'yes' if obj.before_effective else 'no'} ({obj.effective_date.isoformat()})"
