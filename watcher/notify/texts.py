"""What to tell the user: the title and body of every notification, as plain text. Pure.

Codes appear masked in the texts (watcher.codes) and in full only in a Notice's ``secret``,
which the sender puts back at delivery when ``notify_codes`` is on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from watcher.codes import mask_code, mask_codes_in
from watcher.kinds import BY_NAME, UNRECOGNIZED
from watcher.pipeline.evidence import form_link
from watcher.shown import for_person

if TYPE_CHECKING:
    from watcher.pipeline.process import Outcome
    from watcher.pipeline.status import Transition

_PLATFORM_NAMES = {"facebook": "Facebook", "instagram": "Instagram"}
_RULES_TEST_HINT = (
    "No rule in rules.yaml matched it. Save it as a .eml file and run "
    "`meta-watcher rules test FILE` to see why, then report it or add a user rule."
)
# Meta's answers to an objection: (title after "<Platform>: ", what it means for the user).
_ANSWERS = {
    "objection_accepted": (
        "objection accepted",
        "Meta accepted your objection to the use of your data for AI at Meta.",
    ),
    "objection_rejected": (
        "objection rejected",
        "Meta rejected your objection. You may object again or complain to your data "
        "protection authority.",
    ),
    "info_requested": (
        "Meta asks for more information",
        "Meta needs more information before it decides on your objection. Read the mail "
        "and answer it.",
    ),
}


@dataclass(frozen=True)
class Notice:
    """One thing to tell the user, before it is addressed to targets: its ``event`` (a
    notify ``events`` name), plain-text ``title`` and ``body`` with codes masked, the full
    code as ``secret``, and whether it is a ``warning``. Title and body pass for_person:
    no control character or bidi override from a mail reaches a notification."""

    event: str
    title: str
    body: str
    secret: str | None = None
    warning: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "title", for_person(self.title))
        object.__setattr__(self, "body", for_person(self.body))


def platform_name(name: str | None) -> str:
    """``Facebook``, ``Instagram``, or the platform's name capitalised (``Meta`` for none)."""
    return _PLATFORM_NAMES.get(name or "", (name or "Meta").capitalize())


def stamp(value: datetime | None) -> str:
    """``2024-06-03 18:02 UTC``, or ``unknown date``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown date"


def describe_outcome(outcome: Outcome, transitions: Sequence[Transition]) -> Notice | None:
    """What to tell the user about *outcome*, or None when it is nothing to announce.

    Codes appear masked in the texts and in full in ``secret``. A mail that failed
    authenticity becomes a ``suspicious`` notice and nothing else; a privacy mail that could
    not be verified (no trusted Authentication-Results) is announced with a caveat. A kind
    without its own wording here is announced with its label from watcher.kinds.
    """
    msg, match = outcome.message, outcome.match
    sender = f"{msg.from_name} <{msg.from_addr}>" if msg.from_name else msg.from_addr
    # A code in a wording no rule knows arrives as unrecognized: masked like every code.
    subject = mask_codes_in(msg.subject)
    where = f"Mailbox: {outcome.key.label()}"
    # A genuine mail in the spam folder: the user must look there, and marking it as not
    # spam keeps Meta's next mail (the code, the answer) in the inbox.
    spam = " (in Spam)" if outcome.key.in_spam else ""
    if outcome.key.in_spam and not outcome.suspicious:
        where += "\nThis mail was in your Spam folder: look there and mark it as not spam."
    if outcome.suspicious:
        reasons = "; ".join(outcome.verdict.reasons) or "its authentication failed"
        return Notice(
            "suspicious",
            "Suspicious mail pretending to be Meta",
            f"From: {sender}\nSubject: {subject}\nWhy: {reasons}\n"
            "It changed no status. Do not click its links or answer it.\n" + where,
            warning=True,
        )
    mail_of = f"Mail of {stamp(outcome.mail_at)}."
    kind = match.kind
    if kind == UNRECOGNIZED:
        return Notice(
            kind,
            "Unrecognized Meta privacy mail",
            f"From: {sender}\nSubject: {subject}\n{_RULES_TEST_HINT}\n{mail_of}\n{where}",
        )
    row = BY_NAME.get(kind)
    if row is None:
        return None
    platform = platform_name(match.platform)
    account = match.account or "an account not named in the mail"
    caveat = ""
    if outcome.verdict.result != "pass":
        caveat = (
            "\nNot verified: no trusted Authentication-Results header vouches for this mail "
            "(see trusted_authserv_ids)."
        )
    status = f"\nStatus now: {transitions[-1].to_status}." if transitions else ""
    if row.carries_code:
        code = outcome.fields.get("code")
        shown = mask_code(code) or "(no code found in the mail)"
        return Notice(
            kind,
            f"{platform} verification code {shown}{spam}",
            f"Code to confirm your objection to AI at Meta: {shown}\nAccount: {account}\n"
            f"{mail_of} Meta says a code is valid for about an hour.{caveat}\n{where}",
            secret=code,
            warning=row.warning,
        )
    if kind == "policy_update":
        effective = outcome.fields.get("effective_date")
        when = f"from {effective}" if effective else "soon (the mail states no date)"
        link = form_link(msg.links) if outcome.verdict.result == "pass" else None
        form = f"\nObject here: {link}" if link else "\nObject with the form linked in the mail."
        return Notice(
            kind,
            f"{platform}: Meta will use your data for AI {when}{spam}",
            f"Meta announced it will use your information for AI at Meta {when}.\n"
            f"Account: {account}{form}\n{mail_of}{status}{caveat}\n{where}",
            warning=row.warning,
        )
    title, meaning = _ANSWERS.get(kind, (row.label, f"Meta sent a mail: {row.label}."))
    return Notice(
        kind,
        f"{platform}: {title}{spam}",
        f"{meaning}\nAccount: {account}\n{mail_of}{status}{caveat}\n{where}",
        warning=row.warning,
    )


def login_failed_notice(account: str, sentence: str) -> Notice:
    """*account* cannot log in; *sentence* says why."""
    return Notice(
        "login_failed",
        f"meta-watcher cannot log in to {account}",
        f"{sentence}.\nThe watcher retries rarely; fix the password or token and restart it. "
        "Until then, mail of this account is not watched.",
        warning=True,
    )


def policy_reminder_notice(
    platform: str, account: str, status: str, effective: str, days: int
) -> Notice:
    """The objection for *account* is not accepted and Meta's AI use starts in *days* days
    (0: today) on *effective* (ISO date)."""
    left = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    return Notice(
        "reminder",
        f"{platform_name(platform)}: AI use of your data starts {left} ({effective})",
        f"Meta starts using your information for AI at Meta on "
        f"{effective}. Your objection for {account} is not accepted "
        f"yet (status: {status}). Object with the form in Meta's mail.",
        warning=True,
    )


def answer_reminder_notice(platform: str, account: str, sent_at: datetime) -> Notice:
    """The objection confirmed on *sent_at* has had no answer for a month."""
    return Notice(
        "reminder",
        f"{platform_name(platform)}: no answer to your objection after one month",
        f"You confirmed your objection for {account} on {stamp(sent_at)}. "
        "GDPR Art. 12(3) gives Meta one month to tell you what it did; no "
        "decision has arrived. Consider asking Meta or your data protection "
        "authority.",
        warning=True,
    )


def probe_notice(label: str, now: datetime) -> tuple[str, str]:
    """(title, body) of ``meta-watcher notify-test``'s notification to the target *label*."""
    return (
        "meta-watcher test notification",
        f"If you can read this, meta-watcher can reach this target. Sent {stamp(now)} to {label}.",
    )
